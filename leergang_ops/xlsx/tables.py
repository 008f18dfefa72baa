"""Excel tables beside the written cells: extended over new columns and rows."""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

from leergang_ops.xlsx.cells import (
    _OOXML_ESCAPE,
    MAX_COL,
    MAX_ROW,
    CellWrite,
    _is_empty,
    clean_text,
    escape,
)
from leergang_ops.xlsx.errors import Unsupported
from leergang_ops.xlsx.package import _local, _parse_xml
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


