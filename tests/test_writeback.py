"""Lossless write-back: only the written cells change; every other part survives byte for byte."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zipfile
import zlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from lxml import etree
from python_calamine import CalamineWorkbook

from leergang_ops.errors import InputError, LeergangError, WorkbookInUse
from leergang_ops.workbook.files import ensure_not_in_use, lock_files
from leergang_ops.workbook.write import (
    CellStyle,
    CellWrite,
    backup_path,
    patch_workbook,
    write_cells,
)
from leergang_ops.xlsx import cells as cells_module
from leergang_ops.xlsx import sheet as sheet_module
from leergang_ops.xlsx import verify as verify_module
from leergang_ops.xlsx import write as write_module
from leergang_ops.xlsx.errors import VerificationFailed
from leergang_ops.xlsx.refs import _overlaps, _parse_range

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET = "xl/worksheets/sheet2.xml"  # Deelnemers is the second sheet in these workbooks
HEADER = ["Aangemeld op", "Voornaam", "Achternaam", "E-mail", "Gemeente", "Dagen"]
TOOL = ["Status", "Melding", "Bevestiging verstuurd"]
GREEN, ORANGE = CellStyle(fill="FFC6EFCE"), CellStyle(fill="FFFFE699", bold=True)


def tiny_png() -> bytes:
    """A 1×1 red PNG, built by hand (no Pillow needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def rich_workbook(path: Path, rows: int = 4, *, table: bool = True) -> Path:
    """Registrations in an Excel table with a formula column, plus everything organisers add.

    Sheets: Instellingen, Deelnemers (table, formula column with cached results, comment,
    data validation, conditional formatting, image, chart), a defined name, a chartsheet.
    """
    image = path.with_name("logo.png")
    image.write_bytes(tiny_png())
    book = xlsxwriter.Workbook(str(path))
    settings = book.add_worksheet("Instellingen")
    settings.write_row(0, 0, ["Instelling", "Waarde"])
    settings.write_row(1, 0, ["Leergang", "Leergang wijkaanpak"])
    sheet = book.add_worksheet("Deelnemers")
    stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
    data = [[datetime(2021, 10, n, 9), f"Deelnemer{n}", f"Test{n}", f"deelnemer{n}@example.nl",
             "Utrecht"] for n in range(1, rows + 1)]
    if table:
        sheet.add_table(0, 0, rows, len(HEADER) - 1, {
            "name": "Aanmeldingen", "style": "Table Style Medium 2",
            "columns": [*({"header": h} for h in HEADER[:-1]),
                        {"header": "Dagen", "formula": "=[@[Aangemeld op]]-DATE(2021,9,30)"}],
        })
    else:
        sheet.write_row(0, 0, HEADER)
    for i, row in enumerate(data, start=1):
        sheet.write_datetime(i, 0, row[0], stamp)
        sheet.write_row(i, 1, row[1:])
        sheet.write_formula(i, 5, f"=A{i + 1}-DATE(2021,9,30)", None, i + 0.375)
    sheet.write_comment("B2", "Vraagt naar parkeren")
    sheet.data_validation(1, 4, rows, 4, {"validate": "list", "source": ["Utrecht", "Zeist"]})
    sheet.conditional_format(1, 5, rows, 5, {"type": "cell", "criteria": ">", "value": 2,
                                             "format": book.add_format({"bold": True})})
    sheet.insert_image("M2", str(image))
    chart = book.add_chart({"type": "column"})
    chart.add_series({"values": f"=Deelnemers!$F$2:$F${rows + 1}"})
    sheet.insert_chart("M6", chart)
    book.define_name("Gemeenten", f"=Deelnemers!$E$2:$E${rows + 1}")
    sheet_chart = book.add_chart({"type": "line"})
    sheet_chart.add_series({"values": f"=Deelnemers!$F$2:$F${rows + 1}"})
    book.add_chartsheet("Grafiek").set_chart(sheet_chart)
    book.close()
    return path


def status_cells(rows: int = 4, first_col: int = 7) -> dict[tuple[int, int], CellWrite]:
    """Header and values for the three tool columns right of the registrations."""
    cells = {(1, first_col + i): CellWrite(name) for i, name in enumerate(TOOL)}
    for row in range(2, rows + 2):
        confirmed = row % 2 == 0
        cells[(row, first_col)] = CellWrite("bevestigd" if confirmed else "wachtlijst",
                                            GREEN if confirmed else ORANGE)
        cells[(row, first_col + 1)] = CellWrite("" if confirmed else "Gemeente zit vol")
        cells[(row, first_col + 2)] = CellWrite(date(2021, 10, 4) if confirmed else None)
    return cells


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def raw_members(path: Path) -> list[tuple[str, int, int, int]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, i.compress_type, i.compress_size, i.CRC) for i in zf.infolist()]


def cells_xml(sheet_xml: bytes) -> dict[str, bytes]:
    """Every <c> element by reference, exactly as stored."""
    found = re.findall(rb'(<c r="([A-Z]+\d+)"[^>]*?(?:/>|>.*?</c>))', sheet_xml, re.S)
    return {ref.decode(): element for element, ref in found}


