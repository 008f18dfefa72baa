"""What a cell write is, and a value as the XML of a cell (escaping, dates, numbers)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time

log = logging.getLogger(__name__)


CellValue = str | int | float | bool | date | datetime | None


@dataclass(frozen=True)
class CellStyle:
    """A change to a cell's look; fields left at their default keep what the cell has."""

    fill: str | None = None  # ARGB solid fill, e.g. "FFFFE699"
    font_color: str | None = None  # ARGB
    bold: bool = False  # True makes the font bold; False keeps the font's own weight
    number_format: str | None = None  # e.g. "dd-mm-yyyy"


@dataclass(frozen=True)
class CellWrite:
    """One cell to write: its value (None or "" leaves it without value) and a style change."""

    value: CellValue
    style: CellStyle | None = None  # None keeps the cell's current style


MAX_ROW = 1_048_576
MAX_COL = 16_384
MAX_TEXT = 32_767  # Excel refuses longer cell texts
DATE_FORMAT = "dd-mm-yyyy"
DATETIME_FORMAT = "dd-mm-yyyy hh:mm"


_Writes = dict[int, list[tuple[int, CellWrite]]]  # row → (column, write), both ascending


def _group_writes(cells: Mapping[tuple[int, int], CellWrite]) -> _Writes:
    """Group the writes by row, each row's cells in column order; reject impossible cells."""
    rows: dict[int, list[tuple[int, CellWrite]]] = {}
    for (row, col), write in cells.items():
        if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
            raise ValueError(f"cell ({row}, {col}) lies outside a worksheet")
        if type(write) is not CellWrite or type(write.value) not in _PLAIN_TYPES:
            _check_write(write)
        row_writes = rows.get(row)
        if row_writes is None:
            rows[row] = [(col, write)]
        else:
            row_writes.append((col, write))
    for row_writes in rows.values():
        if len(row_writes) > 1:
            row_writes.sort(key=_first)
    return {row: rows[row] for row in sorted(rows)}


_PLAIN_TYPES = frozenset({str, int, bool, date, datetime, type(None)})


def _first(item: tuple[int, CellWrite]) -> int:
    return item[0]


def _check_write(write: object) -> None:
    """Refuse what a cell cannot hold (programming errors, not organiser input)."""
    if not isinstance(write, CellWrite):
        raise TypeError(f"expected a CellWrite, got {write!r}")
    value = write.value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be stored in a cell")
    if value is not None and not isinstance(value, str | int | float | date):
        raise TypeError(f"{type(value).__name__} cannot be stored in a cell")


def _is_empty(value: CellValue) -> bool:
    return value is None or value == ""


# xml.sax.saxutils' escape and unescape, here because importing that module pulls in
# urllib.request and http.client for its parser helpers (~8 ms of every run's start).


def escape(text: str, entities: Mapping[str, str] | None = None) -> str:
    """`&`, `<` and `>` (and `entities`) as XML entities, as saxutils.escape does."""
    text = text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
    for char, entity in (entities or {}).items():
        text = text.replace(char, entity)
    return text


def unescape(text: str, entities: Mapping[str, str] | None = None) -> str:
    """The reverse of `escape`, as saxutils.unescape does (`&amp;` last)."""
    text = text.replace("&lt;", "<").replace("&gt;", ">")
    for entity, char in (entities or {}).items():
        text = text.replace(entity, char)
    return text.replace("&amp;", "&")


_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Excel reads `_x0041_` in a text as an escaped character; a literal one is written `_x005F_x0041_`.
_OOXML_ESCAPE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
_FAKE_LEAP_DAY_END = datetime(1900, 3, 1)  # Excel counts a 29-02-1900 that never was


def clean_text(text: str) -> str:
    """The text as a cell can hold it: no characters XML forbids, at most 32,767 long."""
    text = _ILLEGAL_XML.sub("", text)
    if len(text) > MAX_TEXT:
        log.warning("celtekst van %d tekens ingekort tot %d", len(text), MAX_TEXT)
        text = text[:MAX_TEXT]
    return text


def _text_xml(text: str) -> str:
    text = _OOXML_ESCAPE.sub(r"_x005F_\1", clean_text(text))
    return escape(text, {"\r": "&#13;"})


def excel_serial(value: date, date1904: bool = False) -> float:
    """The serial number Excel stores for a date or datetime (naive wall-clock time)."""
    moment = value if isinstance(value, datetime) else datetime.combine(value, time())
    moment = moment.replace(tzinfo=None)
    delta = moment - (_EPOCH_1904 if date1904 else _EPOCH_1900)
    days = delta.days - (1 if not date1904 and moment < _FAKE_LEAP_DAY_END else 0)
    return days + (delta.seconds + delta.microseconds / 1e6) / 86400


def _number_text(value: float) -> str:
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return repr(value)


class _Names:
    """Element names and patterns of one worksheet part, with the namespace prefix it uses."""

    def __init__(self, prefix: bytes, date1904: bool) -> None:
        p = re.escape(prefix)
        self.prefix = prefix
        self.date1904 = date1904
        self.row_re = re.compile(rb"<" + p + rb"row\b[^>]*>")
        self.row_end = b"</" + prefix + b"row>"
        self.cell_re = re.compile(rb"<" + p + rb"c(?=[\s/>])[^>]*>")
        self.cell_open = b"<" + prefix + b"c"
        self.cell_end = b"</" + prefix + b"c>"
        self.formula_re = re.compile(
            rb"<" + p + rb"f(?=[\s/>])([^>]*?)(?:/>|>([^<]*)</" + p + rb"f>)")
        self.sheet_data_end = b"</" + prefix + b"sheetData>"
        self.dimension_re = re.compile(rb"<" + p + rb"dimension\b[^>]*>")
        self.cols_re = re.compile(rb"<" + p + rb"cols\b[^>]*?(?:/>|>(.*?)</" + p + rb"cols>)",
                                  re.S)
        self.col_re = re.compile(rb"<" + p + rb"col\b[^>]*>")
        self.merge_re = re.compile(rb"<" + p + rb"mergeCell\b[^>]*>")
        self._values: dict[tuple[type, CellValue], bytes] = {}

    def cell(self, ref: bytes, s: int, value: CellValue) -> bytes:
        """The <c> element for a value: inline string, number, boolean or date serial."""
        start = self.cell_open + b' r="' + ref + (b'" s="%d"' % s if s else b'"')
        return start + self._value_xml(value)

    def _value_xml(self, value: CellValue) -> bytes:
        # Statuses repeat on every row: render each distinct value once.
        key = (type(value), value)
        xml = self._values.get(key)
        if xml is None:
            xml = self._render_value(value)
            if len(self._values) < 4096:
                self._values[key] = xml
        return xml

    def _render_value(self, value: CellValue) -> bytes:
        if _is_empty(value):
            return b"/>"
        pre = self.prefix.decode()
        if isinstance(value, str):
            return (f' t="inlineStr"><{pre}is><{pre}t xml:space="preserve">{_text_xml(value)}'
                    f"</{pre}t></{pre}is></{pre}c>").encode()
        if isinstance(value, bool):
            return f' t="b"><{pre}v>{int(value)}</{pre}v></{pre}c>'.encode()
        if isinstance(value, date):
            value = excel_serial(value, self.date1904)
        assert isinstance(value, int | float)
        return f"><{pre}v>{_number_text(value)}</{pre}v></{pre}c>".encode()


