"""The SQLite send ledger and the run lock, on real files in tmp_path."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from leergang_ops.errors import InputError, LeergangError, WorkbookInUse
from leergang_ops.ledger import (
    SCHEMA_VERSION,
    TEMPLATES_CHECKED,
    Ledger,
    passed_check,
    read_ledger_state,
)
from leergang_ops.ledger_location import ledger_path
from leergang_ops.model import LedgerState, MailIntent, MailKind
from leergang_ops.run_lock import run_lock

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2021, 11, 4, 7, 0)
MEETING_1 = ("2021-11-11", "14:00", "17:00", "Molen de Ster", "Molenpark 2-1, Utrecht", "")
MEETING_1_LATER = ("2021-11-11", "15:00", "18:00", "Molen de Ster", "Molenpark 2-1, Utrecht", "")


def intent(kind: MailKind = MailKind.BEVESTIGING, n: int = 1, scope: str = "-",
           meetings: tuple[int, ...] = (1,)) -> MailIntent:
    return MailIntent(kind, f"Deelnemer{n}@Example.nl", f"Deelnemer{n} Test{n}", scope,
                      row=n + 1, meetings=meetings)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "leergang.leergang.sqlite") as opened:
        yield opened


def send(ledger: Ledger, mail: MailIntent, at: datetime = NOW, sequence: int = 0,
         details: tuple[str, ...] = MEETING_1) -> None:
    """Go through begin → mark_sent as the job does."""
    assert ledger.begin(mail, at)
    ledger.mark_sent(mail, at, f"<{mail.scope}@example.org>",
                     {nr: (details, sequence) for nr in mail.meetings})


# --- where the ledger lives -------------------------------------------------------------------

def test_ledger_lives_beside_the_workbook_by_default(tmp_path: Path) -> None:
    workbook = tmp_path / "wijkaanpak.xlsx"
    assert ledger_path(workbook, {}) == tmp_path / "wijkaanpak.leergang.sqlite"


def test_leergang_state_sets_the_ledger_path(tmp_path: Path) -> None:
    target = tmp_path / "state" / "ledger.sqlite"
    assert ledger_path(tmp_path / "w.xlsx", {"LEERGANG_STATE": str(target)}) == target


def test_leergang_state_naming_a_folder_puts_the_default_name_there(tmp_path: Path) -> None:
    env = {"LEERGANG_STATE": str(tmp_path)}
    assert ledger_path(Path("/elders/w.xlsx"), env) == tmp_path / "w.leergang.sqlite"


# --- recording mails ---------------------------------------------------------------------------

def test_begin_and_mark_sent_round_trip_into_state(ledger: Ledger) -> None:
    mail = intent()
    send(ledger, mail)
    state = ledger.state()
    assert state.sent == {("bevestiging", "deelnemer1@example.nl", "-")}
    assert state.sent_details == {("deelnemer1@example.nl", 1): (MEETING_1, 0)}


def test_begin_returns_false_for_a_sent_key(ledger: Ledger) -> None:
    send(ledger, intent())
    assert ledger.begin(intent(), NOW + timedelta(days=1)) is False


def test_a_sending_row_left_behind_counts_as_unsent(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as crashed:
        assert crashed.begin(intent(), NOW)  # the process dies before mark_sent
    with Ledger(path) as restarted:
        assert restarted.state().sent == frozenset()
        assert restarted.state().confirmed == frozenset()
        assert restarted.begin(intent(), NOW + timedelta(days=1)) is True


def test_begin_is_committed_before_the_mail_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        ledger.begin(intent(), NOW)
        # Another connection (another process, or after a crash) sees the row already.
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT status FROM mails").fetchall() == [("sending",)]


def _statuses(path: Path) -> list[tuple[str, str]]:
    """What another connection (another process, or a restart after a crash) sees."""
    with sqlite3.connect(path) as other:
        return other.execute("SELECT recipient, status FROM mails ORDER BY recipient").fetchall()


def test_sent_is_durable_once_the_next_mail_begins(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        first, second = intent(n=1), intent(n=2)
        ledger.begin(first, NOW)
        ledger.mark_sent(first, NOW, "<1@example.org>", {})
        assert _statuses(path) == [("deelnemer1@example.nl", "sending")]  # one commit a mail
        ledger.begin(second, NOW)
        assert _statuses(path) == [("deelnemer1@example.nl", "sent"),
                                   ("deelnemer2@example.nl", "sending")]


def test_a_deferred_begin_is_durable_after_commit(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        assert ledger.begin(intent(), NOW, defer_commit=True)
        assert _statuses(path) == []
        ledger.commit()
        assert _statuses(path) == [("deelnemer1@example.nl", "sending")]


def test_a_held_commit_is_durable_and_keeps_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    first, second = intent(n=1), intent(n=2)
    with Ledger(path) as ledger:
        assert ledger.begin(first, NOW, defer_commit=True)
        ledger.commit(hold=True)
        assert _statuses(path) == [("deelnemer1@example.nl", "sending")]  # readers see it
        with (contextlib.closing(sqlite3.connect(path, timeout=0)) as other,
              pytest.raises(sqlite3.OperationalError, match="locked")):
            other.execute("BEGIN IMMEDIATE")
        assert ledger.begin(second, NOW, defer_commit=True)
        ledger.commit()
        assert _statuses(path) == [("deelnemer1@example.nl", "sending"),
                                   ("deelnemer2@example.nl", "sending")]
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
        other.execute("BEGIN IMMEDIATE")  # released on close


def test_a_deferred_begin_still_refuses_a_sent_key(ledger: Ledger) -> None:
    send(ledger, intent())
    assert ledger.begin(intent(), NOW, defer_commit=True) is False
    ledger.commit()
    assert ledger.state().sent == {("bevestiging", "deelnemer1@example.nl", "-")}


def test_closing_commits_the_last_sent(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        send(ledger, intent())
    assert _statuses(path) == [("deelnemer1@example.nl", "sent")]


def test_reading_the_state_sees_the_pending_sent(ledger: Ledger) -> None:
    send(ledger, intent())
    assert ledger.state().confirmed == {"deelnemer1@example.nl"}


def test_a_passed_check_is_remembered_and_read_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    assert passed_check(path, TEMPLATES_CHECKED) is None
    assert not path.exists()  # reading creates no ledger
    with Ledger(path) as ledger:
        assert passed_check(path, TEMPLATES_CHECKED) is None
        ledger.record_check(TEMPLATES_CHECKED, "abc123", NOW)
    assert passed_check(path, TEMPLATES_CHECKED) == "abc123"


def test_a_passed_check_on_a_ledger_without_the_table_is_unknown(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE mails (kind TEXT)")
    assert passed_check(path, TEMPLATES_CHECKED) is None


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_reading_the_state_creates_no_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    assert read_ledger_state(path) == LedgerState()
    assert not path.exists()


def test_reading_the_state_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        send(ledger, intent())
        written = ledger.state()
    before = _files(tmp_path)
    assert read_ledger_state(path) == written
    assert _files(tmp_path) == before  # the same bytes, and no -wal or -shm left behind


def test_an_older_ledger_is_read_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        send(ledger, intent())
        written = ledger.state()
    with contextlib.closing(sqlite3.connect(path)) as db:  # back to schema 1: no `checks`
        db.execute("DROP TABLE checks")
        db.execute("PRAGMA user_version = 1")
    before = _files(tmp_path)
    assert read_ledger_state(path) == written
    assert _files(tmp_path) == before


def test_reading_sees_what_a_killed_run_left_in_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    running = Ledger(path)  # left open, its commits not yet checkpointed: as after SIGKILL
    try:
        send(running, intent())
        running.commit()
        assert read_ledger_state(path).confirmed == {"deelnemer1@example.nl"}
    finally:
        running.close()


def test_reading_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="nieuwere versie"):
        read_ledger_state(path)


def test_only_a_mail_an_earlier_run_left_sending_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as crashed:
        crashed.begin(intent(n=1), NOW)
    with Ledger(path) as ledger, caplog.at_level(logging.WARNING, "leergang_ops.ledger"):
        ledger.begin(intent(n=2), NOW)
        ledger.begin(intent(n=1), NOW)
    [warning] = [r.getMessage() for r in caplog.records]
    assert "deelnemer1@example.nl" in warning and "mogelijk al afgeleverd" in warning


def test_confirmation_fills_confirmed_and_confirmed_on(ledger: Ledger) -> None:
    send(ledger, intent(n=1), at=datetime(2021, 10, 4, 7, 0))
    send(ledger, intent(MailKind.WACHTLIJST, n=2, meetings=()))
    state = ledger.state()
    assert state.confirmed == {"deelnemer1@example.nl"}
    assert state.confirmed_on == {"deelnemer1@example.nl": date(2021, 10, 4)}


def test_meeting_versions_follow_the_newest_sequence(ledger: Ledger) -> None:
    send(ledger, intent(n=1))
    send(ledger, intent(MailKind.WIJZIGING, n=1, scope="m1@1"), sequence=1,
         details=MEETING_1_LATER)
    # A reminder carrying the old version, recorded late, does not roll the meeting back.
    send(ledger, intent(MailKind.HERINNERING, n=2, scope="m1-7d"), sequence=0)
    state = ledger.state()
    assert state.meeting_versions == {1: (MEETING_1_LATER, 1)}
    assert state.sent_details[("deelnemer1@example.nl", 1)] == (MEETING_1_LATER, 1)
    assert state.sent_details[("deelnemer2@example.nl", 1)] == (MEETING_1, 0)


def test_mails_without_meeting_details_record_none(ledger: Ledger) -> None:
    overzicht = MailIntent(MailKind.OVERZICHT, "contact@example.org", "Annemiek van Tol",
                           "2021-W45", meetings=(1,))
    send(ledger, overzicht)
    state = ledger.state()
    assert (state.sent_details, state.meeting_versions) == ({}, {})


def test_permanent_failure_bounces_the_recipient(ledger: Ledger) -> None:
    mail = intent()
    ledger.begin(mail, NOW)
    ledger.mark_failed(mail, NOW, permanent=True, reason="550 5.1.1 user unknown")
    state = ledger.state()
    assert state.bounced == {"deelnemer1@example.nl": "550 5.1.1 user unknown"}
    assert state.sent == frozenset()


def test_temporary_failure_is_retried_next_run(ledger: Ledger) -> None:
    mail = intent()
    ledger.begin(mail, NOW)
    ledger.mark_failed(mail, NOW, permanent=False, reason="421 try again later")
    assert (ledger.state().bounced, ledger.state().sent) == ({}, frozenset())
    assert ledger.begin(mail, NOW + timedelta(days=1)) is True


def test_a_failure_reported_after_sent_does_not_undo_it(ledger: Ledger) -> None:
    send(ledger, intent())
    ledger.mark_failed(intent(), NOW, permanent=True, reason="550 late bounce")
    assert ledger.state().sent == {("bevestiging", "deelnemer1@example.nl", "-")}


def test_records_since_lists_every_status_from_that_moment(ledger: Ledger) -> None:
    send(ledger, intent(n=1), at=NOW - timedelta(days=8))
    send(ledger, intent(n=2), at=NOW)
    ledger.begin(intent(n=3), NOW)
    ledger.mark_failed(intent(n=3), NOW, permanent=False, reason="421 busy")
    ledger.begin(intent(n=4), NOW)
    ledger.mark_failed(intent(n=4), NOW, permanent=True, reason="550 unknown")
    ledger.begin(intent(n=5), NOW + timedelta(minutes=1))
    records = ledger.records_since(NOW - timedelta(days=7))
    assert [(r.address, r.name, r.status, r.detail) for r in records] == [
        ("Deelnemer2@Example.nl", "Deelnemer2 Test2", "sent", ""),
        ("Deelnemer3@Example.nl", "Deelnemer3 Test3", "deferred", "421 busy"),
        ("Deelnemer4@Example.nl", "Deelnemer4 Test4", "bounced", "550 unknown"),
        ("Deelnemer5@Example.nl", "Deelnemer5 Test5", "sending", ""),
    ]
    assert (records[0].kind, records[0].recipient, records[0].scope, records[0].at) == (
        "bevestiging", "deelnemer2@example.nl", "-", NOW)


def test_records_since_compares_moments_not_text_across_utc_offsets(ledger: Ledger) -> None:
    from zoneinfo import ZoneInfo

    amsterdam = ZoneInfo("Europe/Amsterdam")
    send(ledger, intent(n=1), at=datetime(2021, 10, 30, 23, 30, tzinfo=amsterdam))  # +02:00
    send(ledger, intent(n=2), at=datetime(2021, 10, 31, 22, 30, tzinfo=amsterdam))  # +01:00
    since = datetime(2021, 10, 31, 0, 0, tzinfo=amsterdam)
    assert [r.recipient for r in ledger.records_since(since)] == ["deelnemer2@example.nl"]


def test_last_run_is_none_until_a_run_is_recorded(ledger: Ledger) -> None:
    assert ledger.last_run() is None
    ledger.record_run(NOW)
    ledger.record_run(NOW + timedelta(days=1))
    assert ledger.last_run() == NOW + timedelta(days=1)


# --- the file ---------------------------------------------------------------------------------

def test_ledger_uses_wal_mode_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        assert ledger._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with Ledger(path) as ledger:
        send(ledger, intent())
        ledger.record_run(NOW)
        before = ledger.state()
    with Ledger(path) as reopened:
        assert reopened.state() == before
        assert reopened.last_run() == NOW


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(InputError, match="nieuwere versie"):
        Ledger(path)


def test_a_file_that_is_no_database_stops_with_exit_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    path.write_bytes(b"dit is geen database" * 100)
    with pytest.raises(LeergangError, match=str(path)) as err:
        Ledger(path)
    assert err.value.exit_status == 2 and "beschadigd" in str(err.value)


def test_the_ledger_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sub" / "l.sqlite"
    Ledger(path).close()
    assert path.exists()


# --- the run lock -----------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from leergang_ops.run_lock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("held", flush=True)
        sys.stdin.read()
""")


