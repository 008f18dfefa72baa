"""After a killed run: remove the tool's own stale temp files beside the workbook.

The names and the rules live in leergang_ops.xlsx.files, where the temp files are made:
`.~leergang-<workbook name>-<random>.tmp`, beside the workbook's real file. Only regular
files of that name for this workbook, older than the run lock's acquisition, are removed;
Excel's `~$NAME`, LibreOffice's `.~lock.NAME#`, symlinks and every other file are left alone.
"""

from __future__ import annotations

from leergang_ops.xlsx.files import TEMP_PREFIX, remove_stale_temp_files

__all__ = ["TEMP_PREFIX", "remove_stale_temp_files"]
