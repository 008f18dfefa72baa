"""The course as read from the organisers' workbook: plain frozen values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path

# The workbook's contract, as far as the pure steps name it in their findings and checks;
# workbook/schema.py holds the rest (columns, aliases) and takes these from here.
SHEET_SETTINGS = "Instellingen"
SHEET_MEETINGS = "Bijeenkomsten"
SHEET_REGISTRATIONS = "Deelnemers"
REQUIRED_REGISTRATION_FIELDS = ("Voornaam", "Achternaam", "E-mail", "Gemeente")


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing worth telling the organisers, pointing at a cell where it can.

    `message` is Dutch (organisers read it); `code` is a stable English slug for tests and
    scripts; `row` is the sheet row as Excel numbers it; `column` is the column's header
    name (as the organisers wrote it) or a column letter when there is no header.
    """

    level: Level
    code: str
    sheet: str | None
    row: int | None
    column: str | None
    message: str

    def location(self) -> str:
        """Where to look, e.g. `Deelnemers, rij 7, kolom E-mail`."""
        parts = [p for p in (self.sheet,) if p]
        if self.row is not None:
            parts.append(f"rij {self.row}")
        if self.column:
            parts.append(f"kolom {self.column}")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {
            "level": str(self.level),
            "code": self.code,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


class Status(StrEnum):
    ONGELDIG = "ongeldig"
    AFGEMELD = "afgemeld"
    WACHTLIJST = "wachtlijst"
    OVERBOEKT = "overboekt"
    BEVESTIGD = "bevestigd"


ROLE_PARTICIPANT = "deelnemer"
ROLE_ADMINISTRATOR = "bestuurder"


@dataclass(frozen=True, slots=True)
class Settings:
    leergang: str
    contactpersoon: str
    contactpersoon_email: str
    afzender_naam: str
    afzender_email: str
    organisatie: str = ""
    max_deelnemers_per_gemeente: int = 3
    max_gemeenten: int = 20
    herinneringen: tuple[int, ...] = (7, 1)
    overzicht_weekdag: int = 0  # Monday is 0, as date.weekday()
    bestuurders_tellen_mee: bool = False
    wachtlijstbericht: bool = True


@dataclass(frozen=True, slots=True)
class Meeting:
    nr: int
    titel: str
    datum: date | None
    begintijd: time | None
    eindtijd: time | None
    locatie: str = ""
    adres: str = ""
    online_link: str = ""
    voor_bestuurders: bool = False
    row: int = 0

    @property
    def online(self) -> bool:
        return self.locatie.strip().casefold() == "online"

    def starts_at(self) -> datetime | None:
        """Naive local (Europe/Amsterdam) start; midnight when only the date is known."""
        if self.datum is None:
            return None
        return datetime.combine(self.datum, self.begintijd or time(0, 0))

    def details(self) -> tuple[str, ...]:
        """What participants were told: a change in any of these means a `wijziging` mail."""
        return (
            self.datum.isoformat() if self.datum else "",
            self.begintijd.strftime("%H:%M") if self.begintijd else "",
            self.eindtijd.strftime("%H:%M") if self.eindtijd else "",
            self.locatie.strip(),
            self.adres.strip(),
            self.online_link.strip(),
        )


@dataclass(frozen=True, slots=True)
class Registration:
    row: int
    aangemeld_op: datetime | None
    voornaam: str
    achternaam: str
    email: str
    gemeente: str
    beleidsdomein: str = ""
    functie: str = ""
    rol: str = ROLE_PARTICIPANT
    afgemeld: bool = False
    opmerking: str = ""
    # The tool columns as they stand in the workbook now (only for display and diffing).
    status: str = ""
    melding: str = ""
    bevestiging_verstuurd: str = ""

    # The address as the ledger and the duplicate check compare it; derived once, because
    # allocation and planning ask for it many times per registration.
    email_key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "email_key", normalise_email(self.email))

    @property
    def naam(self) -> str:
        return f"{self.voornaam} {self.achternaam}".strip()

    @property
    def is_bestuurder(self) -> bool:
        return self.rol == ROLE_ADMINISTRATOR


def normalise_email(address: str) -> str:
    return address.strip().casefold()


