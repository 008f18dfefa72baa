"""Lossless write-back: change cells of one worksheet inside the .xlsx and nothing else.

A general-purpose workbook model drops what it does not understand (charts, shapes, slicers,
x14 extensions, cached formula results, ...), so the workbook is treated as the zip it is:
the target worksheet part is streamed as text and patched inside <sheetData>; styles.xml
gets entries appended when a new cell style is needed; a table directly left of or above
the written cells is extended; every other member is copied through with its compressed
bytes, in the same order. See shared/notes/openpyxl-roundtrip-losses.md for what each rule
protects.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import math
import os
import posixpath
import queue
import re
import struct
import tempfile
import threading
import xml.parsers.expat
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import unquote

from lxml import etree

from leergang_ops.errors import InputError, LeergangError, WorkbookInUse
from leergang_ops.workbook.files import ensure_not_in_use, replace_atomically
from leergang_ops.workbook.schema import header_key

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

_CHUNK = 1 << 20
_SPOOL = 8 << 20  # the compressed patched sheet stays in memory up to this size, then on disk
# Excel stores its members with "super fast" deflate; level 1 keeps a 50,000-row patch ~1 s.
_COMPRESS_LEVEL = 1


# ---------------------------------------------------------------------------- public edge


def backup_path(path: Path) -> Path:
    """Where the previous version is kept: leergang.xlsx → leergang.backup.xlsx beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.backup{path.suffix}")


def write_cells(
    path: Path,
    sheet_name: str,
    cells: Mapping[tuple[int, int], CellWrite],
    *,
    header_row: int | None = None,
    column_widths: Mapping[int, float] | None = None,
    backup: bool = True,
) -> bool:
    """Patch the workbook in place: temp file beside it, verify, atomic replace, keep a backup.

    Returns False and leaves the file untouched (same bytes, same mtime) when nothing changes.
    A lock file beside the workbook raises WorkbookInUse before anything is written.
    """
    path = Path(path)
    target = _unlocked_target(path)
    before = _fingerprint(target)
    tmp = _temp_file_beside(target)
    try:
        writes = _group_writes(cells)  # once, for the patch and for the read-back
        changed = _patch(target, tmp, sheet_name, cells, writes, header_row=header_row,
                         column_widths=column_widths)
        if not changed:
            return False
        _verify(tmp, sheet_name, writes)
        _unlocked_target(path)  # opened in Excel meanwhile?
        if _fingerprint(target) != before:
            raise WorkbookInUse(f"{path.name} is gewijzigd terwijl het werd bijgewerkt; "
                                f"er is niets geschreven. Probeer het opnieuw.")
        try:
            replace_atomically(target, tmp, backup_path(target) if backup else None)
        except PermissionError as err:  # Windows refuses to replace a file Excel holds open
            raise WorkbookInUse(f"{path.name} kan niet worden vervangen ({err}); is het "
                                f"geopend? Er is niets geschreven.") from err
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _unlocked_target(path: Path) -> Path:
    """The file to replace (a symlink's target), after checking no lock file is beside it."""
    ensure_not_in_use(path)
    target = path.resolve()
    if target != path.absolute():
        ensure_not_in_use(target)
    return target


def _temp_file_beside(target: Path) -> Path:
    """An empty temp file in the workbook's folder, so that os.replace is atomic."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".~{target.stem}-",
                                    suffix=".tmp")
    except OSError as err:
        raise InputError(f"Kan niet schrijven in de map van {target.name}: {err}") from err
    os.close(fd)
    return Path(name)


def patch_workbook(
    src: Path,
    dst: Path,
    sheet_name: str,
    cells: Mapping[tuple[int, int], CellWrite],
    *,
    header_row: int | None = None,
    column_widths: Mapping[int, float] | None = None,
) -> bool:
    """Write dst as src with these (row, col) cells (1-based) changed on sheet `sheet_name`.

    Returns False and writes nothing when the result would be byte-identical. `header_row`
    is the row holding column headers: header texts written there directly right of an
    Excel table whose header row it is extend that table (None: any table's own header
    row). Rows written directly below a table extend it downward. `column_widths` sets the
    width of columns that have no <col> entry yet. On an error dst is removed.
    """
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError("patch_workbook writes a new file; use write_cells to change in place")
    return _patch(Path(src), Path(dst), sheet_name, cells, _group_writes(cells),
                  header_row=header_row, column_widths=column_widths)


_Writes = dict[int, list[tuple[int, CellWrite]]]  # row → (column, write), both ascending


def _patch(src: Path, dst: Path, sheet_name: str, cells: Mapping[tuple[int, int], CellWrite],
           writes: _Writes, *, header_row: int | None,
           column_widths: Mapping[int, float] | None) -> bool:
    """`patch_workbook` with the writes grouped by row already."""
    widths = dict(column_widths or {})
    with _open_package(Path(src)) as zin:
        with _reading(Path(src)):
            package = _locate(zin, sheet_name)
            styles = _Styles(zin.read(package.styles)) if package.styles else None
            stored = zin.getinfo(package.sheet).compress_type == zipfile.ZIP_STORED
        with _DeflatedSpool(compress=not stored) as sheet_out:
            with _reading(Path(src)):
                patcher = _SheetPatcher(writes, styles, package.date1904, widths)
                with zin.open(package.sheet) as source:
                    patcher.run(source, sheet_out)
                sheet_out.finish()
                replaced = _changed_parts(zin, package, patcher, styles, cells, header_row)
            if not patcher.changed and not replaced:
                return False
            try:
                _write_package(zin, Path(src), Path(dst), package.sheet,
                               sheet_out if patcher.changed else None, replaced)
            except BaseException:
                Path(dst).unlink(missing_ok=True)
                raise
    return True


# ---------------------------------------------------------------------------- writes


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


@functools.cache
def column_letters(col: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@functools.cache
def _column_number(letters: bytes) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + char - 64
    return number


def _parse_ref(ref: str) -> tuple[int, int]:
    """'K7' → (7, 11)."""
    match = re.fullmatch(r"\$?([A-Za-z]{1,3})\$?(\d+)", ref.strip())
    if not match:
        raise ValueError(f"not a cell reference: {ref!r}")
    return int(match.group(2)), _column_number(match.group(1).encode())


def _parse_range(ref: str) -> tuple[int, int, int, int]:
    """'A1:C5' → (1, 1, 5, 3); a single cell is a one-cell range."""
    first, _, last = ref.partition(":")
    r1, c1 = _parse_ref(first)
    r2, c2 = _parse_ref(last) if last else (r1, c1)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def _range_text(box: tuple[int, int, int, int]) -> str:
    r1, c1, r2, c2 = box
    return f"{column_letters(c1)}{r1}:{column_letters(c2)}{r2}"


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


# ---------------------------------------------------------------------------- cell XML

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
        log.warning("cell text of %d characters cut to %d", len(text), MAX_TEXT)
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


@functools.cache
def _letters(col: int) -> bytes:
    return column_letters(col).encode()


_ATTR_CACHE: dict[bytes, re.Pattern[bytes]] = {}


def _attr(tag: bytes, name: bytes) -> bytes | None:
    """The value of attribute `name` in a start tag (bytes), or None."""
    pattern = _ATTR_CACHE.get(name)
    if pattern is None:
        pattern = re.compile(rb"\s" + re.escape(name) + rb"\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
        _ATTR_CACHE[name] = pattern
    match = pattern.search(tag)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _set_attr(tag: bytes, name: bytes, value: bytes) -> bytes:
    """The start tag with attribute `name` set to `value` (added before the tag's end)."""
    _attr(tag, name)  # compiles the pattern
    pattern = _ATTR_CACHE[name]
    match = pattern.search(tag)
    if match:
        return tag[: match.start()] + b" " + name + b'="' + value + b'"' + tag[match.end():]
    end = len(tag) - (2 if tag.endswith(b"/>") else 1)
    return tag[:end].rstrip() + b" " + name + b'="' + value + b'"' + tag[end:]


_R_ROW = re.compile(rb"\sr\s*=\s*[\"'](\d+)[\"']")
_R_CELL = re.compile(rb"\sr\s*=\s*[\"']\$?([A-Za-z]{1,3})\$?(\d+)[\"']")
_S_ATTR = re.compile(rb"\ss\s*=\s*[\"'](\d+)[\"']")
_ARRAY_HINT = re.compile(rb"\st\s*=\s*[\"'](?:array|dataTable)[\"']")
_SHEET_DATA = re.compile(rb"<([A-Za-z_][\w.-]*:)?sheetData\b[^>]*>")
_XML_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)")


