"""Where a course's send ledger lives: found by the course, not by the workbook's file name.

`LEERGANG_STATE` wins; else `<leergang>.leergang.sqlite` in the workbook's real folder,
named after the `Leergang` setting (README "The send ledger belongs to the course"). A
ledger of an older release, named after the file, is adopted under its run lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from leergang_ops.ledger import LEDGER_SUFFIX, STATE_ENV, WORKBOOK_FACT, read_fact
from leergang_ops.run_lock import run_lock

log = logging.getLogger(__name__)


def ledger_path(workbook: Path, env: Mapping[str, str]) -> Path:
    """Return where the course's ledger lives: found by the course, not by the file's name.

    `LEERGANG_STATE` wins (a file; or a folder for the default name). Else the workbook's
    real folder (symbolic links resolved) holds `<leergang>.leergang.sqlite`, named after
    the `Leergang` setting: a renamed workbook, or one opened through another link, finds
    its history; a new edition under a new name starts a new ledger. A ledger of an older
    release (`<file name>.leergang.sqlite`) is used until `adopt_legacy` moves it.
    When the workbook cannot be read, the ledger that last served this file is used.
    """
    folder, name = _default_location(workbook, env)
    configured = env.get(STATE_ENV, "").strip()
    if configured and not Path(configured).expanduser().is_dir():
        return Path(configured).expanduser()
    course = _course_name(workbook)
    if course is None:
        return _ledger_of_file(folder, workbook) or folder / (workbook.stem + LEDGER_SUFFIX)
    path = folder / f"{_slug(course)}{LEDGER_SUFFIX}"
    legacy = folder / name
    if not path.exists() and legacy != path and legacy.exists():
        return legacy
    return path


def _default_location(workbook: Path, env: Mapping[str, str]) -> tuple[Path, str]:
    """The folder for the default ledger name, and the name an older release used."""
    configured = env.get(STATE_ENV, "").strip()
    legacy_name = workbook.stem + LEDGER_SUFFIX
    if configured and Path(configured).expanduser().is_dir():
        return Path(configured).expanduser(), legacy_name
    real = _real(workbook)
    return real.parent, real.stem + LEDGER_SUFFIX


def _real(workbook: Path) -> Path:
    try:
        return workbook.resolve(strict=True)
    except OSError:
        return workbook.absolute()


def _course_name(workbook: Path) -> str | None:
    try:
        stat = workbook.stat()
    except OSError:
        return None
    return _course_name_of(str(_real(workbook)), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _course_name_of(path: str, mtime_ns: int, size: int) -> str | None:
    # Cached by the file's identity: a run asks several times, and the workbook may be large.
    from leergang_ops.workbook.read import course_name

    return course_name(Path(path))


def _slug(name: str) -> str:
    """`Leergang slagvaardige wijkaanpak` → `leergang-slagvaardige-wijkaanpak`."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = "-".join("".join(c if c.isalnum() else " " for c in ascii_name.lower()).split())
    return slug[:80].strip("-") or "leergang"


def _ledger_of_file(folder: Path, workbook: Path) -> Path | None:
    """The ledger in `folder` that last served a workbook of this name (it cannot be read now)."""
    wanted = _real(workbook).name
    for candidate in sorted(folder.glob(f"*{LEDGER_SUFFIX}")):
        if read_fact(candidate, WORKBOOK_FACT) == wanted:
            return candidate
    return None


def adopt_legacy(workbook: Path, env: Mapping[str, str]) -> Path:
    """Move an older release's `<file name>.leergang.sqlite` to the course's name; the path.

    Done under the old ledger's run lock, after a checkpoint that empties its WAL (the WAL
    file goes by the database's name: renamed apart, committed mails would be lost).
    """
    path = ledger_path(workbook, env)
    folder, name = _default_location(workbook, env)
    legacy = folder / name
    course = _course_name(workbook)
    if course is None or path != legacy:
        return path
    target = folder / f"{_slug(course)}{LEDGER_SUFFIX}"
    if target == legacy or target.exists():
        return path
    with run_lock(legacy):
        db = sqlite3.connect(legacy, isolation_level=None)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode = DELETE")  # no WAL file left to leave behind
        finally:
            db.close()
        os.replace(legacy, target)
    with contextlib.suppress(OSError):
        os.unlink(legacy.with_name(legacy.name + ".lock"))
    log.info("Verzendlogboek %s hernoemd naar %s (voortaan gevonden via de leergang)",
             legacy, target)
    return target
