"""`import PATH EXPORT`: add registrations from a form export to `Deelnemers` (contract §4).

Reads what the form tools hand organisers — Microsoft Forms (.xlsx), Google Forms (.csv, also
after a round trip through Excel: `;` and Windows-1252) and plain lists with the workbook's own
column names — maps the export's columns to the organiser columns by header, and appends the
registrations whose e-mail address is not in the workbook yet below the table, through the
lossless write-back. An Excel table with a totals row keeps it last: the new rows go above it,
moving it down as Excel does when rows are inserted into a table (contract §1). Nothing is
merged: a re-submission with different answers is reported for the organisers to decide.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import python_calamine

from leergang_ops.errors import InputError
from leergang_ops.model import (
    Course,
    Finding,
    Level,
    Registration,
    SheetLayout,
    normalise_email,
)
from leergang_ops.workbook.read import datetime_from_serial, load_course, totals_row
from leergang_ops.workbook.schema import (
    ORGANISER_COLUMNS,
    SHEET_REGISTRATIONS,
    TOOL_COLUMNS,
    canonical_column,
    header_key,
)
from leergang_ops.workbook.write import CellStyle, CellWrite, write_cells
from leergang_ops.xlsx.tables import sheet_tables

ZONE = ZoneInfo("Europe/Amsterdam")
FULL_NAME = "Naam"  # mapping target: a full name, split into Voornaam and Achternaam
INFIX = "Tussenvoegsel"  # mapping target: put in front of Achternaam
IGNORE = "-"  # mapping target: leave the column out, without reporting it
DATETIME_FORMAT = "dd-mm-yyyy hh:mm"
DATE_FORMAT = "dd-mm-yyyy"
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
CSV_SUFFIXES = frozenset({".csv", ".txt"})
HEADER_SCAN_ROWS = 20  # a title or a note above the header row is tolerated this far

# Ranks of the columns that can fill one field; per row the best-ranked non-empty one wins.
_MAPPED, _EXACT, _KEYWORD, _ACCOUNT = range(4)

# Form bookkeeping that is not a registration field; left out without being reported.
_METADATA = frozenset({
    "id", "begintijd", "start time", "tijdstip van laatste wijziging", "last modified time",
    "punten", "points", "totaal aantal punten", "total points", "quiz feedback", "feedback",
})
_COMPLETION = frozenset({"tijdstip van voltooien", "completion time"})
# Microsoft Forms writes the responder's account into `E-mail` and `Naam` (or `anonymous`).
_ACCOUNT_HEADERS = {"e-mail": "E-mail", "email": "E-mail", "naam": FULL_NAME, "name": FULL_NAME}
_ACCOUNT_SPAN = 6  # ID, start, completion, e-mail, name, last modified
_ANONYMOUS = frozenset({"anonymous", "anoniem"})

_EXACT_EXTRA: dict[str, str] = {
    "tijdstip van voltooien": "Aangemeld op", "completion time": "Aangemeld op",
    "naam": FULL_NAME, "name": FULL_NAME, "volledige naam": FULL_NAME,
    "full name": FULL_NAME, "naam deelnemer": FULL_NAME, "your name": FULL_NAME,
    "tussenvoegsel": INFIX, "tussenvoegsels": INFIX, "infix": INFIX,
}
# Form-question phrasings as whole words (`\w*` where Dutch compounds continue them); the
# first rule that matches wins, so "Wat is uw functie binnen de gemeente?" is Functie and
# "Naam van uw gemeente" Gemeente.
_KEYWORD_RULES: tuple[tuple[str, str], ...] = (
    ("Aangemeld op", r"tijdstip van voltooien|completion time|tijdstempel|timestamp"
                     r"|ingediend op|submitted( at)?"),
    (FULL_NAME, r"voor-?\s*(?:naam\s*)?(?:en|\+|&|/)\s*achternaam|volledige naam|full name"
                r"|first and last name"),
    ("E-mail", r"e-?mail\w*|mailadres"),
    ("Voornaam", r"voorna(?:am|men)|roepnaam|first name|given name|firstname"),
    ("Achternaam", r"achternaam|last name|surname|family name|familienaam|lastname"),
    (INFIX, r"tussenvoegsel\w*"),
    ("Rol", r"bestuurder\w*|deelnemer of"),
    ("Functie", r"functie\w*|job title|function|position"),
    ("Beleidsdomein", r"beleid\w*|domein\w*|policy"),
    ("Opmerking", r"opmerking\w*|vra(?:ag|gen)|toelichting|comments?|remarks?|questions?"),
    ("Gemeente", r"gemeente\w*|municipality|municipal"),
    (FULL_NAME, r"naam|name"),
)
_KEYWORDS = tuple((target, re.compile(rf"(?<!\w)(?:{pattern})(?!\w)")) for target, pattern in
                  _KEYWORD_RULES)
_QUESTION_DECORATION = re.compile(r"^\d+[.)]\s*|\s*\((?:verplicht|required)\)|[\s?:*.]+$")

# Dutch surname prefixes: the surname starts at the first of these after the first name.
_INFIXES = frozenset({
    "van", "de", "der", "den", "het", "'t", "ter", "ten", "te", "in", "op", "aan", "bij",
    "onder", "over", "uit", "voor", "vd", "v.d.", "v/d", "d'", "la", "le", "les", "du", "da",
    "das", "dos", "di", "del", "della", "von", "zu", "zum", "zur", "el", "al", "ibn",
})
_SINGLE_LINE = frozenset(ORGANISER_COLUMNS) - {"Opmerking"}
# Fields compared when an address comes back: Registration attribute per column.
_COMPARED = {
    "Voornaam": "voornaam", "Achternaam": "achternaam", "Gemeente": "gemeente",
    "Beleidsdomein": "beleidsdomein", "Functie": "functie", "Rol": "rol",
    "Opmerking": "opmerking",
}
_ADMINISTRATOR_WORDS = ("bestuurder", "wethouder", "burgemeester", "administrator")
_PARTICIPANT_WORDS = ("deelnemer", "participant")

# Text timestamps: Dutch (Excel-saved CSV), Google's download, ISO, US with AM/PM.
_TIMESTAMP_FORMATS = (
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y", "%d-%m-%y %H:%M:%S", "%d-%m-%y %H:%M",
    "%Y/%m/%d %I:%M:%S %p", "%Y/%m/%d %I:%M %p", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M",
    "%Y/%m/%d", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
)
_ZONE_SUFFIX = re.compile(r"\s*(?:(?:GMT|UTC)\s*(?:(?P<sign>[+-])(?P<h>\d{1,2})"
                          r"(?::?(?P<m>\d{2}))?)?|(?P<abbr>CEST|CET|MEST|MET))$", re.IGNORECASE)
_ZONE_ABBREVIATIONS = {"cet": 60, "met": 60, "cest": 120, "mest": 120}  # minutes east of UTC
_MERIDIEM = re.compile(r"\s*\b([ap])\.?\s?m\.?$", re.IGNORECASE)


# --- the report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedRow:
    """A registration appended to `Deelnemers` (or that would be, in a dry run)."""

    export_row: int
    sheet_row: int
    values: Mapping[str, object] = field(hash=False)

    @property
    def email(self) -> str:
        return str(self.values.get("E-mail", ""))

    def describe(self) -> str:
        """`Ruud van 't Hof <ruud@example.nl>, Utrecht`."""
        name = " ".join(str(self.values.get(c, "")) for c in ("Voornaam", "Achternaam")).strip()
        gemeente = str(self.values.get("Gemeente", "")) or "gemeente onbekend"
        return f"{name or '(geen naam)'} <{self.email}>, {gemeente}"


@dataclass(frozen=True)
class SkippedRow:
    """A row not added: `code` is `already-registered` or `no-email`; `reason` is Dutch."""

    export_row: int
    email: str
    code: str
    reason: str


@dataclass(frozen=True)
class FieldChange:
    column: str
    old: str
    new: str


@dataclass(frozen=True)
class ChangedRow:
    """A re-submission (known address) whose answers differ; reported, not merged."""

    export_row: int
    email: str
    earlier: str  # Dutch: where the address is registered, e.g. `Deelnemers rij 7`
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class ImportReport:
    added: tuple[AddedRow, ...]
    skipped: tuple[SkippedRow, ...]
    changed: tuple[ChangedRow, ...]
    unmapped_columns: tuple[str, ...]
    dry_run: bool
    sheet_name: str = SHEET_REGISTRATIONS
    # Export header → target, for headers that are not already the column's own name.
    mapped_columns: tuple[tuple[str, str], ...] = ()
    # Columns with imported values that the workbook's `Deelnemers` table does not have.
    missing_columns: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """The Dutch report: one line per added, skipped and changed row, then the counts."""
        verb = "Zou toevoegen" if self.dry_run else "Toegevoegd"
        out = [f"{verb}: {a.describe()} (exportrij {a.export_row} → {self.sheet_name} rij "
               f"{a.sheet_row})" for a in self.added]
        out += [f"Overgeslagen: {s.email or '(geen e-mailadres)'} (exportrij {s.export_row}):"
                f" {s.reason}" for s in self.skipped]
        out += [_changed_line(c) for c in self.changed]
        out += self._column_lines()
        out.append(self.summary())
        return out

    def summary(self) -> str:
        """`3 toegevoegd, 1 overgeslagen (al ingeschreven), 1 gewijzigde … gemeld`."""
        added = f"{len(self.added)} {'toe te voegen' if self.dry_run else 'toegevoegd'}"
        changed = len(self.changed)
        noun = "inzending" if changed == 1 else "inzendingen"
        text = f"{added}, {_skipped_count(self.skipped)}, {changed} gewijzigde herhaalde " \
               f"{noun} gemeld"
        return f"Proefdraai, niets geschreven: {text}" if self.dry_run else text

    def _column_lines(self) -> list[str]:
        """Which questions went where, which were left out, what the sheet cannot hold."""
        out = []
        if self.mapped_columns:
            pairs = "; ".join(f"{_quote(h)} → {t}" for h, t in self.mapped_columns)
            out.append(f"Kolommen gekoppeld: {pairs}")
        if self.unmapped_columns:
            names = ", ".join(_quote(h) for h in self.unmapped_columns)
            out.append(f"Niet gekoppelde kolommen, niet overgenomen: {names} (koppel een kolom "
                       f"met --map \"KOP=KOLOM\", of negeer hem met --map \"KOP=-\")")
        if self.missing_columns:
            names = ", ".join(self.missing_columns)
            out.append(f"Niet overgenomen, want {self.sheet_name} heeft deze kolommen niet: "
                       f"{names}")
        return out


def _changed_line(row: ChangedRow) -> str:
    """One report line for a re-submission: what changed, and that nothing was merged."""
    changes = "; ".join(f"{c.column} {_quote(c.old)} → {_quote(c.new)}" for c in row.changes)
    return (f"Gewijzigde herhaalde inzending: {row.email} (exportrij {row.export_row}), al "
            f"ingeschreven in {row.earlier}: {changes}. Niet overgenomen; pas de werkmap zo "
            f"nodig zelf aan.")


def _skipped_count(skipped: Sequence[SkippedRow]) -> str:
    """`2 overgeslagen (al ingeschreven)`, or per reason when there are several."""
    labels = {"already-registered": "al ingeschreven", "no-email": "zonder e-mailadres"}
    counts = {label: sum(1 for s in skipped if labels[s.code] == label)
              for label in labels.values()}
    present = {label: n for label, n in counts.items() if n}
    if not present:
        return "0 overgeslagen"
    if len(present) == 1:
        return f"{len(skipped)} overgeslagen ({next(iter(present))})"
    return f"{len(skipped)} overgeslagen (" + ", ".join(f"{n} {label}" for label, n in
                                                        present.items()) + ")"


def _quote(text: str) -> str:
    """Quote a header or value for the report; Dutch names contain apostrophes."""
    return f"“{text}”"


# --- the command ---------------------------------------------------------------------------


def import_export(workbook: Path, export: Path, mapping: Mapping[str, str] | None = None, *,
                  dry_run: bool = False) -> ImportReport:
    """Append the export's new registrations to `Deelnemers`; report what was left out."""
    parsed = _parse_export(Path(export), mapping or {})
    course = load_course(Path(workbook))
    layout = course.layout
    if "E-mail" not in layout.columns:  # load_course requires it; without it nothing dedupes
        raise InputError(f"{Path(workbook).name}: {layout.sheet_name} heeft geen kolom E-mail.")
    added, skipped, changed = _sort_rows(parsed.rows, course)
    missing = _missing_columns(added, layout.columns)
    if added and not dry_run:
        cells = _cells(added, layout.columns)
        write_cells(Path(workbook), layout.sheet_name, cells, header_row=layout.header_row,
                    insert_rows=_rows_to_insert(Path(workbook), course, added))
    return ImportReport(tuple(added), tuple(skipped), tuple(changed), parsed.unmapped, dry_run,
                        layout.sheet_name, parsed.mapped, missing)


