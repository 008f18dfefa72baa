"""The lossless write-back on 30 real workbooks (Excel, Excel for Mac, LibreOffice).

The files stay in ../shared/corpus/xlsx (see its MANIFEST.tsv); these tests skip when that
folder is absent and never copy the files into the repository.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from python_calamine import CalamineWorkbook

from leergang_ops.workbook.write import CellStyle, CellWrite, column_letters, patch_workbook
from tests.conftest import CORPUS

FILES = sorted(CORPUS.glob("*.xls[xm]")) if CORPUS.is_dir() else []
pytestmark = pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS}")

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
FILL = CellStyle(fill="FFFFE699")
# The tables the corpus has on a first worksheet, and the tables written next to.
TABLE_FILES = {"xw_table06.xlsx": "Table1", "oxd_table_slicer.xlsx": "Table1"}


def first_worksheet(path: Path) -> tuple[str, str]:
    """Name and part of the workbook's first worksheet (chartsheets skipped)."""
    with zipfile.ZipFile(path) as zf:
        workbook = etree.fromstring(zf.read("xl/workbook.xml"))
        rels = etree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel for rel in rels}
    for sheet in workbook.iter(f"{{{MAIN}}}sheet"):
        rel = targets[sheet.get(f"{{{REL}}}id")]
        if rel.get("Type").endswith("/worksheet"):
            target = rel.get("Target")
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            return sheet.get("name"), part
    raise AssertionError(f"{path.name} has no worksheet")


def original_cells(sheet_xml: bytes) -> dict[str, bytes]:
    """Every <c> element of a sheet by reference, as the exact bytes it is stored as."""
    cells = re.findall(rb'<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>)', sheet_xml, re.S)
    elements = re.findall(rb'<c r="[A-Z]+\d+"[^>]*?(?:/>|>.*?</c>)', sheet_xml, re.S)
    return dict(zip((ref.decode() for ref in cells), elements, strict=True))


def used_range(cells: dict[str, bytes]) -> tuple[int, int, int]:
    """(first row, last row, last column) of the cells; an empty sheet is (1, 1, 0)."""
    refs = [re.fullmatch(r"([A-Z]+)(\d+)", ref) for ref in cells]
    rows = [int(m.group(2)) for m in refs if m]
    cols = [sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(m.group(1))))
            for m in refs if m]
    return (min(rows), max(rows), max(cols)) if rows else (1, 1, 0)


def status_writes(first: int, last: int, right: int) -> dict[tuple[int, int], CellWrite]:
    """A header and filled values in 3 new columns, in the first rows and one new row."""
    cells: dict[tuple[int, int], CellWrite] = {}
    for i, name in enumerate(("Status", "Melding", "Bevestiging verstuurd"), start=1):
        cells[(first, right + i)] = CellWrite(name)
        for row in (first + 1, first + 2, last + 2):
            cells[(row, right + i)] = CellWrite(f"{name} {row}", FILL)
    return cells


def assert_other_parts_identical(before: Path, after: Path, allowed: set[str]) -> None:
    with zipfile.ZipFile(before) as old, zipfile.ZipFile(after) as new:
        assert new.namelist() == old.namelist(), "members renamed, dropped or reordered"
        for info in old.infolist():
            if info.filename in allowed:
                continue
            copy = new.getinfo(info.filename)
            assert new.read(copy) == old.read(info), f"{info.filename} changed"
            assert (copy.compress_type, copy.compress_size, copy.CRC) == (
                info.compress_type, info.compress_size, info.CRC), f"{info.filename} recompressed"


def sheet_tables(path: Path, part: str) -> list[str]:
    """The table parts linked from a worksheet part."""
    rels = f"{part.rpartition('/')[0]}/_rels/{part.rpartition('/')[2]}.rels"
    with zipfile.ZipFile(path) as zf:
        if rels not in zf.namelist():
            return []
        root = etree.fromstring(zf.read(rels))
    return [f"xl/tables/{rel.get('Target').rpartition('/')[2]}" for rel in root
            if rel.get("Type").endswith("/table")]


def assert_tables_only_extended(before: Path, after: Path, tables: list[str]) -> None:
    """A table next to the written columns may grow; nothing else in it may change."""
    def rest(xml: bytes) -> bytes:
        xml = re.sub(rb'\sref="[^"]*"', b"", xml)
        return re.sub(rb"<tableColumns.*</tableColumns>", b"", xml, flags=re.S)

    with zipfile.ZipFile(before) as old, zipfile.ZipFile(after) as new:
        for part in tables:
            old_xml, new_xml = old.read(part), new.read(part)
            assert rest(new_xml) == rest(old_xml), f"{part}: more than the extension changed"
            old_columns = etree.fromstring(old_xml).find(f"{{{MAIN}}}tableColumns")
            new_columns = etree.fromstring(new_xml).find(f"{{{MAIN}}}tableColumns")
            assert new_columns.get("count") == str(len(new_columns))
            assert [etree.tostring(c) for c in new_columns][: len(old_columns)] == [
                etree.tostring(c) for c in old_columns]


def assert_original_cells_kept(before: bytes, after: bytes) -> None:
    kept = original_cells(after)
    for ref, element in original_cells(before).items():
        assert kept.get(ref) == element, f"cell {ref} changed"