def values(path: Path, sheet: str = "Deelnemers") -> list[list[Any]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python(
        skip_empty_area=False)


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    return rich_workbook(tmp_path / "leergang.xlsx")


# ---------------------------------------------------------------------------- preservation


def test_every_part_but_sheet_styles_and_table_stays_byte_identical(workbook: Path) -> None:
    before, raw_before = members(workbook), raw_members(workbook)
    assert write_cells(workbook, "Deelnemers", status_cells())
    after = members(workbook)
    assert list(after) == list(before)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {SHEET, "xl/styles.xml", "xl/tables/table1.xml"}
    # Unchanged members are copied with their compressed bytes, not recompressed.
    assert [m for m in raw_members(workbook) if m[0] not in changed] == [
        m for m in raw_before if m[0] not in changed]
    assert "xl/sharedStrings.xml" not in changed


def test_original_cells_keep_values_formulas_and_cached_results(workbook: Path) -> None:
    before = cells_xml(members(workbook)[SHEET])
    write_cells(workbook, "Deelnemers", status_cells())
    after = cells_xml(members(workbook)[SHEET])
    assert {ref: after[ref] for ref in before} == before
    assert b"<f>" in after["F2"] and b"<v>1.375</v>" in after["F2"]


def test_root_namespaces_and_everything_outside_sheet_data_stay_as_they_were(
        workbook: Path) -> None:
    def outside(xml: bytes) -> bytes:
        xml = re.sub(rb"<sheetData>.*</sheetData>", b"", xml, flags=re.S)
        return re.sub(rb'<dimension ref="[^"]*"/>', b"", xml)

    before = members(workbook)[SHEET]
    write_cells(workbook, "Deelnemers", status_cells())
    after = members(workbook)[SHEET]
    assert outside(after) == outside(before)
    assert after[: after.index(b"<sheetData")].startswith(before[: before.index(b"<dimension")])


def test_written_values_read_back_with_openpyxl_calamine_and_pandas(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells())
    sheet = openpyxl.load_workbook(workbook)["Deelnemers"]
    assert [sheet.cell(1, c).value for c in (7, 8, 9)] == TOOL
    assert [sheet.cell(2, c).value for c in (7, 8, 9)] == ["bevestigd", None,
                                                           datetime(2021, 10, 4)]
    assert [sheet.cell(3, c).value for c in (7, 8, 9)] == ["wachtlijst", "Gemeente zit vol",
                                                           None]
    assert values(workbook)[2][6:9] == ["wachtlijst", "Gemeente zit vol", ""]
    frame = pd.read_excel(workbook, sheet_name="Deelnemers", engine="calamine")
    assert list(frame.columns) == HEADER + TOOL
    assert list(frame["Status"]) == ["bevestigd", "wachtlijst"] * 2
    assert frame["Dagen"].iloc[0] == 1.375  # the cached formula result, not recalculated
    with_openpyxl = pd.read_excel(workbook, sheet_name="Deelnemers", engine="openpyxl")
    assert list(with_openpyxl["Melding"].fillna("")) == ["", "Gemeente zit vol"] * 2


def test_status_colours_are_fills_on_the_written_cells(workbook: Path) -> None:
    red_text = CellStyle(font_color="FF9C0006")
    write_cells(workbook, "Deelnemers", status_cells() | {(7, 7): CellWrite("fout", red_text)})
    sheet = openpyxl.load_workbook(workbook)["Deelnemers"]
    assert sheet["G7"].font.color.rgb == "FF9C0006"
    assert sheet["G7"].font.name == sheet["G2"].font.name  # the rest of the font is kept
    assert sheet["G2"].fill.fgColor.rgb == "FFC6EFCE"
    assert sheet["G3"].fill.fgColor.rgb == "FFFFE699"
    assert sheet["G3"].font.b and not sheet["G2"].font.b
    assert sheet["A2"].number_format == "dd-mm-yyyy hh:mm"  # existing styles untouched


# ---------------------------------------------------------------------------- tables


def test_table_is_extended_over_new_header_columns_with_matching_names(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells())
    table = etree.fromstring(members(workbook)["xl/tables/table1.xml"])
    assert table.get("ref") == "A1:I5"
    assert table.find(f"{{{MAIN}}}autoFilter").get("ref") == "A1:I5"
    columns = table.find(f"{{{MAIN}}}tableColumns")
    assert columns.get("count") == "9"
    assert [(c.get("id"), c.get("name")) for c in columns][-4:] == [
        ("6", "Dagen"), ("7", "Status"), ("8", "Melding"), ("9", "Bevestiging verstuurd")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # openpyxl must load it without complaint
        sheet = openpyxl.load_workbook(workbook)["Deelnemers"]
    assert sheet.tables["Aanmeldingen"].ref == "A1:I5"
    assert [c.name for c in sheet.tables["Aanmeldingen"].tableColumns] == HEADER + TOOL


def test_table_grows_down_over_rows_written_directly_below_it(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells())
    appended = {(6, 1): CellWrite(datetime(2021, 10, 9, 12)), (6, 2): CellWrite("Nieuw"),
                (7, 2): CellWrite("Nieuwer"), (9, 2): CellWrite("Los")}
    write_cells(workbook, "Deelnemers", appended)
    table = etree.fromstring(members(workbook)["xl/tables/table1.xml"])
    assert table.get("ref") == "A1:I7"  # row 8 is empty, so row 9 stays outside
    assert values(workbook)[5][:2][1] == "Nieuw"


def test_table_with_a_totals_row_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "totals.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Deelnemers")
    sheet.add_table(0, 0, 3, 1, {"total_row": True, "columns": [
        {"header": "Naam", "total_string": "Totaal"}, {"header": "Aantal",
                                                       "total_function": "sum"}]})
    sheet.write_column(1, 0, ["a", "b"])
    book.close()
    table_before = members(path)["xl/tables/table1.xml"]
    write_cells(path, "Deelnemers", {(1, 3): CellWrite("Status"), (2, 3): CellWrite("ok"),
                                     (5, 1): CellWrite("onder het totaal")})
    assert members(path)["xl/tables/table1.xml"] == table_before
    assert values(path)[0][2] == "Status"


def test_headers_on_another_row_than_the_tables_header_row_stay_outside(workbook: Path) -> None:
    table_before = members(workbook)["xl/tables/table1.xml"]
    cells = {(row + 1, col): write for (row, col), write in status_cells().items()}
    write_cells(workbook, "Deelnemers", cells, header_row=2)
    assert members(workbook)["xl/tables/table1.xml"] == table_before
    assert values(workbook)[1][6:9] == TOOL


def test_header_name_already_in_the_table_keeps_the_table_as_it_is(workbook: Path) -> None:
    table_before = members(workbook)["xl/tables/table1.xml"]
    write_cells(workbook, "Deelnemers", {(1, 7): CellWrite("voornaam")})
    assert members(workbook)["xl/tables/table1.xml"] == table_before


def test_renaming_a_header_inside_the_table_renames_its_column(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", {(1, 5): CellWrite("Woonplaats & gemeente")})
    table = etree.fromstring(members(workbook)["xl/tables/table1.xml"])
    assert [c.get("name") for c in table.iter(f"{{{MAIN}}}tableColumn")][4] == (
        "Woonplaats & gemeente")


def test_empty_header_inside_a_table_is_refused(workbook: Path) -> None:
    before = workbook.read_bytes()
    with pytest.raises(InputError, match="Kopcel E1"):
        write_cells(workbook, "Deelnemers", {(1, 5): CellWrite(None)})
    assert workbook.read_bytes() == before


# ---------------------------------------------------------------------------- write_cells edge


def test_second_identical_write_leaves_the_file_untouched(workbook: Path) -> None:
    assert write_cells(workbook, "Deelnemers", status_cells())
    os.utime(workbook, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before, stat = workbook.read_bytes(), workbook.stat()
    assert not write_cells(workbook, "Deelnemers", status_cells())
    assert workbook.read_bytes() == before
    assert workbook.stat().st_mtime_ns == stat.st_mtime_ns
    assert sorted(p.name for p in workbook.parent.iterdir()) == [
        "leergang.backup.xlsx", "leergang.xlsx", "logo.png"]


@pytest.mark.parametrize("lock_name", ["~$leergang.xlsx", ".~lock.leergang.xlsx#"])
def test_lock_file_means_workbook_in_use_and_nothing_written(workbook: Path,
                                                            lock_name: str) -> None:
    lock = workbook.with_name(lock_name)
    lock.write_bytes(b"organiser")
    before = workbook.read_bytes()
    assert lock_files(workbook) == [lock]
    with pytest.raises(WorkbookInUse, match=re.escape(lock_name)):
        write_cells(workbook, "Deelnemers", status_cells())
    assert workbook.read_bytes() == before
    assert not backup_path(workbook).exists()
    lock.unlink()
    ensure_not_in_use(workbook)


def test_lock_file_appearing_during_the_write_stops_the_replace(
        workbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_verify = write_module._verify

    def verify_then_open_in_excel(*args: Any) -> None:
        real_verify(*args)
        workbook.with_name("~$leergang.xlsx").write_bytes(b"organiser")

    monkeypatch.setattr(write_module, "_verify", verify_then_open_in_excel)
    before = workbook.read_bytes()
    with pytest.raises(WorkbookInUse):
        write_cells(workbook, "Deelnemers", status_cells())
    assert workbook.read_bytes() == before
    assert sorted(p.name for p in workbook.parent.iterdir()) == [
        "leergang.xlsx", "logo.png", "~$leergang.xlsx"]  # no temp file left


@pytest.mark.parametrize("damage", ["not a zip", "truncated", "empty", "encrypted"])
def test_unreadable_file_is_input_error_and_stays_identical(tmp_path: Path, damage: str,
                                                           workbook: Path) -> None:
    path = tmp_path / "kapot.xlsx"
    data = {"not a zip": b"Naam;E-mail\nAnnemiek;contact@example.org\n",
            "truncated": workbook.read_bytes()[:-200],
            "empty": b"",
            "encrypted": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)}[damage]
    path.write_bytes(data)
    with pytest.raises(InputError, match=r"kapot\.xlsx"):
        write_cells(path, "Deelnemers", status_cells())
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kapot.xlsx", "leergang.xlsx",
                                                         "logo.png"]


def test_missing_workbook_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="niet gevonden"):
        write_cells(tmp_path / "weg.xlsx", "Deelnemers", status_cells())


def test_missing_sheet_is_input_error_naming_the_sheets_there_are(workbook: Path) -> None:
    before = workbook.read_bytes()
    with pytest.raises(InputError, match=r"Werkblad 'Aanmeldingen' niet gevonden.*'Deelnemers'"):
        write_cells(workbook, "Aanmeldingen", status_cells())
    assert workbook.read_bytes() == before


def test_a_chartsheet_is_no_sheet_to_write_to(workbook: Path) -> None:
    with pytest.raises(InputError, match="Grafiek"):
        write_cells(workbook, "Grafiek", status_cells())


def test_backup_holds_the_previous_version(workbook: Path) -> None:
    original = workbook.read_bytes()
    write_cells(workbook, "Deelnemers", status_cells())
    assert backup_path(workbook) == workbook.with_name("leergang.backup.xlsx")
    assert backup_path(workbook).read_bytes() == original
    first = workbook.read_bytes()
    write_cells(workbook, "Deelnemers", {(2, 7): CellWrite("afgemeld")})
    assert backup_path(workbook).read_bytes() == first  # one previous version, overwritten


def test_no_backup_when_asked_not_to(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells(), backup=False)
    assert not backup_path(workbook).exists()


def test_file_permissions_survive_the_replace(workbook: Path) -> None:
    workbook.chmod(0o640)
    write_cells(workbook, "Deelnemers", status_cells())
    assert workbook.stat().st_mode & 0o777 == 0o640


def test_failed_verification_leaves_the_original_and_no_temp_file(
        workbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def misread(*args: Any) -> None:
        raise ValueError("cel G2 bevat 'x' in plaats van 'bevestigd'")

    monkeypatch.setattr(verify_module, "_verify_values", misread)
    before = workbook.read_bytes()
    with pytest.raises(LeergangError, match="Controle van de bijgewerkte werkmap mislukt"):
        write_cells(workbook, "Deelnemers", status_cells())
    assert workbook.read_bytes() == before
    assert sorted(p.name for p in workbook.parent.iterdir()) == ["leergang.xlsx", "logo.png"]


@pytest.mark.parametrize("text", ["", "a & b", "<x>", "&amp;", "&lt;&gt;", "1 < 2 & 3 > 2",
                                  "'\"\r\n", "&&&;", "&quot;&#13;"])
def test_xml_escaping_is_what_saxutils_does(text: str) -> None:
    from xml.sax import saxutils

    for entities in ({}, {"\r": "&#13;"}, {'"': "&quot;"}):
        assert cells_module.escape(text, entities) == saxutils.escape(text, entities)
    for entities in ({}, {"&quot;": '"'}):
        assert cells_module.unescape(text, entities) == saxutils.unescape(text, entities)


def test_read_back_finds_a_cell_that_does_not_hold_what_was_written(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells())
    expected = {**status_cells(), (2, 7): CellWrite("wachtlijst")}
    with pytest.raises(VerificationFailed,
                       match="cel G2 bevat 'bevestigd' in plaats van 'wachtlijst'"):
        verify_module._verify(workbook, "Deelnemers", cells_module._group_writes(expected))


def flip_a_byte(xlsx: bytes, member: str) -> bytes:
    """The workbook with one byte inside a member's compressed data flipped."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as zf:
        info = zf.getinfo(member)
    raw = bytearray(xlsx)
    name_and_extra = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    raw[info.header_offset + 30 + sum(name_and_extra) + info.compress_size // 2] ^= 0xFF
    return bytes(raw)


def test_a_damaged_sheet_is_reported_and_nothing_written(workbook: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.xlsx"
    damaged.write_bytes(flip_a_byte(workbook.read_bytes(), SHEET))
    out = tmp_path / "out.xlsx"
    with pytest.raises(InputError, match=r"damaged\.xlsx is beschadigd"):
        patch_workbook(damaged, out, "Deelnemers", status_cells())
    assert not out.exists()


def test_read_back_finds_a_damaged_member(workbook: Path, tmp_path: Path) -> None:
    write_cells(workbook, "Deelnemers", status_cells())
    damaged = tmp_path / "damaged.xlsx"
    # The theme is a part the patch copies through without reading it.
    damaged.write_bytes(flip_a_byte(workbook.read_bytes(), "xl/theme/theme1.xml"))
    with pytest.raises(VerificationFailed, match="Controle van de bijgewerkte werkmap mislukt"):
        verify_module._verify(damaged, "Deelnemers", cells_module._group_writes(status_cells()))


# ---------------------------------------------------------------------------- values


def test_dates_get_a_date_format_and_datetimes_a_time_too(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", {(2, 9): CellWrite(date(2021, 10, 4)),
                                         (3, 9): CellWrite(datetime(2021, 10, 4, 13, 30)),
                                         (4, 9): CellWrite(date(2021, 10, 5),
                                                           CellStyle(number_format="d mmm"))})
    sheet = openpyxl.load_workbook(workbook)["Deelnemers"]
    assert (sheet["I2"].value, sheet["I2"].number_format) == (datetime(2021, 10, 4),
                                                              "dd-mm-yyyy")
    assert (sheet["I3"].value, sheet["I3"].number_format) == (datetime(2021, 10, 4, 13, 30),
                                                              "dd-mm-yyyy hh:mm")
    assert sheet["I4"].number_format == "d mmm"
    assert b"<v>44473</v>" in members(workbook)[SHEET]


def test_a_date_keeps_the_date_format_the_organisers_gave_its_column(workbook: Path) -> None:
    # A2 holds a datetime formatted dd-mm-yyyy hh:mm by the organisers: keep that format.
    write_cells(workbook, "Deelnemers", {(2, 1): CellWrite(datetime(2021, 10, 2, 8))})
    assert openpyxl.load_workbook(workbook)["Deelnemers"]["A2"].number_format == (
        "dd-mm-yyyy hh:mm")


def test_dates_honour_the_1904_date_system(tmp_path: Path) -> None:
    path = tmp_path / "mac.xlsx"
    book = xlsxwriter.Workbook(str(path), {"date_1904": True})
    book.add_worksheet("Deelnemers").write(0, 0, "Naam")
    book.close()
    write_cells(path, "Deelnemers", {(2, 1): CellWrite(date(2021, 10, 4))})
    assert b"<v>43011</v>" in members(path)["xl/worksheets/sheet1.xml"]
    assert openpyxl.load_workbook(path)["Deelnemers"]["A2"].value == datetime(2021, 10, 4)


def test_numbers_and_booleans_are_stored_as_values(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", {(2, 10): CellWrite(3), (3, 10): CellWrite(2.5),
                                         (4, 10): CellWrite(True)})
    assert [row[9] for row in values(workbook)[1:4]] == [3, 2.5, True]
    xml = members(workbook)[SHEET]
    assert b'<c r="J4" t="b"><v>1</v></c>' in xml and b'<c r="J3"><v>2.5</v></c>' in xml


def test_numbers_in_date_and_time_formatted_cells_pass_the_read_back(tmp_path: Path) -> None:
    path = tmp_path / "tijden.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Bijeenkomsten")
    sheet.write(0, 0, 0.5, book.add_format({"num_format": "hh:mm"}))
    sheet.write(0, 1, 44470.25, book.add_format({"num_format": "dd-mm-yyyy hh:mm"}))
    book.close()
    assert write_cells(path, "Bijeenkomsten", {(1, 1): CellWrite(1.5625),
                                               (1, 2): CellWrite(44471.5)})
    assert values(path, "Bijeenkomsten")[0][1] == datetime(2021, 10, 2, 12)


def test_formula_and_markup_lookalikes_are_stored_as_inline_text(workbook: Path) -> None:
    texts = ['=HYPERLINK("http://example.org","klik")', "<script>alert(1)</script>",
             "+31 6 12345678", "@SUM(A1)", "A & B \"quoted\"", "  spaties  "]
    write_cells(workbook, "Deelnemers", {(2 + i, 8): CellWrite(t) for i, t in enumerate(texts)})
    xml = members(workbook)[SHEET]
    assert b"HYPERLINK" not in b"".join(re.findall(rb"<f>.*?</f>", xml))
    assert b'<c r="H2" t="inlineStr"><is><t xml:space="preserve">=HYPERLINK(' in xml
    assert b"&lt;script&gt;" in xml
    assert [row[7] for row in values(workbook)[1:7]] == texts
    sheet = openpyxl.load_workbook(workbook)["Deelnemers"]
    assert sheet["H2"].data_type == "s" and sheet["H2"].value == texts[0]


def test_characters_xml_cannot_hold_are_dropped(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", {(2, 8): CellWrite("bel\x00 me\x0b terug\r\n\tdag")})
    assert values(workbook)[1][7] == "bel me terug\r\n\tdag"


def test_cells_far_from_any_data_read_back(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, "<sheetData/>")
    assert write_cells(path, "Deelnemers", {(5, 5): CellWrite("x"), (7, 3): CellWrite("y"),
                                            (9, 9): CellWrite(None)})
    grid = values(path)
    assert (grid[4][4], grid[6][2]) == ("x", "y")


def test_text_that_looks_like_an_excel_escape_stays_literal(workbook: Path) -> None:
    write_cells(workbook, "Deelnemers", {(2, 8): CellWrite("code _x0041_")})
    assert b"code _x005F_x0041_" in members(workbook)[SHEET]
    assert openpyxl.load_workbook(workbook)["Deelnemers"]["H2"].value in (
        "code _x0041_", "code _x005F_x0041_")  # openpyxl does not unescape; Excel does


def test_shared_strings_never_change(workbook: Path) -> None:
    before = members(workbook)["xl/sharedStrings.xml"]
    write_cells(workbook, "Deelnemers", {(2, 2): CellWrite("Overschreven"),
                                         (9, 2): CellWrite("Nieuw")})
    assert members(workbook)["xl/sharedStrings.xml"] == before


# ---------------------------------------------------------------------------- sheet structure


def test_sheet_is_found_by_name_through_the_relationships_not_by_file_name(
        tmp_path: Path) -> None:
    built = tmp_path / "gebouwd.xlsx"
    book = openpyxl.Workbook()
    assert book.active is not None
    book.active.title = "Instellingen"
    book.create_sheet("Bijeenkomsten")
    book.create_sheet("Deelnemers")  # stored as sheet3.xml
    book.save(built)
    path = tmp_path / "volgorde.xlsx"
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/workbook.xml":  # make Deelnemers the first tab
                sheets = re.findall(rb"<sheet [^>]*/>", data)
                data = data.replace(b"".join(sheets), b"".join([sheets[2], *sheets[:2]]))
            dst.writestr(info, data)
    write_cells(path, "  deelnemers ", {(1, 1): CellWrite("hier")})
    assert b"hier" in members(path)["xl/worksheets/sheet3.xml"]
    assert b"hier" not in members(path)["xl/worksheets/sheet1.xml"]
    assert values(path)[0] == ["hier"]


def test_absolute_relationship_targets_are_followed(workbook: Path, tmp_path: Path) -> None:
    changed = tmp_path / "absoluut.xlsx"
    with zipfile.ZipFile(workbook) as src, zipfile.ZipFile(changed, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b'Target="worksheets/', b'Target="/xl/worksheets/')
            dst.writestr(info, data)
    write_cells(changed, "Deelnemers", {(2, 7): CellWrite("bevestigd")})
    assert b"bevestigd" in members(changed)[SHEET]


def test_rows_stay_ascending_and_cells_in_column_order(tmp_path: Path) -> None:
    path = tmp_path / "gaten.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Deelnemers")
    sheet.write_row(0, 0, ["a", None, "c"])
    sheet.write_row(4, 0, ["e", None, None, "h"])
    book.close()
    write_cells(path, "Deelnemers", {(1, 2): CellWrite("b"), (3, 2): CellWrite("nieuw"),
                                     (5, 2): CellWrite("f"), (8, 1): CellWrite("achteraan")})
    root = etree.fromstring(members(path)["xl/worksheets/sheet1.xml"])
    rows = root.iter(f"{{{MAIN}}}row")
    refs = [[c.get("r") for c in row] for row in rows]
    assert refs == [["A1", "B1", "C1"], ["B3"], ["A5", "B5", "D5"], ["A8"]]
    assert root.find(f"{{{MAIN}}}dimension").get("ref") == "A1:D8"
    assert values(path)[2][1] == "nieuw"


def test_empty_and_self_closing_rows_and_sheet_data_are_handled(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<dimension ref="A1"/><sheetData/>')
    write_cells(path, "Deelnemers", {(2, 2): CellWrite("x"), (1, 1): CellWrite("y")})
    assert values(path)[:2] == [["y", ""], ["", "x"]]
    path = write_raw_sheet(tmp_path, '<sheetData><row r="1" spans="1:1"/><row r="2" ht="30" '
                                     'customHeight="1"><c r="A2"><v>1</v></c></row></sheetData>')
    write_cells(path, "Deelnemers", {(1, 3): CellWrite("x"), (2, 3): CellWrite("z")})
    xml = members(path)["xl/worksheets/sheet1.xml"]
    assert b'<row r="1" spans="1:3"><c r="C1"' in xml
    assert b'<row r="2" ht="30" customHeight="1"><c r="A2"><v>1</v></c><c r="C2"' in xml


def test_cells_and_rows_without_r_keep_their_positions(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<sheetData><row><c t="inlineStr"><is><t>a</t></is></c>'
                                     '<c><v>2</v></c></row><row><c><v>3</v></c></row>'
                                     '</sheetData>')
    write_cells(path, "Deelnemers", {(1, 1): CellWrite("A"), (1, 3): CellWrite("C")})
    assert values(path)[:2] == [["A", 2, "C"], [3, "", ""]]


def test_prefixed_spreadsheetml_is_patched_with_its_own_prefix(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<x:sheetData><x:row r="1"><x:c r="A1"><x:v>1</x:v>'
                                     '</x:c></x:row></x:sheetData>', prefix="x:")
    write_cells(path, "Deelnemers", {(1, 2): CellWrite("b"), (2, 1): CellWrite(2)})
    xml = members(path)["xl/worksheets/sheet1.xml"]
    assert b'<x:c r="B1" t="inlineStr"><x:is><x:t xml:space="preserve">b</x:t>' in xml
    assert values(path)[:2] == [[1, "b"], [2, ""]]


ROW_SHAPES = {
    "text and number": '<row r="2" spans="1:2"><c r="A2"><v>1</v></c>'
                       '<c r="B2" t="inlineStr"><is><t>x</t></is></c></row>',
    "self-closing last cell": '<row r="2" spans="1:2"><c r="A2"><v>1</v></c><c r="B2"/></row>',
    "formatted row": '<row r="2" s="0" customFormat="1"><c r="A2"><v>1</v></c></row>',
    "extLst after the cells": '<row r="2"><c r="A2"><v>1</v></c>'
                              '<extLst><ext uri="{00000000-0000-0000-0000-000000000000}"/>'
                              '</extLst></row>',
    "rich text last": '<row r="2"><c r="A2" t="inlineStr"><is><r><rPr><color rgb="FFFF0000"/>'
                      '</rPr><t>x</t></r></is></c></row>',
    "last cell without r": '<row r="2"><c><v>1</v></c><c><v>2</v></c></row>',
    "a write left of the last cell": '<row r="2"><c r="A2"><v>1</v></c><c r="F2"><v>6</v></c>'
                                     '</row>',
    "column styles": '<row r="2"><c r="A2"><v>1</v></c></row>',
}


@pytest.mark.parametrize("shape", ROW_SHAPES)
def test_cells_appended_at_a_rows_end_are_what_the_general_path_writes(
        tmp_path: Path, shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cols = '<cols><col min="4" max="5" width="9" style="0"/></cols>' \
        if shape == "column styles" else ""
    sheet_data = f'{cols}<sheetData><row r="1"><c r="A1"><v>0</v></c></row>' \
                 f'{ROW_SHAPES[shape]}</sheetData>'
    cells = {(2, 4): CellWrite("wachtlijst", ORANGE), (2, 5): CellWrite("Let op: <b> & 'c'"),
             (2, 6): CellWrite(None), (2, 7): CellWrite(date(2021, 10, 4))}
    if shape == "a write left of the last cell":
        cells[(2, 3)] = CellWrite("links")
    quick = write_raw_sheet(tmp_path, sheet_data)
    write_cells(quick, "Deelnemers", cells)
    monkeypatch.setattr(sheet_module._SheetPatcher, "_appended", lambda *args: None)
    general = write_raw_sheet(tmp_path, sheet_data)
    write_cells(general, "Deelnemers", cells)
    sheet = "xl/worksheets/sheet1.xml"
    assert members(quick)[sheet] == members(general)[sheet]
    assert values(quick)[1][3:5] == ["wachtlijst", "Let op: <b> & 'c'"]


def test_the_quick_path_takes_the_common_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the test above: the shapes a first flag meets do go the quick way."""
    taken: list[str] = []
    appended = sheet_module._SheetPatcher._appended

    def spy(self: Any, row: bytes, *args: Any) -> bytes | None:
        result = appended(self, row, *args)
        taken.append("quick" if result is not None else "general")
        return result

    monkeypatch.setattr(sheet_module._SheetPatcher, "_appended", spy)
    for shape in ("text and number", "formatted row", "extLst after the cells"):
        patcher = sheet_module._SheetPatcher(
            {2: [(4, CellWrite("x"))]}, None, False, {})
        source = io.BytesIO(f'<worksheet xmlns="{MAIN}"><sheetData>{ROW_SHAPES[shape]}'
                            f'</sheetData></worksheet>'.encode())
        patcher.run(source, io.BytesIO())
    assert taken == ["quick"] * 3


def test_column_width_is_added_only_for_columns_without_one(workbook: Path) -> None:
    with zipfile.ZipFile(workbook) as zf:
        assert b"<cols>" not in zf.read(SHEET)
    write_cells(workbook, "Deelnemers", status_cells(), column_widths={7: 14, 8: 40.5})
    write_cells(workbook, "Deelnemers", {(2, 7): CellWrite("afgemeld")},
                column_widths={7: 99, 2: 20})
    cols = re.search(rb"<cols>.*</cols>", members(workbook)[SHEET])
    assert cols is not None
    assert cols.group(0) == (b'<cols><col min="2" max="2" width="20" customWidth="1"/>'
                             b'<col min="7" max="7" width="14" customWidth="1"/>'
                             b'<col min="8" max="8" width="40.5" customWidth="1"/></cols>')


def test_new_cells_take_the_style_of_their_column(tmp_path: Path) -> None:
    path = tmp_path / "kolomstijl.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Deelnemers")
    sheet.set_column(2, 2, 20, book.add_format({"bg_color": "#DDEBF7"}))
    sheet.write(0, 0, "Naam")
    book.close()
    write_cells(path, "Deelnemers", {(2, 3): CellWrite("x"), (3, 3): CellWrite("y", GREEN)})
    sheet = openpyxl.load_workbook(path)["Deelnemers"]
    assert sheet["C2"].fill.fgColor.rgb == "FFDDEBF7"
    assert sheet["C3"].fill.fgColor.rgb == "FFC6EFCE"
    assert sheet["C3"].font.name == sheet["C2"].font.name == "Calibri"


# ---------------------------------------------------------------------------- styles


def test_styles_are_appended_and_reused_never_renumbered(workbook: Path) -> None:
    def xfs(xml: bytes) -> list[bytes]:
        section = re.search(rb"<cellXfs[^>]*>(.*)</cellXfs>", xml, re.S)
        assert section is not None
        return re.findall(rb"<xf\b[^>]*?(?:/>|>.*?</xf>)", section.group(1), re.S)

    before = members(workbook)["xl/styles.xml"]
    write_cells(workbook, "Deelnemers", status_cells())
    once = members(workbook)["xl/styles.xml"]
    assert xfs(once)[: len(xfs(before))] == xfs(before)
    added = len(xfs(once)) - len(xfs(before))
    assert added == 3  # green fill, orange bold fill, date format: each once
    assert f'<cellXfs count="{len(xfs(once))}">'.encode() in once
    assert re.sub(rb"<(cellXfs|fonts|fills|numFmts)\b.*?</\1>", b"", once, flags=re.S) == (
        re.sub(rb"<(cellXfs|fonts|fills|numFmts)\b.*?</\1>", b"", before, flags=re.S))
    write_cells(workbook, "Deelnemers", {(6, 7): CellWrite("bevestigd", GREEN)})
    assert members(workbook)["xl/styles.xml"] == once  # the green xf is reused


# ---------------------------------------------------------------------------- formulas


def test_overwriting_a_formula_drops_its_calc_chain_entry(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<sheetData><row r="1"><c r="A1"><v>1</v></c>'
                                     '<c r="B1"><f>A1*2</f><v>2</v></c><c r="C1"><f>A1*3</f>'
                                     '<v>3</v></c></row></sheetData>',
                           calc_chain='<c r="B1" i="1" l="1"/><c r="C1"/>')
    write_cells(path, "Deelnemers", {(1, 2): CellWrite("vast")})
    chain = members(path)["xl/calcChain.xml"]
    assert b'r="B1"' not in chain and b'<c r="C1" i="1"/>' in chain
    assert values(path)[0] == [1, "vast", 3]


def test_overwriting_the_last_formula_drops_the_calc_chain(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<sheetData><row r="1"><c r="A1"><f>1+1</f><v>2</v></c>'
                                     '</row></sheetData>', calc_chain='<c r="A1" i="1"/>')
    write_cells(path, "Deelnemers", {(1, 1): CellWrite(5)})
    parts = members(path)
    assert "xl/calcChain.xml" not in parts
    assert b"calcChain" not in parts["[Content_Types].xml"]
    assert b"calcChain" not in parts["xl/_rels/workbook.xml.rels"]


def test_overwriting_a_shared_formula_master_gives_the_others_their_own(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<sheetData><row r="1"><c r="A1"><v>1</v></c>'
                                     '<c r="B1"><f t="shared" ref="B1:B3" si="0">A1*2</f>'
                                     '<v>2</v></c></row><row r="2"><c r="A2"><v>2</v></c>'
                                     '<c r="B2"><f t="shared" si="0"/><v>4</v></c></row>'
                                     '<row r="3"><c r="A3"><v>3</v></c><c r="B3">'
                                     '<f t="shared" si="0"/><v>6</v></c></row></sheetData>')
    write_cells(path, "Deelnemers", {(1, 2): CellWrite("vast")})
    xml = members(path)["xl/worksheets/sheet1.xml"]
    assert b'<c r="B2"><f>A2*2</f><v>4</v></c>' in xml
    assert b'<c r="B3"><f>A3*2</f><v>6</v></c>' in xml
    assert openpyxl.load_workbook(path)["Deelnemers"]["B3"].value == "=A3*2"


def test_writing_into_an_array_formula_is_refused(tmp_path: Path) -> None:
    path = write_raw_sheet(tmp_path, '<sheetData><row r="1"><c r="A1"><f t="array" ref="A1:A2">'
                                     'ROW(1:2)</f><v>1</v></c></row><row r="2"><c r="A2">'
                                     '<v>2</v></c></row></sheetData>')
    before = path.read_bytes()
    with pytest.raises(InputError, match="matrixformule"):
        write_cells(path, "Deelnemers", {(2, 1): CellWrite("x")})
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------- patch_workbook


def test_patch_workbook_writes_nothing_when_nothing_changes(workbook: Path,
                                                            tmp_path: Path) -> None:
    once, again, empty = tmp_path / "1.xlsx", tmp_path / "2.xlsx", tmp_path / "3.xlsx"
    assert patch_workbook(workbook, once, "Deelnemers", status_cells())
    assert not patch_workbook(once, again, "Deelnemers", status_cells())
    assert not patch_workbook(workbook, empty, "Deelnemers", {(20, 20): CellWrite(None)})
    assert not again.exists() and not empty.exists()


def test_impossible_cells_are_programming_errors(workbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "uit.xlsx"
    with pytest.raises(ValueError):
        patch_workbook(workbook, out, "Deelnemers", {(0, 1): CellWrite("x")})
    with pytest.raises(ValueError):
        patch_workbook(workbook, out, "Deelnemers", {(1, 1): CellWrite(float("nan"))})
    with pytest.raises(TypeError):
        patch_workbook(workbook, out, "Deelnemers", {(1, 1): CellWrite([1])})  # type: ignore[arg-type]
    assert not out.exists()


# ---------------------------------------------------------------------------- helpers


def write_raw_sheet(tmp_path: Path, sheet_data: str, *, prefix: str = "",
                    calc_chain: str | None = None) -> Path:
    """A minimal workbook whose one sheet, Deelnemers, has exactly this XML inside it."""
    path = tmp_path / f"raw{len(list(tmp_path.glob('raw*.xlsx')))}.xlsx"
    ns = 'xmlns:x="{0}"' if prefix else 'xmlns="{0}"'
    ns = ns.format(MAIN)
    chain_type = '<Override PartName="/xl/calcChain.xml" ContentType="application/vnd.openxml' \
                 'formats-officedocument.spreadsheetml.calcChain+xml"/>'
    chain_rel = '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDoc' \
                'ument/2006/relationships/calcChain" Target="calcChain.xml"/>'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats'
            '-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets'
            '/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="'
            'application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            + (chain_type if calc_chain else "") + "</Types>"),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
            f'{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" xmlns:r="{rel}">'
            '<sheets><sheet name="Deelnemers" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
            f'{rel}/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
            f'Type="{rel}/styles" Target="styles.xml"/>'
            + (chain_rel if calc_chain else "") + "</Relationships>"),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><{prefix}worksheet {ns}>{sheet_data}'
            f"</{prefix}worksheet>"),
        "xl/styles.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="{MAIN}">'
            '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill>'
            '<patternFill patternType="gray125"/></fill></fills><borders count="1"><border/>'
            '</borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" '
            'fillId="0" borderId="0" xfId="0"/></cellXfs><cellStyles count="1"><cellStyle '
            'name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'),
    }
    if calc_chain:
        parts["xl/calcChain.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>'
                                     f'<calcChain xmlns="{MAIN}">{calc_chain}</calcChain>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in parts.items():
            zf.writestr(name, text)
    return path



# ---------------------------------------------------------------------------- rules at their edges


def test_a_range_written_end_first_is_the_same_range() -> None:
    assert _parse_range("C5:A1") == _parse_range("A1:C5") == (1, 1, 5, 3)
    assert _parse_range("A5:C1") == (1, 1, 5, 3)


def test_boxes_that_share_one_row_or_column_overlap() -> None:
    table = (1, 1, 5, 6)
    assert _overlaps(table, (5, 6, 5, 6))  # the table's last cell
    assert _overlaps((1, 6, 1, 6), table)  # its last header cell
    assert not _overlaps(table, (1, 7, 1, 7))  # the column right of it
    assert not _overlaps(table, (6, 1, 6, 6))  # the row below it


def test_a_text_is_cut_to_excels_limit_of_32767_characters_and_no_shorter() -> None:
    assert cells_module.clean_text("x" * 32_767) == "x" * 32_767
    assert cells_module.clean_text("x" * 32_768) == "x" * 32_767


def test_the_first_of_march_1900_is_serial_61_after_excels_leap_day_that_never_was() -> None:
    serial = cells_module.excel_serial
    assert [serial(date(1900, 2, 28)), serial(date(1900, 3, 1))] == [59, 61]
    assert serial(datetime(1900, 2, 28, 12)) == 59.5


def test_date1904_written_as_true_is_the_1904_date_system(tmp_path: Path) -> None:
    path = tmp_path / "mac.xlsx"
    book = xlsxwriter.Workbook(str(path), {"date_1904": True})
    book.add_worksheet("Deelnemers").write(0, 0, "Naam")
    book.close()
    parts = members(path)
    assert b'date1904="1"' in parts["xl/workbook.xml"]
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b'date1904="1"',
                                                                 b'date1904="true"')
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    write_cells(path, "Deelnemers", {(2, 1): CellWrite(date(2021, 10, 4))})
    assert b"<v>43011</v>" in members(path)["xl/worksheets/sheet1.xml"]