# ---------------------------------------------------------------------------- the sheet


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _SheetPatcher:
    """Stream one worksheet part, rewriting only the rows that hold written cells."""

    def __init__(self, writes: dict[int, list[tuple[int, CellWrite]]], styles: _Styles | None,
                 date1904: bool, widths: dict[int, float]) -> None:
        self.writes = writes
        self.rows = list(writes)
        self.next = 0  # index in self.rows of the first written row not yet emitted
        self.styles = styles
        self.date1904 = date1904
        self.widths = widths
        self.names = _Names(b"", date1904)
        self.out: _Sink = io.BytesIO()  # run() sets the real one
        self.changed = False
        self.removed_formulas: list[str] = []  # cells whose formula a value replaced
        self.merged: list[tuple[int, int, int, int]] = []
        self.arrays: list[tuple[int, int, int, int]] = []  # multi-cell array formula ranges
        self.orphans: dict[bytes, tuple[str, str]] = {}  # shared formula id → (text, master)
        self.col_styles: list[tuple[int, int, int]] = []
        self.last_row = 0
        self.inserted_before = False
        self.warned_styles = False
        self.xf_cache: dict[tuple[int, int, type], int] = {}
        # What follows a new cell's row number in its XML, by (write, base style); b"" for
        # a write that creates no cell. Keyed on the write object, alive while the patch runs.
        self.cell_tails: dict[tuple[int, int], bytes] = {}

    # -- the stream

    def run(self, source: IO[bytes], out: _Sink) -> None:
        """Copy the part from source to out, patched."""
        self.out = out
        buf, match = self._read_head(source)
        self.names = _Names(match.group(1) or b"", self.date1904)
        out.write(self._patch_head(buf[: match.start()]))
        tag = match.group(0)
        if tag.endswith(b"/>"):  # an empty sheet: <sheetData/>
            out.write(tag[:-2].rstrip() + b">")
            out.write(self._new_rows_before(None))
            out.write(self.names.sheet_data_end)
            self._copy_tail(buf[match.end():], source)
            return
        out.write(tag)
        self._stream_rows(buf[match.end():], source)

    def _read_head(self, source: IO[bytes]) -> tuple[bytes, re.Match[bytes]]:
        buf = b""
        while True:
            chunk = source.read(_CHUNK)
            buf += chunk
            if len(buf) == len(chunk):
                _check_encoding(buf)
            match = _SHEET_DATA.search(buf)
            if match:
                return buf, match
            if not chunk:
                raise InputError("Het werkblad heeft geen celgegevens (<sheetData> ontbreekt).")

    def _stream_rows(self, buf: bytes, source: IO[bytes]) -> None:
        end_tag, row_end = self.names.sheet_data_end, self.names.row_end
        while True:
            stop = buf.find(end_tag)
            if stop >= 0:
                self._rows(buf, stop)
                self.out.write(self._new_rows_before(None))
                self.out.write(end_tag)
                self._copy_tail(buf[stop + len(end_tag):], source)
                return
            cut = buf.rfind(row_end)
            if cut >= 0:
                cut += len(row_end)
                self._rows(buf, cut)
                buf = buf[cut:]
            chunk = source.read(_CHUNK)
            if not chunk:
                raise InputError("Het werkblad is afgebroken (</sheetData> ontbreekt).")
            buf += chunk

    def _copy_tail(self, rest: bytes, source: IO[bytes]) -> None:
        """Copy what follows <sheetData> unchanged, noting merged ranges for the tables."""
        tail = rest + source.read()
        for match in self.names.merge_re.finditer(tail):
            ref = _attr(match.group(0), b"ref")
            with contextlib.suppress(ValueError):  # a nonsense range merges nothing
                self.merged.append(_parse_range((ref or b"").decode()))
        self.out.write(tail)

    # -- rows

    def _rows(self, buf: bytes, stop: int) -> None:
        """Process the complete rows in buf[:stop], writing through what does not change."""
        names, rows, writes = self.names, self.rows, self.writes
        # The regex has no literal prefix to search for; memchr-fast find()s rule it out first.
        if ((buf.find(b"array", 0, stop) >= 0 or buf.find(b"dataTable", 0, stop) >= 0)
                and _ARRAY_HINT.search(buf, 0, stop)):
            self._note_arrays(buf[:stop])
        parts: list[bytes] = []
        pos = flushed = 0
        while True:
            match = names.row_re.search(buf, pos, stop)
            if match is None:
                break
            start, tag = match.start(), match.group(0)
            if tag.endswith(b"/>"):
                end = match.end()
            else:
                end = buf.find(names.row_end, match.end(), stop)
                if end < 0:
                    raise InputError("Het werkblad bevat een onvolledige rij.")
                end += len(names.row_end)
            r = _R_ROW.search(tag)
            number = int(r.group(1)) if r else self.last_row + 1
            pending = rows[self.next] if self.next < len(rows) else MAX_ROW + 1
            if pending < number:
                parts.append(buf[flushed:start])
                flushed = start
                parts.append(self._new_rows_before(number))
                pending = rows[self.next] if self.next < len(rows) else MAX_ROW + 1
            row = new = buf[start:end]
            if pending == number:
                new = self._patch_row(row, match.end() - start, number, writes[number])
                self.next += 1
            elif self.orphans and b"si=" in row:
                new = self._fix_orphans(row, number)
            if r is None and self.inserted_before:
                # A row without r is numbered after the previous one; keep that true.
                new = self._with_row_number(new, number)
            self.inserted_before = False
            if new is not row:
                parts += (buf[flushed:start], new)
                flushed = end
            self.last_row = number
            pos = end
        parts.append(buf[flushed:stop])
        self.out.write(b"".join(parts))

    def _new_rows_before(self, number: int | None) -> bytes:
        """New <row>s for the written rows that come before row `number` (None: all)."""
        parts: list[bytes] = []
        while self.next < len(self.rows) and (number is None or self.rows[self.next] < number):
            row = self.rows[self.next]
            self.next += 1
            digits = b"%d" % row
            cells = [self._new_cell(row, digits, col, write, self._column_style(col))
                     for col, write in self.writes[row]]
            body = b"".join(cell for cell in cells if cell)
            if body:
                p = self.names.prefix
                parts.append(b"<" + p + b'row r="' + digits + b'">' + body + self.names.row_end)
                self.inserted_before = True
        return b"".join(parts)

    def _with_row_number(self, row: bytes, number: int) -> bytes:
        match = self.names.row_re.match(row)
        assert match is not None
        return _set_attr(match.group(0), b"r", b"%d" % number) + row[match.end():]

    def _patch_row(self, row: bytes, tag_end: int, number: int,
                   writes: list[tuple[int, CellWrite]]) -> bytes:
        """The row with these cells written; the very same object when nothing changed."""
        names, original = self.names, row
        tag = row[:tag_end]
        if not (self.arrays or self.orphans or tag.endswith(b"/>")):
            appended = self._appended(row, tag, number, writes)
            if appended is not None:
                return appended
        if tag.endswith(b"/>"):  # <row r="7"/>: give it a body to put cells in
            tag = tag[:-2].rstrip() + b">"
            row, tag_end = tag + names.row_end, len(tag)
        body_end = len(row) - len(names.row_end)
        digits = b"%d" % number
        found = (self._existing_cells(row, tag_end, body_end, writes, digits)
                 or self._cells_from(row, tag_end, body_end, writes[0][0]))
        renumbered = found is None
        if found is None:  # cells without r: give them one, then an insert cannot shift them
            row = tag + self._number_cells(row[tag_end:body_end], number) + names.row_end
            body_end = len(row) - len(names.row_end)
            found = self._cells_from(row, tag_end, body_end, writes[0][0])
            assert found is not None
        body, added = self._splice(row, found, tag_end, body_end, number, writes,
                                   _row_style(tag))
        touched = body is not None or renumbered
        body = row[tag_end:body_end] if body is None else body
        if self.orphans and b"si=" in body:
            fixed = self._fix_orphans_in(body, number)
            touched = touched or fixed is not body
            body = fixed
        if not touched:
            return original
        return _widen_spans(tag, added) + body + names.row_end

    def _appended(self, row: bytes, tag: bytes, number: int,
                  writes: list[tuple[int, CellWrite]]) -> bytes | None:
        """The row with new cells after its last one, when every write lies right of it.

        The quick path for the tool columns of a first `flag` (every row gets two or three
        new cells at its end); None leaves the row to the general path.
        """
        names = self.names
        body_end = len(row) - len(names.row_end)
        k = row.rfind(names.cell_open, len(tag), body_end)
        match = names.cell_re.match(row, k, body_end) if k >= 0 else None
        if match is None:  # no cells, or the last <c is rich text's <color…>: the general path
            return None
        r = _R_CELL.search(match.group(0))
        if r is None or _column_number(r.group(1)) >= writes[0][0]:
            return None
        end = match.end()
        if row[end - 2] != 47:  # not self-closing: the cell ends at its </c>
            end = row.find(names.cell_end, end, body_end)
            if end < 0:
                return None  # the general path reports the broken cell
            end += len(names.cell_end)
        row_style = _row_style(tag)
        digits = b"%d" % number
        tails = self.cell_tails
        cells: list[bytes] = []
        added: tuple[int, ...] = ()
        for col, write in writes:
            base = row_style if row_style is not None else self._column_style(col)
            tail = tails.get((id(write), base))
            if tail is None:
                cell = self._new_cell(number, digits, col, write, base) or b""
                tail = tails[(id(write), base)] = cell[len(names.cell_open + b' r="') +
                                                       len(_letters(col) + digits):]
            if tail:
                cells += (names.cell_open, b' r="', _letters(col), digits, tail)
                added += (col,)
        if not added:
            return row
        self.changed = True
        return _widen_spans(tag, added) + row[len(tag):end] + b"".join(cells) + row[end:]

    def _splice(self, row: bytes, found: tuple[list[tuple[int, int, int]], int], lo: int,
                hi: int, number: int, writes: list[tuple[int, CellWrite]],
                row_style: int | None) -> tuple[bytes | None, tuple[int, ...]]:
        """The row body with the cells written (None: unchanged), and the columns it added."""
        cells, append_at = found
        digits = b"%d" % number
        pieces: list[bytes] = []
        added: tuple[int, ...] = ()
        pos, i = lo, 0
        for col, write in writes:
            while i < len(cells) and cells[i][0] < col:
                i += 1
            if i < len(cells) and cells[i][0] == col:  # overwrite the cell in place
                _, start, end = cells[i]
                new = self._overwrite(row[start:end], number, digits, col, write)
                if new is not None:
                    pieces += (row[pos:start], new)
                    pos = end
                i += 1
                continue
            at = cells[i][1] if i < len(cells) else append_at  # insert before the next one
            base = row_style if row_style is not None else self._column_style(col)
            created = self._new_cell(number, digits, col, write, base)
            if created:
                pieces += (row[pos:at], created)
                pos = at
                added += (col,)
        if not pieces:
            return None, added
        return b"".join(pieces) + row[pos:hi], added

    def _existing_cells(self, row: bytes, lo: int, hi: int, writes: list[tuple[int, CellWrite]],
                        digits: bytes) -> tuple[list[tuple[int, int, int]], int] | None:
        """The written cells when every one of them exists as <c r="…" (quick path), else None.

        A run that changes nothing overwrites every cell with itself: find each by its
        reference instead of parsing the row.
        """
        found: list[tuple[int, int, int]] = []
        start = self.names.cell_open + b' r="'
        for col, _ in writes:
            k = row.find(start + _letters(col) + digits + b'"', lo, hi)
            if k < 0:
                return None
            end = row.find(b">", k, hi) + 1
            if end == 0:
                raise InputError("Het werkblad bevat een onvolledige cel.")
            if row[end - 2] != 47:  # not self-closing: the cell ends at its </c>
                end = row.find(self.names.cell_end, end, hi)
                if end < 0:
                    raise InputError("Het werkblad bevat een onvolledige cel.")
                end += len(self.names.cell_end)
            found.append((col, k, end))
        return found, hi

    def _cells_from(self, row: bytes, lo: int, hi: int,
                    min_col: int) -> tuple[list[tuple[int, int, int]], int] | None:
        """The cells at or right of min_col, and where a cell after the last one goes.

        Scans from the end of the row: written columns are mostly the rightmost ones, so
        the cells to their left are never parsed. None when a cell has no r attribute.
        """
        names = self.names
        found: list[tuple[int, int, int]] = []  # (col, start, end)
        append_at = -1
        limit = hi
        while True:
            k = row.rfind(names.cell_open, lo, limit)
            if k < 0:
                break
            limit = k
            match = names.cell_re.match(row, k, hi)
            if match is None:  # <col…, <color… inside rich text: not a cell
                continue
            end = match.end()
            if row[end - 2] != 47:  # not self-closing: the cell ends at its </c>
                end = row.find(names.cell_end, end, hi)
                if end < 0:
                    raise InputError("Het werkblad bevat een onvolledige cel.")
                end += len(names.cell_end)
            if append_at < 0:
                append_at = end
            r = _R_CELL.search(match.group(0))
            if r is None:
                return None
            col = _column_number(r.group(1))
            if col < min_col:
                break
            found.append((col, k, end))
        found.reverse()
        return found, append_at if append_at >= 0 else lo

    def _number_cells(self, body: bytes, number: int) -> bytes:
        """Give every cell of the row an explicit r attribute (same meaning, safe to insert)."""
        col = 0
        pieces: list[bytes] = []
        pos = 0
        for match in self.names.cell_re.finditer(body):
            r = _R_CELL.search(match.group(0))
            col = _column_number(r.group(1)) if r else col + 1
            if r is None:
                ref = f"{column_letters(col)}{number}".encode()
                pieces += [body[pos: match.start()], _set_attr(match.group(0), b"r", ref)]
                pos = match.end()
        self.changed = True
        return b"".join(pieces) + body[pos:]

    # -- cells

    def _overwrite(self, old: bytes, row: int, digits: bytes, col: int,
                   write: CellWrite) -> bytes | None:
        """The new XML of an existing cell; None when it already is that."""
        if self.arrays:
            self._check_arrays(row, col)
        s = _S_ATTR.search(old, 0, old.find(b">"))
        base = int(s.group(1)) if s else 0
        ref = _letters(col) + digits
        new = self.names.cell(ref, self._style(base, write), write.value)
        if new == old:
            return None
        formula = self.names.formula_re.search(old)
        if formula:
            self._note_removed_formula(formula, ref.decode())
        self.changed = True
        return new

    def _new_cell(self, row: int, digits: bytes, col: int, write: CellWrite,
                  base: int) -> bytes | None:
        """The XML of a cell that did not exist; None when it would hold nothing new."""
        if write.style is None and _is_empty(write.value):
            return None
        if self.arrays:
            self._check_arrays(row, col)
        self.changed = True
        return self.names.cell(_letters(col) + digits, self._style(base, write), write.value)

    def _style(self, base: int, write: CellWrite) -> int:
        """The cellXfs index for a written cell, derived from the one it has."""
        value = write.value
        if write.style is None and not isinstance(value, date):
            return base
        if self.styles is None:
            if not self.warned_styles:
                log.warning("workbook has no styles part; cell styles are not applied")
                self.warned_styles = True
            return base
        # Keyed on the style object: the writes keep it alive while the patch runs.
        key = (base, id(write.style), type(value))
        xf = self.xf_cache.get(key)
        if xf is None:
            kind = ("datetime" if isinstance(value, datetime)
                    else "date" if isinstance(value, date) else None)
            xf = self.xf_cache[key] = self.styles.xf_for(base, write.style, kind)
        return xf

    def _column_style(self, col: int) -> int:
        """The style a new cell in this column starts from: the column's own, as Excel does."""
        if not self.col_styles:
            return 0
        return next((style for first, last, style in self.col_styles if first <= col <= last), 0)

    # -- formulas

    def _note_arrays(self, region: bytes) -> None:
        for match in self.names.formula_re.finditer(region):
            attrs = match.group(1)
            ref = _attr(attrs, b"ref")
            if ref and _attr(attrs, b"t") in (b"array", b"dataTable"):
                box = _parse_range(ref.decode())
                if box[:2] != box[2:]:
                    self.arrays.append(box)

    def _check_arrays(self, row: int, col: int) -> None:
        for box in self.arrays:
            if box[0] <= row <= box[2] and box[1] <= col <= box[3]:
                raise InputError(
                    f"Cel {column_letters(col)}{row} hoort bij een matrixformule "
                    f"({_range_text(box)}); die kan niet cel voor cel worden overschreven. "
                    f"Verwijder de formule of verplaats de kolom.")

    def _note_removed_formula(self, formula: re.Match[bytes], ref: str) -> None:
        """Remember a replaced formula for calcChain, and orphaned shared-formula cells."""
        self.removed_formulas.append(ref)
        attrs = formula.group(1)
        si, master_ref = _attr(attrs, b"si"), _attr(attrs, b"ref")
        if _attr(attrs, b"t") == b"shared" and si is not None and master_ref is not None:
            text = unescape((formula.group(2) or b"").decode("utf-8"), {"&quot;": '"'})
            self.orphans[si] = (text, ref)

    def _fix_orphans(self, row: bytes, number: int) -> bytes:
        match = self.names.row_re.match(row)
        assert match is not None
        body = row[match.end():]
        fixed = self._fix_orphans_in(body, number)
        return row if fixed is body else row[: match.end()] + fixed

    def _fix_orphans_in(self, body: bytes, number: int) -> bytes:
        """Give cells that shared a removed master formula their own copy of it."""
        pieces: list[bytes] = []
        pos = 0
        for match in self.names.cell_re.finditer(body):
            r = _R_CELL.search(match.group(0))
            cell_end = body.find(self.names.cell_end, match.end())
            if r is None or match.group(0).endswith(b"/>") or cell_end < 0:
                continue
            formula = self.names.formula_re.search(body, match.end(), cell_end)
            if formula is None:
                continue
            attrs = formula.group(1)
            si = _attr(attrs, b"si")
            if _attr(attrs, b"t") != b"shared" or si not in self.orphans or _attr(attrs, b"ref"):
                continue
            ref = f"{r.group(1).decode().upper()}{int(r.group(2))}"
            pieces += [body[pos: formula.start()], self._own_formula(si, ref)]
            pos = formula.end()
        if not pieces:
            return body
        self.changed = True
        return b"".join(pieces) + body[pos:]

    def _own_formula(self, si: bytes, ref: str) -> bytes:
        from openpyxl.formula.translate import Translator, TranslatorError

        text, master = self.orphans[si]
        try:
            moved = Translator("=" + text, origin=master).translate_formula(ref)[1:]
        except TranslatorError as err:
            raise InputError(f"De gedeelde formule van cel {master} kan niet naar {ref} "
                             f"worden overgezet: {err}") from err
        f = self.names.prefix + b"f"
        return b"<" + f + b">" + escape(moved).encode("utf-8") + b"</" + f + b">"

    # -- head: <dimension> and <cols>

    def _patch_head(self, head: bytes) -> bytes:
        head = self._widen_dimension(head)
        return self._patch_cols(head)

    def _written_box(self) -> tuple[int, int, int, int] | None:
        """The range of the cells this write puts into the sheet (not the empty no-ops)."""
        rows: list[int] = []
        left, right = MAX_COL + 1, 0
        for row, writes in self.writes.items():
            emitting = [col for col, write in writes
                        if write.style is not None or not _is_empty(write.value)]
            if emitting:
                rows.append(row)
                left, right = min(left, emitting[0]), max(right, emitting[-1])
        return (rows[0], left, rows[-1], right) if rows else None

    def _widen_dimension(self, head: bytes) -> bytes:
        """Widen <dimension ref> over the written cells: pandas and openpyxl trust it."""
        match = self.names.dimension_re.search(head)
        box = self._written_box()
        if match is None or box is None:
            return head
        ref = _attr(match.group(0), b"ref")
        try:
            old = _parse_range(ref.decode()) if ref else box
        except ValueError:
            old = box
        new = (min(old[0], box[0]), min(old[1], box[1]), max(old[2], box[2]), max(old[3], box[3]))
        if new == old:
            return head
        text = _range_text(new).encode()
        self.changed = True
        return head[: match.start()] + _set_attr(match.group(0), b"ref", text) + head[match.end():]

    def _patch_cols(self, head: bytes) -> bytes:
        """Note column styles; add <col> entries for widths of columns that have none."""
        names = self.names
        match = names.cols_re.search(head)
        entries: list[tuple[int, int, int]] = []  # (min, max, position in head)
        if match:
            for entry in names.col_re.finditer(head, match.start(), match.end()):
                first, last = _attr(entry.group(0), b"min"), _attr(entry.group(0), b"max")
                if not (first and last and first.isdigit() and last.isdigit()):
                    continue
                entries.append((int(first), int(last), entry.start()))
                style = _attr(entry.group(0), b"style")
                if style and style.isdigit():
                    self.col_styles.append((int(first), int(last), int(style)))
        missing = sorted(col for col in self.widths
                         if not any(first <= col <= last for first, last, _ in entries))
        if not missing:
            return head
        self.changed = True
        p = names.prefix
        new = {col: b"<" + p + b'col min="%d" max="%d" width="%s" customWidth="1"/>'
               % (col, col, _number_text(float(self.widths[col])).encode()) for col in missing}
        if match is None:  # <cols> comes directly before <sheetData>
            return head + b"<" + p + b"cols>" + b"".join(new.values()) + b"</" + p + b"cols>"
        if match.group(0).endswith(b"/>"):
            tag = match.group(0)[:-2].rstrip() + b">"
            inner = tag + b"".join(new.values()) + b"</" + p + b"cols>"
            return head[: match.start()] + inner + head[match.end():]
        close = match.end() - len(b"</" + p + b"cols>")
        pieces, pos = [], 0
        for col in missing:
            at = next((where for first, _, where in entries if first > col), close)
            pieces += [head[pos:at], new[col]]
            pos = at
        return b"".join(pieces) + head[pos:]


