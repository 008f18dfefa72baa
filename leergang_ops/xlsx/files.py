"""File-system edges of the write-back: lock files beside the workbook, atomic replacement,
the tool's own temp files beside it and their removal after a killed run."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from leergang_ops.xlsx.errors import FileInUse

log = logging.getLogger(__name__)

# Every temp file the write-back leaves beside a workbook is named
#     .~leergang-<workbook file name>-<12 hex digits>.tmp
# hidden, the tool's own prefix and the full name of the workbook it belongs to (so
# `cursus.xlsx` and `cursus.xlsm` in one folder, or `x.xlsx` and `x.backup.xlsx`, never claim
# each other's), and never like Excel's `~$NAME` or LibreOffice's `.~lock.NAME#`.
TEMP_PREFIX = ".~leergang-"
TEMP_SUFFIX = ".tmp"
_RANDOM_HEX = 12  # digits: secrets.token_hex(6)
_NAME_MAX = 255  # bytes in a file name on the common file systems
_FIXED = len(TEMP_PREFIX) + 1 + _RANDOM_HEX + len(TEMP_SUFFIX)


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
    """Copy source to target through a temp file beside target, so target is never half-written.

    The temp file is named for `source` (the workbook), so cleaning up after the workbook
    finds it too.
    """
    tmp = temp_file_beside(source, target.parent)
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


def temp_file_beside(workbook: Path, directory: Path | None = None) -> Path:
    """Create an empty temp file (mode 0600) of the workbook's, in `directory` (its folder).

    Named `.~leergang-<workbook name>-<random>.tmp`; raises OSError when it cannot be made.
    """
    workbook = Path(workbook)
    folder = workbook.parent if directory is None else Path(directory)
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0))
    for _ in range(100):
        name = f"{TEMP_PREFIX}{_tag(workbook.name)}-{secrets.token_hex(_RANDOM_HEX // 2)}"
        path = folder / f"{name}{TEMP_SUFFIX}"
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(f"no free temp-file name in {folder}")


def remove_stale_temp_files(workbook: Path, started_before: float) -> list[Path]:
    """Remove this workbook's own temp files left by a killed run; return what was removed.

    Only regular files named like the tool's temp files *for this workbook* (see
    TEMP_PREFIX; an older release's `.~<stem>-<8 random>.tmp` too), beside the workbook's
    real file, whose mtime is before `started_before` (the time the caller took the run
    lock, so no run that could still own them is alive). Symlinks, folders and anything
    else are left alone and never followed; a file that cannot be removed is logged and
    skipped. Call it holding the run lock, before this run writes anything itself.
    """
    target = Path(workbook).resolve()
    ours = _own_names(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError as err:
        log.warning("Kan de map %s niet doorzoeken op oude tijdelijke bestanden: %s",
                    target.parent, err.strerror or err)
        return removed
    for entry in entries:
        if not any(pattern.fullmatch(entry.name) for pattern in ours):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("Kan oud tijdelijk bestand %s niet bekijken: %s", entry.path,
                        err.strerror or err)
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= started_before:
            continue
        try:
            os.unlink(entry.path)  # a symlink swapped in meanwhile is unlinked, not followed
        except FileNotFoundError:
            continue
        except OSError as err:
            log.warning("Kan oud tijdelijk bestand %s niet opruimen: %s", entry.path,
                        err.strerror or err)
            continue
        removed.append(Path(entry.path))
    return sorted(removed)


def _own_names(target: Path) -> tuple[re.Pattern[str], ...]:
    """The names of the temp files the tool makes (and an older release made) for target."""
    return (
        re.compile(re.escape(f"{TEMP_PREFIX}{_tag(target.name)}-")
                   + f"[0-9a-f]{{{_RANDOM_HEX}}}" + re.escape(TEMP_SUFFIX)),
        # Releases before this one: tempfile.mkstemp(prefix=".~<stem>-", suffix=".tmp").
        re.compile(re.escape(f".~{target.stem}-") + "[a-z0-9_]{8}" + re.escape(".tmp")),
    )


def _tag(name: str) -> str:
    """The workbook's name as it appears in its temp files, cut so the name stays legal."""
    room = _NAME_MAX - _FIXED
    encoded = name.encode("utf-8", errors="surrogateescape")
    if len(encoded) <= room:
        return name
    return encoded[:room].decode("utf-8", errors="ignore")
