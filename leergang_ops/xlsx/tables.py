"""Excel tables beside the written cells: extended over new columns and rows.

A table's totals row (`totalsRowCount` rows at the bottom of its ref; `totalsRowShown="0"`
alone means a hidden one, not in the ref) is the organisers': no write lands in it, and
rows inserted above it (`insert_rows`) move it down as Excel does.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from leergang_ops.xlsx.cells import (
    _OOXML_ESCAPE,
    MAX_COL,
    MAX_ROW,
    CellWrite,
    _is_empty,
    clean_text,
    escape,
)
from leergang_ops.xlsx.errors import Unsupported, XlsxError
from leergang_ops.xlsx.package import (
    _local,
    _locate,
    _open_package,
    _Package,
    _parse_xml,
    _reading,
    _rels,
)
from leergang_ops.xlsx.refs import _overlaps, _parse_range, _range_text, column_letters
from leergang_ops.xlsx.tags import _set_str_attr

log = logging.getLogger(__name__)


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
        # A totals row would have to move (and get cells for new columns); a query table
        # owns its columns: stay outside. Rows go above a totals row only by insert_rows.
        return self.totals_rows == 0 and self.table_type in ("", "worksheet")

    @property
    def totals_box(self) -> tuple[int, int, int, int] | None:
        """The totals row(s): the last `totalsRowCount` rows of the ref; None without."""
        r1, c1, r2, c2 = self.box
        if self.totals_rows <= 0 or r2 - self.totals_rows + 1 <= r1:
            return None
        return r2 - self.totals_rows + 1, c1, r2, c2


@dataclass(frozen=True)
class TableBox:
    """Where an Excel table lies on its sheet (1-based rows and columns), for the reader."""

    name: str
    box: tuple[int, int, int, int]  # first row, first column, last row, last column
    header_rows: int
    totals_rows: int

    @property
    def totals(self) -> range:
        """The row numbers of the totals row(s); empty when the table has none."""
        r1, _, r2, _ = self.box
        first = max(r2 - self.totals_rows + 1, r1 + 1)
        return range(first, r2 + 1) if self.totals_rows > 0 else range(0)


def sheet_tables(path: Path, sheet_names: Iterable[str]) -> dict[str, list[TableBox]]:
    """The Excel tables on each of these worksheets (by name, as in the file).

    Reads only workbook.xml, the relationships and the small table parts: no sheet data.
    A sheet that cannot be located, or a damaged table part, has no tables here (the
    write-back reports such damage when it matters).
    """
    found: dict[str, list[TableBox]] = {}
    try:
        with _open_package(Path(path)) as zin, _reading(Path(path)):
            for name in sheet_names:
                try:
                    package = _locate(zin, name)
                    tables = [_load_table(zin, part) for part in package.tables]
                except (XlsxError, ValueError, KeyError):
                    continue
                found[name] = [TableBox(t.name, t.box, t.header_rows, t.totals_rows)
                               for t in tables]
    except (XlsxError, OSError):
        return found
    return found


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
        header_rows=_count(root.get("headerRowCount"), 1),
        totals_rows=_count(root.get("totalsRowCount"), 0),
        table_type=root.get("tableType", ""),
        columns=[el.get("name", "") for el in columns],
        ids=[int(el.get("id", "0")) for el in columns],
    )


def _count(text: str | None, default: int) -> int:
    try:
        return max(int(text), 0) if text is not None else default
    except ValueError:
        return default


@dataclass(frozen=True)
class _Insertion:
    """`count` new rows before row `before`, the first totals row of table `table`."""

    before: int
    count: int
    table: str
    columns: tuple[int, int]  # the table's columns: the moved rows' content lies within
    moved: range  # the totals rows, numbered as before the insertion

    def new_row(self, row: int) -> int:
        return row + self.count if row >= self.before else row


def _plan_insertion(zin: zipfile.ZipFile, package: _Package, tables: list[_Table],
                    insert_rows: tuple[int, int] | None) -> _Insertion | None:
    """Check that rows can go above a table's totals row; refuse what would not move along.

    Only the totals row moves: cells with content below it, another table reaching that
    far down, or a comment there are refused (Unsupported, nothing written), since
    moving them would need every reference to them (formulas, names, drawings) changed.
    """
    if insert_rows is None or insert_rows[1] <= 0:
        return None
    before, count = insert_rows
    owner = next((t for t in tables if t.totals_box and t.totals_box[0] == before), None)
    if owner is None:
        raise Unsupported(f"Rij {before} is geen totaalrij van een tabel; daarboven worden "
                          f"geen rijen ingevoegd.")
    _, c1, r2, c2 = owner.box
    if r2 + count > MAX_ROW:
        raise Unsupported(f"Tabel {owner.name} kan niet verder groeien: het werkblad is vol.")
    for other in tables:
        if other is not owner and other.box[2] >= before:
            raise Unsupported(
                f"Tabel {other.name} ligt naast of onder de totaalrij van tabel {owner.name}; "
                f"daarom kunnen er geen rijen boven die totaalrij worden ingevoegd. Verplaats "
                f"die tabel en probeer het opnieuw; er is niets geschreven.")
    for rel in _rels(zin, package.names, package.sheet):
        member = package.names.get(rel.part.casefold())
        if member is None or not rel.rel_type.endswith(("/comments", "/threadedComment")):
            continue
        for match in _COMMENT_REF.finditer(zin.read(member)):
            if int(match.group(2)) >= before:
                ref = match.group(1).decode() + match.group(2).decode()
                raise Unsupported(
                    f"Cel {ref} (op of onder de totaalrij van tabel {owner.name}) heeft een "
                    f"opmerking; daarom kunnen er geen rijen boven die totaalrij worden "
                    f"ingevoegd. Verplaats de opmerking en probeer het opnieuw; er is niets "
                    f"geschreven.")
    return _Insertion(before, count, owner.name, (c1, c2), range(before, r2 + 1))


_COMMENT_REF = re.compile(rb"<(?:[\w.-]+:)?(?:comment|threadedComment)\b[^>]*?\sref\s*=\s*"
                          rb"[\"']\$?([A-Za-z]{1,3})\$?(\d+)")


def _refuse_totals_writes(tables: list[_Table],
                          writes: Mapping[int, list[tuple[int, CellWrite]]],
                          insertion: _Insertion | None) -> None:
    """A write that lands in a totals row (where it is after an insertion) is refused."""
    for table in tables:
        totals = table.totals_box
        if totals is None:
            continue
        shift = insertion.count if insertion and insertion.table == table.name and (
            totals[0] == insertion.before) else 0
        for row in range(totals[0] + shift, totals[2] + shift + 1):
            for col, _ in writes.get(row, ()):
                if totals[1] <= col <= totals[3]:
                    raise Unsupported(
                        f"Cel {column_letters(col)}{row} ligt in de totaalrij van tabel "
                        f"{table.name}; die hoort bij de organisatoren en wordt niet "
                        f"overschreven. Er is niets geschreven.")


def _extend_tables(tables: list[_Table], flat: Mapping[tuple[int, int], CellWrite],
                   header_row: int | None, merged: list[tuple[int, int, int, int]],
                   insertion: _Insertion | None = None) -> dict[str, bytes]:
    """The table parts whose ref grows over the written headers and rows, as new XML."""
    changed: dict[str, bytes] = {}
    for table in tables:
        blocked = merged + [other.box for other in tables if other is not table]
        renames = _renamed_columns(table, flat)
        added = _added_columns(table, flat, header_row, blocked) if table.extendable else []
        box = table.box
        grown = 0
        if added:
            box = (box[0], box[1], box[2], box[3] + len(added))
        if table.extendable:
            box = _grown_down(box, flat, blocked)
        elif insertion is not None and table.totals_box and (
                table.totals_box[0] == insertion.before):
            grown = insertion.count  # rows inserted above its totals row: it moves down
            box = (box[0], box[1], box[2] + grown, box[3])
        if box != table.box or renames:
            changed[table.part] = _table_xml(table, box, added, renames,
                                             grown).encode("utf-8")
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
            raise Unsupported(f"Kopcel {column_letters(col)}{r1} van tabel {table.name} moet "
                             f"een tekst zijn.")
        if index < len(table.columns) and name != table.columns[index]:
            renames[index] = name
    names = [renames.get(i, column) for i, column in enumerate(table.columns)]
    if len({n.casefold() for n in names}) != len(names):
        raise Unsupported(f"Kolomnamen in tabel {table.name} moeten uniek zijn.")
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
                log.warning("tabel %s niet uitgebreid over %s: kolomnaam %r bestaat al",
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
               renames: dict[int, str], inserted: int = 0) -> str:
    """The table part with a new ref, autoFilter ref, renamed and appended tableColumns.

    `inserted` rows went in above the totals row: the autoFilter (header and data rows,
    without the totals row) grows by as many, as Excel does.
    """
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
    if auto and inserted:
        replace(auto.start(), auto.end(), _set_str_attr(auto.group(0), "ref",
                                                        _filter_ref(auto.group(0), inserted)))
    elif auto and box != table.box:
        replace(auto.start(), auto.end(), _set_str_attr(auto.group(0), "ref", ref))
    sort = re.compile(rf"<{re.escape(p)}sortState\b[^>]*>").search(text, pos)
    if sort and inserted:  # a sorted table remembers the sorted rows: they grew too
        replace(sort.start(), sort.end(), _set_str_attr(sort.group(0), "ref",
                                                        _filter_ref(sort.group(0), inserted)))
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


def _filter_ref(tag: str, inserted: int) -> str:
    """A table's autoFilter ref with its last row `inserted` rows further down."""
    match = re.search(r"\sref\s*=\s*[\"']([^\"']*)[\"']", tag)
    r1, c1, r2, c2 = _parse_range(match.group(1) if match else "A1")
    return _range_text((r1, c1, min(r2 + inserted, MAX_ROW), c2))


def _column_name_xml(name: str) -> str:
    # Excel writes a line break in a column name as _x000a_ and an underscore escape as _x005F_.
    name = _OOXML_ESCAPE.sub(r"_x005F_\1", name)
    name = re.sub(r"[\t\n\r]", lambda m: f"_x{ord(m.group(0)):04x}_", name)
    return escape(name, {'"': "&quot;"})