def _widen_spans(tag: bytes, cols: tuple[int, ...]) -> bytes:
    """Widen the row's spans hint over added cells (a single span when they fall outside)."""
    if not cols:
        return tag
    i = tag.find(b' spans="')
    j = tag.find(b'"', i + 8) if i >= 0 else -1
    if j < 0:  # unusual quoting or no spans at all
        spans = _attr(tag, b"spans")
        new = _widened(spans, cols) if spans else None
        return tag if new is None or new == spans else _set_attr(tag, b"spans", new)
    spans = tag[i + 8: j]
    new = _widened(spans, cols)
    return tag if new == spans else tag[: i + 8] + new + tag[j:]


def _row_style(tag: bytes) -> int | None:
    """The style of a row formatted as a whole (customFormat): new cells in it start there."""
    if b"customFormat" not in tag or _attr(tag, b"customFormat") not in (b"1", b"true"):
        return None
    s = _attr(tag, b"s")
    return int(s) if s and s.isdigit() else None


@functools.lru_cache(maxsize=256)
def _widened(spans: bytes, cols: tuple[int, ...]) -> bytes:
    try:
        parts = [tuple(int(n) for n in span.split(b":")) for span in spans.split()]
    except ValueError:
        return spans
    if all(any(lo <= col <= hi for lo, hi in parts) for col in cols):
        return spans
    return b"%d:%d" % (min(parts[0][0], *cols), max(parts[-1][-1], *cols))