def test_a_second_run_in_another_process_gets_workbook_in_use(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(WorkbookInUse, match="Er loopt al een run") as err, \
                run_lock(path):
            pass
        assert f"proces {holder.pid}" in str(err.value)
    finally:
        holder.communicate("", timeout=10)
    with run_lock(path):  # the holder exited: free again
        pass


def test_run_lock_is_released_after_the_block(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with run_lock(path), pytest.raises(WorkbookInUse), run_lock(path):
        pass  # the inner lock fails while the outer one is held
    with run_lock(path):
        pass


def test_run_lock_is_released_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    with pytest.raises(RuntimeError), run_lock(path):
        raise RuntimeError("boom")
    with run_lock(path):
        pass


SEND_THEN_HANG = textwrap.dedent("""
    import sys
    from datetime import datetime
    from pathlib import Path
    from leergang_ops.ledger import Ledger
    from leergang_ops.model import MailIntent, MailKind
    now = datetime(2021, 11, 4, 7, 0)
    ledger = Ledger(Path(sys.argv[1]))
    for n in range(1, 5):
        mail = MailIntent(MailKind.BEVESTIGING, f"deelnemer{n}@example.nl", "D", "-")
        ledger.begin(mail, now)
        if n < 4:
            ledger.mark_sent(mail, now, "<id@example.org>", {})
    print("in flight", flush=True)
    sys.stdin.read()
""")


def test_sigkill_loses_at_most_the_mail_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    worker = subprocess.Popen([sys.executable, "-c", SEND_THEN_HANG, str(path)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None and worker.stdout.readline() == "in flight\n"
    worker.kill()
    worker.communicate(timeout=10)
    with Ledger(path) as ledger:
        assert sorted(r for _, r, _ in ledger.state().sent) == [
            "deelnemer1@example.nl", "deelnemer2@example.nl", "deelnemer3@example.nl"]
        assert ledger.begin(intent(n=4), NOW) is True
