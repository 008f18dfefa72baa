"""The daily loop: runs at its time, survives failures, makes up a missed run, stops cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time as systime
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from leergang_ops.scheduler import MAX_NAP, RUN_LINE, run_daily

AT = time(7, 15)
MONDAY = date(2021, 11, 8)
REPO = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock whose sleep moves time on by `step` (at least what was asked).

    A coarse step keeps a simulated day to a few hundred loop turns; the steps line up
    with 07:15 so runs happen on the dot. The loop ends when the clock reaches `until`.
    """

    def __init__(self, start: datetime, until: datetime, stop: threading.Event,
                 step: timedelta = timedelta(minutes=5)) -> None:
        self.now, self.until, self.stop, self.step = start, until, stop, step
        self.naps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += max(self.step, timedelta(seconds=seconds))
        if self.now >= self.until:
            self.stop.set()


def at_day(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute))


def simulate(start: datetime, until: datetime, job: Callable[[FakeClock], int] | None = None,
             last_run: date | None = None,
             step: timedelta = timedelta(minutes=5)) -> tuple[list[datetime], FakeClock, int]:
    """Run the loop on a fake clock; return when the job ran, the clock and the status."""
    stop = threading.Event()
    clock = FakeClock(start, until, stop, step)
    runs: list[datetime] = []

    def recorded() -> int:
        runs.append(clock.now)
        return job(clock) if job else 0

    status = run_daily(recorded, AT, last_run=lambda: last_run, now=clock, sleep=clock.sleep,
                       stop=stop)
    return runs, clock, status


def run_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "leergang_ops.scheduler" and r.getMessage().startswith(RUN_LINE)]


def test_job_runs_every_day_at_the_given_time() -> None:
    runs, _, status = simulate(at_day(MONDAY, 6), at_day(MONDAY + timedelta(days=2), 8),
                               last_run=MONDAY - timedelta(days=1))
    assert runs == [at_day(MONDAY + timedelta(days=n), 7, 15) for n in range(3)]
    assert status == 0


def test_naps_are_at_most_one_second() -> None:
    _, clock, _ = simulate(at_day(MONDAY, 6), at_day(MONDAY, 8))
    assert clock.naps
    assert max(clock.naps) <= MAX_NAP <= 1


def test_a_job_that_raises_is_logged_in_one_line_and_runs_again_next_day(
        caplog: pytest.LogCaptureFixture) -> None:
    def failing_once(clock: FakeClock) -> int:
        if clock.now.date() == MONDAY:
            raise RuntimeError("SMTP server\nunreachable")
        return 0

    caplog.set_level(logging.INFO, "leergang_ops.scheduler")
    runs, _, status = simulate(at_day(MONDAY, 6), at_day(MONDAY + timedelta(days=1), 8),
                               failing_once)
    assert runs == [at_day(MONDAY, 7, 15), at_day(MONDAY + timedelta(days=1), 7, 15)]
    first, second = run_lines(caplog)
    assert first.levelno == logging.ERROR
    assert "\n" not in first.getMessage()
    assert "RuntimeError: SMTP server unreachable (test_scheduler.py:" in first.getMessage()
    assert "exitstatus 0" in second.getMessage()
    assert status == 0


def test_a_job_that_returns_non_zero_is_logged_and_runs_again_next_day(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "leergang_ops.scheduler")
    runs, _, _ = simulate(at_day(MONDAY, 6), at_day(MONDAY + timedelta(days=1), 8),
                          lambda clock: 1 if clock.now.date() == MONDAY else 0)
    assert len(runs) == 2
    first, second = run_lines(caplog)
    assert first.levelno == logging.ERROR
    assert "klaar met exitstatus 1 na" in first.getMessage()
    assert first.getMessage().endswith(" s.")
    assert second.levelno == logging.INFO


def test_a_job_that_exits_with_a_status_does_not_end_the_loop() -> None:
    def exits(clock: FakeClock) -> int:
        sys.exit(2)

    runs, _, status = simulate(at_day(MONDAY, 6), at_day(MONDAY + timedelta(days=1), 8), exits)
    assert len(runs) == 2
    assert status == 0


