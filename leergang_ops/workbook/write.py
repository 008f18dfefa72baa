"""The course's side of the write-back: the lossless patcher lives in leergang_ops.xlsx."""

from __future__ import annotations

from leergang_ops.xlsx.cells import CellStyle, CellWrite
from leergang_ops.xlsx.refs import column_letters
from leergang_ops.xlsx.write import backup_path, patch_workbook, write_cells

__all__ = ["CellStyle", "CellWrite", "backup_path", "column_letters", "patch_workbook",
           "write_cells"]
