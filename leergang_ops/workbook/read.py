"""Read the organisers' workbook into a Course: tolerant of how people type, strict where it counts.

The workbook is read with python-calamine directly (no pandas, no openpyxl): a course with tens
of thousands of registrations must validate in about the time pandas needs just to read it.

Fatal problems (a file that is no workbook, a missing sheet or column, a setting of the wrong
type, a meeting that ends before it starts) are collected and raised together as one
`InputError`; the rest become `Course.findings`. Finding codes:

- errors: `file-not-found`, `not-xlsx`, `corrupt-file`, `empty-workbook`, `missing-sheet`,
  `missing-column`, `setting-missing`, `setting-invalid`, `meeting-bad-number`,
  `meeting-duplicate-number`, `meeting-bad-date`, `meeting-bad-time`,
  `meeting-end-before-start`, `meeting-bad-voor`;
- warnings: `duplicate-sheet`, `duplicate-column`, `setting-unknown`, `setting-duplicate`,
  `no-meetings`, `meeting-no-title`, `meeting-no-date`, `meeting-online-no-link`,
  `unreadable-date`, `unknown-role`.

Rows with nothing in the organisers' columns are skipped, and so is the totals row of an Excel
table on the sheet (contract §1: it is the organisers'; python-calamine does not know tables,
so their ref and `totalsRowCount` come from the table parts, see xlsx.tables.sheet_tables).
Row-level problems of a registration (a missing name, a bad address, a duplicate) are the
allocation's business, not the reader's.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import python_calamine

from leergang_ops.addresses import is_valid_email
from leergang_ops.errors import InputError
from leergang_ops.model import (
    ROLE_ADMINISTRATOR,
    ROLE_PARTICIPANT,
    Course,
    Finding,
    Level,
    Meeting,
    Registration,
    Settings,
    SheetLayout,
)
from leergang_ops.workbook import schema
from leergang_ops.xlsx.tables import TableBox, sheet_tables

HEADER_SCAN_ROWS = 20  # the header row is looked for this far down (titles, notes above it)

_MIDNIGHT = time(0, 0)  # a time object is truthy even at midnight: compare with this
_EXCEL_EPOCH = datetime(1899, 12, 30)  # serial 0 in Excel's 1900 date system
_SERIAL_RANGE = (10_000, 100_000)  # a bare number in a date column: 1927 … 2173, else nonsense
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # old .xls, or an .xlsx encrypted with a password

_MONTHS = {
    "januari": 1, "jan": 1, "january": 1,
    "februari": 2, "feb": 2, "february": 2,
    "maart": 3, "mrt": 3, "mar": 3, "march": 3,
    "april": 4, "apr": 4,
    "mei": 5, "may": 5,
    "juni": 6, "jun": 6, "june": 6,
    "juli": 7, "jul": 7, "july": 7,
    "augustus": 8, "aug": 8, "august": 8,
    "september": 9, "sep": 9, "sept": 9,
    "oktober": 10, "okt": 10, "oct": 10, "october": 10,
    "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}
# Day first, as the Dutch write dates; ISO; and `(donderdag) 11 november 2021`.
_DATE_PATTERNS = (
    re.compile(r"(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4}|\d{2})(?!\d)"),
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)"),
    re.compile(r"(?:[^\W\d_]+,?\s+)?(?P<d>\d{1,2})\s+(?P<mon>[^\W\d_]+)\.?,?\s+(?P<y>\d{4})"),
)
_TIME = r"(?P<h>\d{1,2})(?:[:.u](?P<mi>\d{2}))?(?::(?P<s>\d{2})(?:[.,]\d+)?)?\s*(?:u|uur|h)?"
_TIME_TEXT = re.compile(_TIME)
_TIME_AFTER_DATE = re.compile(r"(?:t|\s*,\s*|\s+(?:om\s+)?)" + _TIME)
_WHOLE_TEXT = re.compile(r"[+]?(\d+)(?:[.,]0*)?")
_LIST_SEPARATOR = re.compile(r"\s*(?:[,;/+&]|\ben\b|\s)\s*")
_ONLINE = re.compile(r"online\b")

_YES = frozenset({"ja", "j", "yes", "y", "waar", "true", "1", "x"})
_NO = frozenset({"nee", "n", "no", "onwaar", "false", "0"})
_NOT_CANCELLED = frozenset({"", "nee", "n", "no", "false", "onwaar", "0", "-"})
_ROLES = {
    "": ROLE_PARTICIPANT, "deelnemer": ROLE_PARTICIPANT, "deelnemers": ROLE_PARTICIPANT,
    "participant": ROLE_PARTICIPANT,
    "bestuurder": ROLE_ADMINISTRATOR, "bestuurders": ROLE_ADMINISTRATOR,
    "wethouder": ROLE_ADMINISTRATOR, "burgemeester": ROLE_ADMINISTRATOR,
}
_WEEKDAYS_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- opening the file --------------------------------------------------------------------


def _file_error(code: str, message: str) -> InputError:
    finding = Finding(Level.ERROR, code, None, None, None, message)
    return InputError(message, [finding])


def _check_container(path: Path) -> None:
    """Refuse what is no .xlsx before calamine sees it, with a message that says what it is."""
    magic = _first_bytes(path)
    if not magic:
        raise _file_error("corrupt-file", f"{path.name}: het bestand is leeg (0 bytes).")
    if magic == _OLE_MAGIC:
        raise _file_error("not-xlsx", f"{path.name}: dit is een oud .xls-bestand of een werkmap "
                          "met een wachtwoord; sla het op als Excel-werkmap (.xlsx) zonder "
                          "wachtwoord.")
    if not magic.startswith(b"PK"):
        raise _file_error("not-xlsx", f"{path.name}: dit is geen Excel-werkmap (.xlsx); sla het "
                          "bestand in Excel op als 'Excel-werkmap (.xlsx)'.")
    _check_zip(path)


def _first_bytes(path: Path) -> bytes:
    """The file's magic number; a missing or unreadable file is an InputError."""
    if path.is_dir():
        raise _file_error("file-not-found", f"{path} is een map, geen Excel-werkmap.")
    try:
        with path.open("rb") as fh:
            return fh.read(4)
    except FileNotFoundError as err:
        raise _file_error("file-not-found", f"Het bestand {path} bestaat niet.") from err
    except OSError as err:
        raise _file_error("corrupt-file", f"{path.name} kan niet gelezen worden: "
                          f"{err.strerror or err}.") from err