def import_cells(workbook: Path, export: Path, mapping: Mapping[str, str] | None = None,
                 ) -> tuple[SheetLayout, dict[tuple[int, int], CellWrite], dict[int, str]]:
    """Where the registrations are, the cells `import_export` would write, and the rows they
    fill (each now empty), for a writer other than the lossless write-back (Microsoft 365's
    workbook service).

    Refused when the registrations are an Excel table: cells written below a table through
    the service do not extend it, and rows added to a table are not built.
    """
    course = load_course(Path(workbook))
    layout = course.layout
    if sheet_tables(Path(workbook), [layout.sheet_name]).get(layout.sheet_name):
        raise InputError(f"{Path(workbook).name}: {layout.sheet_name} is een Excel-tabel; "
                         "aanmeldingen daarin importeren via Microsoft 365 kan nog niet. Er "
                         "is niets geïmporteerd.")
    added, _, _ = _sort_rows(_parse_export(Path(export), mapping or {}).rows, course)
    return layout, _cells(added, layout.columns), {row.sheet_row: "" for row in added}


def read_export(export: Path, mapping: Mapping[str, str] | None = None,
                ) -> tuple[list[dict[str, object]], list[str]]:
    """The export's rows keyed by canonical column, and the headers that map to nothing."""
    parsed = _parse_export(Path(export), mapping or {})
    return [dict(row.values) for row in parsed.rows], list(parsed.unmapped)


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """`["Welke gemeente?=Gemeente"]` → `{"Welke gemeente?": "Gemeente"}`; targets checked."""
    mapping: dict[str, str] = {}
    for item in items:
        header, sep, target = item.rpartition("=")
        if not sep or not header.strip() or not target.strip():
            raise InputError(f"--map {item!r}: schrijf het als \"KOP IN DE EXPORT=KOLOM\", "
                             f"bijvoorbeeld --map \"Welke gemeente?=Gemeente\".")
        mapping[header.strip()] = _mapping_target(target, item)
    return mapping


