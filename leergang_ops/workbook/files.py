"""Lock files beside the workbook; the file-system helpers live in leergang_ops.xlsx.files."""

from __future__ import annotations

from leergang_ops.xlsx.files import ensure_not_in_use, lock_files, replace_atomically

__all__ = ["ensure_not_in_use", "lock_files", "replace_atomically"]