def test_every_run_logs_exactly_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    runs, _, _ = simulate(at_day(MONDAY, 9), at_day(MONDAY + timedelta(days=2), 8))
    per_run = [r for r in caplog.records
               if r.name == "leergang_ops.scheduler" and RUN_LINE in r.getMessage()]
    assert len(runs) == 3  # made up at 09:00, then Tuesday and Wednesday at 07:15
    assert len(per_run) == len(runs)


def test_a_run_missed_while_down_is_made_up_at_start_the_same_day() -> None:
    runs, _, _ = simulate(at_day(MONDAY, 9, 30), at_day(MONDAY + timedelta(days=1), 8),
                          last_run=MONDAY - timedelta(days=1))
    assert runs == [at_day(MONDAY, 9, 30), at_day(MONDAY + timedelta(days=1), 7, 15)]


def test_no_make_up_run_when_today_already_ran() -> None:
    runs, _, _ = simulate(at_day(MONDAY, 9, 30), at_day(MONDAY + timedelta(days=1), 8),
                          last_run=MONDAY)
    assert runs == [at_day(MONDAY + timedelta(days=1), 7, 15)]


def test_no_make_up_run_before_todays_time() -> None:
    runs, _, _ = simulate(at_day(MONDAY, 6), at_day(MONDAY, 8),
                          last_run=MONDAY - timedelta(days=1))
    assert runs == [at_day(MONDAY, 7, 15)]


def test_a_run_missed_yesterday_is_not_made_up_the_next_day() -> None:
    # Down all of Monday; started Tuesday before 07:15: no run at start.
    tuesday = MONDAY + timedelta(days=1)
    runs, _, _ = simulate(at_day(tuesday, 6), at_day(tuesday, 8),
                          last_run=MONDAY - timedelta(days=1))
    assert runs == [at_day(tuesday, 7, 15)]


def test_a_run_at_exactly_the_time_at_start_is_not_lost() -> None:
    runs, _, _ = simulate(at_day(MONDAY, 7, 15), at_day(MONDAY, 8), last_run=None)
    assert runs == [at_day(MONDAY, 7, 15)]


def test_after_a_suspend_of_days_the_job_runs_once_not_per_missed_day() -> None:
    # One nap that lasts three days, as a laptop lid closed over a long weekend.
    runs, _, _ = simulate(at_day(MONDAY, 7), at_day(MONDAY + timedelta(days=4), 8),
                          step=timedelta(days=3, hours=2))
    assert runs == [at_day(MONDAY + timedelta(days=3), 9)]


def test_an_aware_clock_counts_in_its_own_zone() -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Europe/Amsterdam")
    stop = threading.Event()
    clock = FakeClock(at_day(MONDAY, 7).replace(tzinfo=zone),
                      at_day(MONDAY, 8).replace(tzinfo=zone), stop)
    runs: list[datetime] = []

    def job() -> int:
        runs.append(clock.now)
        return 0

    run_daily(job, AT, last_run=lambda: None, now=clock, sleep=clock.sleep, stop=stop)
    assert runs == [at_day(MONDAY, 7, 15).replace(tzinfo=zone)]


def test_stop_event_ends_the_loop_cleanly_after_the_run_in_progress() -> None:
    stop = threading.Event()
    clock = FakeClock(at_day(MONDAY, 7), at_day(MONDAY + timedelta(days=9), 0), stop)
    finished: list[datetime] = []

    def stops_midway() -> int:
        stop.set()  # as a signal arriving during the run would
        finished.append(clock.now)
        return 0

    status = run_daily(stops_midway, AT, last_run=lambda: None, now=clock, sleep=clock.sleep,
                       stop=stop)
    assert status == 0
    assert finished == [at_day(MONDAY, 7, 15)]
    assert clock.now < at_day(MONDAY, 8)


def test_signal_handlers_are_restored_on_return() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    simulate(at_day(MONDAY, 7), at_day(MONDAY, 8))
    assert {sig: signal.getsignal(sig) for sig in before} == before


# ----------------------------------------------------------------------- a real process

