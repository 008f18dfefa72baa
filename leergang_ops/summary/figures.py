"""The summary's figures, pure: municipalities, attendance, the week's mails, labels."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date

from leergang_ops import municipalities
from leergang_ops.model import (
    Allocation,
    Course,
    Decision,
    Meeting,
    Registration,
    SentRecord,
    Status,
)

SHEET_OVERVIEW = "Overzicht"
SHEET_MUNICIPALITIES = "Gemeenten"
SHEET_REGISTRATIONS = "Deelnemers"
SHEET_QUESTIONS = "Vragen"
SHEET_SENT = "Verzonden"

ZONE = ZoneInfo("Europe/Amsterdam")
WEEK = timedelta(days=7)

MUNICIPALITY_ADMITTED = "toegelaten"
MUNICIPALITY_FULL = "vol"
MUNICIPALITY_WAITING = "wachtlijst"
MUNICIPALITY_INACTIVE = "geen actieve aanmelding"

KIND_LABELS = {
    "bevestiging": "Bevestiging",
    "wachtlijst": "Wachtlijstbericht",
    "herinnering": "Herinnering",
    "wijziging": "Wijziging",
    "overzicht": "Wekelijks overzicht",
    "storing": "Storingsbericht",
    "afmelding": "Afmelding",
}

RESULT_LABELS = {
    "sent": "verzonden",
    "bounced": "geweigerd",
    "deferred": "uitgesteld, wordt opnieuw geprobeerd",
    "sending": "onderbroken tijdens verzenden",
    "returned": "kwam terug om inhoud of beleid (niet aan het adres)",
    "returned-unmatched": "mogelijk teruggekomen: niet door dit programma verstuurd",
}
RETURNED = frozenset({"returned", "returned-unmatched"})  # bounces, not mails of the ledger

@dataclass(frozen=True)
class MunicipalityRow:
    """One line of the Gemeenten sheet."""

    name: str
    bevestigd: int  # confirmed registrations that count toward the limit
    bestuurders: int  # confirmed bestuurders (counted or not, see Settings)
    overboekt: int
    wachtlijst: int
    domains: tuple[str, ...]  # beleidsdomeinen of the confirmed, first spelling wins
    status: str
    warnings: tuple[str, ...]
    rows: tuple[int, ...]  # the municipality's rows on Deelnemers


@dataclass(frozen=True)
class Attendance:
    """Who is expected at one meeting."""

    meeting: Meeting
    deelnemers: int
    bestuurders: int

    @property
    def total(self) -> int:
        return self.deelnemers + self.bestuurders

def in_outbox(record: SentRecord) -> bool:
    """Written to an outbox folder instead of sent (contract §4: never called sent)."""
    return record.destination.startswith("outbox:")


def meeting_label(meeting: Meeting) -> str:
    """`1. Waarom een wijkaanpak? — do 11-11-2021`."""
    when = (format_date(meeting.datum, "EEE dd-MM-yyyy", locale="nl") if meeting.datum
            else "datum nog niet bekend")
    return f"{meeting.nr}. {meeting.titel} — {when}"


def attendance(course: Course, allocation: Allocation) -> list[Attendance]:
    """Expected attendance per meeting: the confirmed who attend it (bestuurders: theirs only)."""
    status = allocation.by_row()
    confirmed = [r for r in course.registrations
                 if r.row in status and status[r.row].status == Status.BEVESTIGD]
    result = []
    for meeting in course.meetings:
        going = [r for r in confirmed if meeting.nr in {m.nr for m in course.meetings_for(r)}]
        bestuurders = sum(1 for r in going if r.is_bestuurder)
        result.append(Attendance(meeting, len(going) - bestuurders, bestuurders))
    return result


def local_time(moment: datetime) -> datetime:
    """A naive Europe/Amsterdam wall-clock time; aware times (the ledger's) are converted."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(ZONE).replace(tzinfo=None)


def recent_records(records: Iterable[SentRecord], today: date) -> list[SentRecord]:
    """Records of the 7 days up to and including `today`, oldest first.

    Consecutive weekly summaries thus cover every day exactly once.
    """
    first = today - WEEK + timedelta(days=1)
    recent = [r for r in records if first <= local_time(r.at).date() <= today]
    return sorted(recent, key=lambda r: local_time(r.at))


def municipality_rows(course: Course, allocation: Allocation) -> list[MunicipalityRow]:
    """One row per municipality named on Deelnemers: admitted, then waiting, then the rest."""
    groups: dict[str, list[Registration]] = defaultdict(list)
    for reg in course.registrations:
        if reg.gemeente.strip():
            groups[municipalities.identity(reg.gemeente)].append(reg)
    admitted = [municipalities.identity(n) for n in allocation.admitted]
    waiting = [municipalities.identity(n) for n in allocation.waiting]
    admitted = sorted((k for k in admitted if k in groups), key=lambda k: _group_key(groups[k]))
    rest = sorted((k for k in groups if k not in admitted and k not in waiting),
                  key=lambda k: _group_key(groups[k]))
    decisions = allocation.by_row()
    return [_municipality_row(course, groups[k], decisions, k in waiting)
            for k in [*admitted, *waiting, *rest] if k in groups]


def _group_key(regs: list[Registration]) -> str:
    return sort_key(municipalities.display_name(regs[0].gemeente))


def sort_key(name: str) -> str:
    """Sort as a Dutch reader looks names up: `'s-Hertogenbosch` under H."""
    return re.sub(r"^'[st][ -]", "", municipalities.normalise(name))


def _municipality_row(course: Course, regs: list[Registration],
                      decisions: dict[int, Decision], waiting: bool) -> MunicipalityRow:
    statuses = Counter(decisions[r.row].status for r in regs if r.row in decisions)
    confirmed = [r for r in regs if r.row in decisions
                 and decisions[r.row].status == Status.BEVESTIGD]
    counting = [r for r in confirmed
                if not r.is_bestuurder or course.settings.bestuurders_tellen_mee]
    domains: dict[str, str] = {}
    for reg in confirmed:
        if reg.beleidsdomein.strip():
            domains.setdefault(" ".join(reg.beleidsdomein.split()).casefold(),
                               reg.beleidsdomein.strip())
    warnings: dict[str, None] = {}  # ordered set
    for reg in regs:
        if reg.row in decisions and decisions[reg.row].status != Status.AFGEMELD:
            warnings.update(dict.fromkeys(decisions[reg.row].messages))
    return MunicipalityRow(
        name=municipalities.display_name(regs[0].gemeente),
        bevestigd=len(counting),
        bestuurders=sum(1 for r in confirmed if r.is_bestuurder),
        overboekt=statuses[Status.OVERBOEKT],
        wachtlijst=statuses[Status.WACHTLIJST],
        domains=tuple(domains.values()),
        status=_municipality_status(len(counting), course.settings.max_deelnemers_per_gemeente,
                                    waiting, bool(confirmed)),
        warnings=tuple(warnings),
        rows=tuple(r.row for r in regs),
    )


def _municipality_status(counting: int, limit: int, waiting: bool, confirmed: bool) -> str:
    if waiting:
        return MUNICIPALITY_WAITING
    if counting >= limit:
        return MUNICIPALITY_FULL
    return MUNICIPALITY_ADMITTED if confirmed else MUNICIPALITY_INACTIVE
