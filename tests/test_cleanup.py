"""Clean up after a killed run (issue 12, item 5): the tool's own stale temp files go, and
nothing else does — not Excel's or LibreOffice's lock files, not an organiser's file, not
what a symlink points to."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.generate import make_workbook as make_big_workbook
from leergang_ops.cli import main
from leergang_ops.workbook.cleanup import TEMP_PREFIX, remove_stale_temp_files
from leergang_ops.workbook.write import CellWrite, write_cells
from leergang_ops.xlsx import files as files_module
from leergang_ops.xlsx.files import temp_file_beside
from tests.conftest import person

OURS = re.compile(r"\.~leergang-(?P<name>.+)-[0-9a-f]{12}\.tmp")
HOUR_AGO = time.time() - 3600

needs_sigkill = pytest.mark.skipif(sys.platform == "win32", reason="no SIGKILL on Windows")


def _old(path: Path) -> Path:
    os.utime(path, (HOUR_AGO, HOUR_AGO), follow_symlinks=False)
    return path


def _touch_old(path: Path, data: bytes = b"x") -> Path:
    path.write_bytes(data)
    return _old(path)


def _stale(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX))


# --- a real killed `flag` -------------------------------------------------------------


@pytest.fixture(scope="module")
def big_workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 registrations: `flag` takes seconds, long enough to be killed mid-write."""
    return make_big_workbook(tmp_path_factory.mktemp("big") / "BIG.xlsx", 20_000)