def _mapping_target(target: str, item: str) -> str:
    """The canonical target of a `--map` item; InputError naming the choices otherwise."""
    key = header_key(target)
    if key == IGNORE:
        return IGNORE
    for special in (FULL_NAME, INFIX):
        if key == header_key(special):
            return special
    canonical = canonical_column(target, ORGANISER_COLUMNS)
    if canonical is None:
        choices = ", ".join((*ORGANISER_COLUMNS, FULL_NAME, INFIX, IGNORE))
        raise InputError(f"--map {item!r}: onbekende kolom {target.strip()!r}. Kies uit: "
                         f"{choices} ('{FULL_NAME}' wordt gesplitst in Voornaam en "
                         f"Achternaam, '{IGNORE}' laat de kolom weg).")
    return canonical


# --- reading the export --------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    index: int  # 0-based position in the export
    header: str
    target: str | None  # canonical column, FULL_NAME, INFIX, IGNORE or None (unmapped)
    rank: int = _EXACT


@dataclass(frozen=True)
class _ExportRow:
    number: int  # the row as a spreadsheet numbers it (the header row is usually 1)
    values: dict[str, object]


@dataclass(frozen=True)
class _Parsed:
    rows: list[_ExportRow]
    unmapped: tuple[str, ...]
    mapped: tuple[tuple[str, str], ...]


