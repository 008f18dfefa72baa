"""Mails that fit the course calendar as it moves (contract §3): what has started is not
offered, a confirmation stands in for the reminders already due, a change shows old and new,
a cancellation is answered, and once the course is over nothing goes out."""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
import vobject
from openpyxl import load_workbook

from leergang_ops.cli import main
from leergang_ops.jobs import run
from leergang_ops.model import Meeting
from leergang_ops.planning import course_over
from tests.conftest import DEFAULT_MEETINGS, person

Build = Callable[..., Path]
UNDATED = [4, "Terugblik en vervolg", None, None, None, None, None, None, "deelnemers"]
ZONE_NOTE = "Europe/Amsterdam"


def outbox_mails(path: Path) -> list[EmailMessage]:
    """Every mail in the outbox beside the workbook, as a mail client parses it."""
    return [cast(EmailMessage, email.message_from_bytes(f.read_bytes(), policy=policy.default))
            for f in sorted((path.parent / "outbox").glob("*.eml"))]


def of_kind(path: Path, kind: str, address: str | None = None) -> list[EmailMessage]:
    return [m for m in outbox_mails(path) if m["X-Leergang-Mail"] == kind
            and (address is None or address in str(m["To"]))]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return cast(str, cast(EmailMessage, part).get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return cast(str, cast(EmailMessage, part).get_content())


def events_of(message: EmailMessage) -> list[Any]:
    """The VEVENTs of the mail's .ics, read by vobject (not the library that wrote them)."""
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return list(vobject.readOne(payload.decode("utf-8")).vevent_list)


def run_on(path: Path, day: str, *extra: str) -> int:
    return main(["run", str(path), "--today", day, *extra])


def set_cell(path: Path, sheet: str, cell: str, value: object) -> None:
    """An organiser's edit between runs."""
    wb = load_workbook(path)
    wb[sheet][cell] = value
    wb.save(path)


# --- what has started is not offered ---------------------------------------------------

def test_a_confirmation_after_meeting_1_lists_and_attaches_only_the_meetings_ahead(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)], meetings=[*DEFAULT_MEETINGS, UNDATED])
    assert run_on(path, "2021-11-15") == 0
    [confirmation] = of_kind(path, "bevestiging")
    text = text_of(confirmation)
    assert "Waarom een wijkaanpak?" not in text + html_of(confirmation)  # meeting 1 is over
    for title in ("Wat is een wijkaanpak en wat is er nodig?",
                  "Hoe ga je aan de slag met een wijkaanpak?", "Terugblik en vervolg"):
        assert title in text
    assert "datum volgt" in text
    uids = sorted(str(event.uid.value) for event in events_of(confirmation))
    assert [uid.split("@")[0][-2:] for uid in uids] == ["m2", "m3"]  # only dated ones


def test_a_run_at_four_does_not_remind_of_todays_two_oclock_meeting(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)])
    env: dict[str, str] = {}
    zone_now = datetime(2021, 10, 20, 9, tzinfo=_zone())
    run(path, date(2021, 10, 20), zone_now, env)  # the confirmation, well ahead
    day = date(2021, 11, 11)
    at_four = datetime.combine(day, time(16), _zone())
    report = run(path, day, at_four, env, moment=at_four.replace(tzinfo=None), dry_run=True)
    assert [i.kind for i in report.planned if i.kind != "overzicht"] == []
    at_nine = datetime.combine(day, time(9), _zone())
    report = run(path, day, at_nine, env, moment=at_nine.replace(tzinfo=None), dry_run=True)
    assert [(i.kind, i.scope) for i in report.planned if i.kind != "overzicht"] == [
        ("herinnering", "m1-1d")]


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(ZONE_NOTE)


# --- a confirmation stands in for the reminders already due ----------------------------

def test_a_confirmation_on_reminder_day_7_replaces_that_reminder_and_the_1_day_one_comes(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)])
    for day in ("2021-11-04", "2021-11-05", "2021-11-09"):
        assert run_on(path, day) == 0
    assert of_kind(path, "herinnering") == []  # not on the day, nor in the days after
    [confirmation] = of_kind(path, "bevestiging")
    text = text_of(confirmation)
    assert "bijeenkomst 1 is al over 7 dagen" in text
    assert "Molenpark 2-1, Utrecht" in text  # what the reminder would have said
    assert run_on(path, "2021-11-10") == 0
    [reminder] = of_kind(path, "herinnering")
    assert "Morgen is de volgende bijeenkomst" in text_of(reminder)


