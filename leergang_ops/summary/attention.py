"""What needs a person, pure: the attention list, grouped, each point with where to fix it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import NamedTuple

from leergang_ops.model import (
    Allocation,
    Course,
    Decision,
    Finding,
    Level,
    Meeting,
    Registration,
    SentRecord,
    Status,
)
from leergang_ops.summary.figures import (
    KIND_LABELS,
    MUNICIPALITY_WAITING,
    RETURNED,
    SHEET_SENT,
    local_time,
    municipality_rows,
)
from leergang_ops.workbook.schema import SHEET_MEETINGS, SHEET_SETTINGS

# The attention list's groups, in the order an organiser works through them.
GROUP_LIMITS = "Limieten"
GROUP_INVALID = "Ongeldige aanmeldingen"
GROUP_WARNINGS = "Waarschuwingen"
GROUP_DELIVERY = "Bezorging van mail"
GROUPS = (GROUP_LIMITS, GROUP_INVALID, GROUP_WARNINGS, GROUP_DELIVERY)


class Problem(NamedTuple):
    """One point of the attention list: what needs a person, and where to fix it."""

    what: str
    where: str
    group: str

# ---------------------------------------------------------------------- problems (pure)


def problems(course: Course, allocation: Allocation, records: Sequence[SentRecord],
             today: date) -> list[Problem]:
    """What needs a person, each with where to fix it: grouped as GROUPS, no duplicates."""
    found = [
        *(Problem(*p, GROUP_LIMITS) for p in (*_overbooked_problems(course, allocation),
                                              *_waiting_problems(course, allocation))),
        *(Problem(*p, GROUP_INVALID) for p in (*_invalid_problems(course, allocation),
                                               *_error_findings(course, allocation))),
        *(Problem(*p, GROUP_WARNINGS) for p in (*_meeting_problems(course, today),
                                                *_warning_findings(course, allocation))),
        *(Problem(*p, GROUP_DELIVERY) for p in (*_bounce_problems(course, records),
                                                *_interrupted_problems(course, records,
                                                                       today))),
    ]
    return list(dict.fromkeys(found))


def grouped(found: Iterable[Problem]) -> list[tuple[str, list[Problem]]]:
    """The problems under their group's heading, in the order of GROUPS; empty groups left out."""
    by_group: dict[str, list[Problem]] = defaultdict(list)
    for problem in found:
        by_group[problem.group].append(problem)
    return [(group, by_group[group]) for group in GROUPS if by_group[group]]


def _rows_text(rows: Sequence[int]) -> str:
    return f"rij {rows[0]}" if len(rows) == 1 else "rijen " + ", ".join(map(str, rows))


def _bounce_problems(course: Course, records: Sequence[SentRecord]) -> list[tuple[str, str]]:
    """Addresses whose latest mail was refused and that still stand in the workbook.

    Correcting the address in the workbook solves it, so then it is no longer listed.
    """
    latest: dict[str, SentRecord] = {}
    for record in sorted(records, key=lambda r: local_time(r.at)):
        if record.status not in RETURNED:
            latest[record.recipient] = record
    rows = {r.email_key: r.row for r in course.registrations}
    sheet = course.layout.sheet_name
    contact = course.settings.contactpersoon_email.strip().casefold()

    def where_is(recipient: str) -> str | None:
        if recipient in rows:
            return f"{sheet}, rij {rows[recipient]}, kolom E-mail"
        return f"{SHEET_SETTINGS}, Contactpersoon e-mail" if recipient == contact else None

    found = []
    for recipient, record in latest.items():
        where = where_is(recipient)
        if record.status != "bounced" or where is None:
            continue
        reply = record.detail.strip() or "geen toelichting van de server"
        verb = "kwam terug" if reply.startswith("mail kwam terug") else "is geweigerd"
        reply = reply.removeprefix("mail kwam terug ")
        found.append((f"Mail aan {record.name or record.address} ({record.address}) {verb}: "
                      f"{reply}", where))
    return [*found, *_returned_problems(records, where_is)]