def _check_zip(path: Path) -> None:
    """A truncated download or a zip of something else is no workbook."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as err:
        raise _file_error("corrupt-file", f"{path.name}: het bestand is beschadigd of "
                          "onvolledig (afgebroken download?); open het in Excel en sla het "
                          "opnieuw op.") from err
    if "[Content_Types].xml" not in names or not any(n.startswith("xl/") for n in names):
        raise _file_error("not-xlsx",
                          f"{path.name}: dit zip-bestand is geen Excel-werkmap (.xlsx).")


def _open_workbook(path: Path) -> python_calamine.CalamineWorkbook:
    _check_container(path)
    try:
        # from_filelike sniffs the content, so a workbook with an unusual extension still opens.
        with path.open("rb") as fh:
            return python_calamine.CalamineWorkbook.from_filelike(fh)
    except (python_calamine.CalamineError, OSError, ValueError) as err:
        raise _file_error("corrupt-file", f"{path.name}: de werkmap kan niet gelezen worden "
                          f"({err}); open hem in Excel en sla hem opnieuw op.") from err


def _sheet_rows(book: python_calamine.CalamineWorkbook, name: str, path: Path) -> list[list[Any]]:
    """All rows of a sheet; rows[0] is Excel's row 1 and row[0] its column A."""
    try:
        return book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except (python_calamine.CalamineError, OSError, ValueError) as err:
        finding = Finding(Level.ERROR, "corrupt-file", name, None, None,
                          f"Het tabblad '{name}' kan niet gelezen worden ({err}).")
        raise InputError(f"{path.name}: {finding.message}", [finding]) from err


# --- sheets and tables ---------------------------------------------------------------------


