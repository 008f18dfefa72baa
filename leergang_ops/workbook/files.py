"""Lock files beside the workbook, in the course's terms (the helpers live in xlsx.files)."""

from __future__ import annotations

from pathlib import Path

from leergang_ops.workbook.write import course_errors
from leergang_ops.xlsx import files
from leergang_ops.xlsx.files import lock_files

__all__ = ["ensure_not_in_use", "lock_files"]


def ensure_not_in_use(path: Path) -> None:
    """Raise WorkbookInUse, naming the lock file, when a lock file exists."""
    with course_errors():
        files.ensure_not_in_use(path)
