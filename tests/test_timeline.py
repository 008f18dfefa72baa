"""The daily job, every day from 1 October 2021 to 21 January 2022, on the example workbook.

Registrations appear on the day they were made (as organisers add them), one participant
cancels, one registers late, a meeting's time changes, and on some days the job does not run.
From those facts alone the test derives the exact mails due on each day and compares them with
what a real SMTP server received: every confirmation, notice, reminder and change once, the
weekly overview once per ISO week, nothing after a meeting started.
"""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from leergang_ops.allocation import allocate
from leergang_ops.cli import main
from leergang_ops.model import Course, Status
from leergang_ops.workbook.read import load_course
from leergang_ops.workbook.write import CellWrite, write_cells
from tests.smtp_server import SmtpServer

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
FIRST, LAST = date(2021, 10, 1), date(2022, 1, 21)
# Days without a run: a reminder day (4 Nov, 13 Jan), a Monday (8 Nov) and Christmas.
SKIPPED = {date(2021, 11, 4), date(2021, 11, 8), date(2022, 1, 13),
           *(date(2021, 12, 24) + timedelta(days=n) for n in range(4))}
CANCEL_ON, CANCEL_ROW = date(2021, 10, 26), 7  # Rotterdam's second participant cancels ...
FREED_FOR_ROW = 42  # ... which frees a place for Rotterdam's fourth, overbooked since 25 Oct
LATE_ON = date(2021, 11, 20)  # a registration after meeting 1, for a municipality with room
LATE = {"Aangemeld op": datetime(2021, 11, 20, 10, 0), "Voornaam": "Lieke",
        "Achternaam": "Laatkomer", "E-mail": "lieke.laatkomer@example.nl",
        "Gemeente": "Haarlem", "Beleidsdomein": "Wonen", "Rol": "deelnemer"}
CHANGE_ON = date(2021, 11, 22)  # meeting 2 now starts at 13.30 instead of 14.00

pytestmark = pytest.mark.slow

Mail = tuple[date, str, str]  # (day sent, kind, recipient)


def _next_run(day: date) -> date:
    """The first day on or after `day` that the job runs."""
    while day in SKIPPED:
        day += timedelta(days=1)
    return day


def _by_status(course: Course, *statuses: Status) -> dict[str, date]:
    """Who the full example gives these statuses, with the first run day after registering."""
    decisions = allocate(course).by_row()
    return {r.email_key: _next_run(r.aangemeld_op.date())  # type: ignore[union-attr]
            for r in course.registrations if decisions[r.row].status in statuses}


