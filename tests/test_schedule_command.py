"""`leergang-ops schedule` as the operator starts it: a real process, a run, a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from leergang_ops.jobs import last_run_day
from tests.conftest import person

pytestmark = pytest.mark.slow


def test_schedule_makes_up_todays_missed_run_and_stops_cleanly_on_sigterm(
        make_workbook: Callable[..., Path]) -> None:
    # A meeting a month ahead of the real today: the course is not over when the test runs.
    ahead = date.today() + timedelta(days=30)
    meeting = [1, "Waarom een wijkaanpak?", ahead, dtime(14), dtime(17), "Molen de Ster",
               "Molenpark 2-1, Utrecht", None, "deelnemers"]
    path = make_workbook(registrations=[person(1), person(2, "Zeist")], meetings=[meeting])
    # A time already past today and no run recorded: the scheduler makes the run up at start.
    at = datetime.now(ZoneInfo("Europe/Amsterdam")).strftime("%H:%M")
    outbox = path.parent / "outbox"
    env = {**os.environ, "LEERGANG_OUTBOX": str(outbox)}  # chosen on purpose, as it must be
    process = subprocess.Popen([sys.executable, "-m", "leergang_ops", "schedule", str(path),
                                "--at", at], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while last_run_day(path, env) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the ledger records a run once it has finished
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert len(list(outbox.glob("*.eml"))) == 3  # two confirmations and the week's overview
    assert "Traceback" not in err
    started, ran, stopped = out.splitlines()  # one line to start, one per run, one to stop
    assert str(path) in started and f"om {at}" in started
    assert "Europe/Amsterdam" in started
    assert ran.startswith("leergang-ops: Run van") and "exitstatus 0" in ran
    assert f"3 mails in de map {outbox} gezet" in ran  # the run's own totals, in its line
    assert stopped == "leergang-ops: Gestopt (SIGTERM)."


def test_schedule_without_a_mail_server_or_outbox_refuses_at_once(
        make_workbook: Callable[..., Path]) -> None:
    """A service that lost its environment must not fill an outbox nobody reads."""
    path = make_workbook(registrations=[person(1)])
    done = subprocess.run([sys.executable, "-m", "leergang_ops", "schedule", str(path)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "LEERGANG_SMTP_HOST" in done.stderr and "LEERGANG_OUTBOX" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (path.parent / "outbox").exists()
