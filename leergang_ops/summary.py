"""The weekly summary workbook for the contact person (contract §3 `overzicht`, §4 `summary`).

Built fresh from the course, its allocation and the send ledger; it never reads or touches the
organisers' workbook. Sheets, headers and texts are Dutch. Every text that came from a person
(names, municipalities, remarks, server replies) is written as a string cell, never as a
formula, so a registration named `=HYPERLINK(...)` cannot run anything in Excel.

`gemeenten` in the headline counts municipalities with at least one *confirmed* participant:
that is what the contact person plans rooms and groups around.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import xlsxwriter
from babel.dates import format_date
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from leergang_ops import municipalities
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
from leergang_ops.status_colours import STATUS_COLOURS
from leergang_ops.workbook.schema import SHEET_MEETINGS, SHEET_SETTINGS

logger = logging.getLogger(__name__)

SHEET_OVERVIEW = "Overzicht"
SHEET_MUNICIPALITIES = "Gemeenten"
SHEET_REGISTRATIONS = "Deelnemers"
SHEET_QUESTIONS = "Vragen"
SHEET_SENT = "Verzonden"

ZONE = ZoneInfo("Europe/Amsterdam")
WEEK = timedelta(days=7)

FONT = {"font_name": "Arial", "font_size": 10}
WORKBOOK_OPTIONS = {
    "in_memory": True,
    # Never let a cell text become a formula, a link or a number, whatever writer is used.
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    # Arial prints the same in Excel and in LibreOffice (metric-compatible Liberation Sans).
    # With Calibri, a server without it substitutes a wider font: columns and wrapped rows
    # then differ from what the contact person sees in Excel.
    "default_format_properties": FONT,
    "default_row_height": 17,  # pixels: Arial 10's standard row
}

MARGIN = 0.4  # inches, left and right
PRINTABLE_WIDTH = 842 - 2 * 72 * MARGIN  # points across landscape A4
# Up to this many rows the Overzicht is fitted on one page (shrunk by at most ~25%).
OVERVIEW_ONE_PAGE_ROWS = 50
PRINTABLE_HEIGHT = 595 - 72 * (0.75 + 0.6)  # points down landscape A4, within the margins
LINE_HEIGHT = 12.75  # points per line of Arial 10, as Excel spaces them
PADDING = 2.25  # points above and below the text of a wrapped row

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
NAVY = "#1F3864"
STYLES: dict[str, dict[str, object]] = {
    "text": {"valign": "top"},
    "wrap": {"valign": "top", "text_wrap": True},
    "number": {"valign": "top", "align": "center"},
    "date": {"valign": "top", "align": "left", "num_format": "dd-mm-yyyy"},
    "datetime": {"valign": "top", "align": "left", "num_format": "dd-mm-yyyy hh:mm"},
}
# Row highlights by registration status, municipality status or mail result: the statuses
# in the organisers' workbook's colours (status_colours.py), a refused mail as invalid, a
# deferred one as waiting.
FILLS = {
    **{status.value: f"#{colours.fill}" for status, colours in STATUS_COLOURS.items()},
    "geweigerd": f"#{STATUS_COLOURS[Status.ONGELDIG].fill}",
    "uitgesteld": f"#{STATUS_COLOURS[Status.WACHTLIJST].fill}",
}
SENT_HIGHLIGHTS = {"bounced": "geweigerd", "deferred": "uitgesteld",
                   "returned": "uitgesteld", "returned-unmatched": "uitgesteld"}
RESULT_LABELS = {
    "sent": "verzonden",
    "bounced": "geweigerd",
    "deferred": "uitgesteld, wordt opnieuw geprobeerd",
    "sending": "onderbroken tijdens verzenden",
    "returned": "kwam terug om inhoud of beleid (niet aan het adres)",
    "returned-unmatched": "mogelijk teruggekomen: niet door dit programma verstuurd",
}
RETURNED = frozenset({"returned", "returned-unmatched"})  # bounces, not mails of the ledger


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


@dataclass(frozen=True)
class Headline:
    """The figures of the Overzicht sheet and of the weekly mail's body."""

    gemeenten: int  # municipalities with at least one confirmed participant
    max_gemeenten: int
    bevestigd: int
    wachtlijst: int
    overboekt: int
    ongeldig: int
    afgemeld: int
    per_meeting: tuple[tuple[str, int], ...]  # (meeting label, expected attendance)
    mails_this_week: int  # delivered (status `sent`) in the 7 days up to and including today
    problems: tuple[Problem, ...]  # grouped as GROUPS, each with where to fix it
    mails_in_outbox: int = 0  # of the past 7 days, written to an outbox folder: not sent


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


