"""Contract §2: who gets a place. A pure function of the course and the confirmed set."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from leergang_ops import municipalities
from leergang_ops.addresses import is_valid_email
from leergang_ops.model import (
    REQUIRED_REGISTRATION_FIELDS,
    Allocation,
    Course,
    Decision,
    Finding,
    Level,
    Registration,
    Status,
)

_FIELD_VALUES = {
    "Voornaam": lambda r: r.voornaam,
    "Achternaam": lambda r: r.achternaam,
    "E-mail": lambda r: r.email,
    "Gemeente": lambda r: r.gemeente,
}


@dataclass
class _Pass:
    """Working state of one allocation pass."""

    course: Course
    status: dict[int, Status] = field(default_factory=dict)
    messages: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    findings: list[Finding] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # row → waiting-list place

    def decide(self, reg: Registration, status: Status, message: str = "") -> None:
        self.status[reg.row] = status
        if message:
            self.messages[reg.row].append(message)

    def note(self, reg: Registration, level: Level, code: str, column: str | None,
             message: str) -> None:
        self.messages[reg.row].append(message)
        sheet = self.course.layout.sheet_name
        self.findings.append(Finding(level, code, sheet, reg.row, column, message))


def allocate(course: Course, confirmed: frozenset[str] = frozenset()) -> Allocation:
    """Give every registration its status and warnings.

    `confirmed` holds the (normalised) addresses whose confirmation was already sent: their
    places are kept whatever changed since (contract §2, the kept-place rule).
    """
    work = _Pass(course)
    _mark_invalid_and_cancelled(work, course.registrations)
    active = [r for r in _in_order(course.registrations) if r.row not in work.status]
    kept = {r.row for r in active if r.email_key in confirmed}
    admitted, waiting = _admit_municipalities(work, active, kept)
    _give_places(work, active, kept, set(admitted))
    _warn_same_domain(work, course.registrations)
    _warn_unknown_municipality(work, course.registrations)
    _warn_bestuurder_without_meeting(work, course.registrations)
    decisions = tuple(
        Decision(r.row, work.status[r.row], tuple(work.messages.get(r.row, ())),
                 work.positions.get(r.row))
        for r in course.registrations
    )
    return Allocation(decisions, tuple(work.findings), tuple(admitted.values()),
                      tuple(waiting.values()))


def _in_order(registrations: Iterable[Registration]) -> list[Registration]:
    """Order of `Aangemeld op`, ties by row; rows without a date after all dated ones."""
    return sorted(registrations,
                  key=lambda r: (r.aangemeld_op is None, r.aangemeld_op or datetime.min, r.row))


def _mark_invalid_and_cancelled(work: _Pass, registrations: Iterable[Registration]) -> None:
    first_row_of: dict[str, int] = {}
    for reg in registrations:
        complete = reg.voornaam and reg.achternaam and reg.email and reg.gemeente
        missing = () if complete else [
            name for name in REQUIRED_REGISTRATION_FIELDS if not _FIELD_VALUES[name](reg)]
        if missing:
            work.decide(reg, Status.ONGELDIG)
            work.note(reg, Level.ERROR, "missing-field", missing[0],
                      f"Verplicht veld ontbreekt: {', '.join(missing)}")
        elif not is_valid_email(reg.email.strip()):
            work.decide(reg, Status.ONGELDIG)
            work.note(reg, Level.ERROR, "invalid-email", "E-mail",
                      f"E-mailadres '{reg.email}' is niet geldig")
        elif reg.afgemeld:
            work.decide(reg, Status.AFGEMELD)
        elif reg.email_key in first_row_of:
            work.decide(reg, Status.ONGELDIG)
            work.note(reg, Level.ERROR, "duplicate-email", "E-mail",
                      f"Dubbele aanmelding: dit e-mailadres staat al in rij "
                      f"{first_row_of[reg.email_key]}")
        else:
            first_row_of[reg.email_key] = reg.row


def _admit_municipalities(
    work: _Pass, active: list[Registration], kept: set[int]
) -> tuple[dict[str, str], dict[str, str]]:
    """Admit municipalities in order of their earliest active registration, up to the limit.

    Municipalities holding a kept place are admitted first, whatever the limit says now.
    """
    limit = work.course.settings.max_gemeenten
    in_order: dict[str, str] = {}
    for reg in active:
        key = municipalities.identity(reg.gemeente)
        if key not in in_order:
            in_order[key] = municipalities.display_name(reg.gemeente)
    holding = {municipalities.identity(r.gemeente) for r in active if r.row in kept}
    admitted = {k: v for k, v in in_order.items() if k in holding}
    for key, name in in_order.items():
        if key not in admitted and len(admitted) < limit:
            admitted[key] = name
    admitted = {k: in_order[k] for k in in_order if k in admitted}
    waiting = {k: v for k, v in in_order.items() if k not in admitted}
    rank = {k: n for n, k in enumerate(in_order, start=1)}
    reasons = {}  # one text per waiting municipality, shared by all its registrations
    places = {key: n for n, key in enumerate(waiting, start=1)}
    for position, (key, name) in enumerate(waiting.items(), start=1):
        reasons[key] = (f"Wachtlijst: gemeente {name} is nummer {position} op de wachtlijst "
                        f"(maximaal {limit} gemeenten)")
        if rank[key] <= limit:
            reasons[key] += "; eerder bevestigde gemeenten houden hun plaats"
    for reg in active:
        reason = reasons.get(municipalities.identity(reg.gemeente))
        if reason is not None:
            work.decide(reg, Status.WACHTLIJST)
            work.positions[reg.row] = places[municipalities.identity(reg.gemeente)]
            work.note(reg, Level.INFO, "waiting-list", "Gemeente", reason)
    return admitted, waiting


def _counts_toward_limit(work: _Pass, reg: Registration) -> bool:
    return not reg.is_bestuurder or work.course.settings.bestuurders_tellen_mee


def _give_places(work: _Pass, active: list[Registration], kept: set[int],
                 admitted: set[str]) -> None:
    """Confirm the first `Max deelnemers per gemeente` of each admitted municipality."""
    limit = work.course.settings.max_deelnemers_per_gemeente
    taken: Counter[str] = Counter(
        municipalities.identity(r.gemeente) for r in active
        if r.row in kept and _counts_toward_limit(work, r)
    )
    earlier: Counter[str] = Counter()  # counting registrations ahead in line, kept or not
    for reg in active:
        key = municipalities.identity(reg.gemeente)
        if key not in admitted:
            continue
        counts = _counts_toward_limit(work, reg)
        ahead = earlier[key]
        earlier[key] += counts
        if reg.row in kept or not counts:
            work.decide(reg, Status.BEVESTIGD)
        elif taken[key] < limit:
            taken[key] += 1
            work.decide(reg, Status.BEVESTIGD)
        else:
            name = municipalities.display_name(reg.gemeente)
            reason = (f"Overboekt: gemeente {name} heeft al {limit} "
                      f"deelnemers (maximum {limit} per gemeente)")
            if ahead < limit:
                reason += "; eerder bevestigde deelnemers houden hun plaats"
            work.decide(reg, Status.OVERBOEKT)
            work.note(reg, Level.WARNING, "overbooked", "Gemeente", reason)


def _confirmed_by_municipality(
    work: _Pass, registrations: Iterable[Registration]
) -> Iterator[list[Registration]]:
    groups: dict[str, list[Registration]] = defaultdict(list)
    for reg in registrations:
        if work.status[reg.row] == Status.BEVESTIGD:
            groups[municipalities.identity(reg.gemeente)].append(reg)
    yield from groups.values()


def _warn_same_domain(work: _Pass, registrations: Iterable[Registration]) -> None:
    for group in _confirmed_by_municipality(work, registrations):
        first: dict[str, Registration] = {}
        for reg in group:
            domain = " ".join(reg.beleidsdomein.split()).casefold()
            if not domain:
                continue
            if domain in first:
                other = first[domain]
                work.note(reg, Level.WARNING, "same-domain", "Beleidsdomein",
                          f"Zelfde beleidsdomein ({reg.beleidsdomein}) als {other.naam} "
                          f"(rij {other.row}); de leergang vraagt om verschillende domeinen")
            else:
                first[domain] = reg


def _warn_unknown_municipality(work: _Pass, registrations: Iterable[Registration]) -> None:
    for reg in registrations:
        if not reg.gemeente or municipalities.lookup(reg.gemeente):
            continue
        suggestion = municipalities.suggest(reg.gemeente)
        hint = f"; bedoelt u {suggestion}?" if suggestion else ""
        work.note(reg, Level.WARNING, "unknown-municipality", "Gemeente",
                  f"'{reg.gemeente}' is geen Nederlandse gemeente{hint}")


def _warn_bestuurder_without_meeting(work: _Pass,
                                     registrations: Iterable[Registration]) -> None:
    if any(m.voor_bestuurders for m in work.course.meetings):
        return
    for reg in registrations:
        if reg.is_bestuurder and work.status[reg.row] not in (Status.ONGELDIG,
                                                              Status.AFGEMELD):
            work.note(reg, Level.WARNING, "no-meeting-for-bestuurders", "Rol",
                      "Aangemeld als bestuurder, maar geen bijeenkomst is voor bestuurders")