def _parse_export(export: Path, mapping: Mapping[str, str]) -> _Parsed:
    """Read, locate the header, map the columns, and turn every non-empty row into values."""
    grid = _read_grid(export)
    header_at = _header_index(grid)
    if header_at is None:
        raise InputError(f"{export.name}: de export is leeg; er staan geen kolomkoppen in.")
    columns = _map_columns([_cell_text(v) for v in grid[header_at]], mapping, export)
    _require_email(columns, export)
    rows, findings = [], []
    for number, cells in enumerate(grid[header_at + 1:], start=header_at + 2):
        if any(_cell_text(v) for v in cells):
            try:
                rows.append(_ExportRow(number, _row_values(cells, columns)))
            except _BadTimestamp as bad:
                findings.append(_date_finding(export, number, bad))
    if findings:
        raise _date_error(export, findings)
    unmapped = tuple(c.header for c in columns if c.target is None and c.header)
    return _Parsed(rows, unmapped, _renamed(columns))


def _renamed(columns: Iterable[_Column]) -> tuple[tuple[str, str], ...]:
    """(header, target) for the questions whose header is not the column's own name."""
    pairs = []
    for column in columns:
        target = column.target
        if target is None or target == IGNORE or column.rank == _ACCOUNT:
            continue
        if header_key(column.header) != header_key(target):
            pairs.append((column.header, target))
    return tuple(pairs)


def _read_grid(export: Path) -> list[list[object]]:
    """Every row of the export's sheet (or CSV file), as a grid of cell values."""
    if not export.is_file():
        raise InputError(f"Export niet gevonden: {export}")
    suffix = export.suffix.casefold()
    if suffix in EXCEL_SUFFIXES:
        return _read_xlsx(export)
    if suffix in CSV_SUFFIXES:
        return _read_csv(export)
    hint = " (oud Excel-formaat: sla het op als .xlsx)" if suffix == ".xls" else ""
    raise InputError(f"{export.name}: dit bestandstype{hint} kan niet worden geïmporteerd; "
                     f"gebruik de .xlsx-export van Microsoft Forms, de .csv-download van "
                     f"Google Forms of een eigen lijst als .xlsx of .csv.")