def _check_encoding(head: bytes) -> None:
    """Refuse sheet XML that is not UTF-8 (Excel never writes anything else)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("Het werkblad is in UTF-16 opgeslagen; dat wordt niet ondersteund.")
    match = _XML_ENCODING.match(head)
    if match and match.group(1).lower() not in (b"utf-8", b"utf8"):
        raise InputError(f"Het werkblad gebruikt tekenset {match.group(1).decode()}; "
                         f"alleen UTF-8 wordt ondersteund.")


# ---------------------------------------------------------------------------- styles

_BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9,
                    "0.00%": 10, "0.00E+00": 11, "@": 49}
_BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)}
_FORMAT_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_ARGB = re.compile(r"[0-9A-Fa-f]{8}")
_XML_ATTRS = re.compile(r"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _argb(color: str) -> str:
    """An ARGB colour as Excel writes it; a 6-digit RGB gets an opaque alpha."""
    color = color.lstrip("#")
    if len(color) == 6:
        color = "FF" + color
    if not _ARGB.fullmatch(color):
        raise ValueError(f"not an ARGB colour: {color!r}")
    return color.upper()


def _looks_like_date(code: str) -> bool:
    return bool(re.search(r"[dmyhs]", _FORMAT_LITERALS.sub("", code), re.I))


@dataclass
class _Section:
    """One list in styles.xml (<fonts>, <fills>, <cellXfs>, <numFmts>) and what is appended."""

    start: int  # where the section element starts in the text (-1: absent)
    end: int
    open_tag: str
    items: list[str]
    added: list[str] = field(default_factory=list)

    def index_of(self, xml: str) -> int:
        """The index of an identical item, appending it when there is none."""
        for i, item in enumerate(self.items + self.added):
            if item == xml:
                return i
        self.added.append(xml)
        return len(self.items) + len(self.added) - 1


class _Styles:
    """styles.xml as text: fonts, fills, numFmts and cellXfs are appended to, never renumbered."""

    def __init__(self, data: bytes) -> None:
        self.text = data.decode("utf-8")
        root = re.search(r"<([A-Za-z_][\w.-]*:)?styleSheet\b[^>]*>", self.text)
        if root is None:
            raise InputError("De stijlen van de werkmap (styles.xml) zijn onleesbaar.")
        self.root_end = root.end()
        self.p = root.group(1) or ""
        self.sections = {name: self._section(name, child) for name, child in
                         (("numFmts", "numFmt"), ("fonts", "font"), ("fills", "fill"),
                          ("cellXfs", "xf"))}
        self.xf_keys: dict[tuple[frozenset[tuple[str, str]], str], int] = {}
        self.cache: dict[tuple[int, CellStyle | None, str | None], int] = {}

    def _section(self, name: str, child: str) -> _Section:
        p = re.escape(self.p)
        match = re.search(rf"<{p}{name}\b[^>]*?(?:/>|>(.*?)</{p}{name}>)", self.text, re.S)
        if match is None:
            return _Section(-1, -1, "", [])
        items = re.findall(rf"<{p}{child}\b[^>]*?(?:/>|>.*?</{p}{child}>)", match.group(1) or "",
                           re.S)
        open_tag = re.match(rf"<{p}{name}\b[^>]*>", match.group(0))
        assert open_tag is not None
        return _Section(match.start(), match.end(), open_tag.group(0), items)

    @property
    def changed(self) -> bool:
        return any(section.added for section in self.sections.values())

    def xf_for(self, base: int, style: CellStyle | None, kind: str | None) -> int:
        """The cellXfs index for `base` changed by `style`; a date gets a date format."""
        key = (base, style, kind)
        if key not in self.cache:
            self.cache[key] = self._derive(base, style or CellStyle(), kind)
        return self.cache[key]

    def _derive(self, base: int, style: CellStyle, kind: str | None) -> int:
        xfs = self.sections["cellXfs"]
        if not xfs.items:
            log.warning("styles.xml has no cellXfs; cell styles are not applied")
            return base
        base = base if 0 <= base < len(xfs.items) else 0
        start, inner, end = _split_element(xfs.items[base])
        attrs = dict(_parse_attrs(start))
        new = dict(attrs)
        number_format = style.number_format
        if number_format is None and kind and not self._is_date(attrs.get("numFmtId", "0")):
            number_format = DATETIME_FORMAT if kind == "datetime" else DATE_FORMAT
        if number_format is not None:
            new["numFmtId"] = str(self._num_fmt(number_format))
            new["applyNumberFormat"] = "1"
        if style.bold or style.font_color:
            new["fontId"] = str(self._font(int(attrs.get("fontId", "0")), style))
            new["applyFont"] = "1"
        if style.fill:
            new["fillId"] = str(self._fill(style.fill))
            new["applyFill"] = "1"
        if new == attrs:
            return base
        return self._xf(new, inner, start, end)

    def _xf(self, attrs: dict[str, str], inner: str, start: str, end: str) -> int:
        """The index of an identical <xf>, appending one when there is none."""
        xfs = self.sections["cellXfs"]
        if not self.xf_keys:
            for i, item in enumerate(xfs.items):
                s, body, _ = _split_element(item)
                self.xf_keys.setdefault((frozenset(_parse_attrs(s)), body.strip()), i)
        key = (frozenset(attrs.items()), inner.strip())
        if key not in self.xf_keys:
            name = re.match(r"<([\w:.-]+)", start)
            assert name is not None
            text = "".join(f' {k}="{v}"' for k, v in attrs.items())
            xml = (f"<{name.group(1)}{text}>{inner}{end}" if inner
                   else f"<{name.group(1)}{text}/>")
            xfs.added.append(xml)
            self.xf_keys[key] = len(xfs.items) + len(xfs.added) - 1
        return self.xf_keys[key]

    def _is_date(self, num_fmt_id: str) -> bool:
        ident = int(num_fmt_id) if num_fmt_id.isdigit() else 0
        if ident in _BUILTIN_DATE_FORMATS:
            return True
        code = self._custom_formats().get(ident)
        return code is not None and _looks_like_date(code)

    def _custom_formats(self) -> dict[int, str]:
        section = self.sections["numFmts"]
        formats: dict[int, str] = {}
        for item in section.items + section.added:
            attrs = dict(_parse_attrs(item))
            if attrs.get("numFmtId", "").isdigit():
                formats[int(attrs["numFmtId"])] = unescape(attrs.get("formatCode", ""),
                                                           {"&quot;": '"', "&apos;": "'"})
        return formats

    def _num_fmt(self, code: str) -> int:
        if code in _BUILTIN_FORMATS:
            return _BUILTIN_FORMATS[code]
        formats = self._custom_formats()
        for ident, existing in formats.items():
            if existing == code:
                return ident
        ident = max([163, *formats]) + 1
        quoted = escape(code, {'"': "&quot;"})
        self.sections["numFmts"].added.append(
            f'<{self.p}numFmt numFmtId="{ident}" formatCode="{quoted}"/>')
        return ident

    def _font(self, base: int, style: CellStyle) -> int:
        fonts = self.sections["fonts"]
        p = re.escape(self.p)
        source = fonts.items[base] if 0 <= base < len(fonts.items) else f"<{self.p}font/>"
        start, inner, end = _split_element(source)
        end = end or f"</{self.p}font>"
        if style.bold:
            inner = f"<{self.p}b/>" + re.sub(rf"<{p}b\b[^>]*/>", "", inner)
        if style.font_color:
            inner = re.sub(rf"<{p}color\b[^>]*?(?:/>|>.*?</{p}color>)", "", inner, flags=re.S)
            at = re.search(rf"<{p}(?:name|family|charset|scheme)\b", inner)
            pos = at.start() if at else len(inner)
            inner = (f'{inner[:pos]}<{self.p}color rgb="{_argb(style.font_color)}"/>'
                     f"{inner[pos:]}")
        return fonts.index_of(start + inner + end)

    def _fill(self, color: str) -> int:
        p = self.p
        xml = (f'<{p}fill><{p}patternFill patternType="solid"><{p}fgColor rgb="{_argb(color)}"/>'
               f'<{p}bgColor indexed="64"/></{p}patternFill></{p}fill>')
        return self.sections["fills"].index_of(xml)

    def render(self) -> bytes:
        """styles.xml with the appended entries and bumped counts; other bytes untouched."""
        text = self.text
        edits: list[tuple[int, int, str]] = []
        for name, section in self.sections.items():
            if not section.added:
                continue
            count = len(section.items) + len(section.added)
            if section.start < 0:
                if name != "numFmts":
                    raise InputError(f"styles.xml mist <{name}>; stijlen kunnen niet worden "
                                     f"toegevoegd.")
                xml = (f'<{self.p}numFmts count="{count}">{"".join(section.added)}'
                       f"</{self.p}numFmts>")
                edits.append((self.root_end, self.root_end, xml))
                continue
            old = text[section.start: section.end]
            open_tag = section.open_tag
            if open_tag.endswith("/>"):
                open_tag = open_tag[:-2].rstrip() + ">"
                body = ""
            else:
                body = old[len(open_tag): old.rindex("</")]
            if re.search(r"\scount\s*=", open_tag):
                open_tag = re.sub(r"(\scount\s*=\s*)([\"'])\d*\2", rf'\g<1>"{count}"', open_tag)
            xml = f"{open_tag}{body}{''.join(section.added)}</{self.p}{name}>"
            edits.append((section.start, section.end, xml))
        for start, end, xml in sorted(edits, reverse=True):
            text = text[:start] + xml + text[end:]
        return text.encode("utf-8")


def _split_element(xml: str) -> tuple[str, str, str]:
    """'<a x="1"><b/></a>' → ('<a x="1">', '<b/>', '</a>'); a self-closing one has no end."""
    match = re.match(r"<[^>]*?(/?)>", xml)
    assert match is not None
    if match.group(1):
        return match.group(0)[:-2].rstrip() + ">", "", ""
    close = xml.rindex("</")
    return match.group(0), xml[match.end(): close], xml[close:]


def _parse_attrs(tag: str) -> list[tuple[str, str]]:
    head = re.match(r"<[^>]*>", tag)
    text = head.group(0) if head else tag
    return [(m.group(1), m.group(2) if m.group(2) is not None else m.group(3))
            for m in _XML_ATTRS.finditer(text)]


# ---------------------------------------------------------------------------- tables


@dataclass
class _Table:
    """An Excel table (ListObject) on the sheet, as far as extending it needs."""

    part: str
    text: str
    name: str
    box: tuple[int, int, int, int]
    header_rows: int
    totals_rows: int
    table_type: str
    columns: list[str]
    ids: list[int]

    @property
    def extendable(self) -> bool:
        # A totals row would have to move; a query table owns its columns: stay outside.
        return self.totals_rows == 0 and self.table_type in ("", "worksheet")


def _load_table(zin: zipfile.ZipFile, part: str) -> _Table:
    data = zin.read(part)
    root = _parse_xml(data, part)
    columns = [el for el in root.iter() if isinstance(el.tag, str) and _local(el.tag) ==
               "tableColumn"]
    return _Table(
        part=part,
        text=data.decode("utf-8"),
        name=root.get("displayName") or root.get("name") or part,
        box=_parse_range(root.get("ref", "A1")),
        header_rows=int(root.get("headerRowCount", "1")),
        totals_rows=int(root.get("totalsRowCount", "0")),
        table_type=root.get("tableType", ""),
        columns=[el.get("name", "") for el in columns],
        ids=[int(el.get("id", "0")) for el in columns],
    )


def _extend_tables(tables: list[_Table], flat: Mapping[tuple[int, int], CellWrite],
                   header_row: int | None, merged: list[tuple[int, int, int, int]],
                   ) -> dict[str, bytes]:
    """The table parts whose ref grows over the written headers and rows, as new XML."""
    changed: dict[str, bytes] = {}
    for table in tables:
        blocked = merged + [other.box for other in tables if other is not table]
        renames = _renamed_columns(table, flat)
        added = _added_columns(table, flat, header_row, blocked) if table.extendable else []
        box = table.box
        if added:
            box = (box[0], box[1], box[2], box[3] + len(added))
        if table.extendable:
            box = _grown_down(box, flat, blocked)
        if box != table.box or renames:
            changed[table.part] = _table_xml(table, box, added, renames).encode("utf-8")
    return changed


def _header_text(write: CellWrite | None) -> str | None:
    if write is None or not isinstance(write.value, str):
        return None
    return clean_text(write.value) or None


def _renamed_columns(table: _Table, flat: Mapping[tuple[int, int], CellWrite]) -> dict[int, str]:
    """Header cells written inside the table: its column must carry the same name."""
    if not table.header_rows:
        return {}
    r1, c1, _, c2 = table.box
    renames: dict[int, str] = {}
    for col in range(c1, c2 + 1):
        if (r1, col) not in flat:
            continue
        index = col - c1
        name = _header_text(flat[(r1, col)])
        if name is None:
            raise InputError(f"Kopcel {column_letters(col)}{r1} van tabel {table.name} moet "
                             f"een tekst zijn.")
        if index < len(table.columns) and name != table.columns[index]:
            renames[index] = name
    names = [renames.get(i, column) for i, column in enumerate(table.columns)]
    if len({n.casefold() for n in names}) != len(names):
        raise InputError(f"Kolomnamen in tabel {table.name} moeten uniek zijn.")
    return renames


def _added_columns(table: _Table, flat: Mapping[tuple[int, int], CellWrite],
                   header_row: int | None, blocked: list[tuple[int, int, int, int]],
                   ) -> list[str]:
    """Header texts written directly right of the table, contiguous, unique, unobstructed."""
    r1, _, r2, c2 = table.box
    if not table.header_rows or (header_row is not None and header_row != r1):
        return []
    taken = {name.casefold() for name in table.columns}
    added: list[str] = []
    col = c2 + 1
    while col <= MAX_COL:
        name = _header_text(flat.get((r1, col)))
        area = (r1, col, r2, col)
        if name is None or name.casefold() in taken or any(_overlaps(area, b) for b in blocked):
            if name is not None and name.casefold() in taken:
                log.warning("table %s not extended over %s: column name %r already used",
                            table.name, f"{column_letters(col)}{r1}", name)
            break
        taken.add(name.casefold())
        added.append(name)
        col += 1
    return added


def _grown_down(box: tuple[int, int, int, int], flat: Mapping[tuple[int, int], CellWrite],
                blocked: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """Extend the table over rows written directly below it (appended registrations)."""
    r1, c1, r2, c2 = box
    row = r2 + 1
    while row <= MAX_ROW and any(not _is_empty(flat[(row, col)].value)
                                 for col in range(c1, c2 + 1) if (row, col) in flat):
        if any(_overlaps((row, c1, row, c2), other) for other in blocked):
            break
        row += 1
    return r1, c1, row - 1, c2


def _table_xml(table: _Table, box: tuple[int, int, int, int], added: list[str],
               renames: dict[int, str]) -> str:
    """The table part with a new ref, autoFilter ref, renamed and appended tableColumns."""
    text = table.text
    root = re.search(r"<([A-Za-z_][\w.-]*:)?table\b[^>]*>", text)
    assert root is not None
    p = root.group(1) or ""
    ref = _range_text(box)
    pieces: list[str] = []
    pos = 0

    def replace(start: int, end: int, new: str) -> None:
        nonlocal pos
        pieces.extend((text[pos:start], new))
        pos = end

    replace(root.start(), root.end(), _set_str_attr(root.group(0), "ref", ref))
    auto = re.compile(rf"<{re.escape(p)}autoFilter\b[^>]*>").search(text, root.end())
    if auto and box != table.box:
        replace(auto.start(), auto.end(), _set_str_attr(auto.group(0), "ref", ref))
    column_re = re.compile(rf"<{re.escape(p)}tableColumn\b[^>]*>")
    for index, match in enumerate(column_re.finditer(text, pos)):
        if index in renames:
            replace(match.start(), match.end(),
                    _set_str_attr(match.group(0), "name", _column_name_xml(renames[index])))
    if added:
        columns = re.compile(rf"<{re.escape(p)}tableColumns\b[^>]*>").search(text, pos)
        close = text.find(f"</{p}tableColumns>", pos)
        assert columns is not None and close >= 0
        count = str(len(table.columns) + len(added))
        replace(columns.start(), columns.end(), _set_str_attr(columns.group(0), "count", count))
        next_id = max([0, *table.ids]) + 1
        new = "".join(f'<{p}tableColumn id="{next_id + i}" name="{_column_name_xml(name)}"/>'
                      for i, name in enumerate(added))
        replace(close, close, new)
    pieces.append(text[pos:])
    return "".join(pieces)


def _column_name_xml(name: str) -> str:
    # Excel writes a line break in a column name as _x000a_ and an underscore escape as _x005F_.
    name = _OOXML_ESCAPE.sub(r"_x005F_\1", name)
    name = re.sub(r"[\t\n\r]", lambda m: f"_x{ord(m.group(0)):04x}_", name)
    return escape(name, {'"': "&quot;"})


def _set_str_attr(tag: str, name: str, value: str) -> str:
    pattern = re.compile(rf"(\s{name}\s*=\s*)(?:\"[^\"]*\"|'[^']*')")
    if pattern.search(tag):
        return pattern.sub(lambda m: f'{m.group(1)}"{value}"', tag, count=1)
    end = len(tag) - (2 if tag.endswith("/>") else 1)
    return f'{tag[:end].rstrip()} {name}="{value}"{tag[end:]}'


# ---------------------------------------------------------------------------- calcChain


def _prune_calc_chain(data: bytes, sheet_id: str, refs: list[str]) -> bytes | None:
    """calcChain.xml without the cells whose formula was replaced; None when none are left."""
    text = data.decode("utf-8")
    gone = set(refs)
    entries = list(re.finditer(r"<([A-Za-z_][\w.-]*:)?c\b[^>]*/>", text))
    pieces: list[str] = []
    pos = 0
    sheet = None
    carry: str | None = None  # the sheet id a removed entry declared, for the next one
    kept = 0
    for match in entries:
        tag = match.group(0)
        attrs = dict(_parse_attrs(tag))
        declared = attrs.get("i")
        sheet = declared or sheet or "1"  # an entry without i belongs to the previous sheet
        if sheet == sheet_id and attrs.get("r") in gone:
            pieces.append(text[pos: match.start()])
            pos = match.end()
            carry = carry or declared
            continue
        if carry and declared is None:
            pieces.append(text[pos: match.start()])
            pieces.append(_set_str_attr(tag, "i", carry))
            pos = match.end()
        carry = None
        kept += 1
    if kept == 0:
        return None
    pieces.append(text[pos:])
    return "".join(pieces).encode("utf-8")


def _without_calc_chain(zin: zipfile.ZipFile, package: _Package) -> dict[str, bytes | None]:
    """Drop an emptied calcChain: the part, its relationship and its content type."""
    assert package.calc_chain is not None
    changed: dict[str, bytes | None] = {package.calc_chain: None}
    rels = package.workbook_rels
    if rels:
        text = zin.read(rels).decode("utf-8")
        text = re.sub(r"<([A-Za-z_][\w.-]*:)?Relationship\b[^>]*calcChain[^>]*/>", "", text)
        changed[rels] = text.encode("utf-8")
    types = package.names.get("[content_types].xml")
    if types:
        text = zin.read(types).decode("utf-8")
        text = re.sub(r"<([A-Za-z_][\w.-]*:)?Override\b[^>]*calcChain[^>]*/>", "", text)
        changed[types] = text.encode("utf-8")
    return changed


def _changed_parts(zin: zipfile.ZipFile, package: _Package, patcher: _SheetPatcher,
                   styles: _Styles | None, cells: Mapping[tuple[int, int], CellWrite],
                   header_row: int | None) -> dict[str, bytes | None]:
    """Every part other than the sheet that the write changes (None: the part is dropped)."""
    changed: dict[str, bytes | None] = {}
    if styles is not None and styles.changed and package.styles:
        changed[package.styles] = styles.render()
    tables = [_load_table(zin, part) for part in package.tables]
    changed.update(_extend_tables(tables, cells, header_row, patcher.merged))
    if patcher.removed_formulas and package.calc_chain:
        pruned = _prune_calc_chain(zin.read(package.calc_chain), package.sheet_id,
                                   patcher.removed_formulas)
        if pruned is None:
            changed.update(_without_calc_chain(zin, package))
        elif pruned != zin.read(package.calc_chain):
            changed[package.calc_chain] = pruned
    return changed


# ---------------------------------------------------------------------------- the package

_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass
class _Package:
    """Where things are in this workbook's zip, found through its relationships."""

    names: dict[str, str]  # casefolded part name → zip member name
    workbook: str
    workbook_rels: str | None
    sheet: str
    sheet_name: str
    sheet_id: str
    date1904: bool
    styles: str | None
    calc_chain: str | None
    tables: list[str]


