"""Calendar files (.ics) for the meetings: METHOD:PUBLISH, one stable UID per meeting.

Decisions:
- Times are Europe/Amsterdam local times, written with `TZID=Europe/Amsterdam` and the
  matching VTIMEZONE (generated from zoneinfo, covering the years of the meetings), so a
  client in another zone still shows the right moment.
- A meeting without a date is left out (nothing to put in a calendar yet).
- A meeting without a start time becomes an all-day event; one with a start but no end
  time becomes an event without DTEND (RFC 5545: it ends when it starts), rather than an
  invented end time.
- The UID is `leergang-<course slug>-m<nr>@<sender domain>` (no doubled `leergang-`): the
  same for every render, so a changed meeting (higher SEQUENCE) updates the event instead
  of adding one.
- DTSTAMP is `stamp` cut to the minute, which keeps the output cacheable within a run.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from leergang_ops.model import Course, Meeting, Settings

if TYPE_CHECKING:
    import icalendar

ZONE_NAME = "Europe/Amsterdam"
ZONE = ZoneInfo(ZONE_NAME)
PRODID = "-//leergang-ops//Leergang administratie//NL"


def calendar_for(
    meetings: Sequence[Meeting],
    course: Course,
    sequences: Mapping[int, int],
    *,
    stamp: datetime,
    cancelled: bool = False,
) -> bytes:
    """Return an iCalendar (METHOD:PUBLISH) with one VEVENT per dated meeting.

    `cancelled` (afmelding): the same events with STATUS:CANCELLED; with a SEQUENCE above
    the recipient's copy, a calendar that opens it marks their events cancelled.
    """
    return _calendar(
        tuple(meetings),
        course.settings,
        tuple(sorted(sequences.items())),
        _minute(stamp),
        cancelled,
    )


def meeting_uid(meeting: Meeting, settings: Settings) -> str:
    """The UID of a meeting's event: stable across renders, runs and SEQUENCE changes."""
    domain = settings.afzender_email.rpartition("@")[2].strip().lower() or "localhost"
    name = slug(settings.leergang)
    prefix = "" if name.startswith("leergang-") else "leergang-"
    return f"{prefix}{name}-m{meeting.nr}@{domain}"


def slug(text: str) -> str:
    """ASCII lower-case words joined by hyphens: `Leergang wijkaanpak` → `leergang-wijkaanpak`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "leergang"


def location_of(meeting: Meeting) -> str:
    """Where the meeting is: the link for an online meeting, else place and address."""
    if meeting.online:
        return meeting.online_link.strip() or "online"
    parts = [meeting.locatie.strip(), meeting.adres.strip()]
    return ", ".join(p for p in parts if p)


def _minute(stamp: datetime) -> datetime:
    if stamp.tzinfo is None:
        raise ValueError("stamp must be timezone-aware")
    return stamp.astimezone(UTC).replace(second=0, microsecond=0)


@lru_cache(maxsize=256)
def _calendar(
    meetings: tuple[Meeting, ...],
    settings: Settings,
    sequences: tuple[tuple[int, int], ...],
    stamp: datetime,
    cancelled: bool = False,
) -> bytes:
    # Cached: a run renders the same calendar for hundreds of participants.
    import icalendar  # here, not at the top: `validate` need not pay for importing it

    seq = dict(sequences)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    dated = [m for m in meetings if m.datum is not None]
    if any(m.begintijd is not None for m in dated):
        cal.add_component(_timezone(dated))
    for meeting in dated:
        event = _event(meeting, settings, seq.get(meeting.nr, 0), stamp)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        cal.add_component(event)
    return bytes(cal.to_ical())


def _timezone(meetings: Sequence[Meeting]) -> icalendar.Timezone:
    import icalendar

    """VTIMEZONE for Europe/Amsterdam covering the meetings' years (short and exact)."""
    years = [m.datum.year for m in meetings if m.datum is not None]
    first, last = date(min(years), 1, 1), date(max(years) + 1, 12, 31)
    return icalendar.Timezone.from_tzinfo(ZONE, tzid=ZONE_NAME, first_date=first, last_date=last)


def _event(meeting: Meeting, settings: Settings, sequence: int, stamp: datetime) -> icalendar.Event:
    import icalendar

    event = icalendar.Event()
    event.add("uid", meeting_uid(meeting, settings))
    event.add("dtstamp", stamp)
    event.add("sequence", sequence)
    _add_times(event, meeting)
    event.add("summary", f"{settings.leergang}: {meeting.titel}".strip(": "))
    location = location_of(meeting)
    if location:
        event.add("location", location)
    if meeting.online and meeting.online_link.strip():
        event.add("url", meeting.online_link.strip())
    event.add("description", _description(meeting, settings))
    organizer = icalendar.vCalAddress(f"mailto:{settings.afzender_email}")
    organizer.params["cn"] = icalendar.vText(settings.afzender_naam)
    event.add("organizer", organizer)
    return event


def _add_times(event: icalendar.Event, meeting: Meeting) -> None:
    assert meeting.datum is not None
    if meeting.begintijd is None:
        event.add("dtstart", meeting.datum)
        event.add("dtend", meeting.datum + timedelta(days=1))
        return
    start = datetime.combine(meeting.datum, meeting.begintijd, tzinfo=ZONE)
    event.add("dtstart", start)
    if meeting.eindtijd is not None and meeting.eindtijd > meeting.begintijd:
        event.add("dtend", datetime.combine(meeting.datum, meeting.eindtijd, tzinfo=ZONE))


def _description(meeting: Meeting, settings: Settings) -> str:
    audience = "deelnemers en bestuurders" if meeting.voor_bestuurders else "deelnemers"
    lines = [f"{settings.leergang}", f"Bijeenkomst {meeting.nr}: {meeting.titel}", ""]
    if meeting.online:
        link = meeting.online_link.strip()
        lines.append(f"Online: {link}" if link else "Online; de link volgt.")
    else:
        lines.append(f"Locatie: {location_of(meeting) or 'volgt'}")
    lines.append(f"Voor: {audience}")
    lines += ["", f"Vragen? {settings.contactpersoon}, {settings.contactpersoon_email}"]
    return "\n".join(lines)