def _read_xlsx(export: Path) -> list[list[object]]:
    """The `Deelnemers` sheet when there is one, else the first worksheet (Forms has one)."""
    try:
        with export.open("rb") as handle:
            book = python_calamine.CalamineWorkbook.from_filelike(handle)
        sheet = _export_sheet(book)
        rows: list[list[object]] = [
            [*row] for row in book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)]
    except (python_calamine.CalamineError, OSError, ValueError) as err:
        raise InputError(f"{export.name}: de export kan niet gelezen worden als Excel-bestand "
                         f"({err}); open hem in Excel en sla hem op als .xlsx.") from err
    return rows


def _export_sheet(book: python_calamine.CalamineWorkbook) -> str:
    """The sheet to read: `Deelnemers` when present, else the first worksheet."""
    sheets = [m.name for m in book.sheets_metadata
              if m.typ == python_calamine.SheetTypeEnum.WorkSheet]
    if not sheets:
        raise ValueError("geen werkblad")
    wanted = header_key(SHEET_REGISTRATIONS)
    return next((s for s in sheets if header_key(s) == wanted), sheets[0])


def _read_csv(export: Path) -> list[list[object]]:
    """A CSV in whatever encoding and delimiter the form tool or Excel wrote it."""
    try:
        text, delimiter = _delimiter(_decode(export.read_bytes()))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        return [list(record) for record in reader]
    except (OSError, csv.Error) as err:
        raise InputError(f"{export.name}: de export kan niet gelezen worden als CSV-bestand "
                         f"({err}).") from err


def _decode(data: bytes) -> str:
    """UTF-8 with or without BOM (Google), UTF-16 (Excel's Unicode text), else Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Excel's "CSV (gescheiden door lijstscheidingsteken)" on a Dutch Windows.
        return data.decode("cp1252", errors="replace")


def _delimiter(text: str) -> tuple[str, str]:
    """The delimiter, and the text without Excel's `sep=;` hint line if it has one."""
    first, _, rest = text.partition("\n")
    hint = first.strip()
    if hint.casefold().startswith("sep=") and len(hint) == 5:
        return rest, hint[4]
    # A question may contain a comma, so counting characters misleads: parse the first
    # records with each candidate and take the one that splits them most consistently.
    sample = text[:65_536]
    truncated = len(sample) < len(text)
    return text, max((",", ";", "\t"), key=lambda c: _split_score(sample, c, truncated))


def _split_score(sample: str, delimiter: str, truncated: bool) -> tuple[bool, float, int]:
    """(splits the header at all, share of records as wide as the header, header width)."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    widths = [len(record) for record in itertools.islice(reader, 50) if record]
    if truncated and len(widths) > 1:
        widths.pop()  # the last record may be cut off
    if not widths:
        return False, 0.0, 0
    return widths[0] > 1, sum(w == widths[0] for w in widths) / len(widths), widths[0]


def _header_index(grid: Sequence[Sequence[object]]) -> int | None:
    """The row naming the most known columns in the first rows; else the first non-empty."""
    best, best_score = None, 0
    for index, row in enumerate(grid[:HEADER_SCAN_ROWS]):
        score = len({t for t in (_target(_cell_text(v)) for v in row) if t})
        if score > best_score:
            best, best_score = index, score
    if best is not None:
        return best
    return next((i for i, row in enumerate(grid) if any(_cell_text(v) for v in row)), None)


# --- mapping the columns -------------------------------------------------------------------


def _map_columns(headers: Sequence[str], mapping: Mapping[str, str],
                 export: Path) -> list[_Column]:
    """One _Column per header: explicit mapping, then alias, then keyword; account last."""
    explicit = {header_key(h): t for h, t in mapping.items()}
    keys = [header_key(h) for h in headers]
    for wanted in explicit.keys() - set(keys):
        present = ", ".join(_quote(h) for h in headers if h)
        original = next(h for h in mapping if header_key(h) == wanted)
        raise InputError(f"--map: de kolom {_quote(original)} staat niet in {export.name} "
                         f"(kolommen: {present}).")
    accounts = _account_columns(keys)
    columns = []
    for index, (header, key) in enumerate(zip(headers, keys, strict=True)):
        if key in explicit:
            columns.append(_Column(index, header, explicit[key], _MAPPED))
        elif index in accounts:
            columns.append(_Column(index, header, _ACCOUNT_HEADERS[key], _ACCOUNT))
        else:
            columns.append(_auto_column(index, header))
    return columns


def _account_columns(keys: Sequence[str]) -> set[int]:
    """Positions of Microsoft Forms' responder columns (`E-mail`, `Naam`), if it is MS Forms."""
    if "id" not in keys or not _COMPLETION & set(keys):
        return set()
    found: dict[str, int] = {}
    for index, key in enumerate(keys[:_ACCOUNT_SPAN]):
        if key in _ACCOUNT_HEADERS:
            found.setdefault(_ACCOUNT_HEADERS[key], index)
    return set(found.values())