def test_a_confirmation_for_an_online_meeting_soon_carries_its_link(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)])
    assert run_on(path, "2021-11-29") == 0  # meeting 2 (online) in 3 days
    [confirmation] = of_kind(path, "bevestiging")
    assert "bijeenkomst 2 is al over 3 dagen" in text_of(confirmation)
    assert "https://meet.example.org/wijkaanpak-2" in text_of(confirmation)
    assert run_on(path, "2021-11-30") == 0
    assert of_kind(path, "herinnering") == []  # the 7-day one was covered; 1-day not yet


# --- a change shows old and new --------------------------------------------------------

def test_a_time_change_shows_old_and_new_with_the_same_uid_and_a_higher_sequence(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)])
    assert run_on(path, "2021-10-05") == 0
    [confirmation] = of_kind(path, "bevestiging")
    before = {str(e.uid.value): int(e.sequence.value) for e in events_of(confirmation)}
    set_cell(path, "Bijeenkomsten", "D3", time(13, 30))  # meeting 2 starts at 13.30
    assert run_on(path, "2021-10-06") == 0
    [change] = of_kind(path, "wijziging")
    assert "Begintijd: was 14.00 uur, wordt 13.30 uur" in text_of(change)
    html = html_of(change)
    assert "14.00 uur" in html and "13.30 uur" in html and "Begintijd" in html
    [event] = events_of(change)
    uid = str(event.uid.value)
    assert uid in before and int(event.sequence.value) == before[uid] + 1


# --- a cancellation is answered --------------------------------------------------------

def test_a_cancellation_gets_exactly_one_afmelding_and_no_later_reminders(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1), person(2, "Zeist")])
    assert run_on(path, "2021-10-05") == 0
    [confirmation] = of_kind(path, "bevestiging", "deelnemer1@")
    told = {str(e.uid.value): int(e.sequence.value) for e in events_of(confirmation)}
    set_cell(path, "Deelnemers", "I2", "ja")  # Afgemeld
    for day in ("2021-10-06", "2021-10-07", "2021-11-04", "2021-11-10"):
        assert run_on(path, day) == 0
    [afmelding] = of_kind(path, "afmelding")
    assert "deelnemer1@" in str(afmelding["To"])
    text = text_of(afmelding)
    assert "Annemiek van Tol" in text  # the contact person is named
    assert "weer aanmelden" in text  # and how to register again
    events = events_of(afmelding)
    assert {str(e.uid.value) for e in events} == set(told)
    for event in events:
        assert event.status.value == "CANCELLED"
        assert int(event.sequence.value) > told[str(event.uid.value)]
    assert of_kind(path, "herinnering", "deelnemer1@") == []
    assert len(of_kind(path, "herinnering", "deelnemer2@")) == 2  # 7 and 1 days before m1


def test_someone_cancelling_from_the_waiting_list_gets_an_afmelding_without_a_calendar(
        make_workbook: Build) -> None:
    regs = [person(n) for n in range(1, 5)]  # Utrecht's fourth is overbooked
    path = make_workbook(registrations=regs)
    assert run_on(path, "2021-10-05") == 0
    set_cell(path, "Deelnemers", "I5", "ja")
    assert run_on(path, "2021-10-06") == 0
    [afmelding] = of_kind(path, "afmelding")
    assert "deelnemer4@" in str(afmelding["To"])
    assert "niet meer op de wachtlijst" in text_of(afmelding)
    assert not [p for p in afmelding.iter_attachments()]


def test_someone_cancelling_before_any_mail_gets_no_afmelding(make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1, Afgemeld="ja")])
    assert run_on(path, "2021-10-05") == 0
    assert of_kind(path, "afmelding") == []


# --- once the course is over nothing goes out ------------------------------------------

PAST = [[1, "Eerste", date(2021, 11, 11), time(14), time(17), "Molen de Ster",
         "Molenpark 2-1, Utrecht", None, "deelnemers"]]