PROGRAM = textwrap.dedent("""
    import logging, sys, time
    from datetime import datetime, timedelta
    from leergang_ops.scheduler import run_daily

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    out, work = sys.argv[1], float(sys.argv[2])
    at = (datetime.now() + timedelta(seconds=1.2)).time()

    def job():
        with open(out, "a") as f:
            f.write("started\\n")
        time.sleep(work)
        with open(out, "a") as f:
            f.write("finished\\n")
        return 0

    sys.exit(run_daily(job, at, last_run=lambda: None))
""")


def start_loop(tmp_path: Path, work: float) -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "runs.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", PROGRAM, str(out), str(work)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, out


def wait_for(path: Path, text: str, timeout: float = 10) -> None:
    deadline = systime.monotonic() + timeout
    while systime.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        systime.sleep(0.05)
    raise AssertionError(f"{text!r} did not appear in {path} within {timeout} s")


def stop_with_sigterm(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, stderr


def test_sigterm_between_runs_stops_the_process_with_status_0(tmp_path: Path) -> None:
    process, out = start_loop(tmp_path, work=0)
    wait_for(out, "finished")
    status, stderr = stop_with_sigterm(process)
    assert status == 0, stderr
    assert "Gestopt (SIGTERM)." in stderr


def test_sigterm_during_a_run_lets_the_run_finish_first(tmp_path: Path) -> None:
    process, out = start_loop(tmp_path, work=1.0)
    wait_for(out, "started")
    status, stderr = stop_with_sigterm(process)
    assert status == 0, stderr
    assert out.read_text() == "started\nfinished\n"
    assert "klaar met exitstatus 0" in stderr


# ----------------------------------------------------------------- the cron wrapper script

WRAPPER = REPO / "scripts" / "leergang-cron"


def cron_env(tmp_path: Path, content: str, mode: int = 0o600) -> dict[str, str]:
    """A HOME with a fake `leergang-ops` and an environment file that puts it on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "leergang-ops"
    fake.write_text('#!/bin/sh\nprintf "%s|" "$@" "$LEERGANG_SMTP_HOST" "$TZ"\n')
    fake.chmod(0o755)
    env_file = tmp_path / ".config" / "leergang-ops" / "env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(f"PATH={bin_dir}:$PATH\n{content}")
    env_file.chmod(mode)
    return {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}


def run_wrapper(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(WRAPPER), *args], env=env, capture_output=True,
                          text=True, timeout=10, check=False)


def test_cron_wrapper_loads_a_private_env_file_and_runs_leergang_ops_run(
        tmp_path: Path) -> None:
    env = cron_env(tmp_path, "LEERGANG_SMTP_HOST=smtp.example.org\n")
    result = run_wrapper(env, "/srv/leergang/leergang wijkaanpak.xlsx", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("run|--scheduled|/srv/leergang/leergang wijkaanpak.xlsx|--dry-run|"
                             "smtp.example.org|Europe/Amsterdam|")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_cron_wrapper_refuses_an_env_file_that_others_can_access(tmp_path: Path,
                                                                 mode: int) -> None:
    env = cron_env(tmp_path, "LEERGANG_SMTP_HOST=smtp.example.org\n", mode)
    result = run_wrapper(env, "leergang.xlsx")
    assert result.returncode == 2
    assert result.stdout == ""  # leergang-ops did not run
    assert "chmod 600" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_cron_wrapper_refuses_an_env_file_owned_by_someone_else(tmp_path: Path) -> None:
    env = cron_env(tmp_path, "")
    os.chown(tmp_path / ".config" / "leergang-ops" / "env", 65534, 65534)
    result = run_wrapper(env, "leergang.xlsx")
    assert result.returncode == 2
    assert "is niet van" in result.stderr


def test_cron_wrapper_refuses_a_named_env_file_that_does_not_exist(tmp_path: Path) -> None:
    env = {**cron_env(tmp_path, ""), "LEERGANG_ENV_FILE": str(tmp_path / "missing")}
    result = run_wrapper(env, "leergang.xlsx")
    assert result.returncode == 2
    assert "bestaat niet" in result.stderr


def test_cron_wrapper_needs_a_workbook(tmp_path: Path) -> None:
    result = run_wrapper(cron_env(tmp_path, ""))
    assert result.returncode == 2
    assert "gebruik: leergang-cron WERKMAP" in result.stderr