def _auto_column(index: int, header: str) -> _Column:
    """Map a header without help: form bookkeeping, then exact alias, then keywords."""
    key = _question_key(header)
    if key in _METADATA or canonical_column(key, TOOL_COLUMNS):
        return _Column(index, header, IGNORE)
    exact = canonical_column(key, ORGANISER_COLUMNS) or _EXACT_EXTRA.get(key)
    if exact:
        return _Column(index, header, exact, _EXACT)
    return _Column(index, header, _keyword_target(key), _KEYWORD)


def _target(header: str) -> str | None:
    """What a header maps to by itself (no explicit mapping), for finding the header row."""
    if not header:
        return None
    target = _auto_column(0, header).target
    return None if target == IGNORE else target


def _question_key(header: str) -> str:
    """`1. Wat is uw e-mailadres? (verplicht)` → `wat is uw e-mailadres`."""
    return _QUESTION_DECORATION.sub("", header_key(header)).strip()


def _keyword_target(key: str) -> str | None:
    """The first keyword rule a normalised question matches."""
    return next((target for target, pattern in _KEYWORDS if pattern.search(key)), None)


def _require_email(columns: Sequence[_Column], export: Path) -> None:
    """Refuse an export without an e-mail column: nothing could be deduplicated."""
    if any(c.target == "E-mail" for c in columns):
        return
    present = ", ".join(_quote(c.header) for c in columns if c.header) or "geen"
    raise InputError(f"{export.name}: geen kolom met e-mailadressen gevonden (kolommen: "
                     f"{present}). Geef aan welke kolom het is, bijvoorbeeld --map "
                     f"\"Uw e-mail?=E-mail\".")


# --- one row -------------------------------------------------------------------------------


class _BadTimestamp(ValueError):
    def __init__(self, column: str, text: str) -> None:
        super().__init__(text)
        self.column, self.text = column, text


def _row_values(cells: Sequence[object], columns: Sequence[_Column]) -> dict[str, object]:
    """The row's values per canonical column: the best source per field, names split."""
    chosen = _choose(cells, columns)
    values: dict[str, object] = {}
    for target, (value, column) in chosen.items():
        if target == "Aangemeld op":
            values[target] = _timestamp_of(value, column.header)
        elif target in (FULL_NAME, INFIX):
            continue
        elif target == "Afgemeld" and isinstance(value, (date, datetime)):
            values[target] = value
        else:
            values[target] = _field_text(target, value)
    _fill_names(values, chosen)
    return {k: v for k, v in values.items() if v not in ("", None)}


def _choose(cells: Sequence[object], columns: Sequence[_Column],
            ) -> dict[str, tuple[object, _Column]]:
    """Per target, the value of the best-ranked column that has one for this row."""
    chosen: dict[str, tuple[object, _Column]] = {}
    for column in sorted(columns, key=lambda c: (c.rank, c.index)):
        target = column.target
        if target is None or target == IGNORE or column.index >= len(cells):
            continue
        value = cells[column.index]
        text = _cell_text(value)
        if not text or text.casefold() in _ANONYMOUS:
            continue
        current = chosen.get(target)
        if current is None or _better_email(target, current[0], text):
            chosen[target] = (value, column)
    return chosen


def _better_email(target: str, current: object, text: str) -> bool:
    """An answer that is an address beats a "ja" in a column that only looked like e-mail."""
    return target == "E-mail" and "@" not in _cell_text(current) and "@" in text


def _fill_names(values: dict[str, object], chosen: Mapping[str, tuple[object, _Column]]) -> None:
    """Split a full name when the form did not ask first and last name; add a tussenvoegsel."""
    if FULL_NAME in chosen and not values.get("Voornaam") and not values.get("Achternaam"):
        values["Voornaam"], values["Achternaam"] = split_name(_cell_text(chosen[FULL_NAME][0]))
    infix = _cell_text(chosen[INFIX][0]) if INFIX in chosen else ""
    surname = str(values.get("Achternaam", ""))
    if infix and not header_key(surname).startswith(header_key(infix)):
        values["Achternaam"] = f"{infix} {surname}".strip()


