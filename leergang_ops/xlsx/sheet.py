"""The worksheet part streamed as text: rows and cells patched inside <sheetData>."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import re
from datetime import date, datetime
from typing import IO, Protocol

from leergang_ops.xlsx.cells import (
    MAX_COL,
    MAX_ROW,
    CellWrite,
    _is_empty,
    _Names,
    _number_text,
    escape,
    unescape,
)
from leergang_ops.xlsx.errors import DamagedWorkbook, Unsupported
from leergang_ops.xlsx.refs import _column_number, _parse_range, _range_text, column_letters
from leergang_ops.xlsx.styles import _Styles
from leergang_ops.xlsx.tables import _Insertion
from leergang_ops.xlsx.tags import _attr, _set_attr
from leergang_ops.xlsx.zip import _CHUNK

log = logging.getLogger(__name__)


@functools.cache
def _letters(col: int) -> bytes:
    return column_letters(col).encode()


_R_ROW = re.compile(rb"\sr\s*=\s*[\"'](\d+)[\"']")
_R_CELL = re.compile(rb"\sr\s*=\s*[\"']\$?([A-Za-z]{1,3})\$?(\d+)[\"']")
_S_ATTR = re.compile(rb"\ss\s*=\s*[\"'](\d+)[\"']")
_ARRAY_HINT = re.compile(rb"\st\s*=\s*[\"'](?:array|dataTable)[\"']")
_SHEET_DATA = re.compile(rb"<([A-Za-z_][\w.-]*:)?sheetData\b[^>]*>")
_XML_ENCODING = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding\s*=\s*[\"']([^\"']+)")


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _SheetPatcher:
    """Stream one worksheet part, rewriting only the rows that hold written cells."""

    def __init__(self, writes: dict[int, list[tuple[int, CellWrite]]], styles: _Styles | None,
                 date1904: bool, widths: dict[int, float],
                 insertion: _Insertion | None = None) -> None:
        self.writes = writes
        # Rows inserted above a totals row: rows from there on are numbered `count` further.
        self.insertion = insertion
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
                raise DamagedWorkbook(
                    "Het werkblad heeft geen celgegevens (<sheetData> ontbreekt).")

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
                raise DamagedWorkbook("Het werkblad is afgebroken (</sheetData> ontbreekt).")
            buf += chunk

    def _copy_tail(self, rest: bytes, source: IO[bytes]) -> None:
        """Copy what follows <sheetData> unchanged, noting merged ranges for the tables."""
        tail = rest + source.read()
        if self.insertion is not None:
            tail = self._shifted_tail(tail, self.insertion)
        for match in self.names.merge_re.finditer(tail):
            ref = _attr(match.group(0), b"ref")
            with contextlib.suppress(ValueError):  # a nonsense range merges nothing
                self.merged.append(_parse_range((ref or b"").decode()))
        self.out.write(tail)

    # -- rows

    def _rows(self, buf: bytes, stop: int) -> None:
        """Process the complete rows in buf[:stop], writing through what does not change."""
        names, rows, writes = self.names, self.rows, self.writes
        # Rows from `moved_from` on move `moved_by` down (rows inserted above a totals row).
        moved_from = self.insertion.before if self.insertion else MAX_ROW + 1
        moved_by = self.insertion.count if self.insertion else 0
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
                    raise DamagedWorkbook("Het werkblad bevat een onvolledige rij.")
                end += len(names.row_end)
            r = _R_ROW.search(tag)
            number = int(r.group(1)) if r else self.last_row + 1
            target = number + moved_by if number >= moved_from else number
            pending = rows[self.next] if self.next < len(rows) else MAX_ROW + 1
            if pending < target:
                parts.append(buf[flushed:start])
                flushed = start
                parts.append(self._new_rows_before(target))
                pending = rows[self.next] if self.next < len(rows) else MAX_ROW + 1
            row = new = buf[start:end]
            tag_end = match.end() - start
            if target != number:
                new = self._moved_row(row, tag_end, number, target)
                moved_tag = names.row_re.match(new)
                assert moved_tag is not None
                tag_end = moved_tag.end()
            if pending == target:
                new = self._patch_row(new, tag_end, target, writes[target])
                self.next += 1
            elif self.orphans and b"si=" in new:
                new = self._fix_orphans(new, target)
            if r is None and self.inserted_before:
                # A row without r is numbered after the previous one; keep that true.
                new = self._with_row_number(new, target)
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

    # -- rows moved down (rows inserted above a totals row)

    def _moved_row(self, row: bytes, tag_end: int, old: int, new: int) -> bytes:
        """The row renumbered from `old` to `new`, its cells' references with it.

        Only a totals row may hold content; its formulas stay as they are (structured
        references need no change), so one that points at its own row or below is refused.
        """
        names = self.names
        body_end = len(row) - len(names.row_end) if not row[:tag_end].endswith(b"/>") else (
            tag_end)
        digits = b"%d" % new
        pieces: list[bytes] = []
        pos = tag_end
        search = tag_end
        col = 0
        while True:
            match = names.cell_re.search(row, search, body_end)
            if match is None:
                break
            cell_tag = match.group(0)
            r = _R_CELL.search(cell_tag)
            col = _column_number(r.group(1)) if r else col + 1
            search = match.end()
            if not cell_tag.endswith(b"/>"):
                close = row.find(names.cell_end, match.end(), body_end)
                if close < 0:
                    raise DamagedWorkbook("Het werkblad bevat een onvolledige cel.")
                inner = row[match.end():close]
                search = close + len(names.cell_end)
                if inner.strip():
                    self._check_moved_cell(old, col, inner)
            if r is not None:
                new_tag = (cell_tag[: r.start()] + b' r="' + _letters(col) + digits + b'"'
                           + cell_tag[r.end():])
                pieces += (row[pos: match.start()], new_tag)
                pos = match.end()
        pieces.append(row[pos:])
        self.changed = True
        return _set_attr(row[:tag_end], b"r", digits) + b"".join(pieces)

    def _check_moved_cell(self, old: int, col: int, inner: bytes) -> None:
        insertion = self.insertion
        assert insertion is not None
        ref = f"{column_letters(col)}{old}"
        first, last = insertion.columns
        if old not in insertion.moved or not first <= col <= last:
            raise Unsupported(
                f"Onder of naast de totaalrij van tabel {insertion.table} staat nog iets (cel "
                f"{ref}); daarom kunnen er geen rijen boven die totaalrij worden ingevoegd. "
                f"Verplaats dat naar een plek boven of naast de tabel en probeer het opnieuw; "
                f"er is niets geschreven.")
        formula = self.names.formula_re.search(inner)
        if formula is None:
            return
        kind = _attr(formula.group(1), b"t")
        text = unescape((formula.group(2) or b"").decode("utf-8"), {"&quot;": '"'})
        if kind in (b"shared", b"array", b"dataTable") or _refers_from(text, insertion.before):
            raise Unsupported(
                f"De formule in cel {ref} (totaalrij van tabel {insertion.table}) verwijst naar "
                f"de totaalrij zelf of lager; die kan niet worden verplaatst. Gebruik een "
                f"tabelverwijzing (zoals SUBTOTAAL(103;[E-mail])) en probeer het opnieuw; er "
                f"is niets geschreven.")
        self.removed_formulas.append(ref)  # calcChain names it at its old place

    def _shifted_tail(self, tail: bytes, insertion: _Insertion) -> bytes:
        """Ranges after <sheetData> (merged cells, hyperlinks, conditional formatting, data
        validation) follow the rows that moved down, as Excel moves them on an insert."""
        def shift(match: re.Match[bytes]) -> bytes:
            kind = match.group(2) or match.group(4)
            fixed = kind in (b"conditionalFormatting", b"dataValidation", b"sqref")
            if match.group(5) is not None:  # <xm:sqref>…</xm:sqref> (x14 formatting)
                text = match.group(5)
                new = _shifted_refs(text, insertion, fixed)
                return match.group(0) if new == text else match.group(0).replace(text, new, 1)
            tag = match.group(0)
            for name in (b"ref", b"sqref"):
                value = _attr(tag, name)
                if value is not None:
                    new = _shifted_refs(value, insertion, fixed)
                    if new != value:
                        tag = _set_attr(tag, name, new)
            return tag

        return _TAIL_RANGES.sub(shift, tail)

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
                raise DamagedWorkbook("Het werkblad bevat een onvolledige cel.")
            if row[end - 2] != 47:  # not self-closing: the cell ends at its </c>
                end = row.find(self.names.cell_end, end, hi)
                if end < 0:
                    raise DamagedWorkbook("Het werkblad bevat een onvolledige cel.")
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
                    raise DamagedWorkbook("Het werkblad bevat een onvolledige cel.")
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
                log.warning("werkmap heeft geen opmaakdeel (styles); celopmaak wordt niet "
                            "toegepast")
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
                raise Unsupported(
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
            raise Unsupported(f"De gedeelde formule van cel {master} kan niet naar {ref} "
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
        if self.insertion is not None:  # the rows below the inserted ones moved down
            box = (box[0], box[1], max(box[2], min(self.insertion.new_row(old[2]), MAX_ROW)),
                   box[3])
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


_TAIL_RANGES = re.compile(
    rb"<([A-Za-z_][\w.-]*:)?(mergeCell|hyperlink|autoFilter|conditionalFormatting|"
    rb"dataValidation|ignoredError|protectedRange|sortState)\b[^>]*>"
    rb"|<([A-Za-z_][\w.-]*:)?(sqref)>([^<]*)</(?:[A-Za-z_][\w.-]*:)?sqref>")


def _shifted_refs(text: bytes, insertion: _Insertion, fixed: bool) -> bytes:
    """A space-separated list of ranges with rows at or below the insertion moved down.

    A range reaching over the insertion grows; one that starts at or below it moves. A
    `fixed` range (conditional formatting, data validation: their formulas are relative to
    its first cell) must not move: that is refused.
    """
    parts = []
    for token in text.split(b" "):
        try:
            r1, c1, r2, c2 = _parse_range(token.decode())
        except ValueError:
            parts.append(token)
            continue
        new1, new2 = insertion.new_row(r1), min(insertion.new_row(r2), MAX_ROW)
        if (new1, new2) == (r1, r2):
            parts.append(token)
            continue
        if fixed and new1 != r1:
            raise Unsupported(
                f"Voorwaardelijke opmaak of gegevensvalidatie op {token.decode()} ligt op of "
                f"onder de totaalrij van tabel {insertion.table}; daarom kunnen er geen rijen "
                f"boven die totaalrij worden ingevoegd. Er is niets geschreven.")
        box = (new1, c1, new2, c2)
        parts.append((_range_text(box) if b":" in token else
                      f"{column_letters(c1)}{new1}").encode())
    return b" ".join(parts)


_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_INNER_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_A1_ROW = re.compile(r"(?<![\w.$])\$?[A-Za-z]{1,3}\$?(\d{1,7})(?![\w(.!])")


def _refers_from(formula: str, row: int) -> bool:
    """Whether an A1 reference in the formula points at `row` or below (any sheet: a
    cautious reading); structured references ([E-mail], Tabel1[#Totals]) do not count."""
    text = _QUOTED.sub("", formula)
    while True:
        stripped = _INNER_BRACKETS.sub("", text)
        if stripped == text:
            break
        text = stripped
    return any(int(match.group(1)) >= row for match in _A1_ROW.finditer(text))


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
        raise Unsupported("Het werkblad is in UTF-16 opgeslagen; dat wordt niet ondersteund.")
    match = _XML_ENCODING.match(head)
    if match and match.group(1).lower() not in (b"utf-8", b"utf8"):
        raise Unsupported(f"Het werkblad gebruikt tekenset {match.group(1).decode()}; "
                         f"alleen UTF-8 wordt ondersteund.")
