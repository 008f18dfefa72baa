"""leergang-ops: run a course's administration for Dutch municipalities from an Excel workbook.

The public API, imported on first use so that the command line starts fast:

    from leergang_ops import load_course, allocate, plan, write_cells
    course = load_course(Path("leergang.xlsx"))
    allocation = allocate(course)                       # contract §2, pure
    write_cells(path, "Deelnemers", {(2, 12): CellWrite("bevestigd")})   # lossless
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "load_course": "leergang_ops.workbook.read",
    "allocate": "leergang_ops.allocation",
    "plan": "leergang_ops.planning",
    "render": "leergang_ops.mail.render",
    "Templates": "leergang_ops.mail.render",
    "Ledger": "leergang_ops.ledger",
    "write_cells": "leergang_ops.workbook.write",
    "patch_workbook": "leergang_ops.workbook.write",
    "CellWrite": "leergang_ops.workbook.write",
    "CellStyle": "leergang_ops.workbook.write",
    "build_summary": "leergang_ops.summary",
    "import_export": "leergang_ops.importer",
    "check": "leergang_ops.jobs",
    "flag": "leergang_ops.jobs",
    "run": "leergang_ops.jobs",
}
__all__ = [  # noqa: RUF022 — grouped as _API, not sorted
    "__version__", "load_course", "allocate", "plan", "render", "Templates", "Ledger",
    "write_cells", "patch_workbook", "CellWrite", "CellStyle", "build_summary",
    "import_export", "check", "flag", "run",
]

if TYPE_CHECKING:
    from leergang_ops.allocation import allocate
    from leergang_ops.importer import import_export
    from leergang_ops.jobs import check, flag, run
    from leergang_ops.ledger import Ledger
    from leergang_ops.mail.render import Templates, render
    from leergang_ops.planning import plan
    from leergang_ops.summary import build_summary
    from leergang_ops.workbook.read import load_course
    from leergang_ops.workbook.write import CellStyle, CellWrite, patch_workbook, write_cells


def __getattr__(name: str) -> Any:
    """Import the module behind a public name when it is first used."""
    if name not in _API:
        raise AttributeError(f"module 'leergang_ops' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