@pytest.mark.parametrize(("meetings", "today"), [
    (PAST, "2021-11-12"),  # every meeting dated and past
    ([*PAST, UNDATED], "2022-01-14"),  # one undated, the last dated one 9 weeks ago
    (DEFAULT_MEETINGS, "2026-12-07"),  # a clock years late
], ids=["all-dated-and-past", "undated-but-9-weeks", "clock-years-late"])
def test_when_the_course_is_over_run_sends_nothing_and_says_so(
        make_workbook: Build, capsys: pytest.CaptureFixture[str],
        meetings: list[list[Any]], today: str) -> None:
    path = make_workbook(registrations=[person(1), person(2, "Zeist")], meetings=meetings)
    assert run_on(path, today) == 0
    assert outbox_mails(path) == []
    out = capsys.readouterr().out
    assert "De leergang is voorbij" in out and "er gaan geen mails meer uit" in out
    assert main(["validate", str(path), "--today", today]) == 0
    assert "De leergang is voorbij" in capsys.readouterr().out


def test_the_course_is_not_over_while_an_undated_meeting_remains_and_the_last_was_last_week(
        make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)], meetings=[*PAST, UNDATED])
    assert run_on(path, "2021-11-18") == 0
    [confirmation] = of_kind(path, "bevestiging")
    assert "Terugblik en vervolg" in text_of(confirmation)


def test_preview_shows_nothing_due_and_why_when_the_course_is_over(
        make_workbook: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)], meetings=PAST)
    out = tmp_path / "preview"
    assert main(["preview", str(path), "--out", str(out), "--today", "2021-12-01"]) == 0
    assert list(out.iterdir()) == []
    assert "Niets te versturen. De leergang is voorbij" in capsys.readouterr().out


def test_course_over_rule_is_a_pure_function_of_the_meetings_and_the_moment() -> None:
    def meeting(nr: int, day: date | None) -> Meeting:
        return Meeting(nr, f"B{nr}", day, time(14) if day else None, None)

    last = date(2021, 11, 11)
    at = datetime.combine
    assert course_over((meeting(1, None),), at(last, time())) is None  # all "datum volgt"
    assert course_over((meeting(1, last),), at(last, time(13, 59))) is None
    assert course_over((meeting(1, last),), at(last, time(14, 1))) == last
    undated = (meeting(1, last), meeting(2, None))
    assert course_over(undated, at(last + timedelta(weeks=8), time(13))) is None
    assert course_over(undated, at(last + timedelta(weeks=8, days=1), time())) == last


# --- texts for participants are written for participants --------------------------------

def test_no_melding_text_reaches_any_participant_mail_of_the_example_workbook(
        tmp_path: Path) -> None:
    from openpyxl.utils import get_column_letter

    from leergang_ops.jobs import check
    from leergang_ops.workbook.read import load_course

    example = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
    path = tmp_path / example.name
    path.write_bytes(example.read_bytes())
    assert run_on(path, "2021-10-28") == 0  # confirmations and waiting-list notices
    course = load_course(path)
    rows_of = Counter(r.email_key for r in course.registrations)
    confirmed = next(r for r in course.registrations  # one without a duplicate row
                     if r.bevestiging_verstuurd and rows_of[r.email_key] == 1)
    column = get_column_letter(course.layout.columns["Afgemeld"])
    set_cell(path, course.layout.sheet_name, f"{column}{confirmed.row}", "ja")
    set_cell(path, "Bijeenkomsten", "D2", time(13, 30))  # meeting 1 moves
    assert run_on(path, "2021-10-29") == 0  # the afmelding and the change notices
    assert run_on(path, "2021-11-04") == 0  # the 7-day reminders
    mails = [m for m in outbox_mails(path) if m["X-Leergang-Mail"] != "overzicht"]
    assert {str(m["X-Leergang-Mail"]) for m in mails} == {
        "bevestiging", "wachtlijst", "herinnering", "wijziging", "afmelding"}
    meldingen = {d.melding for d in check(path, date(2021, 11, 4), {}).allocation.decisions
                 if d.melding}
    assert meldingen  # the example has overbooked and waiting municipalities
    for message in mails:
        body = text_of(message) + html_of(message)
        assert "Toelichting" not in body and "Melding" not in body
        for melding in meldingen:
            for part in melding.split("; "):
                assert part not in body, (message["X-Leergang-Mail"], part)