def patch_first_sheet(path: Path, out: Path) -> tuple[str, dict[tuple[int, int], CellWrite]]:
    name, part = first_worksheet(path)
    with zipfile.ZipFile(path) as zf:
        first, last, right = used_range(original_cells(zf.read(part)))
    cells = status_writes(first, last, right)
    assert patch_workbook(path, out, name, cells)
    return part, cells


def assert_values_read_back(path: Path, sheet: str, cells: dict[tuple[int, int], CellWrite]
                            ) -> None:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(
        skip_empty_area=False)
    for (row, col), write in cells.items():
        assert rows[row - 1][col - 1] == write.value, f"{column_letters(col)}{row}"


def preserved(path: Path, tmp_path: Path) -> bool:
    """Whether a write to the first sheet kept every other part and every original cell."""
    out = tmp_path / f"patched-{path.name}"
    part, _ = patch_first_sheet(path, out)
    tables = sheet_tables(path, part)
    try:
        assert_other_parts_identical(path, out, {part, "xl/styles.xml", *tables})
        assert_tables_only_extended(path, out, tables)
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(out) as new:
            assert_original_cells_kept(old.read(part), new.read(part))
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_write_back_changes_only_the_sheet_styles_and_adjacent_tables(path: Path,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / path.name
    part, cells = patch_first_sheet(path, out)
    tables = sheet_tables(path, part)
    assert_other_parts_identical(path, out, {part, "xl/styles.xml", *tables})
    assert_tables_only_extended(path, out, tables)
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(out) as new:
        assert_original_cells_kept(old.read(part), new.read(part))
        etree.fromstring(new.read(part))  # well-formed
        etree.fromstring(new.read("xl/styles.xml"))
    assert_values_read_back(out, first_worksheet(path)[0], cells)


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_a_second_identical_write_changes_nothing(path: Path, tmp_path: Path) -> None:
    out = tmp_path / path.name
    name, part = first_worksheet(path)
    with zipfile.ZipFile(path) as zf:
        cells = status_writes(*used_range(original_cells(zf.read(part))))
    assert patch_workbook(path, out, name, cells)
    assert not patch_workbook(out, tmp_path / "again.xlsx", name, cells)
    assert not (tmp_path / "again.xlsx").exists()


@pytest.mark.parametrize("filename", sorted(TABLE_FILES))
def test_table_on_the_sheet_is_extended_over_the_new_columns(filename: str,
                                                             tmp_path: Path) -> None:
    path = CORPUS / filename
    name, part = first_worksheet(path)
    with zipfile.ZipFile(path) as zf:
        table_part = next(n for n in zf.namelist() if n.startswith("xl/tables/")
                          and TABLE_FILES[filename] in zf.read(n).decode()[:1000])
        table = etree.fromstring(zf.read(table_part))
    r1, c1, r2, c2 = _box(table.get("ref"))
    headers = ["Status", "Melding", "Bevestiging verstuurd"]
    cells = {(r1, c2 + i): CellWrite(text) for i, text in enumerate(headers, start=1)}
    cells |= {(row, c2 + 1): CellWrite("bevestigd", FILL) for row in range(r1 + 1, r2 + 1)}
    out = tmp_path / filename
    assert patch_workbook(path, out, name, cells)
    assert_other_parts_identical(path, out, {part, "xl/styles.xml", table_part})
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(out) as new:
        assert_original_cells_kept(old.read(part), new.read(part))
        extended = etree.fromstring(new.read(table_part))
    ref = f"{column_letters(c1)}{r1}:{column_letters(c2 + 3)}{r2}"
    assert extended.get("ref") == ref
    assert extended.find(f"{{{MAIN}}}autoFilter").get("ref") == ref
    columns = extended.find(f"{{{MAIN}}}tableColumns")
    assert columns.get("count") == str(len(columns))
    assert [c.get("name") for c in columns][-3:] == headers
    ids = [int(c.get("id")) for c in columns]
    assert len(set(ids)) == len(ids)


def test_a_query_table_next_to_the_written_columns_is_left_alone(tmp_path: Path) -> None:
    path = CORPUS / "oxd_connection.xlsx"
    out = tmp_path / path.name
    part, _ = patch_first_sheet(path, out)
    assert sheet_tables(path, part) == ["xl/tables/table1.xml"]
    with zipfile.ZipFile(path) as zf:
        assert b'tableType="queryTable"' in zf.read("xl/tables/table1.xml")
    assert_other_parts_identical(path, out, {part, "xl/styles.xml"})


def test_figure_files_fully_preserved(tmp_path: Path) -> None:
    kept = [path.name for path in FILES if preserved(path, tmp_path)]
    figure = f"{len(kept)}/{len(FILES)} corpus files fully preserved"
    print(figure)
    missing = sorted({path.name for path in FILES} - set(kept))
    assert len(kept) == len(FILES), f"{figure}; not: {missing}"


def _box(ref: str) -> tuple[int, int, int, int]:
    def cell(text: str) -> tuple[int, int]:
        m = re.fullmatch(r"([A-Z]+)(\d+)", text)
        assert m
        col = sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(m.group(1))))
        return int(m.group(2)), col

    (r1, c1), (r2, c2) = (cell(part) for part in ref.split(":"))
    return r1, c1, r2, c2
