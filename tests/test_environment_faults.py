"""The machine's faults (contract §4): exit 2, one Dutch sentence naming the path and the cause,
never a traceback; found before sending where it can be; nothing sent twice after the fix.

Real faults, not mocks: tests and CI run as root, which ignores file modes, so the tool runs
with CAP_DAC_OVERRIDE dropped (`setpriv` from util-linux); a full disk is a small tmpfs the
test mounts (skipped where mounting is refused).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import person
from tests.smtp_server import SmtpServer

Build = Callable[..., Path]
DAY = ["--today", "2021-10-05"]
REPO = Path(__file__).resolve().parents[1]
SETPRIV = shutil.which("setpriv")


def leergang(*args: str, env: dict[str, str] | None = None, unprivileged: bool = False,
             ) -> subprocess.CompletedProcess[str]:
    """`python -m leergang_ops ARGS` as a process; `unprivileged`: file modes hold for it."""
    command = [sys.executable, "-m", "leergang_ops", *args]
    if unprivileged:
        if SETPRIV is None or os.geteuid() != 0:
            pytest.skip("needs root and setpriv to drop CAP_DAC_OVERRIDE")
        command = [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, **(env or {})}, check=False)


def clean(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def course(make_workbook: Build) -> Path:
    return make_workbook(registrations=[person(n, g, day=n) for n, g in
                                        enumerate(("Utrecht", "Zeist", "Houten"), start=1)])


def outbox(path: Path) -> list[Path]:
    return sorted((path.parent / "outbox").glob("*.eml"))


# --- no permission ---------------------------------------------------------------------------

def test_a_read_only_workbook_is_exit_2_before_anything_is_sent(course: Path) -> None:
    before = course.read_bytes()
    course.chmod(0o444)
    result = leergang("run", str(course), *DAY, unprivileged=True)
    assert result.returncode == 2
    err = clean(result)
    assert str(course) in err and "geen schrijfrechten" in err
    assert outbox(course) == []
    assert course.read_bytes() == before


def test_a_read_only_folder_is_exit_2_before_anything_is_sent(course: Path) -> None:
    assert leergang("flag", str(course)).returncode == 0  # a ledger exists already
    before = course.read_bytes()
    course.parent.chmod(0o555)
    try:
        result = leergang("run", str(course), *DAY, unprivileged=True)
    finally:
        course.parent.chmod(0o755)
    assert result.returncode == 2
    assert "geen schrijfrechten" in clean(result)
    assert outbox(course) == []
    assert course.read_bytes() == before


def test_a_ledger_without_write_permission_is_exit_2(course: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = {"LEERGANG_STATE": str(state)}
    assert leergang("run", str(course), *DAY, env=env).returncode == 0
    for file in state.iterdir():
        file.chmod(0o444)
    state.chmod(0o555)
    try:
        result = leergang("run", str(course), "--today", "2021-11-04", env=env,
                          unprivileged=True)
    finally:
        state.chmod(0o755)
    assert result.returncode == 2
    assert str(state) in clean(result)


# --- a full disk --------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, mounted for the test."""
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is refused here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill `disk` up to `leave` bytes free; returns the filler file to delete later."""
    filler = disk / "filler.bin"
    free = shutil.disk_usage(disk).free - leave
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(free, 0))
    return filler


@contextlib.contextmanager
def filled_at(smtp_server: SmtpServer, disk: Path, mails: int) -> Iterator[list[Path]]:
    """Fill `disk` as the server takes the `mails`-th mail; yields the filler files, which are
    removed (the space freed) when the block ends."""
    original = smtp_server.handler.handle_DATA
    filled: list[Path] = []

    async def filling(server: object, session: object, envelope: object) -> str:
        reply = await original(server, session, envelope)  # type: ignore[arg-type]
        if len(smtp_server.messages) == mails and not filled:
            filled.append(fill(disk))
        return reply

    smtp_server.handler.handle_DATA = filling  # type: ignore[method-assign]
    try:
        yield filled
    finally:
        smtp_server.handler.handle_DATA = original  # type: ignore[method-assign]
        for filler in filled:
            filler.unlink()


def test_a_full_disk_before_the_run_is_exit_2_and_nothing_is_sent(
        course: Path, small_disk: Path) -> None:
    path = small_disk / course.name
    shutil.copy(course, path)
    before = path.read_bytes()
    filler = fill(small_disk)
    result = leergang("run", str(path), *DAY)
    assert result.returncode == 2
    assert "schijf vol" in clean(result)
    assert path.read_bytes() == before
    filler.unlink()
    assert leergang("run", str(path), *DAY).returncode == 0
    assert len(outbox(path)) == 4  # three confirmations and the overview, once


def test_too_little_room_for_the_write_back_is_found_before_sending(
        course: Path, small_disk: Path, smtp_server: SmtpServer) -> None:
    path = small_disk / course.name
    shutil.copy(course, path)
    assert leergang("flag", str(path)).returncode == 0
    filler = fill(small_disk, leave=8 * 1024)  # room for a lock file, not for a workbook
    result = leergang("run", str(path), *DAY, env=smtp_server.env())
    assert result.returncode == 2
    assert "schijf vol" in clean(result)
    assert smtp_server.messages == []
    filler.unlink()
    assert leergang("run", str(path), *DAY, env=smtp_server.env()).returncode == 0
    assert len(smtp_server.messages) == 4


def test_a_disk_that_fills_during_the_batch_stops_it_and_nothing_is_sent_twice(
        make_workbook: Build, small_disk: Path, smtp_server: SmtpServer) -> None:
    """The ledger on the small disk; the disk fills while the server takes the 10th mail."""
    many = make_workbook(registrations=[person(n, f"Gemeente{n % 20}", day=1 + n % 28)
                                        for n in range(1, 61)])
    env = {**smtp_server.env(), "LEERGANG_STATE": str(small_disk)}
    with filled_at(smtp_server, small_disk, 10):
        first = leergang("run", str(many), *DAY, env=env)
    assert first.returncode == 2, first.stderr
    assert "schijf vol" in clean(first)
    assert len(smtp_server.messages) == 10  # the batch stopped at the fault
    assert leergang("run", str(many), *DAY, env=env).returncode == 0
    ids = Counter(str(r.message["Message-ID"]) for r in smtp_server.messages)
    assert sum(ids.values()) - len(ids) <= 1  # at most the one mail in flight, twice
    assert len(ids) == len(set(ids))
    assert leergang("run", str(many), *DAY, env=env).returncode == 0  # nothing more due
    assert sum(Counter(str(r.message["Message-ID"]) for r in smtp_server.messages).values()) \
        == sum(ids.values())


def test_a_disk_that_fills_during_the_write_back_keeps_the_workbook_and_mails_nobody_twice(
        course: Path, small_disk: Path, smtp_server: SmtpServer, tmp_path: Path) -> None:
    """The workbook on the small disk, the ledger elsewhere; the disk fills while the server
    takes the last mail, so every mail is recorded and the write-back (its temporary .xlsx
    and backup beside the workbook) is what meets the full disk."""
    from leergang_ops.workbook.read import load_course

    path = small_disk / course.name
    shutil.copy(course, path)
    state = tmp_path / "state"
    state.mkdir()
    env = {**smtp_server.env(), "LEERGANG_STATE": str(state)}
    assert leergang("flag", str(path), env=env).returncode == 0
    before = path.read_bytes()
    files = sorted(p.name for p in small_disk.iterdir())  # the workbook and flag's backup
    with filled_at(smtp_server, small_disk, 4) as filled:
        first = leergang("run", str(path), *DAY, env=env)
        assert filled, "the disk was never filled: the run sent fewer mails than expected"
        # not half-written, and no temp file left beside it
        assert sorted(p.name for p in small_disk.iterdir()) == sorted([*files, "filler.bin"])
    assert first.returncode == 2, first.stderr
    err = clean(first)
    assert "schijf vol" in err and str(small_disk) in err
    assert path.read_bytes() == before
    assert len(smtp_server.messages) == 4
    second = leergang("run", str(path), *DAY, env=env)
    assert second.returncode == 0, second.stderr
    assert len(smtp_server.messages) == 4  # everything was recorded as sent: nothing again
    confirmed = [r.bevestiging_verstuurd for r in load_course(path).registrations]
    assert all(confirmed), confirmed  # the columns the first run could not write, now written


def test_a_read_only_file_system_is_exit_2_before_anything_is_sent(
        course: Path, small_disk: Path, smtp_server: SmtpServer, tmp_path: Path) -> None:
    """A disk mounted read-only (a backup volume, a failing disk the kernel remounted)."""
    path = small_disk / course.name
    shutil.copy(course, path)
    before = path.read_bytes()
    env = {**smtp_server.env(), "LEERGANG_STATE": str(tmp_path / "state")}
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"remounting read-only is refused here: {done.stderr.decode().strip()}")
    try:
        result = leergang("run", str(path), *DAY, env=env)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=False)
    assert result.returncode == 2, result.stderr
    err = clean(result)
    assert "alleen-lezen" in err and str(small_disk) in err
    assert smtp_server.messages == []
    assert path.read_bytes() == before
    assert leergang("run", str(path), *DAY, env=env).returncode == 0
    assert len(smtp_server.messages) == 4