def _kill_flag_mid_write(workbook: Path) -> Path:
    """Start `python -m leergang_ops flag`, SIGKILL it once its temp file is being written."""
    process = subprocess.Popen([sys.executable, "-m", "leergang_ops", "flag", str(workbook)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    seen: list[Path] = []
    try:
        while time.monotonic() < deadline and process.poll() is None:
            seen = [p for p in workbook.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
            if seen and seen[0].stat().st_size > 0:  # the new zip is being written
                break
            time.sleep(0.002)
        if process.poll() is not None:
            pytest.fail(f"flag ended (exit {process.returncode}) before it could be killed "
                        f"mid-write: {process.stderr.read() if process.stderr else b''!r}")
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    assert seen, "no temp file appeared beside the workbook"
    return seen[0]


@needs_sigkill
def test_a_killed_flag_leaves_its_temp_file_which_the_cleanup_removes(
        big_workbook: Path, tmp_path: Path) -> None:
    workbook = shutil.copy2(big_workbook, tmp_path / "BIG.xlsx")
    before = workbook.read_bytes()
    organisers = [_touch_old(tmp_path / name) for name in (".~tmp-notes.xlsx", "notes.xlsx")]
    killed = _kill_flag_mid_write(workbook)

    assert killed.exists(), "the bug: a killed flag leaves its temp file"
    assert OURS.fullmatch(killed.name) and OURS.fullmatch(killed.name)["name"] == "BIG.xlsx"
    assert workbook.read_bytes() == before
    # Opened in Excel and LibreOffice meanwhile (they would have stopped the run before).
    organisers += [_touch_old(tmp_path / name) for name in ("~$BIG.xlsx", ".~lock.BIG.xlsx#")]

    assert remove_stale_temp_files(workbook, time.time()) == [killed]
    assert _stale(tmp_path) == []
    assert workbook.read_bytes() == before  # byte-identical to before the killed run
    assert all(path.exists() for path in organisers)


@needs_sigkill
def test_a_killed_flag_then_a_normal_run_leaves_no_stale_files(
        big_workbook: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    workbook = shutil.copy2(big_workbook, tmp_path / "BIG.xlsx")
    organisers = [_touch_old(tmp_path / name) for name in (
        "~$other.xlsx", ".~lock.other.xlsx#", ".~tmp-notes.xlsx")]
    killed = _kill_flag_mid_write(workbook)
    assert killed.exists()

    caplog.set_level(logging.INFO)
    assert main(["-v", "flag", str(workbook)]) == 0

    assert _stale(tmp_path) == []
    assert f"Opgeruimd: {killed.name}" in caplog.messages
    assert all(path.exists() for path in organisers)


# --- the function itself --------------------------------------------------------------


def test_only_the_tools_own_old_temp_files_of_this_workbook_are_removed(tmp_path: Path) -> None:
    workbook = _touch_old(tmp_path / "cursus.xlsx", b"PK")
    ours = [_old(temp_file_beside(workbook)) for _ in range(2)]
    backup_temp = _old(temp_file_beside(workbook, tmp_path))
    legacy = _touch_old(tmp_path / ".~cursus-ab_c12z9.tmp")  # an older release's name
    kept = [_touch_old(tmp_path / name) for name in (
        "~$cursus.xlsx",  # Excel's lock file
        ".~lock.cursus.xlsx#",  # LibreOffice's
        ".~tmp-notes.xlsx",  # an organiser's file of another stem
        ".~tmp-cursus.xlsx",
        "cursus.backup.xlsx",
        ".~leergang-cursus.xlsm-0123456789ab.tmp",  # another workbook's (same stem)
        ".~leergang-cursus.backup.xlsx-0123456789ab.tmp",
        ".~leergang-cursus-2.xlsx-0123456789ab.tmp",
        ".~leergang-cursus.xlsx-0123456789ab.tmp.bak",  # not our name
        ".~leergang-cursus.xlsx-0123456789AB.tmp",
        ".~leergang-cursus.xlsx-0123456789a.tmp",
        ".~cursus-notes.tmp",
        ".~cursus-2-ab_c12z9.tmp",
    )]

    removed = remove_stale_temp_files(workbook, time.time())

    assert removed == sorted([*ours, backup_temp, legacy])
    assert all(not path.exists() for path in removed)
    assert all(path.exists() for path in kept)
    assert workbook.read_bytes() == b"PK"


def test_a_temp_file_younger_than_the_run_lock_is_left_alone(tmp_path: Path) -> None:
    workbook = tmp_path / "cursus.xlsx"
    locked_at = time.time() - 60
    young = temp_file_beside(workbook)  # mtime now: after the lock was taken
    old = temp_file_beside(workbook)
    os.utime(old, (locked_at - 1, locked_at - 1))

    assert remove_stale_temp_files(workbook, locked_at) == [old]
    assert young.exists()


def test_a_symlink_or_a_folder_named_like_ours_is_neither_followed_nor_removed(
        tmp_path: Path) -> None:
    folder = tmp_path / "map"
    folder.mkdir()
    workbook = folder / "cursus.xlsx"
    elsewhere = _touch_old(tmp_path / "precious.xlsx", b"keep me")
    elsewhere_dir = tmp_path / "precious"
    elsewhere_dir.mkdir()
    _touch_old(elsewhere_dir / "inside.txt")
    to_file = folder / f"{TEMP_PREFIX}cursus.xlsx-00000000000a.tmp"
    to_file.symlink_to(elsewhere)
    to_dir = folder / f"{TEMP_PREFIX}cursus.xlsx-00000000000b.tmp"
    to_dir.symlink_to(elsewhere_dir, target_is_directory=True)
    dangling = folder / f"{TEMP_PREFIX}cursus.xlsx-00000000000c.tmp"
    dangling.symlink_to(tmp_path / "gone")
    a_dir = folder / f"{TEMP_PREFIX}cursus.xlsx-00000000000d.tmp"
    a_dir.mkdir()
    for path in (to_file, to_dir, dangling, a_dir):
        _old(path)

    assert remove_stale_temp_files(workbook, time.time()) == []
    assert all(os.path.lexists(path) for path in (to_file, to_dir, dangling, a_dir))
    assert elsewhere.read_bytes() == b"keep me"
    assert (elsewhere_dir / "inside.txt").exists()


def test_through_a_symlinked_workbook_the_real_files_folder_is_cleaned(tmp_path: Path) -> None:
    real = tmp_path / "echt"
    real.mkdir()
    workbook = _touch_old(real / "cursus.xlsx", b"PK")
    link = tmp_path / "snelkoppeling.xlsx"
    link.symlink_to(workbook)
    stale = _old(temp_file_beside(workbook))  # write_cells makes it beside the real file

    assert remove_stale_temp_files(link, time.time()) == [stale]


def test_a_file_that_cannot_be_removed_is_logged_and_skipped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    workbook = tmp_path / "cursus.xlsx"
    stuck, free = _old(temp_file_beside(workbook)), _old(temp_file_beside(workbook))
    unlink = os.unlink

    def refuse(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        if Path(path) == stuck:  # root ignores file modes: refuse the way a share would
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path)

    monkeypatch.setattr(files_module.os, "unlink", refuse)
    with caplog.at_level(logging.WARNING, logger="leergang_ops"):
        assert remove_stale_temp_files(workbook, time.time()) == [free]
    assert stuck.exists()
    assert any(stuck.name in message and "niet opruimen" in message
               for message in caplog.messages)


def test_an_unreadable_folder_is_logged_not_raised(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="leergang_ops"):
        assert remove_stale_temp_files(tmp_path / "weg" / "cursus.xlsx", time.time()) == []
    assert caplog.messages


def test_a_very_long_workbook_name_still_gets_a_legal_temp_name_that_cleanup_finds(
        tmp_path: Path) -> None:
    workbook = tmp_path / f"{'é' * 120}.xlsx"  # 245 bytes in UTF-8
    stale = _old(temp_file_beside(workbook))
    assert len(os.fsencode(stale.name)) <= 255
    assert stale.name.startswith(TEMP_PREFIX)
    assert remove_stale_temp_files(workbook, time.time()) == [stale]


def test_the_temp_file_is_private_and_empty(tmp_path: Path) -> None:
    temp = temp_file_beside(tmp_path / "cursus.xlsx")
    assert OURS.fullmatch(temp.name)
    assert temp.parent == tmp_path
    assert temp.stat().st_size == 0
    if sys.platform != "win32":
        assert temp.stat().st_mode & 0o777 == 0o600


def test_every_temp_file_of_the_write_back_has_our_name(
        make_workbook: Callable[..., Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    workbook = make_workbook(registrations=[person(1)])
    synced: list[Path] = []
    fsync = files_module._fsync_file

    def record(path: Path) -> None:
        synced.append(Path(path))
        fsync(path)

    monkeypatch.setattr(files_module, "_fsync_file", record)
    assert write_cells(workbook, "Deelnemers", {(2, 11): CellWrite("bevestigd")})

    # The new workbook and the backup's copy, each through a temp file beside the workbook.
    assert len(synced) == 2
    assert all(path.parent == tmp_path for path in synced)
    assert all(OURS.fullmatch(path.name)["name"] == workbook.name  # type: ignore[index]
               for path in synced)
    assert _stale(tmp_path) == []
