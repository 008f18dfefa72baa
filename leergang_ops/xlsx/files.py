"""File-system edges of the write-back: lock files beside the workbook, atomic replacement."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from leergang_ops.xlsx.errors import FileInUse


def lock_files(path: Path) -> list[Path]:
    """Lock files that say the workbook is open: Excel's `~$NAME`, LibreOffice's `.~lock.NAME#`."""
    path = Path(path)
    candidates = (
        path.with_name(f"~${path.name}"),  # Excel (Windows and Mac) while the workbook is open
        path.with_name(f".~lock.{path.name}#"),  # LibreOffice
    )
    return [lock for lock in candidates if lock.exists()]


def ensure_not_in_use(path: Path) -> None:
    """Raise FileInUse, naming the lock file, when a lock file exists."""
    locks = lock_files(path)
    if locks:
        raise FileInUse(
            f"{Path(path).name} is geopend in een spreadsheetprogramma (lockbestand "
            f"{locks[0].name}). Sluit het bestand en probeer het opnieuw; is het niet geopend, "
            f"verwijder dan het lockbestand."
        )


def replace_atomically(path: Path, new_file: Path, backup: Path | None) -> None:
    """fsync new_file, copy the old to backup (atomically too), replace path, fsync the dir."""
    path, new_file = Path(path), Path(new_file)
    if path.exists():
        # A temp file is created 0600; the workbook keeps the permissions it had.
        shutil.copymode(path, new_file)
        if backup is not None:
            _copy_atomically(path, Path(backup))
    _fsync_file(new_file)
    os.replace(new_file, path)
    _fsync_dir(path.parent)


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy source to target through a temp file beside target, so target is never half-written."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".~tmp-", suffix=target.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        shutil.copy2(source, tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry (the rename) to disk where the platform allows it."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows has no directory fsync
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # some file systems (network shares) refuse it
            os.fsync(fd)
    finally:
        os.close(fd)