def split_name(full: str) -> tuple[str, str]:
    """`Ruud van 't Hof` → (`Ruud`, `van 't Hof`); `Hof, Ruud van 't` → the same."""
    full = " ".join(full.replace("’", "'").split())
    if "," in full:  # "Achternaam, Voornaam [tussenvoegsel]", as lists are often sorted
        surname, _, given = (p.strip() for p in full.partition(","))
        words = given.split()
        infix = [w for w in itertools.takewhile(lambda w: not _is_infix(w), words)]
        return " ".join(infix), " ".join([*words[len(infix):], surname]).strip()
    words = full.split()
    if len(words) < 2:
        return full, ""
    if _is_infix(words[0]):
        return "", full
    start = next((i for i in range(1, len(words) - 1) if _is_infix(words[i])), len(words) - 1)
    return " ".join(words[:start]), " ".join(words[start:])


def _is_infix(word: str) -> bool:
    """Whether a word is a surname prefix (`van`, `'t`, `ter`, …)."""
    return word.casefold() in _INFIXES


def _field_text(target: str, value: object) -> str:
    """A cell as the text to write: whitespace tidied, a role answer as the role."""
    text = _cell_text(value)
    if target in _SINGLE_LINE:
        text = " ".join(text.split())
    return _role(text) if target == "Rol" else text


def _role(text: str) -> str:
    """A form's answer to the role question as `deelnemer`/`bestuurder` when it says which."""
    key = text.casefold()
    if any(word in key for word in _ADMINISTRATOR_WORDS):
        return "bestuurder"
    if any(word in key for word in _PARTICIPANT_WORDS):
        return "deelnemer"
    return text


def _cell_text(value: object) -> str:
    """A cell as trimmed text; whole numbers without `.0`."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%d-%m-%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    return str(value).strip()


# --- timestamps ----------------------------------------------------------------------------


def _timestamp_of(value: object, column: str) -> datetime:
    """The completion time as a naive Europe/Amsterdam datetime, or _BadTimestamp."""
    moment = parse_timestamp(value)
    if moment is None:
        raise _BadTimestamp(column, _cell_text(value))
    return moment


def parse_timestamp(value: object) -> datetime | None:
    """An Excel datetime, serial number or text like `2021/10/11 2:03:12 PM GMT+2`."""
    if isinstance(value, datetime):
        return _local(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime_from_serial(float(value))
    if isinstance(value, str):
        return _parse_text_timestamp(value)
    return None


def _parse_text_timestamp(text: str) -> datetime | None:
    """Parse a text timestamp, converting a stated zone (`GMT+2`) to Amsterdam time."""
    text = " ".join(text.split())
    zone: timezone | None = None
    match = _ZONE_SUFFIX.search(text)
    if match and match.start() > 0:
        zone, text = _offset(match), text[:match.start()]
    text = _MERIDIEM.sub(lambda m: f" {m.group(1).upper()}M", text)
    moment = _strptime(text)
    if moment is None:
        return None
    return _local(moment.replace(tzinfo=zone) if zone else moment)


def _strptime(text: str) -> datetime | None:
    """Parse ISO first, then the known form-tool formats; None when none fits."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _TIMESTAMP_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _offset(match: re.Match[str]) -> timezone:
    """`GMT+2`, `GMT+02:00`, `UTC`, `CEST` as a fixed offset."""
    if match.group("abbr"):
        return timezone(timedelta(minutes=_ZONE_ABBREVIATIONS[match.group("abbr").casefold()]))
    if not match.group("sign"):
        return UTC
    minutes = int(match.group("h")) * 60 + int(match.group("m") or 0)
    return timezone(timedelta(minutes=-minutes if match.group("sign") == "-" else minutes))


def _local(moment: datetime) -> datetime:
    """Naive Europe/Amsterdam time, whole seconds, as the workbook keeps `Aangemeld op`."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZONE).replace(tzinfo=None)
    if moment.microsecond >= 500_000:
        moment += timedelta(seconds=1)
    return moment.replace(microsecond=0)


def _date_finding(export: Path, row: int, bad: _BadTimestamp) -> Finding:
    """A finding pointing at the export's row and column with the unreadable date."""
    return Finding(Level.ERROR, "unreadable-date", export.name, row, bad.column,
                   f"{_quote(bad.text)} is geen leesbare datum en tijd (verwacht bijvoorbeeld "
                   f"11-10-2021 14:03).")