def _returned_problems(records: Sequence[SentRecord],
                       where_is: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """Bounces that blame no address (content, policy) and those that are not ours."""
    found = []
    for record in records:
        if record.status == "deferred" and record.about == "content":
            found.append((f"Een {KIND_LABELS.get(record.kind, record.kind).lower()} aan "
                          f"{record.address} is om de inhoud geweigerd door de mailserver "
                          f"({record.detail}); dit ligt niet aan het adres, de mail wordt "
                          "opnieuw geprobeerd", "de beheerder van de mailserver (spamfilter)"))
        elif record.status == "returned":
            found.append((f"Een {KIND_LABELS.get(record.kind, record.kind).lower()} aan "
                          f"{record.address} kwam terug om de inhoud of het beleid van de "
                          f"ontvangende server ({record.detail}); dit ligt niet aan het adres",
                          "de beheerder van de mailserver (afzender, SPF/DKIM/DMARC)"))
        elif record.status == "returned-unmatched":
            where = where_is(record.recipient)
            if where is not None:
                found.append((f"Mogelijk teruggekomen mail voor {record.address} "
                              f"({record.detail}): niet door dit programma verstuurd (een eigen "
                              "mail van een collega?); controleer het adres", where))
    return found


def _interrupted_problems(course: Course, records: Sequence[SentRecord],
                          today: date) -> list[tuple[str, str]]:
    """Mails left `sending` by an interrupted run before today: did they arrive?

    The ledger records a mail as sending before the SMTP transaction; one that never became
    sent, deferred or bounced may or may not have reached its recipient.
    """
    latest: dict[tuple[str, str, str], SentRecord] = {}
    for record in sorted(records, key=lambda r: local_time(r.at)):
        latest[(record.kind, record.recipient, record.scope)] = record
    rows = {r.email_key: r.row for r in course.registrations}
    sheet = course.layout.sheet_name
    found = []
    for record in latest.values():
        day = local_time(record.at).date()
        if record.status != "sending" or day >= today:
            continue
        kind = KIND_LABELS.get(record.kind, record.kind).lower()
        where = (f"{sheet}, rij {rows[record.recipient]}" if record.recipient in rows
                 else f"tabblad {SHEET_SENT} van dit overzicht")
        found.append((f"Onbekend of de {kind} aan {record.name or record.address} "
                      f"({record.address}) van {day:%d-%m-%Y} is aangekomen: het verzenden "
                      "werd onderbroken; navragen", where))
    return found


def _meeting_where(meeting: Meeting, column: str) -> str:
    row = f"rij {meeting.row}" if meeting.row else f"bijeenkomst {meeting.nr}"
    return f"{SHEET_MEETINGS}, {row}, kolom {column}"


def _meeting_problems(course: Course, today: date) -> list[tuple[str, str]]:
    found = []
    for m in course.meetings:
        if m.datum is None:
            found.append((f"Bijeenkomst {m.nr} ({m.titel}) heeft nog geen datum; er gaan geen "
                          "herinneringen uit", _meeting_where(m, "Datum")))
        ahead = m.datum is None or m.datum >= today
        if m.online and not m.online_link.strip() and ahead:
            found.append((f"Bijeenkomst {m.nr} ({m.titel}) is online maar heeft nog geen link",
                          _meeting_where(m, "Online link")))
    return found


def _error_findings_by_row(allocation: Allocation) -> dict[int, Finding]:
    found: dict[int, Finding] = {}
    for f in allocation.findings:
        if f.level == Level.ERROR and f.row is not None:
            found.setdefault(f.row, f)
    return found


def _invalid_problems(course: Course, allocation: Allocation) -> list[tuple[str, str]]:
    errors = _error_findings_by_row(allocation)
    decisions = allocation.by_row()
    sheet = course.layout.sheet_name
    first_of: dict[str, Registration] = {}
    for reg in course.registrations:
        first_of.setdefault(reg.email_key, reg)
    found = []
    for reg in course.registrations:
        decision = decisions.get(reg.row)
        if decision is None or decision.status != Status.ONGELDIG:
            continue
        finding = errors.get(reg.row)
        name = reg.naam or "iemand zonder naam"
        where = finding.location() if finding else f"{sheet}, rij {reg.row}"
        first = first_of.get(reg.email_key)
        if finding and finding.code == "duplicate-email" and first and first.row != reg.row:
            # The person is not invalid: only this second row of their address is.
            found.append((_duplicate_text(reg, first, decisions.get(first.row)),
                          f"{sheet}, rij {reg.row}"))
            continue
        why = finding.message if finding else decision.melding or "ongeldige aanmelding"
        found.append((f"Ongeldige aanmelding van {name}: {why}", where))
    return found


def _duplicate_text(second: Registration, first: Registration,
                    held: Decision | None) -> str:
    """A second row with an address already registered: about the row, not the person."""
    status = f", {held.status}" if held else ""
    if second.naam.strip().casefold() == first.naam.strip().casefold():
        return (f"{first.naam or 'Iemand'} staat twee keer op de lijst (rij {first.row}"
                f"{status}, en rij {second.row}); rij {second.row} telt niet mee: verwijder "
                "die rij")
    return (f"Rij {second.row} ({second.naam or 'zonder naam'}) heeft hetzelfde e-mailadres "
            f"als rij {first.row} ({first.naam or 'zonder naam'}{status}); rij {second.row} "
            f"telt niet mee: geef {second.naam or 'deze persoon'} een eigen adres, of "
            "verwijder de rij")


def _error_findings(course: Course, allocation: Allocation) -> list[tuple[str, str]]:
    """Errors that are not about one invalid registration (those are listed already)."""
    invalid_rows = set(_error_findings_by_row(allocation))
    own = [f for f in allocation.findings if f.row not in invalid_rows]
    return [(f.message, f.location() or "werkmap")
            for f in (*course.findings, *own) if f.level == Level.ERROR]


# Warnings listed elsewhere already: overbooking under the limits, a meeting without date
# or link by _meeting_problems.
_LISTED_ELSEWHERE = frozenset({"overbooked", "meeting-no-date", "meeting-online-no-link"})


def _warning_findings(course: Course, allocation: Allocation) -> list[tuple[str, str]]:
    """Warnings an organiser should act on: the same policy domain twice, a misspelt
    municipality, a bestuurder without a meeting for bestuurders, the workbook's own."""
    names = {r.row: r.naam for r in course.registrations}
    sheet = course.layout.sheet_name
    found = []
    for f in (*course.findings, *allocation.findings):
        if f.level != Level.WARNING or f.code in _LISTED_ELSEWHERE:
            continue
        person = names.get(f.row) if f.sheet == sheet and f.row else None
        what = f"{person}: {f.message}" if person else f.message
        found.append((what, f.location() or "werkmap"))
    return found


def _overbooked_problems(course: Course, allocation: Allocation) -> list[tuple[str, str]]:
    decisions = allocation.by_row()
    sheet = course.layout.sheet_name
    limit = course.settings.max_deelnemers_per_gemeente
    found = []
    for m in municipality_rows(course, allocation):
        rows = [r for r in m.rows
                if r in decisions and decisions[r].status == Status.OVERBOEKT]
        if rows:
            more = "aanmelding" if len(rows) == 1 else "aanmeldingen"
            found.append((f"{m.name} heeft {len(rows)} {more} meer dan de "
                          f"{limit} plaatsen per gemeente: overleg wie er gaat",
                          f"{sheet}, {_rows_text(rows)}"))
    return found


def _waiting_problems(course: Course, allocation: Allocation) -> list[tuple[str, str]]:
    sheet = course.layout.sheet_name
    limit = course.settings.max_gemeenten
    waiting = [m for m in municipality_rows(course, allocation)
               if m.status == MUNICIPALITY_WAITING]
    return [(f"{m.name} staat op de wachtlijst (nummer {position}; maximaal {limit} "
             "gemeenten): een plaats aanbieden of afzeggen",
             f"{SHEET_SETTINGS}, Max gemeenten; {sheet}, {_rows_text(m.rows)}")
            for position, m in enumerate(waiting, start=1)]
