"""The send ledger belongs to the course (contract §3, §4), not to the workbook's file name.

A renamed workbook, one opened through another link and a ledger of an older release all find
their history: nobody is mailed again. A missing, empty or damaged ledger beside a workbook
that shows mails as sent stops the run; `--new-ledger` starts one on purpose.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from leergang_ops.cli import main
from leergang_ops.ledger_location import ledger_path
from leergang_ops.workbook.write import CellWrite, write_cells
from tests.conftest import person
from tests.smtp_server import SmtpServer

Build = Callable[..., Path]
CONFIRM_DAY = ["--today", "2021-10-05"]
LATER = ["--today", "2021-11-04"]  # the 7-day reminders of meeting 1 are due


@pytest.fixture
def course(make_workbook: Build, smtp_env: SmtpServer) -> Path:
    """A course whose confirmations went out (the workbook shows them as sent)."""
    path = make_workbook("leergang-wijkaanpak.xlsx",
                         registrations=[person(n, g, day=n) for n, g in
                                        enumerate(("Utrecht", "Zeist", "Houten"), start=1)])
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    assert len(smtp_env.messages) == 4  # three confirmations and the overview
    return path


def test_the_ledger_is_named_after_the_course(course: Path) -> None:
    assert ledger_path(course, {}).name == "leergang-slagvaardige-wijkaanpak.leergang.sqlite"


def test_a_renamed_workbook_mails_nobody_again(course: Path, smtp_env: SmtpServer) -> None:
    renamed = course.with_name("leergang (definitief).xlsx")
    course.rename(renamed)
    assert main(["run", str(renamed), *CONFIRM_DAY]) == 0
    assert len(smtp_env.messages) == 4


def test_a_second_link_to_the_workbook_mails_nobody_again(course: Path, smtp_env: SmtpServer,
                                                          tmp_path: Path) -> None:
    elsewhere = tmp_path / "elders"
    elsewhere.mkdir()
    link = elsewhere / "wijkaanpak-link.xlsx"
    link.symlink_to(course)
    assert main(["run", str(link), *CONFIRM_DAY]) == 0
    assert len(smtp_env.messages) == 4
    assert not list(elsewhere.glob("*.sqlite"))


def test_a_ledger_of_an_older_release_is_adopted_and_nobody_is_mailed_again(
        course: Path, smtp_env: SmtpServer) -> None:
    ledger = ledger_path(course, {})
    legacy = course.with_name(course.stem + ".leergang.sqlite")  # the old default name
    ledger.rename(legacy)
    assert ledger_path(course, {}) == legacy  # read where it is until a run adopts it
    assert main(["run", str(course), *CONFIRM_DAY]) == 0
    assert len(smtp_env.messages) == 4
    assert ledger.exists() and not legacy.exists()
    assert not legacy.with_name(legacy.name + "-wal").exists()


def test_a_new_edition_under_a_new_name_starts_a_new_ledger(course: Path) -> None:
    before = ledger_path(course, {})
    write_cells(course, "Instellingen", {(2, 2): CellWrite("Leergang wijkaanpak 2023")},
                header_row=1)
    assert ledger_path(course, {}) != before


# --- the safety net ----------------------------------------------------------------------

def _spoil_by_deleting(ledger: Path) -> None:
    ledger.unlink()


def _spoil_to_zero_bytes(ledger: Path) -> None:
    ledger.write_bytes(b"")


def _spoil_with_garbage(ledger: Path) -> None:
    ledger.write_bytes(b"this is not a database, a sync tool wrote it" * 100)


def _spoil_by_emptying(ledger: Path) -> None:
    with sqlite3.connect(ledger) as db:
        db.execute("DELETE FROM mails")


@pytest.mark.parametrize("spoil", [_spoil_by_deleting, _spoil_to_zero_bytes,
                                   _spoil_with_garbage, _spoil_by_emptying])
def test_a_lost_ledger_beside_a_workbook_that_shows_mails_sent_stops_the_run(
        course: Path, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str],
        spoil: Callable[[Path], None]) -> None:
    ledger = ledger_path(course, {})
    for extra in ledger.parent.glob(ledger.name + "-*"):
        extra.unlink()
    spoil(ledger)
    workbook = course.read_bytes()
    capsys.readouterr()
    assert main(["run", str(course), *LATER]) == 2
    err = capsys.readouterr().err
    assert str(ledger) in err and "--new-ledger" in err and "Traceback" not in err
    assert len(smtp_env.messages) == 4  # nothing sent
    assert course.read_bytes() == workbook


def test_a_zero_byte_ledger_is_never_taken_for_a_new_one(make_workbook: Build,
                                                         smtp_env: SmtpServer) -> None:
    path = make_workbook(registrations=[person(1)])  # nothing shown as sent yet
    ledger_path(path, {}).write_bytes(b"")
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    assert smtp_env.messages == []


def test_new_ledger_records_what_was_due_and_mails_nobody_again(
        course: Path, smtp_env: SmtpServer) -> None:
    assert main(["run", str(course), *LATER]) == 0  # the reminders and that week's overview
    sent = len(smtp_env.messages)
    ledger = ledger_path(course, {})
    for old in ledger.parent.glob(ledger.name + "*"):
        old.unlink()
    assert main(["run", str(course), "--today", "2021-11-05", "--new-ledger"]) == 0
    assert len(smtp_env.messages) == sent  # everything due before today counts as sent
    # A working ledger: the 1-day reminders of 10 November go out, once.
    assert main(["run", str(course), "--today", "2021-11-10"]) == 0
    assert main(["run", str(course), "--today", "2021-11-10"]) == 0
    new = [r.message["X-Leergang-Mail"] for r in smtp_env.messages[sent:]]
    assert new.count("herinnering") == 3


def test_new_ledger_keeps_the_dates_the_workbook_shows(course: Path) -> None:
    from python_calamine import CalamineWorkbook

    def shown() -> list[object]:
        rows = CalamineWorkbook.from_path(str(course)).get_sheet_by_name("Deelnemers").to_python()
        column = [str(h) for h in rows[0]].index("Bevestiging verstuurd")
        return [row[column] for row in rows[1:]]

    before = shown()
    ledger_path(course, {}).unlink()
    assert main(["run", str(course), "--today", "2021-10-20", "--new-ledger"]) == 0
    assert shown() == before


def test_new_ledger_is_refused_when_a_ledger_exists(course: Path, smtp_env: SmtpServer,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(course), *LATER, "--new-ledger"]) == 2
    assert "Er is al een verzendlogboek" in capsys.readouterr().err
    assert len(smtp_env.messages) == 4


def test_a_run_without_any_ledger_and_nothing_shown_as_sent_starts_one(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = make_workbook(registrations=[person(1)])
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    assert ledger_path(path, {}).exists()
    assert os.path.getsize(ledger_path(path, {})) > 0