# ---------------------------------------------------------------------------- figures (pure)


def headline(course: Course, allocation: Allocation, records: Sequence[SentRecord],
             today: date) -> Headline:
    """The summary's figures as of `today`."""
    return Headline(
        gemeenten=sum(1 for m in municipality_rows(course, allocation) if m.bevestigd
                      or m.bestuurders),
        max_gemeenten=course.settings.max_gemeenten,
        bevestigd=allocation.count(Status.BEVESTIGD),
        wachtlijst=allocation.count(Status.WACHTLIJST),
        overboekt=allocation.count(Status.OVERBOEKT),
        ongeldig=allocation.count(Status.ONGELDIG),
        afgemeld=allocation.count(Status.AFGEMELD),
        per_meeting=tuple((meeting_label(a.meeting), a.total)
                          for a in attendance(course, allocation)),
        mails_this_week=sum(1 for r in recent_records(records, today)
                            if r.status == "sent" and not in_outbox(r)),
        problems=tuple(problems(course, allocation, records, today)),
        mails_in_outbox=sum(1 for r in recent_records(records, today)
                            if r.status == "sent" and in_outbox(r)),
    )


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


# ------------------------------------------------------------------------ the workbook


def build_summary(course: Course, allocation: Allocation, records: Sequence[SentRecord],
                  today: date) -> bytes:
    """The summary workbook (.xlsx) as bytes; the same input gives the same bytes."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, WORKBOOK_OPTIONS)
    # A fixed creation time keeps the output reproducible (XlsxWriter defaults to now).
    workbook.set_properties({"title": f"Overzicht {course.settings.leergang}",
                             "author": course.settings.organisatie or "leergang-ops",
                             "created": datetime.combine(today, datetime.min.time())})
    page = _Page(workbook, course, today)
    rows = municipality_rows(course, allocation)
    _write_overview(page, headline(course, allocation, records, today),
                    attendance(course, allocation), recent_records(records, today))
    _write_municipalities(page, rows)
    _write_registrations(page, allocation, records)
    _write_questions(page, allocation)
    _write_sent(page, recent_records(records, today))
    workbook.close()
    data = buffer.getvalue()
    logger.debug("summary built: %d bytes, %d municipalities", len(data), len(rows))
    return data


def write_summary(path: Path, data: bytes) -> None:
    """Write the summary atomically: a temporary file beside it, then a rename.

    The file is private to its owner (mode 0600): it lists names and addresses.
    """
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    logger.info("Overzicht geschreven naar %s", path)


class _Page:
    """The workbook with its formats and the page setup every sheet shares."""

    def __init__(self, workbook: Workbook, course: Course, today: date) -> None:
        self.workbook = workbook
        self.course = course
        self.today = today
        self.day_text = format_date(today, "full", locale="nl")
        self._formats: dict[tuple[str, str | None], Format] = {}
        self.title = self.add({"bold": True, "font_size": 16, "font_color": NAVY})
        self.subtitle = self.add({"font_size": 12, "italic": True})
        self.section = self.add({"bold": True, "font_size": 12, "font_color": NAVY,
                                 "bottom": 1})
        header = {"bold": True, "font_color": "#FFFFFF", "bg_color": NAVY, "text_wrap": True,
                  "valign": "top", "border": 1}
        self.header = self.add(header)
        self.header_center = self.add({**header, "align": "center"})
        self.note = self.add({"italic": True, "font_color": "#595959"})
        self.group = self.add({"bold": True, "font_color": NAVY, "valign": "top"})
        self.figure = self.add({"bold": True, "align": "center", "valign": "top"})
        self.text, self.wrap, self.number = (self.cell(s) for s in ("text", "wrap", "number"))

    def add(self, properties: dict[str, object]) -> Format:
        return self.workbook.add_format({**FONT, **properties})

    def cell(self, style: str, fill: str | None = None) -> Format:
        """The format of a table cell: a column style (see STYLES), maybe a row highlight."""
        key = (style, fill if fill in FILLS else None)
        if key not in self._formats:
            colour = {"bg_color": FILLS[fill]} if fill in FILLS else {}
            self._formats[key] = self.add({**STYLES[style], **colour})
        return self._formats[key]

    def sheet(self, name: str, *, header_rows: int = 0,
              scale_to: Sequence[float] = ()) -> Worksheet:
        """A new sheet set up to print landscape on A4, one page wide.

        Fit-to-width ignores manual page breaks, so a sheet that needs one passes its column
        widths in `scale_to` and gets a fixed scale that fits them instead.
        """
        ws = self.workbook.add_worksheet(name)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        if scale_to:
            ws.set_print_scale(print_scale(scale_to))
        else:
            ws.fit_to_pages(1, 0)
        ws.set_margins(left=MARGIN, right=MARGIN, top=0.75, bottom=0.6)
        ws.center_horizontally()
        # `&` starts a control code in headers and footers: double it in the course name.
        course = self.course.settings.leergang.replace("&", "&&")
        font = '&"Arial,Regular"&8'
        ws.set_header(f"&L{font}{course}&R{font}{name}")
        ws.set_footer(f"&L{font}Overzicht per {self.day_text}&R{font}Pagina &P van &N")
        if header_rows:
            ws.repeat_rows(0, header_rows - 1)
        return ws


def print_scale(widths: Sequence[float]) -> int:
    """The print scale (%) at which columns of these widths fill one landscape A4 page."""
    table = sum(w * 7 + 5 for w in widths) * 0.75  # points, as Excel sizes columns
    # LibreOffice makes columns a few percent wider than Excel: keep room for that.
    return max(10, min(100, int(PRINTABLE_WIDTH / (table * 1.08) * 100)))


def page_lines(scale: int) -> int:
    """How many standard rows fit on a landscape A4 page at this print scale."""
    return int(PRINTABLE_HEIGHT / (LINE_HEIGHT * scale / 100))


def put(ws: Worksheet, row: int, col: int, value: object, fmt: Format | None = None) -> None:
    """Write one cell with its typed writer: text always as a string, never a formula."""
    if value is None or value == "":
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_string(row, col, "ja" if value else "nee", fmt)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt)
    elif isinstance(value, datetime):
        ws.write_datetime(row, col, local_time(value), fmt)
    elif isinstance(value, date):
        ws.write_datetime(row, col, datetime.combine(value, datetime.min.time()), fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


@dataclass(frozen=True)
class Column:
    """A table column: header text, width in characters, default cell format name."""

    header: str
    width: float
    style: str = "text"


def write_table(page: _Page, ws: Worksheet, columns: Sequence[Column],
                rows: Sequence[Sequence[object]], row_styles: Sequence[str | None] = ()) -> int:
    """A data sheet's table from A1: header, rows, widths, frozen header, autofilter.

    Returns the number of printed lines the table takes, header included.
    """
    for col, column in enumerate(columns):
        ws.set_column(col, col, column.width)
        header = page.header_center if column.style == "number" else page.header
        put(ws, 0, col, column.header, header)
    lines = fit_row(ws, 0, [(c.header, c.width) for c in columns], bold=True)
    for r, values in enumerate(rows, start=1):
        fill = row_styles[r - 1] if r - 1 < len(row_styles) else None
        for col, (column, value) in enumerate(zip(columns, values, strict=True)):
            put(ws, r, col, value, page.cell(column.style, fill))
        lines += fit_row(ws, r, [(str(v), c.width) for c, v in zip(columns, values, strict=True)
                                 if c.style == "wrap" and isinstance(v, str)])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
    return lines


# Advance widths of Helvetica/Arial (Adobe's core-font metrics, 1/1000 em) for the printable
# ASCII characters from space to tilde; other characters count as a digit's 556.
_ARIAL_WIDTHS = dict(zip(
    "".join(map(chr, range(32, 127))),
    (278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
     *([556] * 10), 278, 278, 584, 584, 584, 556, 1015,
     667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778,
     722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333,
     556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556,
     333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584),
    strict=True))


def text_points(text: str, size: float = 10) -> float:
    """Printed width of `text` in Arial at `size` points."""
    return sum(_ARIAL_WIDTHS.get(ch, 556) for ch in text) * size / 1000


def wrapped_lines(text: str, width: float, *, bold: bool = False) -> int:
    """How many lines `text` takes when wrapped in a column `width` characters wide.

    Words are laid out greedily as Excel and LibreOffice do, with a safety margin: a row one
    line too tall wastes a little paper, a row one line short hides text.
    """
    # A column of width w is 7w + 5 pixels wide; the cell keeps ~3 px free on each side.
    room = (width * 7 + 5 - 6) * 0.75 * (0.9 if bold else 0.95)
    space = text_points(" ")
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for word in paragraph.split():
            size = text_points(word)
            if used and used + space + size <= room:
                used += space + size
                continue
            if used:
                lines += 1
            lines += int(size // room)  # a word longer than the column breaks anywhere
            used = size % room
    return lines


def fit_row(ws: Worksheet, row: int, cells: Iterable[tuple[str, float]], *,
            bold: bool = False) -> int:
    """Make a row tall enough for its wrapped texts; return its number of lines.

    Neither Excel nor LibreOffice grows a row for wrapped text written by XlsxWriter when
    it prints, so the height is set explicitly; one-line rows keep the default.
    """
    lines = max((wrapped_lines(text, width, bold=bold) for text, width in cells), default=1)
    if lines > 1:
        ws.set_row(row, lines * LINE_HEIGHT + PADDING)
    return lines


# ---------------------------------------------------------------------------- Overzicht


OVERVIEW_WIDTHS = (62, 13, 13, 13, 38)


def _write_overview(page: _Page, head: Headline, meetings: Sequence[Attendance],
                    recent: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_OVERVIEW)
    for col, width in enumerate(OVERVIEW_WIDTHS):
        ws.set_column(col, col, width)
    settings = page.course.settings
    put(ws, 0, 0, settings.leergang, page.title)
    put(ws, 1, 0, f"Overzicht per {page.day_text}", page.subtitle)
    contact = f"Contactpersoon: {settings.contactpersoon}"
    if settings.organisatie:
        contact += f" — {settings.organisatie}"
    put(ws, 2, 0, contact, page.note)
    row = _write_figures(page, ws, head, 4)
    row = _write_attendance(page, ws, meetings, row + 1)
    row = _write_mail_counts(page, ws, recent, row + 1)
    last = _write_problems(page, ws, head.problems, row + 1)
    if last <= OVERVIEW_ONE_PAGE_ROWS:
        # A page and a line or two: shrink a little rather than print a lone line on page 2.
        ws.fit_to_pages(1, 1)
    ws.activate()


def _write_figures(page: _Page, ws: Worksheet, head: Headline, row: int) -> int:
    put(ws, row, 0, "Kerncijfers", page.section)
    per_municipality = page.course.settings.max_deelnemers_per_gemeente
    figures: list[tuple[str, int, str]] = [
        ("Gemeenten met bevestigde deelnemers", head.gemeenten,
         f"van maximaal {head.max_gemeenten}"),
        ("Bevestigde deelnemers", head.bevestigd, ""),
        (f"Op de wachtlijst (gemeente boven het maximum van {head.max_gemeenten})",
         head.wachtlijst, ""),
        (f"Overboekt (gemeente heeft al {per_municipality} deelnemers)", head.overboekt, ""),
        ("Ongeldige aanmeldingen", head.ongeldig, ""),
        ("Afgemeld", head.afgemeld, ""),
        ("Mails verzonden in de afgelopen 7 dagen", head.mails_this_week, ""),
        *([("Mails in de outbox gezet (niet verzonden)", head.mails_in_outbox,
            "geen mailserver ingesteld")] if head.mails_in_outbox else []),
        ("Punten die aandacht nodig hebben", len(head.problems), "zie hieronder"),
    ]
    for offset, (label, value, note) in enumerate(figures, start=1):
        put(ws, row + offset, 0, label, page.text)
        put(ws, row + offset, 1, value, page.figure)
        put(ws, row + offset, 2, note, page.note)
    return row + len(figures) + 1


def _write_attendance(page: _Page, ws: Worksheet, meetings: Sequence[Attendance],
                      row: int) -> int:
    put(ws, row, 0, "Verwachte opkomst per bijeenkomst", page.section)
    for col, text in enumerate(("Bijeenkomst", "Deelnemers", "Bestuurders", "Totaal",
                                "Locatie")):
        put(ws, row + 1, col, text, page.header_center if 1 <= col <= 3 else page.header)
    for offset, a in enumerate(meetings, start=2):
        put(ws, row + offset, 0, meeting_label(a.meeting), page.wrap)
        put(ws, row + offset, 1, a.deelnemers, page.number)
        put(ws, row + offset, 2, a.bestuurders, page.number)
        put(ws, row + offset, 3, a.total, page.figure)
        put(ws, row + offset, 4, _place(a.meeting), page.wrap)
        fit_row(ws, row + offset, [(meeting_label(a.meeting), OVERVIEW_WIDTHS[0]),
                                   (_place(a.meeting), OVERVIEW_WIDTHS[4])])
    if not meetings:
        put(ws, row + 2, 0, "Er staan nog geen bijeenkomsten in het werkboek.", page.note)
    return row + max(len(meetings), 1) + 2


def _place(meeting: Meeting) -> str:
    if meeting.online:
        return "online" + ("" if meeting.online_link.strip() else " (link ontbreekt nog)")
    return ", ".join(p for p in (meeting.locatie.strip(), meeting.adres.strip()) if p)


def _write_mail_counts(page: _Page, ws: Worksheet, recent: Sequence[SentRecord],
                       row: int) -> int:
    put(ws, row, 0, "Mails van de afgelopen 7 dagen", page.section)
    counts = Counter((r.kind, "outbox" if in_outbox(r) else r.status) for r in recent)
    results = [("Verzonden", "sent"), ("In outbox", "outbox"), ("Geweigerd", "bounced"),
               ("Uitgesteld", "deferred")]
    if not any(result == "outbox" for _, result in counts):
        results.remove(("In outbox", "outbox"))
    for col, text in enumerate(("Soort", *(label for label, _ in results))):
        put(ws, row + 1, col, text, page.header_center if col else page.header)
    kinds = [k for k in KIND_LABELS if any(kind == k for kind, _ in counts)]
    kinds += sorted({kind for kind, _ in counts} - set(kinds))
    for offset, kind in enumerate(kinds, start=2):
        put(ws, row + offset, 0, KIND_LABELS.get(kind, kind), page.text)
        for col, (_, result) in enumerate(results, start=1):
            put(ws, row + offset, col, counts[(kind, result)], page.number)
    if not kinds:
        put(ws, row + 2, 0, "Geen mails verstuurd in de afgelopen 7 dagen.", page.note)
    return row + max(len(kinds), 1) + 2


# The problems table spans the Overzicht's columns: what in A:C, where in D:E.
WHAT_COLUMNS = (0, 2)
WHERE_COLUMNS = (3, 4)


def _write_problems(page: _Page, ws: Worksheet, found: Sequence[Problem], row: int) -> int:
    put(ws, row, 0, "Wat aandacht nodig heeft", page.section)
    if not found:
        put(ws, row + 1, 0, "Niets: alles is in orde.", page.note)
        return row + 2
    merged_text(ws, row + 1, WHAT_COLUMNS, "Wat", page.header)
    merged_text(ws, row + 1, WHERE_COLUMNS, "Waar aanpassen (in de werkmap)", page.header)
    row += 2
    for group, points in grouped(found):
        merged_text(ws, row, WHAT_COLUMNS, f"{group} ({len(points)})", page.group)
        row += 1
        for what, where, _ in points:
            merged_text(ws, row, WHAT_COLUMNS, what, page.wrap)
            merged_text(ws, row, WHERE_COLUMNS, where, page.wrap)
            fit_row(ws, row, [(what, _span_width(WHAT_COLUMNS)),
                              (where, _span_width(WHERE_COLUMNS))])
            row += 1
    return row


def _span_width(columns: tuple[int, int]) -> float:
    first, last = columns
    # Merged cells also gain the padding between the columns they join.
    return sum(OVERVIEW_WIDTHS[first:last + 1]) + 0.7 * (last - first)


def merged_text(ws: Worksheet, row: int, columns: tuple[int, int], text: str,
                fmt: Format) -> None:
    """Text over merged columns, written as a string like every other text."""
    first, last = columns
    ws.merge_range(row, first, row, last, "", fmt)
    put(ws, row, first, text, fmt)


# ---------------------------------------------------------------------------- Gemeenten


def _write_municipalities(page: _Page, rows: Sequence[MunicipalityRow]) -> None:
    limit = page.course.settings.max_deelnemers_per_gemeente
    columns = [Column("Gemeente", 22), Column("Bevestigd", 11, "number"),
               Column("Max", 6, "number"), Column("Bestuurders", 12, "number"),
               Column("Overboekt", 11, "number"), Column("Wachtlijst", 11, "number"),
               Column("Status", 12), Column("Beleidsdomeinen", 34, "wrap"),
               Column("Waarschuwingen", 60, "wrap")]
    widths = [c.width for c in columns]
    ws = page.sheet(SHEET_MUNICIPALITIES, scale_to=widths)
    table = [(m.name, m.bevestigd, limit, m.bestuurders, m.overboekt, m.wachtlijst, m.status,
              ", ".join(m.domains), "\n".join(m.warnings)) for m in rows]
    lines = write_table(page, ws, columns, table, [_highlight(m) for m in rows])
    # Repeat the header only for a table longer than a page: else it would stand above the
    # chart on the chart's own page.
    if lines > page_lines(print_scale(widths)):
        ws.repeat_rows(0)
    counted = "tellen mee" if page.course.settings.bestuurders_tellen_mee else "tellen niet mee"
    put(ws, len(rows) + 2, 0, f"Bestuurders {counted} voor het maximum van {limit} per "
        "gemeente. Oranje: overboekt; geel: wachtlijst.", page.note)
    if rows:
        # The chart prints whole on a page of its own rather than cut across two.
        ws.set_h_pagebreaks([len(rows) + 4])
        _municipality_chart(page, ws, len(rows), len(rows) + 4, widths)


def _highlight(m: MunicipalityRow) -> str | None:
    if m.overboekt:
        return "overboekt"
    if m.status == MUNICIPALITY_WAITING:
        return "wachtlijst"
    return None


def _municipality_chart(page: _Page, ws: Worksheet, count: int, anchor_row: int,
                        widths: Sequence[float]) -> None:
    """Confirmed participants per municipality as columns, the limit as a line."""
    name = SHEET_MUNICIPALITIES
    chart = page.workbook.add_chart({"type": "column"})
    assert chart is not None
    chart.add_series({"name": "Bevestigd", "categories": [name, 1, 0, count, 0],
                      "values": [name, 1, 1, count, 1], "fill": {"color": "#4472C4"},
                      "data_labels": {"value": True, "font": {"name": "Arial", "size": 8}}})
    limit = page.workbook.add_chart({"type": "line"})
    assert limit is not None
    limit.add_series({"name": "Maximum per gemeente", "categories": [name, 1, 0, count, 0],
                      "values": [name, 1, 2, count, 2],
                      "line": {"color": "#C00000", "width": 2, "dash_type": "dash"},
                      "marker": {"type": "none"}})
    chart.combine(limit)
    chart.set_title({"name": "Bevestigde deelnemers per gemeente",
                     "name_font": {"name": "Arial", "size": 12}})
    chart.set_x_axis({"num_font": {"name": "Arial", "rotation": -45, "size": 8}})
    chart.set_y_axis({"min": 0, "major_unit": 1, "major_gridlines": {"visible": True},
                      "num_font": {"name": "Arial", "size": 8}})
    chart.set_legend({"position": "bottom", "font": {"name": "Arial", "size": 9}})
    # As wide as the table, and about two thirds of the printed page high.
    width = int(sum(w * 7 + 5 for w in widths)) - 10
    chart.set_size({"width": width, "height": int(page_lines(print_scale(widths)) * 17 * 0.65)})
    ws.insert_chart(anchor_row, 0, chart, {"x_offset": 4, "y_offset": 4})


# --------------------------------------------------------------------------- Deelnemers


def _write_registrations(page: _Page, allocation: Allocation,
                         records: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_REGISTRATIONS, header_rows=1)
    decisions = allocation.by_row()
    confirmed_on = _confirmation_days(records)
    columns = [Column("Rij", 5, "number"), Column("Aangemeld op", 13, "date"),
               Column("Voornaam", 12), Column("Achternaam", 16), Column("E-mail", 28),
               Column("Gemeente", 16), Column("Beleidsdomein", 20, "wrap"),
               Column("Rol", 10), Column("Status", 11), Column("Melding", 48, "wrap"),
               Column("Bevestiging verstuurd", 12, "date")]
    table, styles = [], []
    for reg in page.course.registrations:
        decision = decisions.get(reg.row)
        status = str(decision.status) if decision else reg.status
        sent = confirmed_on.get(reg.email_key) or reg.bevestiging_verstuurd
        table.append((reg.row, reg.aangemeld_op, reg.voornaam, reg.achternaam, reg.email,
                      reg.gemeente, reg.beleidsdomein, reg.rol, status,
                      decision.melding if decision else reg.melding, sent))
        styles.append(status)
    write_table(page, ws, columns, table, styles)


def _confirmation_days(records: Iterable[SentRecord]) -> dict[str, date]:
    """Recipient → the day their confirmation was delivered."""
    return {r.recipient: local_time(r.at).date() for r in records
            if r.kind == "bevestiging" and r.status == "sent"}


# ------------------------------------------------------------------------------- Vragen


def _write_questions(page: _Page, allocation: Allocation) -> None:
    ws = page.sheet(SHEET_QUESTIONS, header_rows=1)
    decisions = allocation.by_row()
    asked = sorted((r for r in page.course.registrations if r.opmerking.strip()),
                   key=lambda r: (sort_key(municipalities.display_name(r.gemeente)), r.row))
    columns = [Column("Gemeente", 18), Column("Naam", 22), Column("Beleidsdomein", 20, "wrap"),
               Column("Status", 11), Column("Vraag of opmerking", 90, "wrap"),
               Column("Rij", 5, "number")]
    table = [(municipalities.display_name(r.gemeente), r.naam, r.beleidsdomein,
              str(decisions[r.row].status) if r.row in decisions else r.status,
              r.opmerking.strip(), r.row) for r in asked]
    write_table(page, ws, columns, table)


# ---------------------------------------------------------------------------- Verzonden


def _write_sent(page: _Page, recent: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_SENT, header_rows=1)
    columns = [Column("Datum", 16, "datetime"), Column("Soort", 18), Column("Ontvanger", 30),
               Column("Naam", 22), Column("Resultaat", 22, "wrap"),
               Column("Toelichting", 60, "wrap")]
    table = [(r.at, KIND_LABELS.get(r.kind, r.kind), r.address, r.name, result_label(r),
              _explain(r)) for r in recent]
    styles = [SENT_HIGHLIGHTS.get(r.status) for r in recent]
    write_table(page, ws, columns, table, styles)


def result_label(record: SentRecord) -> str:
    """The Resultaat column: a mail written to an outbox folder is "in outbox", not sent."""
    if record.status == "sent" and in_outbox(record):
        return f"in outbox ({record.destination.removeprefix('outbox:')}), niet verzonden"
    return RESULT_LABELS.get(record.status, record.status)


def _explain(record: SentRecord) -> str:
    """What the mail was about, then what the server said."""
    about = describe_scope(record.scope)
    return " — ".join(p for p in (about, record.detail.strip()) if p)


def describe_scope(scope: str) -> str:
    """`m2-7d` → `bijeenkomst 2, 7 dagen vooraf`; `m2@3` → `bijeenkomst 2 (versie 3)`."""
    if match := re.fullmatch(r"m(\d+)-(\d+)d", scope):
        days = int(match[2])
        return f"bijeenkomst {match[1]}, {days} dag{'en' if days != 1 else ''} vooraf"
    if match := re.fullmatch(r"m(\d+)@(\d+)", scope):
        return f"bijeenkomst {match[1]} (versie {match[2]})"
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", scope):
        return f"week {int(match[2])} van {match[1]}"
    return "" if scope in ("", "-") else scope
