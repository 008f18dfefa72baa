"""The write-back in the course's terms: leergang_ops.xlsx patches, this names the errors.

The xlsx package knows nothing of courses; its errors become the course's here, with the
same Dutch message: a file in use is WorkbookInUse (exit 3), a failed read-back a
LeergangError, anything else about the file InputError (exit 2).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

from leergang_ops.environment import fault
from leergang_ops.errors import InputError, LeergangError, WorkbookInUse
from leergang_ops.xlsx import write as xlsx_write
from leergang_ops.xlsx.errors import FileInUse, VerificationFailed, XlsxError
from leergang_ops.xlsx.write import CellStyle, CellWrite, backup_path, column_letters

__all__ = ["CellStyle", "CellWrite", "backup_path", "column_letters", "course_errors",
           "patch_workbook", "write_cells"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextlib.contextmanager
def course_errors(path: Path | str | None = None) -> Iterator[None]:
    """Re-raise the xlsx package's errors as the course's, keeping the message.

    `path` names the file a disk fault is reported for when the OS error names none (a
    write into an open temp file: ENOSPC carries no file name).
    """
    try:
        yield
    except FileInUse as err:
        raise WorkbookInUse(str(err)) from err
    except VerificationFailed as err:
        raise LeergangError(str(err)) from err
    except XlsxError as err:
        raise InputError(str(err)) from err
    except OSError as err:  # the disk: full, read-only, no permission
        found = fault(err, getattr(err, "filename", None) or path)
        if found is None:
            raise
        raise found from err


def _in_course_terms(func: Callable[_P, _R], written: int) -> Callable[_P, _R]:
    """`func` raising the course's errors instead of the xlsx package's; its positional
    argument `written` is the file it writes, named in a disk fault."""
    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        target = args[written] if len(args) > written else None
        with course_errors(target if isinstance(target, str | Path) else None):
            return func(*args, **kwargs)
    return wrapper


write_cells = _in_course_terms(xlsx_write.write_cells, written=0)
patch_workbook = _in_course_terms(xlsx_write.patch_workbook, written=1)