def expected_mails(course: Course) -> Counter[Mail]:
    """Every mail, derived by hand from the facts above and the contract's rules."""
    rows = {r.row: r for r in course.registrations}
    confirmed = _by_status(course, Status.BEVESTIGD)
    confirmed[rows[FREED_FOR_ROW].email_key] = _next_run(CANCEL_ON)
    confirmed[LATE["E-mail"]] = _next_run(LATE_ON)
    mails: Counter[Mail] = Counter()
    for email, day in confirmed.items():
        mails[(day, "bevestiging", email)] += 1
    for email, day in _by_status(course, Status.WACHTLIJST, Status.OVERBOEKT).items():
        mails[(day, "wachtlijst", email)] += 1
    bestuurders = {r.email_key for r in course.registrations if r.is_bestuurder}
    cancelled = rows[CANCEL_ROW].email_key
    del confirmed[cancelled]  # cancelled before any reminder was due ...
    mails[(_next_run(CANCEL_ON), "afmelding", cancelled)] += 1  # ... and told it was done
    for email, confirmed_on in confirmed.items():
        for meeting in course.meetings:
            if meeting.datum is None or (email in bestuurders and not meeting.voor_bestuurders):
                continue
            for days_before in (7, 1):
                due_day = meeting.datum - timedelta(days=days_before)
                if confirmed_on >= due_day:
                    continue  # the confirmation stood in for this reminder
                due = _next_run(due_day)
                if due <= meeting.datum:
                    mails[(due, "herinnering", email)] += 1
            if meeting.nr == 2 and confirmed_on < CHANGE_ON:
                mails[(_next_run(CHANGE_ON), "wijziging", email)] += 1
    contact = course.settings.contactpersoon_email.casefold()
    monday = FIRST - timedelta(days=FIRST.weekday())
    for week in range(((LAST - monday).days // 7) + 1):
        first_day = max(monday + timedelta(days=7 * week), FIRST)
        mails[(_next_run(first_day), "overzicht", contact)] += 1
    return mails


class Organisers:
    """Edits the workbook the way organisers do, between runs (losslessly, as `import`)."""

    def __init__(self, path: Path, course: Course) -> None:
        self.path, self.course = path, course
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers")
        self.original = sheet.to_python(skip_empty_area=False)
        layout = course.layout
        tool = {layout.columns[c] for c in ("Status", "Melding", "Bevestiging verstuurd")}
        self.columns = [c for c in range(1, layout.last_column + 1) if c not in tool]

    def _row_cells(self, row: int, blank: bool) -> dict[tuple[int, int], CellWrite]:
        values = self.original[row - 1]
        return {(row, c): CellWrite(None if blank else _cell(values[c - 1]))
                for c in self.columns}

    def hide_registrations_after(self, day: date) -> None:
        cells = {}
        for reg in self.course.registrations:
            if reg.aangemeld_op and reg.aangemeld_op.date() > day:
                cells.update(self._row_cells(reg.row, blank=True))
        write_cells(self.path, "Deelnemers", cells)

    def register_on(self, day: date) -> None:
        cells = {}
        for reg in self.course.registrations:
            if reg.aangemeld_op and reg.aangemeld_op.date() == day:
                cells.update(self._row_cells(reg.row, blank=False))
        if cells:
            write_cells(self.path, "Deelnemers", cells)

    def cancel(self, row: int) -> None:
        write_cells(self.path, "Deelnemers",
                    {(row, self.course.layout.columns["Afgemeld"]): CellWrite("ja")})

    def register_late(self, values: dict[str, object]) -> None:
        row = self.course.layout.last_row + 1
        columns = self.course.layout.columns
        write_cells(self.path, "Deelnemers",
                    {(row, columns[name]): CellWrite(value) for name, value in values.items()})

    def move_meeting_2_to_half_past_one(self) -> None:
        # Begintijd of meeting 2 (sheet row 3, column D); the cell keeps its hh:mm format.
        write_cells(self.path, "Bijeenkomsten", {(3, 4): CellWrite(13.5 / 24)})


def _cell(value: object) -> object:
    return None if value == "" else value


def test_every_mail_goes_out_once_on_the_right_day(tmp_path: Path, smtp_server: SmtpServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in smtp_server.env().items():
        monkeypatch.setenv(name, value)
    path = tmp_path / EXAMPLE.name
    shutil.copy(EXAMPLE, path)
    course = load_course(EXAMPLE)
    organisers = Organisers(path, course)
    organisers.hide_registrations_after(FIRST)

    sent: Counter[Mail] = Counter()
    day = FIRST
    while day <= LAST:
        organisers.register_on(day)
        if day == CANCEL_ON:
            organisers.cancel(CANCEL_ROW)
        if day == LATE_ON:
            organisers.register_late(LATE)
        if day == CHANGE_ON:
            organisers.move_meeting_2_to_half_past_one()
        if day not in SKIPPED:
            seen = len(smtp_server.messages)
            assert main(["run", str(path), "--today", day.isoformat()]) == 0, day
            for received in smtp_server.messages[seen:]:
                kind = str(received.message["X-Leergang-Mail"])
                sent[(day, kind, received.rcpt_tos[0].casefold())] += 1
        day += timedelta(days=1)

    expected = expected_mails(course)
    missing, extra = expected - sent, sent - expected
    assert not missing and not extra, f"missing {sorted(missing)}\nextra {sorted(extra)}"
    assert max(sent.values()) == 1
