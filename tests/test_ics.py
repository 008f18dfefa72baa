"""The .ics: METHOD:PUBLISH, Amsterdam times with VTIMEZONE, stable UIDs, SEQUENCE."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time

import icalendar
import pytest

from leergang_ops.mail.ics import ZONE, calendar_for, meeting_uid
from leergang_ops.mail.render import sample_course
from leergang_ops.model import Meeting

STAMP = datetime(2021, 11, 4, 9, 0, 30, tzinfo=ZONE)
COURSE = sample_course()


def events(data: bytes) -> dict[int, icalendar.cal.Component]:
    """The VEVENTs of a calendar by meeting number (from the UID)."""
    cal = icalendar.Calendar.from_ical(data)
    found = {}
    for event in cal.walk("VEVENT"):
        nr = int(str(event["uid"]).split("@")[0].rsplit("-m", 1)[1])
        found[nr] = event
    return found


def calendar(meetings=COURSE.meetings, sequences=None, stamp=STAMP) -> bytes:
    return calendar_for(meetings, COURSE, sequences or {}, stamp=stamp)


def test_calendar_is_publish_with_one_event_per_dated_meeting() -> None:
    cal = icalendar.Calendar.from_ical(calendar())
    assert cal["method"] == "PUBLISH"
    assert "leergang-ops" in str(cal["prodid"])
    assert sorted(events(calendar())) == [1, 2, 3]  # meeting 4 has no date yet


def test_times_are_local_amsterdam_times_with_a_vtimezone() -> None:
    data = calendar()
    assert b"DTSTART;TZID=Europe/Amsterdam:20211111T140000" in data
    first = events(data)[1]
    start, end = first.decoded("dtstart"), first.decoded("dtend")
    assert start.astimezone(UTC) == datetime(2021, 11, 11, 13, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2021, 11, 11, 16, 0, tzinfo=UTC)
    zones = icalendar.Calendar.from_ical(data).walk("VTIMEZONE")
    assert [str(z["tzid"]) for z in zones] == ["Europe/Amsterdam"]


def test_summer_time_meeting_is_two_hours_ahead_of_utc() -> None:
    june = dataclasses.replace(COURSE.meetings[0], datum=date(2022, 6, 9))
    start = events(calendar((june,)))[1].decoded("dtstart")
    assert start.astimezone(UTC) == datetime(2022, 6, 9, 12, 0, tzinfo=UTC)


def test_uid_is_stable_across_renders_stamps_and_sequences() -> None:
    first = events(calendar())
    later = events(calendar(sequences={1: 3}, stamp=datetime(2022, 1, 1, tzinfo=UTC)))
    assert {nr: str(e["uid"]) for nr, e in first.items()} == \
        {nr: str(e["uid"]) for nr, e in later.items()}
    assert str(first[1]["uid"]) == "leergang-slagvaardige-wijkaanpak-m1@example.org"
    assert meeting_uid(COURSE.meetings[0], COURSE.settings) == str(first[1]["uid"])


def test_sequence_comes_from_the_mapping_and_defaults_to_zero() -> None:
    found = events(calendar(sequences={2: 4}))
    assert [found[nr]["sequence"] for nr in (1, 2, 3)] == [0, 4, 0]


def test_location_is_the_address_on_site_and_the_link_online() -> None:
    found = events(calendar())
    assert str(found[1]["location"]) == "Molen de Ster, Molenpark 2-1, Utrecht"
    assert "url" not in found[1]
    assert str(found[2]["location"]) == "https://meet.example.org/wijkaanpak-2"
    assert str(found[2]["url"]) == "https://meet.example.org/wijkaanpak-2"


def test_summary_description_and_organizer() -> None:
    event = events(calendar())[3]
    assert str(event["summary"]) == \
        "Leergang slagvaardige wijkaanpak: Hoe ga je aan de slag met een wijkaanpak?"
    assert "deelnemers en bestuurders" in str(event["description"])
    assert "contact@example.org" in str(event["description"])
    assert str(event["organizer"]) == "mailto:leergang@example.org"


def test_meeting_without_times_is_an_all_day_event() -> None:
    allday = Meeting(5, "Slotbijeenkomst", date(2022, 2, 3), None, None, "Utrecht")
    event = events(calendar((allday,)))[5]
    assert event.decoded("dtstart") == date(2022, 2, 3)
    assert event.decoded("dtend") == date(2022, 2, 4)
    assert b"VTIMEZONE" not in calendar((allday,))


def test_meeting_with_only_a_start_time_has_no_end() -> None:
    open_end = Meeting(6, "Borrel", date(2022, 2, 3), time(17), None, "Utrecht")
    assert "dtend" not in events(calendar((open_end,)))[6]


def test_dtstamp_is_utc_to_the_minute() -> None:
    event = events(calendar())[1]
    assert event.decoded("dtstamp") == datetime(2021, 11, 4, 8, 0, tzinfo=UTC)


def test_stamp_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar(stamp=datetime(2021, 11, 4, 9, 0))