def test_a_workbook_saved_by_someone_during_the_write_is_left_as_they_saved_it(
        workbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_verify = write_module._verify

    def verify_then_save_in_excel(*args: Any) -> None:
        real_verify(*args)
        workbook.write_bytes(workbook.read_bytes() + b"\0")  # saved meanwhile: other bytes

    monkeypatch.setattr(write_module, "_verify", verify_then_save_in_excel)
    with pytest.raises(WorkbookInUse, match="is gewijzigd terwijl het werd bijgewerkt"):
        write_cells(workbook, "Deelnemers", status_cells())
    saved = workbook.read_bytes()
    assert saved.endswith(b"\0")
    assert not backup_path(workbook).exists()


@pytest.mark.parametrize(("written", "read"), [(True, 1), (False, 0), (1.0, 1.0001),
                                               (3, 3.0000001), (True, "TRUE")])
def test_the_read_back_tells_a_boolean_from_a_number_and_one_number_from_a_near_one(
        written: Any, read: Any) -> None:
    with pytest.raises(ValueError, match="cel C2 bevat"):
        verify_module._check_same(written, read, False, (2, 3))


def test_the_read_back_accepts_what_a_reader_makes_of_the_written_value() -> None:
    for written, read in [(True, True), (3, 3.0), (2.5, 2.5), ("a", "a"), (None, "")]:
        verify_module._check_same(written, read, False, (2, 3))


def test_the_read_back_fails_when_the_reader_sees_fewer_rows_than_the_sheet_has(
        workbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A reader release that stopped early would otherwise pass cells it never compared.
    import python_calamine

    real = python_calamine.CalamineWorkbook.from_path

    class ShortSheet:
        def __init__(self, sheet: Any) -> None:
            self.sheet = sheet
            self.start, self.end = sheet.start, sheet.end

        def iter_rows(self) -> Any:
            return list(self.sheet.iter_rows())[:-1]

    class ShortBook:
        def __init__(self, path: str) -> None:
            self.book = real(path)

        def get_sheet_by_name(self, name: str) -> ShortSheet:
            return ShortSheet(self.book.get_sheet_by_name(name))

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_path", ShortBook)
    before = workbook.read_bytes()
    with pytest.raises(LeergangError, match="python-calamine las 4 rijen, verwacht 5"):
        write_cells(workbook, "Deelnemers", {(2, 7): CellWrite("bevestigd")})
    assert workbook.read_bytes() == before