@dataclass(frozen=True, slots=True)
class SheetLayout:
    """Where the `Deelnemers` table sits, for the write-back.

    `columns` maps a canonical column name (see workbook.schema) to its 1-based column
    index; tool columns that are missing are absent from it.
    """

    sheet_name: str
    header_row: int
    columns: dict[str, int]
    last_column: int
    last_row: int


@dataclass(frozen=True, slots=True)
class Course:
    settings: Settings
    meetings: tuple[Meeting, ...]
    registrations: tuple[Registration, ...]
    layout: SheetLayout
    findings: tuple[Finding, ...] = ()
    path: Path | None = None

    def meetings_for(self, registration: Registration) -> tuple[Meeting, ...]:
        """The meetings a registration attends: bestuurders only those `Voor` bestuurders."""
        if registration.is_bestuurder:
            return tuple(m for m in self.meetings if m.voor_bestuurders)
        return self.meetings


@dataclass(frozen=True, slots=True)
class Decision:
    """The allocation's verdict on one registration."""

    row: int
    status: Status
    messages: tuple[str, ...] = ()
    position: int | None = None  # wachtlijst: the municipality's place on the waiting list

    @property
    def melding(self) -> str:
        return "; ".join(self.messages)


@dataclass(frozen=True, slots=True)
class Allocation:
    decisions: tuple[Decision, ...]  # in sheet row order, one per registration
    findings: tuple[Finding, ...] = ()
    # Municipalities (display name) in admission order, and the waiting list in order.
    admitted: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()

    def by_row(self) -> dict[int, Decision]:
        return {d.row: d for d in self.decisions}

    def count(self, status: Status) -> int:
        return sum(1 for d in self.decisions if d.status == status)


class MailKind(StrEnum):
    BEVESTIGING = "bevestiging"
    WACHTLIJST = "wachtlijst"
    HERINNERING = "herinnering"
    WIJZIGING = "wijziging"
    AFMELDING = "afmelding"  # to a participant told of a place or the waiting list, now afgemeld
    OVERZICHT = "overzicht"
    STORING = "storing"  # to the contact person: a scheduled run stopped (not planned)


@dataclass(frozen=True, slots=True)
class MailIntent:
    """One mail that is due: what, to whom, about which meeting(s) or week.

    `key` is the idempotency key `(kind, recipient, scope)` the ledger records: the
    recipient is the normalised address; `scope` is `m<nr>-<D>d` for the D-day reminder
    of meeting nr, `m<nr>@<sequence>` for a change, `2021-W45` for a week, `-` for a
    confirmation or waiting-list notice.
    """

    kind: MailKind
    address: str  # as written in the workbook; `recipient` is its normalised form
    name: str
    scope: str
    row: int | None = None  # the Deelnemers row, None for the contact person
    meetings: tuple[int, ...] = ()  # meeting numbers the mail is about
    sequence: int = 0  # .ics SEQUENCE for the meetings in this mail
    reminder_days: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # bevestiging: the reminder scopes (`m<nr>-<D>d`) it stands in for, due on or before today
    covers: tuple[str, ...] = ()

    @property
    def recipient(self) -> str:
        return normalise_email(self.address)

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.kind), self.recipient, self.scope)


MeetingDetails = tuple[str, ...]  # as Meeting.details()


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What the send ledger knows, as plain values for the pure planning step."""

    sent: frozenset[tuple[str, str, str]] = frozenset()  # MailIntent.key of every sent mail
    confirmed: frozenset[str] = frozenset()  # recipients whose bevestiging was sent
    confirmed_on: dict[str, date] = field(default_factory=dict)  # recipient → day sent
    # (recipient, meeting nr) → (details, sequence) last sent to that recipient
    sent_details: dict[tuple[str, int], tuple[MeetingDetails, int]] = field(default_factory=dict)
    # meeting nr → (details, sequence) of the newest version any mail announced
    meeting_versions: dict[int, tuple[MeetingDetails, int]] = field(default_factory=dict)
    bounced: dict[str, str] = field(default_factory=dict)  # recipient → server's reply


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One row of the ledger, for the weekly summary's `Verzonden` sheet."""

    kind: str
    recipient: str
    scope: str
    address: str
    name: str
    status: str  # sending | sent | deferred | bounced (and returned… for bounce reports)
    at: datetime
    detail: str = ""
    about: str = ""  # what a refusal was about (mail/replies.About), or 'bounce'
    destination: str = ""  # `smtp:<host>` or `outbox:<folder>`; empty in older ledgers