def _find_sheets(book: python_calamine.CalamineWorkbook, findings: list[Finding]) -> dict[str, str]:
    """Canonical sheet name → the sheet's name in the file (first match wins)."""
    found: dict[str, str] = {}
    worksheets = [m.name for m in book.sheets_metadata
                  if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
    for name in worksheets:
        canonical = schema.canonical_sheet(name)
        if canonical is None:
            continue
        if canonical in found:
            findings.append(Finding(Level.WARNING, "duplicate-sheet", name, None, None,
                                    f"Er is al een tabblad '{found[canonical]}'; het tabblad "
                                    f"'{name}' wordt genegeerd."))
            continue
        found[canonical] = name
    return found


@dataclass(frozen=True)
class _Table:
    """A sheet's table: where its header row is and which column holds what."""

    sheet: str
    rows: list[list[Any]]
    header_row: int  # Excel's row number; 0 when no header was found
    index: dict[str, int]  # canonical column → 0-based position
    headers: dict[str, str]  # canonical column → header as the organisers wrote it
    last_column: int  # 1-based, last non-empty header cell
    # Totals rows of Excel tables on the sheet: never read (contract §1).
    totals: frozenset[int] = frozenset()
    # The first totals row of the Excel table whose header row this is; 0 when none.
    totals_row: int = 0

    def column(self, canonical: str) -> str:
        """The column's name for a finding: as written, else the canonical name."""
        return self.headers.get(canonical, canonical)

    def records(self) -> Iterator[tuple[int, list[Any]]]:
        """(Excel row number, row) for every row below the header but a totals row."""
        if not self.totals:
            for offset, row in enumerate(self.rows[self.header_row:]):
                yield self.header_row + offset + 1, row
            return
        for offset, row in enumerate(self.rows[self.header_row:]):
            number = self.header_row + offset + 1
            if number not in self.totals:
                yield number, row

    def last_row(self) -> int:
        """The last row with anything in it, at least the header row.

        In an Excel table with a totals row: the last such row above the totals row (rows
        added there go above it; what lies below the table does not count).
        """
        last = len(self.rows) if not self.totals_row else min(len(self.rows),
                                                              self.totals_row - 1)
        for number in range(last, self.header_row, -1):
            if number not in self.totals and any(_has_content(v)
                                                 for v in self.rows[number - 1]):
                return number
        return self.header_row


def _has_content(value: object) -> bool:
    return not (value is None or (isinstance(value, str) and not value.strip()))


def _header_matches(row: list[Any], allowed: tuple[str, ...]) -> int:
    return len({c for c in (schema.canonical_column(v, allowed) for v in row if v != "") if c})


def _find_header_row(rows: list[list[Any]], allowed: tuple[str, ...]) -> int:
    """Excel's number of the row naming the most known columns; 0 when none does."""
    best, best_score = 0, 0
    for number, row in enumerate(rows[:HEADER_SCAN_ROWS], start=1):
        score = _header_matches(row, allowed)
        if score > best_score:
            best, best_score = number, score
    return best


def _read_table(sheet: str, rows: list[list[Any]], allowed: tuple[str, ...],
                required: tuple[str, ...], findings: list[Finding],
                excel_tables: Sequence[TableBox] = ()) -> _Table:
    """Locate the header and the columns; a missing required column is an error finding."""
    header_row = _find_header_row(rows, allowed)
    header = rows[header_row - 1] if header_row else []
    index: dict[str, int] = {}
    headers: dict[str, str] = {}
    for position, value in enumerate(header):
        canonical = schema.canonical_column(value, allowed) if value != "" else None
        if canonical is None:
            continue
        written = _text(value)
        if canonical in index:
            findings.append(_duplicate_column(sheet, header_row, written, headers[canonical]))
            continue
        index[canonical], headers[canonical] = position, written
    last_column = max((i + 1 for i, v in enumerate(header) if _has_content(v)), default=0)
    totals = frozenset(row for box in excel_tables for row in box.totals)
    table = _Table(sheet, rows, header_row, index, headers, last_column, totals,
                   _own_totals_row(excel_tables, header_row))
    findings.extend(_missing_columns(table, required))
    return table


def _own_totals_row(excel_tables: Sequence[TableBox], header_row: int) -> int:
    """The first totals row of the Excel table whose header (or data) holds `header_row`."""
    return next((box.totals[0] for box in excel_tables if box.totals
                 and box.box[0] <= header_row < box.totals[0]), 0)


def totals_row(path: Path, layout: SheetLayout) -> int:
    """The first totals row of the Excel table holding the registrations; 0 when none.

    Rows added below the registrations go above it (contract §1), see importer.
    """
    boxes = sheet_tables(Path(path), [layout.sheet_name]).get(layout.sheet_name, [])
    return _own_totals_row(boxes, layout.header_row)


def _duplicate_column(sheet: str, row: int, written: str, first: str) -> Finding:
    return Finding(Level.WARNING, "duplicate-column", sheet, row, written,
                   f"De kolom '{written}' betekent hetzelfde als de kolom '{first}' ervoor; "
                   "alleen die eerste wordt gelezen.")


def _missing_columns(table: _Table, required: tuple[str, ...]) -> Iterator[Finding]:
    for name in required:
        if name in table.index:
            continue
        if table.header_row:
            where = f"in de kopregel (rij {table.header_row}) van tabblad '{table.sheet}'"
        else:
            where = (f"in tabblad '{table.sheet}': geen kopregel gevonden in de eerste "
                     f"{HEADER_SCAN_ROWS} rijen")
        yield Finding(Level.ERROR, "missing-column", table.sheet, table.header_row or None,
                      name, f"De kolom '{name}' ontbreekt {where}.")


def _is_complete(table: _Table, required: tuple[str, ...]) -> bool:
    """Whether every required column is there (else its rows are not read at all)."""
    return all(name in table.index for name in required)


def _getter(table: _Table, names: tuple[str, ...]) -> Callable[[list[Any]], tuple[Any, ...]]:
    """Fetch the named cells of a row at once; an absent column reads as an empty cell."""
    width = len(table.rows[0]) if table.rows else 0
    # Absent columns point one past the row's end, where `_padded` puts an empty cell.
    positions = [table.index.get(name, width) for name in names]
    return itemgetter(*positions)


def _padded(table: _Table) -> Iterator[tuple[int, list[Any]]]:
    """The table's records, each with one empty cell appended (see `_getter`)."""
    for number, row in table.records():
        row.append("")
        yield number, row


# --- single values -------------------------------------------------------------------------


def _text(value: object) -> str:
    """A cell as trimmed text; numbers without a needless `.0`, dates the Dutch way."""
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return schema.YES if value else schema.NO
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    if isinstance(value, datetime):
        return value.strftime("%d-%m-%Y %H:%M" if value.time() != _MIDNIGHT else "%d-%m-%Y")
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    return str(value).strip()


def _whole_number(value: object) -> int | None:
    """3, 3.0, "3", " 3,0 " → 3; anything else → None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        match = _WHOLE_TEXT.fullmatch(value.strip())
        return int(match.group(1)) if match else None
    return None


def datetime_from_serial(value: float) -> datetime | None:
    """An Excel date serial number (a date cell formatted as a plain number); None outside
    1927–2173, where a bare number is more likely a count than a date."""
    if not _SERIAL_RANGE[0] <= value <= _SERIAL_RANGE[1]:
        return None
    return _round_second(_EXCEL_EPOCH + timedelta(days=value))


def _round_second(moment: datetime) -> datetime:
    """Drop the float noise of Excel serials (13:59:59.9997 is 14:00:00)."""
    if not moment.microsecond:
        return moment
    return moment.replace(microsecond=0) + timedelta(seconds=moment.microsecond >= 500_000)


def _as_datetime(value: object) -> datetime | None:
    """A non-empty cell as a moment: a date means midnight; None when unreadable."""
    if value.__class__ is datetime:
        return _round_second(value)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime_from_serial(float(value))
    if isinstance(value, str):
        return _parse_datetime_text(value.strip().casefold())
    return None


def _parse_datetime_text(text: str) -> datetime | None:
    """`11-11-2021`, `11/11/21 14:00`, `2021-11-11T14:00`, `donderdag 11 november 2021 14u`."""
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            day = _date_from_parts(match.groupdict())
            rest = text[match.end():]  # the text is stripped, so this is empty or a time
            if day is None or not rest:
                return None if day is None else datetime.combine(day, time(0, 0))
            moment = _TIME_AFTER_DATE.fullmatch(rest)
            clock = _time_from_parts(moment.groupdict()) if moment else None
            return datetime.combine(day, clock) if clock is not None else None
    return None


def _date_from_parts(parts: dict[str, str | None]) -> date | None:
    month = _MONTHS.get(parts["mon"] or "") if "mon" in parts else int(parts["m"] or 0)
    year = int(parts["y"] or 0)
    year += 2000 if year < 100 else 0  # `11-11-21`: this century
    try:
        return date(year, month or 0, int(parts["d"] or 0))
    except ValueError:  # 31-02-2021 and the like; only reached for text dates
        return None


def _time_from_parts(parts: dict[str, str | None]) -> time | None:
    hour, minute, second = (int(parts[k] or 0) for k in ("h", "mi", "s"))
    if hour > 23 or minute > 59 or second > 59:
        return None
    return time(hour, minute, second)


def _to_minute(clock: time) -> time:
    """Round to the minute: 0.5833 of a day is meant as 14:00, not 13:59:55."""
    minutes = round((clock.hour * 3600 + clock.minute * 60 + clock.second
                     + clock.microsecond / 1e6) / 60)
    minutes = min(minutes, 24 * 60 - 1)
    return time(minutes // 60, minutes % 60)


def _as_time(value: object) -> time | None:
    """A non-empty cell as a clock time: a time, a fraction of a day, `14:00`, `14.00`, `14u`."""
    if isinstance(value, datetime):  # times past 24h, or a full date and time
        return _to_minute(value.time())
    if isinstance(value, time):
        return _to_minute(value)
    if isinstance(value, timedelta):
        return _as_time(value.total_seconds() / 86_400)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 <= value < 1:
            return _to_minute((datetime.min + timedelta(days=float(value))).time())
        hour = _whole_number(value)  # a bare `14` typed into a General cell
        return time(hour) if hour is not None and 0 <= hour <= 23 else None
    if isinstance(value, str):
        match = _TIME_TEXT.fullmatch(value.strip().casefold())
        return _time_from_parts(match.groupdict()) if match else None
    return None


def _yes_no(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    key = _text(value).casefold()
    return True if key in _YES else False if key in _NO else None


def _reminders(value: object) -> tuple[int, ...] | None:
    """`7, 1`, `7;1`, `7 en 1`, 7 → (7, 1); `geen` → (); days before, most first."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        days = _whole_number(value)
        return (days,) if days is not None and days >= 0 else None
    text = _text(value).casefold()
    if text in ("geen", "nee", "-"):
        return ()
    tokens = [t for t in _LIST_SEPARATOR.split(text) if t and t not in ("dag", "dagen")]
    numbers = [_whole_number(t) for t in tokens]
    if not numbers or any(n is None or n > 365 for n in numbers):
        return None
    return tuple(sorted({n for n in numbers if n is not None}, reverse=True))


def _weekday(value: object) -> int | None:
    """`maandag`, `Ma`, `monday` → 0 … `zondag` → 6."""
    text = _text(value).casefold().rstrip(".")
    if len(text) < 2:
        return None
    for number, (dutch, english) in enumerate(zip(schema.WEEKDAYS, _WEEKDAYS_EN, strict=True)):
        if dutch.startswith(text) or text == english:
            return number
    return None


def _email(value: object) -> str | None:
    text = _text(value)
    return text if is_valid_email(text) else None


def _positive(value: object) -> int | None:
    number = _whole_number(value)
    return number if number is not None and number >= 1 else None


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SettingType:
    parse: Callable[[object], object | None]
    expected: str  # Dutch: what a valid value looks like


_TEXT_SETTING = _SettingType(_text, "tekst")
_SETTING_TYPES = {
    "Max deelnemers per gemeente": _SettingType(_positive, "een heel getal van 1 of meer"),
    "Max gemeenten": _SettingType(_positive, "een heel getal van 1 of meer"),
    "Contactpersoon e-mail": _SettingType(_email, "een geldig e-mailadres"),
    "Afzender e-mail": _SettingType(_email, "een geldig e-mailadres"),
    "Herinneringen (dagen vooraf)": _SettingType(
        _reminders, "hele getallen gescheiden door komma's, bijvoorbeeld '7, 1' (typ een spatie "
        "na de komma, anders maakt Excel er een kommagetal van) of 'geen'"),
    "Wekelijks overzicht op": _SettingType(_weekday, "een dag van de week, bijvoorbeeld 'maandag'"),
    "Bestuurders tellen mee": _SettingType(_yes_no, "'ja' of 'nee'"),
    "Wachtlijstbericht": _SettingType(_yes_no, "'ja' of 'nee'"),
}


def _read_settings(table: _Table, findings: list[Finding]) -> Settings | None:
    """The settings, or None when a required one is missing or one has the wrong type."""
    if not _is_complete(table, schema.SETTINGS_COLUMNS):
        return None
    cells = _setting_cells(table, findings)
    values: dict[str, object] = {}
    before = len(findings)
    for key, attribute in schema.SETTING_KEYS.items():
        row, raw = cells.get(key, (None, ""))
        if not _has_content(raw):
            if key in schema.REQUIRED_SETTINGS:
                findings.append(_missing_setting(table, key, row))
            continue
        kind = _SETTING_TYPES.get(key, _TEXT_SETTING)
        value = kind.parse(raw)
        if value is None:
            findings.append(Finding(
                Level.ERROR, "setting-invalid", table.sheet, row, table.column("Waarde"),
                f"{key}: '{_text(raw)}' is geen geldige waarde; verwacht {kind.expected}."))
        values[attribute] = value
    if len(findings) > before:
        return None
    return Settings(**values)  # type: ignore[arg-type]


def _setting_cells(table: _Table, findings: list[Finding]) -> dict[str, tuple[int, Any]]:
    """Canonical key → (row, raw value); unknown and repeated keys are warned about."""
    key_column, value_column = table.index["Instelling"], table.index["Waarde"]
    cells: dict[str, tuple[int, Any]] = {}
    for number, row in table.records():
        written = _text(row[key_column]).rstrip(":").strip()
        if not written:
            continue
        key = schema.canonical_setting(written)
        if key is None:
            findings.append(_setting_warning(table, number, "setting-unknown",
                                             f"Onbekende instelling '{written}' wordt genegeerd."))
        elif key in cells:
            findings.append(_setting_warning(
                table, number, "setting-duplicate", f"De instelling '{key}' staat al in rij "
                f"{cells[key][0]}; deze rij wordt genegeerd."))
        else:
            cells[key] = (number, row[value_column])
    return cells


def _setting_warning(table: _Table, row: int, code: str, message: str) -> Finding:
    return Finding(Level.WARNING, code, table.sheet, row, table.column("Instelling"), message)


def _missing_setting(table: _Table, key: str, row: int | None) -> Finding:
    """A required setting without a row (point at the key column) or without a value."""
    if row is None:
        return Finding(Level.ERROR, "setting-missing", table.sheet, None,
                       table.column("Instelling"), f"De instelling '{key}' ontbreekt; voeg een "
                       f"rij toe met '{key}' en vul de waarde in.")
    return Finding(Level.ERROR, "setting-missing", table.sheet, row, table.column("Waarde"),
                   f"Vul een waarde in bij de instelling '{key}'.")


# --- meetings ------------------------------------------------------------------------------


_MEETING_FIELDS = schema.MEETING_COLUMNS


def _read_meetings(table: _Table, findings: list[Finding]) -> tuple[Meeting, ...]:
    """The meetings in order of their number; problems go into findings."""
    if not _is_complete(table, schema.REQUIRED_MEETING_COLUMNS):
        return ()
    get = _getter(table, _MEETING_FIELDS)
    meetings: dict[int, Meeting] = {}
    rows_seen = 0
    for number, row in _padded(table):
        cells = dict(zip(_MEETING_FIELDS, get(row), strict=True))
        if not any(_has_content(v) for v in cells.values()):
            continue
        rows_seen += 1
        meeting = _meeting(table, number, cells, findings)
        if meeting is not None and meeting.nr in meetings:
            findings.append(_meeting_error(
                table, number, "Nr", "meeting-duplicate-number", f"Bijeenkomst {meeting.nr} "
                f"staat al in rij {meetings[meeting.nr].row}; elk nummer mag één keer voorkomen."))
        elif meeting is not None:
            meetings[meeting.nr] = meeting
    if not rows_seen:
        findings.append(Finding(Level.WARNING, "no-meetings", table.sheet, None, None,
                                "Er staan nog geen bijeenkomsten in dit tabblad."))
    return tuple(meetings[nr] for nr in sorted(meetings))


def _meeting_error(table: _Table, row: int, column: str, code: str, message: str) -> Finding:
    return Finding(Level.ERROR, code, table.sheet, row, table.column(column), message)


def _meeting(table: _Table, row: int, cells: dict[str, Any],
             findings: list[Finding]) -> Meeting | None:
    """One meeting row, or None when it has an error (reported in findings)."""
    before = len(findings)
    nr = _positive(cells["Nr"])
    if nr is None:
        findings.append(_bad_number(table, row, cells["Nr"]))
    day, start_in_date = _meeting_date(table, row, cells["Datum"], findings)
    start = _meeting_time(table, row, "Begintijd", cells["Begintijd"], findings)
    start = start if start is not None else start_in_date
    end = _meeting_time(table, row, "Eindtijd", cells["Eindtijd"], findings)
    if start is not None and end is not None and end <= start:
        findings.append(_meeting_error(
            table, row, "Eindtijd", "meeting-end-before-start", f"De eindtijd "
            f"{end:%H:%M} ligt niet na de begintijd {start:%H:%M}."))
    voor = _voor(cells["Voor"])
    if voor is None:
        findings.append(_bad_voor(table, row, cells["Voor"]))
    if nr is None or voor is None or any(f.level is Level.ERROR for f in findings[before:]):
        return None
    meeting = _build_meeting(nr, row, cells, day, start, end, voor)
    findings.extend(_meeting_warnings(table, meeting))
    return meeting


def _bad_number(table: _Table, row: int, value: object) -> Finding:
    shown = f"'{_text(value)}' is geen geldig nummer" if _has_content(value) else "Nr ontbreekt"
    return _meeting_error(table, row, "Nr", "meeting-bad-number", f"{shown}; geef elke "
                          "bijeenkomst een nummer (een heel getal van 1 of meer).")


def _bad_voor(table: _Table, row: int, value: object) -> Finding:
    return _meeting_error(table, row, "Voor", "meeting-bad-voor", f"'{_text(value)}' is geen "
                          f"geldige doelgroep; kies '{schema.VOOR_PARTICIPANTS}' of "
                          f"'{schema.VOOR_WITH_ADMINISTRATORS}'.")


def _meeting_date(table: _Table, row: int, value: object,
                  findings: list[Finding]) -> tuple[date | None, time | None]:
    """The date, and the time when someone typed date and start time into `Datum`."""
    if not _has_content(value):
        return None, None
    moment = _as_datetime(value)
    if moment is None:
        findings.append(_meeting_error(
            table, row, "Datum", "meeting-bad-date", f"'{_text(value)}' is geen datum; schrijf "
            "de datum als dd-mm-jjjj, bijvoorbeeld 11-11-2021, of laat het vak leeg."))
        return None, None
    clock = moment.time()
    return moment.date(), (_to_minute(clock) if clock != _MIDNIGHT else None)


def _meeting_time(table: _Table, row: int, column: str, value: object,
                  findings: list[Finding]) -> time | None:
    if not _has_content(value):
        return None
    clock = _as_time(value)
    if clock is None:
        findings.append(_meeting_error(
            table, row, column, "meeting-bad-time", f"'{_text(value)}' is geen tijd; schrijf "
            "de tijd als uu:mm, bijvoorbeeld 14:00."))
    return clock


def _voor(value: object) -> bool | None:
    """Whether the meeting is also for bestuurders; None when the text is not understood."""
    key = schema.header_key(_text(value))
    if "bestuurder" in key:
        return True
    if not key or "deelnemer" in key:
        return False
    return None


def _build_meeting(nr: int, row: int, cells: dict[str, Any], day: date | None,
                   start: time | None, end: time | None, voor: bool) -> Meeting:
    locatie = _text(cells["Locatie"])
    if _ONLINE.match(locatie.casefold()):
        locatie = "online"  # `Online (Teams)` is as online as `online`
    return Meeting(
        nr=nr, titel=_text(cells["Titel"]), datum=day, begintijd=start, eindtijd=end,
        locatie=locatie, adres=_text(cells["Adres"]), online_link=_text(cells["Online link"]),
        voor_bestuurders=voor, row=row,
    )


def _meeting_warnings(table: _Table, meeting: Meeting) -> Iterator[Finding]:
    def warn(column: str, code: str, message: str) -> Finding:
        return Finding(Level.WARNING, code, table.sheet, meeting.row, table.column(column),
                       message)

    if not meeting.titel:
        yield warn("Titel", "meeting-no-title", f"Bijeenkomst {meeting.nr} heeft geen titel.")
    if meeting.datum is None:
        yield warn("Datum", "meeting-no-date", f"Bijeenkomst {meeting.nr} heeft nog geen datum; "
                   "er gaan nog geen herinneringen voor uit.")
    if meeting.online and not meeting.online_link:
        yield warn("Online link", "meeting-online-no-link", f"Bijeenkomst {meeting.nr} is "
                   "online maar heeft nog geen link; vul die in vóór de eerste herinnering.")


# --- registrations -------------------------------------------------------------------------


# `Aangemeld op` first (kept as a value: turning 50,000 timestamps into text costs more than
# reading the file), then the other organiser columns and the tool columns as text.
_REGISTRATION_FIELDS = schema.REGISTRATION_COLUMNS
assert _REGISTRATION_FIELDS[0] == "Aangemeld op"
_TEXT_ORGANISER_COUNT = len(schema.ORGANISER_COLUMNS) - 1
_AFGEMELD = _REGISTRATION_FIELDS.index("Afgemeld")


def _read_registrations(table: _Table, findings: list[Finding]) -> tuple[Registration, ...]:
    """Every row with something in the organisers' columns, in sheet order."""
    if not _is_complete(table, schema.REQUIRED_REGISTRATION_COLUMNS):
        return ()
    get = _getter(table, _REGISTRATION_FIELDS)
    registrations = []
    for number, row in _padded(table):
        values = get(row)
        # Inline fast path of `_text`: nearly every cell here is a string.
        texts = [v.strip() if v.__class__ is str else _text(v) for v in values[1:]]
        if not any(texts[:_TEXT_ORGANISER_COUNT]) and not _has_content(values[0]):
            continue  # blank, or only stale tool columns: no registration
        registrations.append(_registration(table, number, values, texts, findings))
    return tuple(registrations)


def _registration(table: _Table, row: int, values: tuple[Any, ...], texts: list[str],
                  findings: list[Finding]) -> Registration:
    (voornaam, achternaam, email, gemeente, domein, functie, rol_text, afgemeld_text,
     opmerking, status, melding, verstuurd) = texts
    aangemeld_op = _registered_at(table, row, values[0], findings)
    rol = _ROLES.get(rol_text.casefold()) or _ROLES.get(schema.header_key(rol_text))
    if rol is None:
        findings.append(_unknown_role(table, row, rol_text))
        rol = ROLE_PARTICIPANT
    afgemeld = _cancelled(values[_AFGEMELD], afgemeld_text)
    return Registration(row, aangemeld_op, voornaam, achternaam, email, gemeente, domein,
                        functie, rol, afgemeld, opmerking, status, melding, verstuurd)


def _registered_at(table: _Table, row: int, value: object,
                   findings: list[Finding]) -> datetime | None:
    """`Aangemeld op`: None when empty; None and a warning when unreadable."""
    if not _has_content(value):
        return None
    moment = _as_datetime(value)
    if moment is None:
        findings.append(_unreadable_date(table, row, _text(value)))
    return moment


def _cancelled(value: object, text: str) -> bool:
    """Empty or `nee` is not cancelled; `ja`, `x` or a date is."""
    if isinstance(value, bool):
        return value
    return text.casefold() not in _NOT_CANCELLED


def _unreadable_date(table: _Table, row: int, text: str) -> Finding:
    return Finding(Level.WARNING, "unreadable-date", table.sheet, row,
                   table.column("Aangemeld op"), f"'{text}' is geen leesbare datum; deze "
                   "aanmelding telt als laatst aangemeld. Schrijf de datum als dd-mm-jjjj uu:mm.")


def _unknown_role(table: _Table, row: int, text: str) -> Finding:
    return Finding(Level.WARNING, "unknown-role", table.sheet, row, table.column("Rol"),
                   f"Onbekende rol '{text}'; behandeld als '{ROLE_PARTICIPANT}'. Kies "
                   f"'{ROLE_PARTICIPANT}' of '{ROLE_ADMINISTRATOR}'.")


def _layout(table: _Table) -> SheetLayout:
    columns = {name: position + 1 for name, position in table.index.items()}
    return SheetLayout(table.sheet, table.header_row, columns, table.last_column,
                       table.last_row())


# --- the whole workbook --------------------------------------------------------------------


_TABLES = {
    schema.SHEET_SETTINGS: (schema.SETTINGS_COLUMNS, schema.SETTINGS_COLUMNS),
    schema.SHEET_MEETINGS: (schema.MEETING_COLUMNS, schema.REQUIRED_MEETING_COLUMNS),
    schema.SHEET_REGISTRATIONS: (schema.REGISTRATION_COLUMNS,
                                 schema.REQUIRED_REGISTRATION_COLUMNS),
}


def _read_tables(book: python_calamine.CalamineWorkbook, path: Path,
                 findings: list[Finding]) -> dict[str, _Table]:
    """The three tables that exist; a missing sheet is an error finding."""
    sheets = _find_sheets(book, findings)
    # Excel tables (for their totals rows): only the small table parts are read.
    excel_tables = sheet_tables(path, sheets.values())
    tables: dict[str, _Table] = {}
    for canonical, (allowed, required) in _TABLES.items():
        if canonical not in sheets:
            continue
        rows = _sheet_rows(book, sheets[canonical], path)
        tables[canonical] = _read_table(sheets[canonical], rows, allowed, required, findings,
                                        excel_tables.get(sheets[canonical], []))
    missing = [name for name in _TABLES if name not in sheets]
    if missing and not sheets and _is_empty(book, path):
        findings.append(Finding(Level.ERROR, "empty-workbook", None, None, None,
                                "De werkmap is leeg; begin met 'leergang-ops init' of vul de "
                                "tabbladen Instellingen, Bijeenkomsten en Deelnemers."))
        return tables
    findings.extend(_missing_sheet(name, book) for name in missing)
    return tables


def _is_empty(book: python_calamine.CalamineWorkbook, path: Path) -> bool:
    names = [m.name for m in book.sheets_metadata
             if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
    return not any(_has_content(v) for name in names for row in _sheet_rows(book, name, path)
                   for v in row)


def _missing_sheet(name: str, book: python_calamine.CalamineWorkbook) -> Finding:
    present = ", ".join(f"'{n}'" for n in book.sheet_names) or "geen"
    return Finding(Level.ERROR, "missing-sheet", name, None, None,
                   f"Het tabblad '{name}' ontbreekt (gevonden tabbladen: {present}).")


def _in_sheet_order(findings: list[Finding]) -> tuple[Finding, ...]:
    """Settings first, then meetings, then registrations; by row within a sheet."""
    def key(finding: Finding) -> tuple[int, int]:
        canonical = schema.canonical_sheet(finding.sheet) if finding.sheet else None
        order = schema.SHEETS.index(canonical) if canonical else -1
        return order, finding.row or 0

    return tuple(sorted(findings, key=key))


def _raise_errors(path: Path, findings: tuple[Finding, ...]) -> None:
    errors = [f for f in findings if f.level is Level.ERROR]
    if not errors:
        return
    if len(errors) > 1:  # the count in the line, each error below it (cli._report_error)
        raise InputError(f"{path.name}: {len(errors)} fouten; er is niets geschreven of "
                         "verstuurd.", errors)
    first = errors[0]
    where = f"{first.location()}: " if first.location() else ""
    raise InputError(f"{path.name}: {where}{first.message}", errors)


def load_course(path: Path) -> Course:
    """Read the organisers' workbook; raise InputError (with findings) when it is unusable."""
    path = Path(path)
    book = _open_workbook(path)
    findings: list[Finding] = []
    tables = _read_tables(book, path, findings)
    settings_table = tables.get(schema.SHEET_SETTINGS)
    settings = _read_settings(settings_table, findings) if settings_table else None
    meetings_table = tables.get(schema.SHEET_MEETINGS)
    meetings = _read_meetings(meetings_table, findings) if meetings_table else ()
    people = tables.get(schema.SHEET_REGISTRATIONS)
    registrations = _read_registrations(people, findings) if people else ()
    ordered = _in_sheet_order(findings)
    _raise_errors(path, ordered)
    # Without errors every table was read and the settings are complete.
    assert settings is not None and people is not None
    return Course(settings, meetings, registrations, _layout(people), ordered, path)


def course_name(path: Path) -> str | None:
    """The `Leergang` setting alone, read quickly; None when the workbook cannot tell.

    The send ledger is found by it (ledger_location.ledger_path), so this must not fail on a
    workbook that `load_course` would refuse for other reasons.
    """
    try:
        book = _open_workbook(path)
        sheet = next((m.name for m in book.sheets_metadata
                      if schema.canonical_sheet(m.name) == schema.SHEET_SETTINGS), None)
        if sheet is None:
            return None
        rows = book.get_sheet_by_name(sheet).to_python()
    except (InputError, python_calamine.CalamineError, OSError, ValueError):
        return None
    for row in rows:
        if len(row) >= 2 and schema.canonical_setting(row[0]) == "Leergang":
            name = str(row[1]).strip()
            return name or None
    return None
