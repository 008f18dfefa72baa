"""The machine's faults, in words an operator acts on (contract §4: exit 2, never a traceback).

No permission on the workbook, its folder or the ledger; a read-only file system; a full disk;
a ledger SQLite calls full or damaged: each becomes one EnvironmentFault naming the path and
the cause in Dutch. `writable` finds out before anything is sent whether the run can write its
results back at all.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from leergang_ops.errors import EnvironmentFault

_CAUSES = {
    errno.ENOSPC: "schijf vol",
    errno.EDQUOT: "schijfquotum vol",
    errno.EACCES: "geen schrijfrechten",
    errno.EPERM: "geen schrijfrechten",
    errno.EROFS: "de schijf is alleen-lezen",
    errno.EIO: "schijffout (invoer/uitvoer)",
}
# What SQLite says (its messages are stable across versions), and what that means here.
_SQLITE_CAUSES = (
    ("database or disk is full", "schijf vol"),
    ("readonly database", "geen schrijfrechten"),
    ("unable to open database file", "geen schrijfrechten of de map bestaat niet"),
    ("disk i/o error", "schijffout (invoer/uitvoer)"),
    ("malformed", "het bestand is beschadigd"),
    ("file is not a database", "het bestand is geen verzendlogboek (beschadigd?)"),
)


def cause_of(error: BaseException) -> str | None:
    """The Dutch cause of an environment fault; None when `error` is not one."""
    if isinstance(error, OSError) and error.errno in _CAUSES:
        return _CAUSES[error.errno]
    if isinstance(error, sqlite3.Error):
        text = str(error).lower()
        return next((cause for words, cause in _SQLITE_CAUSES if words in text), None)
    return None


def fault(error: BaseException, path: Path | str | None = None) -> EnvironmentFault | None:
    """The EnvironmentFault for `error` at `path`, or None when it is no environment fault."""
    cause = cause_of(error)
    if cause is None:
        return None
    where = path or getattr(error, "filename", None) or "?"
    if cause.startswith("schijffout") and _nearly_full(Path(where)):
        cause = "schijf vol"  # SQLite says "disk I/O error" when its WAL cannot grow
    return EnvironmentFault(f"{where}: {cause}. Er is niets meer verstuurd of geschreven; wat al "
                            "verstuurd was, staat in het verzendlogboek. Los het op en start "
                            "de run opnieuw: niemand krijgt een mail twee keer.")


@contextlib.contextmanager
def translated(path: Path | str | None = None) -> Iterator[None]:
    """Re-raise an environment fault in the block as EnvironmentFault naming `path`."""
    try:
        yield
    except (OSError, sqlite3.Error) as err:
        found = fault(err, path)
        if found is None:
            raise
        raise found from err


def _nearly_full(path: Path) -> bool:
    """Less than 1 MiB free where `path` lives (or its nearest existing folder)."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free < 1024 * 1024
            except OSError:
                return False
    return False


def writable(workbook: Path, ledger: Path, room: int) -> None:
    """Find out, before sending, whether the run can write its results; EnvironmentFault if not.

    The workbook must open for writing (without a byte written), its folder must take a new
    file (the write-back writes beside it and renames), and the disk must have `room` bytes
    free for the new workbook, its backup and the ledger's growth. Checked by trying, not by
    reading modes: root ignores modes, and so do some network shares.
    """
    with translated(workbook), open(workbook, "r+b"):
        pass
    for folder in {workbook.parent, ledger.parent}:
        with translated(folder):
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".~leergang-probe-")
            os.close(fd)
            os.unlink(probe)
    free = shutil.disk_usage(workbook.parent).free
    if free < room:
        raise EnvironmentFault(
            f"{workbook.parent}: schijf vol ({free // 1024} KB vrij, nodig ongeveer "
            f"{room // 1024} KB voor de nieuwe werkmap en het verzendlogboek). Er is niets "
            "verstuurd.")