@dataclass(frozen=True)
class _Rel:
    rel_id: str
    rel_type: str
    part: str


def _parse_xml(data: bytes, part: str) -> etree._Element:
    try:
        return etree.fromstring(data, _SAFE_PARSER)
    except etree.XMLSyntaxError as err:
        raise InputError(f"Onderdeel {part} van de werkmap is geen geldige XML: {err}") from err


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _rels_name(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def _rels(zin: zipfile.ZipFile, names: dict[str, str], part: str) -> list[_Rel]:
    """The internal relationships of a part, targets resolved to part names."""
    member = names.get(_rels_name(part).casefold())
    if member is None:
        return []
    rels = []
    for el in _parse_xml(zin.read(member), member):
        if not isinstance(el.tag, str) or _local(el.tag) != "Relationship":
            continue
        if el.get("TargetMode") == "External":
            continue
        target = unquote(el.get("Target", ""))
        if target.startswith("/"):
            resolved = target.lstrip("/")
        else:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(part), target))
        rels.append(_Rel(el.get("Id", ""), el.get("Type", ""), resolved))
    return rels


def _member(names: dict[str, str], part: str) -> str | None:
    return names.get(part.casefold())


def _locate(zin: zipfile.ZipFile, sheet_name: str) -> _Package:
    """Find the worksheet part by the sheet's name, through workbook.xml and its rels."""
    names = {name.casefold(): name for name in zin.namelist()}
    office = next((r.part for r in _rels(zin, names, "") if r.rel_type.endswith(
        "/officeDocument")), "xl/workbook.xml")
    workbook = _member(names, office)
    if workbook is None:
        raise InputError("Dit bestand is geen Excel-werkmap (xl/workbook.xml ontbreekt).")
    root = _parse_xml(zin.read(workbook), workbook)
    sheets = [(el.get("name", ""), el.get("sheetId", ""), _rel_id(el)) for el in root.iter()
              if isinstance(el.tag, str) and _local(el.tag) == "sheet"]
    pr = next((el for el in root.iter() if isinstance(el.tag, str)
               and _local(el.tag) == "workbookPr"), None)
    date1904 = pr is not None and pr.get("date1904", "0").lower() in ("1", "true")
    name, sheet_id, rel_id = _match_sheet(sheet_name, sheets)
    wb_rels = _rels(zin, names, workbook)
    rel = next((r for r in wb_rels if r.rel_id == rel_id), None)
    if rel is None or not rel.rel_type.endswith("/worksheet"):
        raise InputError(f"Werkblad '{name}' is geen gewoon werkblad met cellen.")
    sheet = _member(names, rel.part)
    if sheet is None:
        raise InputError(f"Werkblad '{name}' ontbreekt in het bestand ({rel.part}).")
    tables = [_member(names, r.part) for r in _rels(zin, names, sheet)
              if r.rel_type.endswith("/table")]
    return _Package(
        names=names,
        workbook=workbook,
        workbook_rels=_member(names, _rels_name(workbook)),
        sheet=sheet,
        sheet_name=name,
        sheet_id=sheet_id,
        date1904=date1904,
        styles=next((_member(names, r.part) for r in wb_rels if r.rel_type.endswith("/styles")),
                    None),
        calc_chain=next((_member(names, r.part) for r in wb_rels
                         if r.rel_type.endswith("/calcChain")), None),
        tables=[t for t in tables if t is not None],
    )