def _date_error(export: Path, findings: Sequence[Finding]) -> InputError:
    """One InputError for all unreadable dates: the one, or their count with each below."""
    if len(findings) > 1:
        return InputError(f"{export.name}: {len(findings)} rijen met een datum die niet te "
                          "lezen is. Er is niets geïmporteerd.", findings)
    first = findings[0]
    return InputError(f"{export.name}: rij {first.row}, kolom {_quote(first.column or '')}: "
                      f"{first.message.rstrip('.')}. Er is niets geïmporteerd.", findings)


# --- deciding per row ----------------------------------------------------------------------


@dataclass
class _Known:
    where: str  # Dutch
    profile: dict[str, str]


def _sort_rows(rows: Iterable[_ExportRow], course: Course,
               ) -> tuple[list[AddedRow], list[SkippedRow], list[ChangedRow]]:
    """Added, skipped and changed rows, in export order; the first of an address wins."""
    sheet = course.layout.sheet_name
    known = _known_addresses(course.registrations, sheet)
    added: list[AddedRow] = []
    skipped: list[SkippedRow] = []
    changed: list[ChangedRow] = []
    next_row = course.layout.last_row + 1
    for row in rows:
        email = str(row.values.get("E-mail", ""))
        key = normalise_email(email)
        if not key:
            skipped.append(SkippedRow(row.number, "", "no-email", "geen e-mailadres ingevuld"))
        elif key in known:
            _sort_known(row, email, known[key], skipped, changed)
        else:
            added.append(AddedRow(row.number, next_row, row.values))
            known[key] = _Known(f"deze export, rij {row.number}", _row_profile(row.values))
            next_row += 1
    return added, skipped, changed


def _sort_known(row: _ExportRow, email: str, earlier: _Known, skipped: list[SkippedRow],
                changed: list[ChangedRow]) -> None:
    """A known address: a changed re-submission when the answers differ, else skipped."""
    changes = _changes(earlier.profile, _row_profile(row.values))
    if changes:
        changed.append(ChangedRow(row.number, email, earlier.where, changes))
    else:
        skipped.append(SkippedRow(row.number, email, "already-registered",
                                  f"al ingeschreven ({earlier.where})"))


def _known_addresses(registrations: Iterable[Registration], sheet: str) -> dict[str, _Known]:
    """Normalised address → where it is registered and with which answers (first row wins)."""
    known: dict[str, _Known] = {}
    for reg in registrations:
        if reg.email_key and reg.email_key not in known:
            profile = {col: getattr(reg, attr) for col, attr in _COMPARED.items()}
            known[reg.email_key] = _Known(f"{sheet} rij {reg.row}", profile)
    return known


def _row_profile(values: Mapping[str, object]) -> dict[str, str]:
    """The compared answers of an export row, as text."""
    return {col: str(values.get(col, "")) for col in _COMPARED}


def _changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[FieldChange, ...]:
    """Fields the new answers fill in differently; a left-out answer is no change."""
    return tuple(FieldChange(col, old.get(col, ""), value) for col, value in new.items()
                 if value and header_key(value) != header_key(old.get(col, "")))


# --- writing -------------------------------------------------------------------------------


def _rows_to_insert(workbook: Path, course: Course, added: Sequence[AddedRow],
                    ) -> tuple[int, int] | None:
    """(totals row, n): the rows to insert above the table's totals row for the new ones.

    The new rows start below the last registration above the totals row (an empty table
    row is used first, as in Excel); what does not fit moves the totals row down.
    """
    first = totals_row(workbook, course.layout)
    if not first or not added:
        return None
    needed = added[-1].sheet_row - first + 1
    return (first, needed) if needed > 0 else None


def _cells(added: Iterable[AddedRow], columns: Mapping[str, int],
           ) -> dict[tuple[int, int], CellWrite]:
    """The organiser cells of the new rows; the tool columns are never written."""
    cells: dict[tuple[int, int], CellWrite] = {}
    for row in added:
        for name, value in row.values.items():
            if name in ORGANISER_COLUMNS and name in columns:
                cells[(row.sheet_row, columns[name])] = _cell(value)
    return cells


def _cell(value: object) -> CellWrite:
    """A value as a cell: dates with a Dutch number format, everything else as text."""
    if isinstance(value, datetime):
        return CellWrite(value, CellStyle(number_format=DATETIME_FORMAT))
    if isinstance(value, date):
        return CellWrite(value, CellStyle(number_format=DATE_FORMAT))
    return CellWrite(str(value))  # text goes in as text, never as a formula


def _missing_columns(added: Iterable[AddedRow], columns: Mapping[str, int]) -> tuple[str, ...]:
    """Organiser columns with imported values that the sheet has no column for."""
    present = {name for row in added for name in row.values}
    return tuple(c for c in ORGANISER_COLUMNS if c in present and c not in columns)
