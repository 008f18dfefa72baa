"""`run` against a real SMTP server on loopback: faults, refusals and a killed process.

Contract §3: each mail goes out at most once per key, across runs and crashes, and a mail that
could not be delivered is retried or reported, never silently dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.ledger import Ledger
from leergang_ops.ledger_location import ledger_path
from leergang_ops.model import LedgerState
from leergang_ops.workbook.write import CellWrite, write_cells
from tests.conftest import person
from tests.smtp_server import SmtpServer

Build = Callable[..., Path]
TODAY = ["--today", "2021-10-05"]
GEMEENTEN = ("Utrecht", "Zeist", "Houten", "Amersfoort")


def three_and_a_waiting(make_workbook: Build) -> Path:
    return make_workbook(registrations=[person(n, day=n) for n in range(1, 5)])


def received(server: SmtpServer) -> Counter[tuple[str, str]]:
    """(kind, recipient) of every accepted message."""
    return Counter((str(r.message["X-Leergang-Mail"]), rcpt)
                   for r in server.messages for rcpt in r.rcpt_tos)


def melding(path: Path, row: int) -> str:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    return str(rows[row - 1][[str(h) for h in rows[0]].index("Melding")])


def test_run_sends_the_batch_over_one_connection(make_workbook: Build,
                                                 smtp_env: SmtpServer) -> None:
    path = three_and_a_waiting(make_workbook)
    assert main(["run", str(path), *TODAY]) == 0
    assert smtp_env.connections == 1
    assert sorted(received(smtp_env)) == [
        ("bevestiging", "deelnemer1@example.nl"), ("bevestiging", "deelnemer2@example.nl"),
        ("bevestiging", "deelnemer3@example.nl"), ("overzicht", "contact@example.org"),
        ("wachtlijst", "deelnemer4@example.nl")]
    for message in (r.message for r in smtp_env.messages):
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Reply-To"].addresses[0].addr_spec == "contact@example.org"


def test_a_mail_the_ledger_has_as_sent_is_not_sent_again_even_if_planned(
        make_workbook: Build, smtp_env: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's last word, should planning ever work from a stale view of it."""
    path = three_and_a_waiting(make_workbook)
    assert main(["run", str(path), *TODAY]) == 0
    first = received(smtp_env)
    real_state = Ledger.state

    def forgetting_what_was_sent(ledger: Ledger) -> LedgerState:
        return dataclasses.replace(real_state(ledger), sent=frozenset())

    monkeypatch.setattr(Ledger, "state", forgetting_what_was_sent)
    assert main(["run", str(path), *TODAY]) == 0
    assert received(smtp_env) == first  # every planned mail refused after MAIL FROM
    assert smtp_env.connections == 2


def test_dropped_connection_mid_batch_loses_and_doubles_nothing(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = three_and_a_waiting(make_workbook)
    smtp_env.drop_on_data(2)
    assert main(["run", str(path), *TODAY]) == 0
    counts = received(smtp_env)
    assert len(counts) == 5 and set(counts.values()) == {1}
    assert smtp_env.connections == 2


def test_451_once_is_retried_within_the_run(make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = three_and_a_waiting(make_workbook)
    smtp_env.fail_next(451)
    assert main(["run", str(path), *TODAY]) == 0
    counts = received(smtp_env)
    assert len(counts) == 5 and set(counts.values()) == {1}


def test_550_is_reported_in_melding_exits_1_and_is_not_retried(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = three_and_a_waiting(make_workbook)
    smtp_env.reject("deelnemer2@example.nl", 550)
    assert main(["run", str(path), *TODAY]) == 1
    assert "geweigerd" in melding(path, 3) and "550" in melding(path, 3)
    assert ("bevestiging", "deelnemer2@example.nl") not in received(smtp_env)
    before = len(smtp_env.messages)
    assert main(["run", str(path), "--today", "2021-10-06"]) == 0
    assert len(smtp_env.messages) == before  # not retried while the address is the same
    assert "geweigerd" in melding(path, 3)


def test_refused_address_is_retried_once_the_workbook_has_a_new_one(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = three_and_a_waiting(make_workbook)
    smtp_env.reject("deelnemer2@example.nl", 550)
    assert main(["run", str(path), *TODAY]) == 1
    write_cells(path, "Deelnemers", {(3, 4): CellWrite("deelnemer2.nieuw@example.nl")})
    assert main(["run", str(path), "--today", "2021-10-06"]) == 0
    assert received(smtp_env)[("bevestiging", "deelnemer2.nieuw@example.nl")] == 1
    assert "geweigerd" not in melding(path, 3)


def test_sigkill_mid_batch_then_rerun_loses_nothing_and_doubles_at_most_one(
        make_workbook: Build, smtp_server: SmtpServer, tmp_path: Path) -> None:
    regs = [person(n, GEMEENTEN[n % 4], day=1 + n % 9) for n in range(12)]
    path = make_workbook(registrations=regs)
    env = dict(os.environ)  # without LEERGANG_* (conftest)
    # Paced to 300 a minute, the batch takes ~3 s: time enough to kill it halfway.
    env.update(smtp_server.env(LEERGANG_SMTP_RATE="300"))
    command = [sys.executable, "-m", "leergang_ops", "run", str(path), *TODAY]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(smtp_server.messages) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = len(smtp_server.messages)
    assert 5 <= killed_after < 13, "the kill must land mid-batch"

    assert subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode == 0
    counts = received(smtp_server)
    expected = {("bevestiging", f"deelnemer{n}@example.nl") for n in range(12)}
    assert expected | {("overzicht", "contact@example.org")} == set(counts)
    duplicated = [key for key, n in counts.items() if n > 1]
    assert len(duplicated) <= 1 and max(counts.values()) <= 2
    ids = Counter(str(r.message["Message-ID"]) for r in smtp_server.messages)
    assert len(ids) == len(counts)  # a duplicate carries the same Message-ID


def test_a_mail_that_cannot_be_rendered_stops_the_run_at_its_turn(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    # Each mail is rendered while the one before it is being sent; a render that fails
    # must fail at its own turn, after the mails before it went out, and send nothing else.
    path = three_and_a_waiting(make_workbook)
    override = path.parent / "mail_templates"
    override.mkdir()
    (override / "bevestiging.subject.j2").write_text(
        '{% if voornaam == "Deelnemer2" %}{{ 1 / 0 }}{% endif %}Bevestiging\n')
    assert main(["run", str(path), *TODAY]) == 2
    assert "bevestiging.subject.j2" in capsys.readouterr().err
    assert sorted(received(smtp_env)) == [("bevestiging", "deelnemer1@example.nl")]
    # The failed mail was never begun: no row is left `sending` to be warned about later.
    with contextlib.closing(sqlite3.connect(ledger_path(path, {}))) as db:
        rows = db.execute("SELECT kind, recipient, status FROM mails").fetchall()
    assert rows == [("bevestiging", "deelnemer1@example.nl", "sent")]
    assert main(["run", str(path), *TODAY]) == 2  # fixed or not, deelnemer1 is not mailed again
    assert sorted(received(smtp_env)) == [("bevestiging", "deelnemer1@example.nl")]