def _rel_id(el: etree._Element) -> str:
    """The r:id of a <sheet> (transitional or strict relationships namespace)."""
    for key, value in el.attrib.items():
        if str(key).startswith("{") and _local(str(key)) == "id":
            return str(value)
    return ""


def _match_sheet(wanted: str, sheets: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """The sheet with this name: exactly, else case-insensitive ignoring surrounding spaces."""
    for key in (lambda s: s, lambda s: s.strip().casefold(), header_key):
        found = [sheet for sheet in sheets if key(sheet[0]) == key(wanted)]
        if found:
            return found[0]
    available = ", ".join(f"'{name}'" for name, _, _ in sheets)
    raise InputError(f"Werkblad '{wanted.strip()}' niet gevonden (wel: {available}).")


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@contextlib.contextmanager
def _open_package(src: Path) -> Iterator[zipfile.ZipFile]:
    """Open the workbook as a zip, with a Dutch message when it is not one."""
    try:
        zin = zipfile.ZipFile(src)
    except FileNotFoundError as err:
        raise InputError(f"Werkmap {src} niet gevonden.") from err
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise InputError(_not_a_workbook(src)) from err
    with zin:
        yield zin


def _not_a_workbook(src: Path) -> str:
    try:
        with open(src, "rb") as handle:
            magic = handle.read(8)
    except OSError:
        magic = b""
    if magic == _OLE_MAGIC:
        return (f"{src.name} is beveiligd met een wachtwoord of is een oud .xls-bestand; "
                f"sla het op als .xlsx zonder wachtwoord.")
    return f"{src.name} is geen geldig .xlsx-bestand (beschadigd of onvolledig)."


@contextlib.contextmanager
def _reading(src: Path) -> Iterator[None]:
    """Report a damaged workbook (bad zip member, CRC, XML) as input, with its name."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"{src.name} is beschadigd: {err}") from err


# ---------------------------------------------------------------------------- the zip

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_DATA_DESCRIPTOR = 0x08


class _DeflatedSpool:
    """A write-only file that deflates (and checksums) what it gets, in a worker thread.

    zlib releases the GIL, so compressing overlaps with patching the next rows; the
    compressed result (a few MiB for 50,000 rows) stays in memory or spills to disk.
    """

    def __init__(self, compress: bool = True) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 (closed in __exit__)
        self.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self.crc = 0
        self.size = 0
        self._deflate = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, -15) if compress else None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="deflate", daemon=True)
        self._thread.start()

    def __enter__(self) -> _DeflatedSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self.spool.close()

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        if data:
            self._queue.put(data)
        return len(data)

    def finish(self) -> None:
        """Wait until everything written is compressed; re-raise the worker's error."""
        self._stop()
        if self._error is not None:
            raise self._error
        self.spool.seek(0)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        try:
            while (data := self._queue.get()) is not None:
                self.crc = zlib.crc32(data, self.crc)
                self.size += len(data)
                self.spool.write(self._deflate.compress(data) if self._deflate else data)
            if self._deflate:
                self.spool.write(self._deflate.flush())
        except BaseException as err:  # handed to the writing thread
            self._error = err
            while self._queue.get() is not None:  # drain, so the writer never blocks
                pass


def _write_package(zin: zipfile.ZipFile, src: Path, dst: Path, sheet: str,
                   sheet_data: _DeflatedSpool | None,
                   replaced: Mapping[str, bytes | None]) -> None:
    """Write dst: every member in the original order, changed ones new, others raw-copied."""
    with open(src, "rb") as raw, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name = info.filename
            if name == sheet and sheet_data is not None:
                _write_deflated(zout, info, sheet_data)
            elif name in replaced:
                data = replaced[name]
                if data is not None:
                    _write_member(zout, info, data)
            else:
                _copy_raw(raw, zout, info)
        zout.comment = zin.comment


def _new_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A ZipInfo for a changed member: the original's name, date and attributes."""
    new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    new.compress_type = info.compress_type if info.compress_type in (
        zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) else zipfile.ZIP_DEFLATED
    new.create_system = info.create_system
    new.external_attr = info.external_attr
    new.comment = info.comment
    return new


def _write_deflated(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: _DeflatedSpool) -> None:
    """Write a member whose bytes are already compressed and checksummed."""
    new = _new_info(info)
    new.compress_type = data.compress_type
    new.CRC, new.file_size = data.crc, data.size
    new.compress_size = data.spool.seek(0, os.SEEK_END)
    data.spool.seek(0)
    _append_raw(zout, new, data.spool, new.compress_size)


def _write_member(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: bytes) -> None:
    """Write a changed (small) member under the original's name, date and attributes."""
    new = _new_info(info)
    # zout.open() takes the level from the ZipInfo; the attribute is public from Python 3.13.
    setattr(new, "compress_level" if hasattr(new, "compress_level") else "_compresslevel",
            _COMPRESS_LEVEL)
    with zout.open(new, "w") as out:
        out.write(data)


def _copy_raw(raw: IO[bytes], zout: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Copy a member's compressed bytes unchanged, with a fresh local header."""
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise InputError(f"Onderdeel {info.filename} van de werkmap is beschadigd.")
    fields = _LOCAL_HEADER.unpack(header)
    raw.seek(fields[9] + fields[10], os.SEEK_CUR)  # file name and extra field
    out = copy.copy(info)
    out.flag_bits &= ~_DATA_DESCRIPTOR  # sizes and CRC go into the local header instead
    _append_raw(zout, out, raw, info.compress_size)


def _append_raw(zout: zipfile.ZipFile, info: zipfile.ZipInfo, data: IO[bytes],
                size: int) -> None:
    """Append a member from `size` compressed bytes; zipfile writes the central directory."""
    fp = zout.fp
    assert fp is not None
    info.header_offset = fp.tell()
    fp.write(info.FileHeader())
    remaining = size
    while remaining:
        chunk = data.read(min(remaining, _CHUNK))
        if not chunk:
            raise InputError(f"Onderdeel {info.filename} van de werkmap is afgebroken.")
        fp.write(chunk)
        remaining -= len(chunk)
    zout.filelist.append(info)
    zout.NameToInfo[info.filename] = info
    zout.start_dir = fp.tell()


# ---------------------------------------------------------------------------- verification


def _verify(path: Path, sheet_name: str, writes: _Writes) -> None:
    """Read the patched workbook back: zip and XML sound, the written cells hold the values."""
    from python_calamine import CalamineError

    try:
        with zipfile.ZipFile(path) as zf:
            package = _locate(zf, sheet_name)
            # python-calamine releases the GIL while it reads: reading the values back in a
            # thread beside the CRC and XML checks halves the check on a large sheet.
            with ThreadPoolExecutor(max_workers=1) as pool:
                values_read = pool.submit(_verify_values, path, package, writes)
                _verify_members(zf, {package.sheet, package.styles, package.calc_chain,
                                     package.workbook_rels,
                                     package.names.get("[content_types].xml"),
                                     *package.tables} - {None})
                values_read.result()
    except (ValueError, OSError, zipfile.BadZipFile, xml.parsers.expat.ExpatError,
            InputError, CalamineError) as err:
        raise LeergangError(f"Controle van de bijgewerkte werkmap mislukt ({err}); "
                            f"de werkmap is niet gewijzigd.") from err


def _verify_members(zf: zipfile.ZipFile, xml_parts: set[str | None]) -> None:
    """Read every member to its end (zipfile then checks its CRC); parse the XML ones we touch.

    One pass a member, in large chunks: expat's ParseFile reads 2 KiB at a time, and a
    separate testzip() would decompress the large sheet a second time.
    """
    for info in zf.infolist():
        parser = xml.parsers.expat.ParserCreate() if info.filename in xml_parts else None
        with zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                if parser:
                    parser.Parse(chunk, False)
        if parser:
            parser.Parse(b"", True)


def _verify_values(path: Path, package: _Package, writes: _Writes) -> None:
    """Compare the written cells with what python-calamine (our reader) reads back."""
    from python_calamine import CalamineWorkbook

    wanted = dict(writes)
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(package.sheet_name)
    first_col = sheet.start[1] if sheet.start else 0
    last_row, last_col = sheet.end or (-1, -1)
    cleaned: dict[str, str] = {}  # the written texts repeat: clean each once
    count = 0
    # iter_rows() yields rows from row 1 but columns from the first used column onwards.
    for number, values in enumerate(sheet.iter_rows(), start=1):
        count += 1
        row_wanted = wanted.pop(number, None)
        if row_wanted is None:
            continue
        offset = 1 if len(values) == last_col + 1 else first_col + 1
        for col, write in row_wanted:
            expected = write.value
            at = col - offset
            got = values[at] if 0 <= at < len(values) else ""
            if expected.__class__ is str and got.__class__ is str:  # nearly every cell
                want = cleaned.get(expected)
                if want is None:
                    want = cleaned[expected] = clean_text(expected)
                if got == want:
                    continue
            _check_same(expected, got, package.date1904, (number, col))
    if sheet.start is not None and count != last_row + 1:
        raise ValueError(f"python-calamine las {count} rijen, verwacht {last_row + 1}")
    for number, row_wanted in wanted.items():  # beyond what calamine saw: must be empty
        for col, write in row_wanted:
            _check_same(write.value, "", package.date1904, (number, col))


def _check_same(expected: CellValue, got: object, date1904: bool,
                cell: tuple[int, int]) -> None:
    """Raise ValueError when what the reader got is not what was written."""
    if _is_empty(expected):
        ok = got in ("", None)
    elif isinstance(expected, str):
        ok = got == clean_text(expected)
    elif isinstance(expected, bool):
        ok = got is expected
    else:  # a number or a date: the cell's number format decides what a reader makes of it
        assert expected is not None
        ok = _same_number(expected, got, date1904)
    if not ok:
        ref = f"{column_letters(cell[1])}{cell[0]}"
        raise ValueError(f"cel {ref} bevat {got!r} in plaats van {expected!r}")


def _same_number(expected: float | date, got: object, date1904: bool) -> bool:
    want = excel_serial(expected, date1904) if isinstance(expected, date) else float(expected)
    if isinstance(got, bool) or not isinstance(got, int | float | date | time | timedelta):
        return False
    if isinstance(got, int | float) and not isinstance(expected, date):
        return math.isclose(got, want, rel_tol=1e-12)
    if isinstance(got, time):  # a time format shows only the fraction of the day
        seconds = got.hour * 3600 + got.minute * 60 + got.second + got.microsecond / 1e6
        return abs((want - seconds / 86400 + 0.5) % 1 - 0.5) < 1e-6
    if isinstance(got, timedelta):
        return abs(got.total_seconds() / 86400 - want) < 1e-6
    serial = excel_serial(got, date1904) if isinstance(got, date) else float(got)
    return abs(serial - want) < 1e-6  # readers round date-times to milliseconds


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError as err:
        raise InputError(f"Werkmap {path} niet gevonden.") from err
    return stat.st_size, stat.st_mtime_ns
