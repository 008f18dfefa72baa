"""Which mails are due (contract §3), built from plain model values."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

from leergang_ops.model import (
    Allocation,
    Course,
    Decision,
    LedgerState,
    MailIntent,
    MailKind,
    Meeting,
    Registration,
    Settings,
    SheetLayout,
    Status,
)
from leergang_ops.planning import meeting_sequences, plan, reminder_due

CONTACT = "contact@example.org"
# A Thursday in the week of 2021-11-08 (ISO 2021-W45 is 8–14 November).
MEETING_DAY = date(2021, 11, 11)


def meeting(nr: int = 1, **kwargs: Any) -> Meeting:
    """An on-site meeting on MEETING_DAY, 14:00–17:00, unless told otherwise."""
    values: dict[str, Any] = {
        "titel": f"Bijeenkomst {nr}", "datum": MEETING_DAY, "begintijd": time(14),
        "eindtijd": time(17), "locatie": "Molen de Ster", "adres": "Molenpark 2-1, Utrecht",
        "row": nr + 1,
    }
    values.update(kwargs)
    return Meeting(nr=nr, **values)


def online(nr: int = 2, link: str = "https://meet.example.org/wijkaanpak",
           **kwargs: Any) -> Meeting:
    """An online meeting, with a link unless told otherwise."""
    return meeting(nr, locatie="online", adres="", online_link=link, **kwargs)


def person(n: int, **kwargs: Any) -> Registration:
    """An invented registration on sheet row n + 1."""
    values: dict[str, Any] = {"voornaam": f"Deelnemer{n}", "achternaam": f"Test{n}",
                              "email": f"deelnemer{n}@example.nl", "gemeente": "Utrecht"}
    values.update(kwargs)
    return Registration(row=n + 1, aangemeld_op=None, **values)


def course(*registrations: Registration, meetings: tuple[Meeting, ...] = (meeting(),),
           **settings: Any) -> Course:
    values: dict[str, Any] = {
        "leergang": "Leergang slagvaardige wijkaanpak", "contactpersoon": "Annemiek van Tol",
        "contactpersoon_email": CONTACT, "afzender_naam": "Leergang wijkaanpak",
        "afzender_email": "leergang@example.org", "overzicht_weekdag": 6,  # out of the way
    }
    values.update(settings)
    layout = SheetLayout("Deelnemers", 1, {}, 10, len(registrations) + 1)
    return Course(Settings(**values), meetings, registrations, layout)


def allocation(c: Course, **statuses: Status) -> Allocation:
    """Every registration bevestigd, except `r<row>=Status` overrides."""
    return Allocation(tuple(
        Decision(r.row, statuses.get(f"r{r.row}", Status.BEVESTIGD), ("een melding",))
        for r in c.registrations))


def sent(*keys: tuple[str, str, str], **kwargs: Any) -> LedgerState:
    """A ledger state in which `keys` went out; bevestiging keys also confirm."""
    confirmed = frozenset(k[1] for k in keys if k[0] == MailKind.BEVESTIGING)
    return LedgerState(sent=frozenset(keys), confirmed=confirmed, **kwargs)


def confirmed_with(c: Course, *regs: Registration, sequence: int = 0,
                   meetings: tuple[Meeting, ...] | None = None, **kwargs: Any) -> LedgerState:
    """The state after `regs` got their bevestiging listing `meetings` (default: c's)."""
    told = meetings if meetings is not None else c.meetings
    return sent(
        *(("bevestiging", r.email_key, "-") for r in regs),
        sent_details={(r.email_key, m.nr): (m.details(), sequence) for r in regs for m in told},
        meeting_versions={m.nr: (m.details(), sequence) for m in told},
        **kwargs,
    )


def keys(intents: tuple[MailIntent, ...], kind: MailKind | None = None) -> list[tuple[str, ...]]:
    return [i.key for i in intents if kind is None or i.kind == kind]


def run(c: Course, state: LedgerState | None = None, today: date = date(2021, 10, 1),
        **statuses: Status) -> tuple[MailIntent, ...]:
    return plan(c, allocation(c, **statuses), state or LedgerState(), today).intents


# --- bevestiging ------------------------------------------------------------------------------

def test_confirmation_is_planned_for_a_confirmed_registration() -> None:
    c = course(person(1), meetings=(meeting(1), online(2)))
    [intent] = run(c)
    assert intent.key == ("bevestiging", "deelnemer1@example.nl", "-")
    assert (intent.row, intent.meetings, intent.name) == (2, (1, 2), "Deelnemer1 Test1")


def test_confirmation_is_not_planned_again_once_sent() -> None:
    c = course(person(1))
    assert run(c, confirmed_with(c, person(1))) == ()


def test_confirmation_key_uses_the_normalised_address() -> None:
    c = course(person(1, email=" Deelnemer1@Example.NL "))
    state = confirmed_with(c, person(1))  # person(1)'s key is deelnemer1@example.nl
    assert run(c, state) == ()


def test_no_mail_for_invalid_or_cancelled_registrations() -> None:
    c = course(person(1), person(2))
    assert run(c, r2=Status.ONGELDIG, r3=Status.AFGEMELD) == ()


def test_bestuurder_confirmation_lists_only_meetings_voor_bestuurders() -> None:
    c = course(person(1, rol="bestuurder"),
               meetings=(meeting(1), meeting(3, voor_bestuurders=True)))
    [intent] = run(c)
    assert intent.meetings == (3,)


# --- wachtlijst -------------------------------------------------------------------------------

def test_waiting_list_notice_for_wachtlijst_and_overboekt() -> None:
    c = course(person(1), person(2))
    intents = run(c, r2=Status.WACHTLIJST, r3=Status.OVERBOEKT)
    assert keys(intents) == [("wachtlijst", "deelnemer1@example.nl", "-"),
                             ("wachtlijst", "deelnemer2@example.nl", "-")]
    assert intents[0].extra == {"status": "wachtlijst"}  # no Melding: it is the organisers'
    assert intents[1].extra == {"status": "overboekt"}


def test_no_waiting_list_notice_when_wachtlijstbericht_is_nee() -> None:
    c = course(person(1), wachtlijstbericht=False)
    assert run(c, r2=Status.WACHTLIJST) == ()


def test_waiting_list_notice_is_sent_once() -> None:
    c = course(person(1))
    assert run(c, sent(("wachtlijst", "deelnemer1@example.nl", "-")), r2=Status.OVERBOEKT) == ()


def test_no_waiting_list_notice_to_someone_already_confirmed() -> None:
    c = course(person(1))
    state = sent(("bevestiging", "deelnemer1@example.nl", "-"))
    assert run(c, state, r2=Status.OVERBOEKT) == ()


# --- herinnering ------------------------------------------------------------------------------

def reminders(c: Course, today: date, state: LedgerState | None = None) -> list[tuple[str, ...]]:
    state = state or confirmed_with(c, *c.registrations)
    return keys(run(c, state, today), MailKind.HERINNERING)


def test_reminder_seven_days_before() -> None:
    c = course(person(1))
    assert reminders(c, date(2021, 11, 4)) == [("herinnering", "deelnemer1@example.nl", "m1-7d")]


def test_reminder_one_day_before() -> None:
    c = course(person(1))
    state = confirmed_with(c, person(1))
    state = replace(state, sent=state.sent | {("herinnering", "deelnemer1@example.nl", "m1-7d")})
    [intent] = [i for i in run(c, state, date(2021, 11, 10)) if i.kind == MailKind.HERINNERING]
    assert (intent.scope, intent.reminder_days, intent.meetings) == ("m1-1d", 1, (1,))


def test_no_reminder_before_the_first_reminder_day() -> None:
    c = course(person(1))
    assert reminders(c, date(2021, 11, 3)) == []


def test_each_reminder_goes_out_once() -> None:
    c = course(person(1))
    state = confirmed_with(c, person(1))
    state = replace(state, sent=state.sent | {("herinnering", "deelnemer1@example.nl", "m1-7d")})
    assert reminders(c, date(2021, 11, 6), state) == []


def test_late_run_catches_up_with_the_most_relevant_reminder_only() -> None:
    c = course(person(1))
    assert reminders(c, date(2021, 11, 6)) == [("herinnering", "deelnemer1@example.nl", "m1-7d")]
    assert reminders(c, date(2021, 11, 10)) == [
        ("herinnering", "deelnemer1@example.nl", "m1-1d")]


def test_reminder_due_picks_the_smallest_day_not_yet_passed() -> None:
    assert [reminder_due(n, (7, 1)) for n in (8, 7, 3, 1, 0, -1)] == [None, 7, 7, 1, 1, None]
    assert reminder_due(0, (7, 1, 0)) == 0
    assert reminder_due(3, ()) is None


def test_reminder_on_the_meeting_day_counts_as_before_the_start() -> None:
    c = course(person(1), herinneringen=(7, 1, 0))
    assert reminders(c, MEETING_DAY) == [("herinnering", "deelnemer1@example.nl", "m1-0d")]


def test_never_a_reminder_after_the_meeting_day() -> None:
    c = course(person(1))
    assert reminders(c, date(2021, 11, 12)) == []
    assert run(c, confirmed_with(c, person(1)), date(2021, 11, 12)) == ()


def test_no_reminder_for_a_meeting_without_date() -> None:
    c = course(person(1), meetings=(meeting(1, datum=None),))
    result = plan(c, allocation(c), confirmed_with(c, person(1)), date(2021, 11, 10))
    assert result.intents == ()
    assert [(f.level, f.code, f.row, f.column) for f in result.findings] == [
        ("warning", "meeting-no-date", 2, "Datum")]


def test_online_meeting_without_link_holds_back_reminders_with_one_finding() -> None:
    c = course(person(1), person(2), meetings=(online(2, link=""),))
    result = plan(c, allocation(c), confirmed_with(c, person(1), person(2)), date(2021, 11, 10))
    assert keys(result.intents, MailKind.HERINNERING) == []
    assert [(f.level, f.code, f.sheet, f.row, f.column) for f in result.findings] == [
        ("error", "meeting-online-no-link", "Bijeenkomsten", 3, "Online link")]
    assert "link" in result.findings[0].message


def test_missing_online_link_is_reported_a_week_before_the_first_reminder() -> None:
    c = course(meetings=(online(2, link=""),))
    early = plan(c, allocation(c), LedgerState(), date(2021, 10, 27)).findings
    on_time = plan(c, allocation(c), LedgerState(), date(2021, 10, 28)).findings
    assert (early, [f.code for f in on_time]) == ((), ["meeting-online-no-link"])


def test_reminder_for_online_meeting_with_link() -> None:
    c = course(person(1), meetings=(online(2),))
    assert reminders(c, date(2021, 11, 4)) == [("herinnering", "deelnemer1@example.nl", "m2-7d")]


def test_bestuurders_get_reminders_only_for_meetings_voor_bestuurders() -> None:
    c = course(person(1), person(2, rol="bestuurder"),
               meetings=(meeting(1), meeting(3, voor_bestuurders=True)))
    assert reminders(c, date(2021, 11, 4)) == [
        ("herinnering", "deelnemer1@example.nl", "m1-7d"),
        ("herinnering", "deelnemer1@example.nl", "m3-7d"),
        ("herinnering", "deelnemer2@example.nl", "m3-7d"),
    ]


def test_a_confirmation_on_a_reminder_day_stands_in_for_that_reminder() -> None:
    c = course(person(1))
    [confirmation] = run(c, today=date(2021, 11, 10))
    assert confirmation.kind == MailKind.BEVESTIGING
    assert confirmation.covers == ("m1-1d", "m1-7d")


# --- wijziging --------------------------------------------------------------------------------

def test_changed_meeting_time_sends_wijziging_with_next_sequence_to_the_confirmed_only() -> None:
    before = course(person(1), person(2))
    after = replace(before, meetings=(meeting(1, begintijd=time(13)),))
    state = confirmed_with(before, person(1))  # person 2's bevestiging is still due
    result = plan(after, allocation(after), state, date(2021, 10, 1))
    assert keys(result.intents) == [("wijziging", "deelnemer1@example.nl", "m1@1"),
                                    ("bevestiging", "deelnemer2@example.nl", "-")]
    assert (result.intents[0].sequence, result.intents[0].meetings) == (1, (1,))
    assert result.intents[0].extra["change"] == "changed"
    assert json.loads(result.intents[0].extra["was"])[1] == "14:00"  # what they were told
    assert result.sequences == {1: 1}


def test_second_change_raises_the_sequence_again() -> None:
    first = course(person(1))
    second = replace(first, meetings=(meeting(1, begintijd=time(13)),))
    third = replace(first, meetings=(meeting(1, begintijd=time(13), locatie="Stadhuis"),))
    state = confirmed_with(second, person(1), sequence=1)
    state = replace(state, sent=state.sent | {("wijziging", "deelnemer1@example.nl", "m1@1")})
    assert run(second, state) == ()
    [intent] = run(third, state)
    assert (intent.scope, intent.sequence) == ("m1@2", 2)


def test_wijziging_only_for_meetings_not_yet_started() -> None:
    before = course(person(1))
    after = replace(before, meetings=(meeting(1, adres="Stadhuisplein 1, Utrecht"),))
    state = confirmed_with(before, person(1))
    assert run(after, state, MEETING_DAY) != ()
    assert run(after, state, date(2021, 11, 12)) == ()


def test_a_change_on_the_meeting_day_itself_is_still_announced_before_the_start() -> None:
    # Today's meeting starts at 14:00, later than the job's moment (the start of today).
    before = course(person(1))
    after = replace(before, meetings=(meeting(1, adres="Stadhuisplein 1, Utrecht"),))
    intents = run(after, confirmed_with(before, person(1)), MEETING_DAY)
    assert keys(intents, MailKind.WIJZIGING) == [("wijziging", "deelnemer1@example.nl", "m1@1")]


def test_a_meeting_at_midnight_today_has_not_started_as_of_the_start_of_today() -> None:
    before = course(person(1), meetings=(meeting(1, begintijd=time(0)),))
    after = replace(before, meetings=(meeting(1, begintijd=time(0), locatie="Stadhuis"),))
    intents = run(after, confirmed_with(before, person(1)), MEETING_DAY)
    assert keys(intents, MailKind.WIJZIGING) == [("wijziging", "deelnemer1@example.nl", "m1@1")]


def test_a_change_the_day_after_the_meeting_is_not_announced() -> None:
    before = course(person(1))
    after = replace(before, meetings=(meeting(1, adres="Stadhuisplein 1, Utrecht"),))
    state = confirmed_with(before, person(1))
    assert keys(run(after, state, MEETING_DAY + timedelta(days=1)), MailKind.WIJZIGING) == []


def test_a_missing_online_link_is_still_reported_on_the_meeting_day() -> None:
    c = course(person(1), meetings=(online(2, link=""),))
    result = plan(c, allocation(c), confirmed_with(c, person(1)), MEETING_DAY)
    assert [f.code for f in result.findings] == ["meeting-online-no-link"]
    assert keys(result.intents, MailKind.HERINNERING) == []
    after = plan(c, allocation(c), confirmed_with(c, person(1)), MEETING_DAY + timedelta(days=1))
    assert [f.code for f in after.findings] == ["course-over"]


def test_meeting_added_after_the_confirmation_is_announced_as_wijziging() -> None:
    c = course(person(1), meetings=(meeting(1), meeting(4, datum=date(2022, 2, 10))))
    state = confirmed_with(c, person(1), meetings=(meeting(1),))
    [intent] = run(c, state)
    assert (intent.kind, intent.scope, intent.sequence) == ("wijziging", "m4@0", 0)
    assert intent.extra == {"change": "added"}


def test_meeting_without_date_waits_for_its_date_before_a_wijziging() -> None:
    undated = course(person(1), meetings=(meeting(4, datum=None),))
    state = confirmed_with(undated, person(1))
    assert run(undated, state) == ()
    dated = replace(undated, meetings=(meeting(4, datum=date(2022, 2, 10)),))
    [intent] = run(dated, state)
    assert (intent.scope, intent.extra) == ("m4@1", {"change": "dated"})


def test_removed_date_warns_that_participants_hold_the_old_date() -> None:
    c = course(person(1))
    state = confirmed_with(c, person(1))
    undated = replace(c, meetings=(meeting(1, datum=None),))
    result = plan(undated, allocation(undated), state, date(2021, 10, 1))
    assert result.intents == ()
    assert sorted(f.code for f in result.findings) == ["meeting-date-removed", "meeting-no-date"]


def test_meeting_sequences_start_at_zero_and_follow_the_ledger() -> None:
    c = course(meetings=(meeting(1), meeting(2), meeting(3, begintijd=time(9))))
    state = LedgerState(meeting_versions={2: (meeting(2).details(), 3),
                                          3: (meeting(3).details(), 1)})
    assert meeting_sequences(c, state) == {1: 0, 2: 3, 3: 2}


# --- overzicht --------------------------------------------------------------------------------

def summaries(c: Course, state: LedgerState, today: date) -> list[tuple[str, ...]]:
    return keys(run(c, state, today), MailKind.OVERZICHT)


def test_weekly_summary_on_its_weekday() -> None:
    c = course(overzicht_weekdag=0)
    [intent] = run(c, today=date(2021, 11, 8))  # Monday
    assert intent.key == ("overzicht", CONTACT, "2021-W45")
    assert (intent.row, intent.name) == (None, "Annemiek van Tol")


LATER = meeting(9, datum=date(2022, 1, 20))  # keeps the course going past MEETING_DAY


def test_weekly_summary_once_per_iso_week() -> None:
    c = course(overzicht_weekdag=0, meetings=(meeting(), LATER))
    state = sent(("overzicht", CONTACT, "2021-W45"))
    assert summaries(c, state, date(2021, 11, 9)) == []
    assert summaries(c, state, date(2021, 11, 15)) == [("overzicht", CONTACT, "2021-W46")]


def test_weekly_summary_goes_out_when_the_weekday_run_was_missed() -> None:
    c = course(overzicht_weekdag=2, meetings=(meeting(), LATER))  # Wednesday
    assert summaries(c, LedgerState(), date(2021, 11, 9)) == []  # Tuesday: not yet
    assert summaries(c, LedgerState(), date(2021, 11, 12)) == [("overzicht", CONTACT, "2021-W45")]


def test_weekly_summary_week_of_a_year_boundary_uses_the_iso_year() -> None:
    c = course(overzicht_weekdag=0)
    assert summaries(c, LedgerState(), date(2021, 1, 3)) == [("overzicht", CONTACT, "2020-W53")]


# --- bounced, order ---------------------------------------------------------------------------

def test_bounced_recipient_gets_nothing() -> None:
    c = course(person(1), person(2), person(3))
    state = LedgerState(bounced={"deelnemer1@example.nl": "550 5.1.1 unknown user",
                                 "deelnemer3@example.nl": "550 5.1.1 unknown user"})
    assert keys(run(c, state, date(2021, 11, 10), r4=Status.WACHTLIJST)) == [
        ("bevestiging", "deelnemer2@example.nl", "-"),
    ]


def test_new_address_after_a_bounce_is_a_new_recipient() -> None:
    c = course(person(1, email="deelnemer1-nieuw@example.nl"))
    state = LedgerState(bounced={"deelnemer1@example.nl": "550 5.1.1 unknown user"})
    assert keys(run(c, state)) == [("bevestiging", "deelnemer1-nieuw@example.nl", "-")]


def test_bounced_contact_gets_no_summary_and_an_error() -> None:
    c = course(overzicht_weekdag=0)
    state = LedgerState(bounced={CONTACT: "550 mailbox unavailable"})
    result = plan(c, allocation(c), state, date(2021, 11, 8))
    assert result.intents == ()
    assert [(f.level, f.code) for f in result.findings] == [("error", "contact-bounced")]


def test_order_is_by_row_then_kind_with_the_summary_last() -> None:
    meetings = (meeting(1), meeting(2, begintijd=time(10)))
    c = course(person(3), person(1), person(2), meetings=meetings, overzicht_weekdag=0)
    told = course(meetings=(meeting(1), meeting(2)))
    state = confirmed_with(told, person(1))
    intents = run(c, state, date(2021, 11, 8), r3=Status.WACHTLIJST)
    assert [(i.row, i.kind, i.scope) for i in intents] == [
        (2, "wijziging", "m2@1"),
        (2, "herinnering", "m1-7d"),
        (2, "herinnering", "m2-7d"),
        (3, "wachtlijst", "-"),
        (4, "bevestiging", "-"),  # it stands in for the reminders due today
        (None, "overzicht", "2021-W45"),
    ]


def test_plan_is_deterministic() -> None:
    c = course(*(person(n) for n in range(1, 30)), meetings=(meeting(1), online(2)),
               overzicht_weekdag=0)
    assert run(c, today=date(2021, 11, 8)) == run(c, today=date(2021, 11, 8))
