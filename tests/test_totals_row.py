"""An Excel table's totals row is the organisers' (contract §1): never read, never written;
rows that `import` adds go above it, moving it down as Excel does."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import warnings
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from lxml import etree
from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.errors import InputError
from leergang_ops.importer import import_export
from leergang_ops.workbook.read import load_course
from leergang_ops.workbook.write import CellWrite, write_cells
from tests.conftest import (
    DEFAULT_MEETINGS,
    DEFAULT_SETTINGS,
    MEETING_HEADER,
    REGISTRATION_HEADER,
    person,
)

SHEET = "xl/worksheets/sheet3.xml"  # Deelnemers is the third sheet
TABLE = "xl/tables/table1.xml"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
EMAIL_TOTAL = "SUBTOTAL(103,[E-mail])"
STATUS_TOTAL = "SUBTOTAL(103,[Status])"


def totals_workbook(path: Path, people: Sequence[dict[str, Any]], *, tool_columns: bool = True,
                    empty_rows: int = 0, below: str | None = None,
                    total_row: bool = True) -> Path:
    """The three sheets; `Deelnemers` as an Excel table with a totals row.

    The totals row counts `E-mail` (organiser column) and `Status` (tool column) with
    SUBTOTAL and says `Totaal` in the first column. `empty_rows` empty table rows come after
    the registrations, `below` is a note two rows under the table.
    """
    book = xlsxwriter.Workbook(str(path))
    settings = book.add_worksheet("Instellingen")
    settings.write_row(0, 0, ["Instelling", "Waarde"])
    for n, (key, value) in enumerate(DEFAULT_SETTINGS.items(), start=1):
        settings.write_row(n, 0, [key, value])
    meetings = book.add_worksheet("Bijeenkomsten")
    meetings.write_row(0, 0, MEETING_HEADER)
    date_format = book.add_format({"num_format": "dd-mm-yyyy"})
    time_format = book.add_format({"num_format": "hh:mm"})
    for n, meeting in enumerate(DEFAULT_MEETINGS, start=1):
        for col, value in enumerate(meeting):
            if isinstance(value, date):
                meetings.write_datetime(n, col, datetime(value.year, value.month, value.day),
                                        date_format)
            elif hasattr(value, "hour"):
                meetings.write_datetime(n, col, datetime(1899, 12, 31, value.hour),
                                        time_format)
            elif value is not None:
                meetings.write(n, col, value)
    sheet = book.add_worksheet("Deelnemers")
    stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
    header = [*REGISTRATION_HEADER, *(["Status"] if tool_columns else [])]
    columns: list[dict[str, Any]] = []
    for name in header:
        column: dict[str, Any] = {"header": name}
        if name == "Aangemeld op":
            column["total_string"] = "Totaal"
        elif name in ("E-mail", "Status"):
            column["total_function"] = "count"
        columns.append(column)
    data = [[p.get(c) for c in header] for p in people]
    last = len(data) + empty_rows + (1 if total_row else 0)
    sheet.add_table(0, 0, last, len(header) - 1, {
        "name": "Aanmeldingen", "total_row": total_row, "columns": columns})
    for r, row in enumerate(data, start=1):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write_datetime(r, c, value, stamp)
            elif value is not None:
                sheet.write(r, c, value)
    if below is not None:
        sheet.write(last + 2, 0, below)
    book.close()
    return path


def people(count: int, start: int = 1) -> list[dict[str, Any]]:
    return [person(n, day=n) for n in range(start, start + count)]


def sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return zf.read(SHEET).decode("utf-8")


def row_xml(path: Path, row: int) -> str:
    """The <row r="N">…</row> element of the Deelnemers sheet part, as stored."""
    match = re.search(rf'<row r="{row}"[ >].*?</row>', sheet_xml(path))
    assert match is not None, f"row {row} missing"
    return match.group(0)


def table(path: Path) -> etree._Element:
    with zipfile.ZipFile(path) as zf:
        return etree.fromstring(zf.read(TABLE))


def formulas(path: Path, row: int) -> dict[str, str]:
    """Cell reference → formula text of one row."""
    return {m.group(1): m.group(2) for m in re.finditer(
        r'<c r="([A-Z]+\d+)"[^>]*><f>([^<]*)</f>', row_xml(path, row))}


def opens_everywhere(path: Path) -> list[list[Any]]:
    """python-calamine and openpyxl read the file; the Deelnemers rows as calamine sees them."""
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(path)
    assert book["Deelnemers"].max_row >= len(rows) - 1
    return rows


def export_csv(path: Path, numbers: Sequence[int]) -> Path:
    """A plain export in the workbook's own column names."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Aangemeld op", "Voornaam", "Achternaam", "E-mail", "Gemeente",
                         "Beleidsdomein", "Functie"])
        for n in numbers:
            writer.writerow([f"2021-10-{n:02d} 10:00", f"Nieuw{n}", f"Test{n}",
                             f"nieuw{n}@example.nl", "Zeist", f"domein {n}", "adviseur"])
    return path


# --- reading ---------------------------------------------------------------------------------


def test_the_totals_row_is_not_read_as_a_registration(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    course = load_course(path)
    assert [r.row for r in course.registrations] == [2, 3, 4, 5]
    assert not [f for f in course.findings if f.row == 6]
    assert course.layout.last_row == 5


def test_validate_counts_no_invalid_registration_for_the_totals_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    assert main(["validate", str(path), "--today", "2021-10-05"]) == 0
    out = capsys.readouterr().out
    assert "0 ongeldig" in out
    assert "1 overboekt, 3 bevestigd" in out


def test_a_hidden_totals_row_totalsrowshown_0_is_no_row_of_the_table(tmp_path: Path) -> None:
    # Totals row switched off: totalsRowShown="0", the columns keep their totals functions,
    # no totalsRowCount: the last row of the ref is a registration.
    path = totals_workbook(tmp_path / "leergang.xlsx", people(3), total_row=False)
    part = table(path)
    assert part.get("totalsRowShown") == "0" and part.get("totalsRowCount") is None
    assert part.get("ref") == "A1:K4"
    assert any(c.get("totalsRowFunction") for c in part.iter(f"{{{MAIN}}}tableColumn"))
    assert [r.row for r in load_course(path).registrations] == [2, 3, 4]


# --- writing ---------------------------------------------------------------------------------


def test_flag_leaves_the_totals_row_byte_identical(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    before = row_xml(path, 6)
    assert main(["flag", str(path)]) == 0
    assert row_xml(path, 6) == before
    assert formulas(path, 6) == {"D6": EMAIL_TOTAL, "K6": STATUS_TOTAL}
    rows = opens_everywhere(path)
    assert [row[10] for row in rows[1:5]] == ["bevestigd"] * 3 + ["overboekt"]
    assert rows[0][11:13] == ["Melding", "Bevestiging verstuurd"]  # beside the table
    assert table(path).get("ref") == "A1:K6"


def test_run_leaves_the_totals_row_byte_identical_and_does_not_count_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    before = row_xml(path, 6)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    assert capsys.readouterr().out.startswith("5 mails in de map")  # 3 + 1 + the overview
    assert row_xml(path, 6) == before
    overview = next((tmp_path / "outbox").glob("overzicht*.eml")).read_text("utf-8")
    assert "Ongeldige aanmeldingen: 0" in overview
    assert "Bevestigde deelnemers: 3" in overview
    rows = opens_everywhere(path)
    assert [row[10] for row in rows[1:6]] == ["bevestigd"] * 3 + ["overboekt", 0.0]


def test_a_write_into_a_totals_row_is_refused(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2))
    before = path.read_bytes()
    with pytest.raises(InputError, match="K4 ligt in de totaalrij van tabel Aanmeldingen"):
        write_cells(path, "Deelnemers", {(2, 11): CellWrite("bevestigd"),
                                         (4, 11): CellWrite("ongeldig")})
    assert path.read_bytes() == before


def test_a_write_beside_the_totals_row_outside_the_table_is_allowed(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2))
    assert write_cells(path, "Deelnemers", {(4, 12): CellWrite("naast de tabel")})
    assert formulas(path, 4) == {"D4": EMAIL_TOTAL, "K4": STATUS_TOTAL}


def test_tool_columns_added_beside_a_table_with_a_totals_row_stay_outside_it(
        tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4), tool_columns=False)
    before, table_before = row_xml(path, 6), table(path).get("ref")
    assert main(["flag", str(path)]) == 0
    assert row_xml(path, 6) == before
    assert table(path).get("ref") == table_before == "A1:J6"
    rows = opens_everywhere(path)
    assert rows[0][10:13] == ["Status", "Melding", "Bevestiging verstuurd"]
    assert [row[10] for row in rows[1:6]] == ["bevestigd"] * 3 + ["overboekt", ""]


# --- import ----------------------------------------------------------------------------------


def imported(tmp_path: Path, workbook: Path, numbers: Sequence[int]) -> None:
    report = import_export(workbook, export_csv(tmp_path / "export.csv", numbers))
    assert len(report.added) == len(numbers)


def test_import_puts_new_rows_above_the_totals_row_and_moves_it_down(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    before = row_xml(path, 6)
    imported(tmp_path, path, [11, 12])
    moved = row_xml(path, 8)
    assert moved == re.sub(r' r="([A-Z]*)6"', r' r="\g<1>8"', before)  # only renumbered
    assert moved != before
    assert formulas(path, 8) == {"D8": EMAIL_TOTAL, "K8": STATUS_TOTAL}
    assert table(path).get("ref") == "A1:K8"
    assert table(path).find(f"{{{MAIN}}}autoFilter").get("ref") == "A1:K7"
    assert re.search(r'<dimension ref="A1:K8"/>', sheet_xml(path))
    course = load_course(path)
    assert [r.email for r in course.registrations[4:]] == ["nieuw11@example.nl",
                                                           "nieuw12@example.nl"]
    assert [r.row for r in course.registrations] == [2, 3, 4, 5, 6, 7]
    rows = opens_everywhere(path)
    assert rows[7][0] == "Totaal"


def test_import_then_flag_keeps_the_moved_totals_row_byte_identical(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    imported(tmp_path, path, [11, 12])
    before = row_xml(path, 8)
    assert main(["flag", str(path)]) == 0
    assert row_xml(path, 8) == before
    assert not any(f.row == 8 for f in load_course(path).findings)


def test_import_fills_empty_table_rows_before_moving_the_totals_row(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2), empty_rows=1)
    imported(tmp_path, path, [11, 12])
    assert table(path).get("ref") == "A1:K6"  # one row used, one inserted
    assert formulas(path, 6) == {"D6": EMAIL_TOTAL, "K6": STATUS_TOTAL}
    assert [r.row for r in load_course(path).registrations] == [2, 3, 4, 5]


def test_import_with_something_below_the_table_is_refused_and_writes_nothing(
        tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2), below="notitie")
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"staat nog iets \(cel A6\)"):
        imported(tmp_path, path, [11])
    assert path.read_bytes() == before


def test_import_moves_data_validation_and_formatting_ranges_with_the_table(
        tmp_path: Path) -> None:
    path = tmp_path / "leergang.xlsx"
    totals_workbook(path, people(2))
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    extra = (b'<dataValidations count="1"><dataValidation type="list" sqref="H2:H3">'
             b'<formula1>"deelnemer,bestuurder"</formula1></dataValidation></dataValidations>')
    parts[SHEET] = parts[SHEET].replace(b"<pageMargins", extra + b"<pageMargins", 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    imported(tmp_path, path, [11, 12])
    assert 'sqref="H2:H3"' in sheet_xml(path)  # ends above the insertion: left as it is
    path2 = tmp_path / "leergang2.xlsx"
    totals_workbook(path2, people(2))
    with zipfile.ZipFile(path2) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    parts[SHEET] = parts[SHEET].replace(b"<pageMargins", extra.replace(b"H2:H3", b"H2:H100")
                                        + b"<pageMargins", 1)
    with zipfile.ZipFile(path2, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    imported(tmp_path, path2, [11, 12])
    assert 'sqref="H2:H102"' in sheet_xml(path2)  # reaches over it: grows, as in Excel


def test_import_with_a_comment_on_the_totals_row_is_refused(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2))
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    rels = "xl/worksheets/_rels/sheet3.xml.rels"
    parts[rels] = parts[rels].replace(b"</Relationships>", (
        b'<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/comments" Target="../comments9.xml"/></Relationships>'))
    parts["xl/comments9.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<comments xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<authors><author>A</author></authors><commentList><comment ref="D4" authorId="0">'
        b'<text><t>telt de adressen</t></text></comment></commentList></comments>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"Cel D4 .* heeft een opmerking"):
        imported(tmp_path, path, [11])
    assert path.read_bytes() == before


def test_a_totals_formula_with_an_a1_reference_to_its_own_row_is_refused(
        tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(2))
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    parts[SHEET] = parts[SHEET].replace(EMAIL_TOTAL.encode(), b"COUNTA(D2:D4)", 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    before = path.read_bytes()
    with pytest.raises(InputError, match="D4"):
        imported(tmp_path, path, [11])
    assert path.read_bytes() == before


@pytest.mark.slow
@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_opens_the_workbook_after_import_with_the_totals_row_last(
        tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(4))
    imported(tmp_path, path, [11, 12])
    assert main(["flag", str(path)]) == 0
    assert SOFFICE is not None
    result = subprocess.run(
        [SOFFICE, "--headless", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
         "--convert-to", "xlsx", "--outdir", str(tmp_path / "lo"), str(path)],
        capture_output=True, text=True, timeout=120, check=False)
    saved = tmp_path / "lo" / "leergang.xlsx"
    assert saved.exists(), f"soffice: {result.stdout}{result.stderr}"
    # LibreOffice understood the table with its totals row at the new place...
    with zipfile.ZipFile(saved) as zf:
        parts = [n for n in zf.namelist() if n.startswith("xl/tables/")]
        again = etree.fromstring(zf.read(parts[0]))
    assert again.get("ref") == "A1:K8" and again.get("totalsRowCount") == "1"
    # ...and kept the registrations above it and its formulas.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sheet = openpyxl.load_workbook(saved)["Deelnemers"]
    assert [sheet.cell(row, 4).value for row in (6, 7)] == ["nieuw11@example.nl",
                                                            "nieuw12@example.nl"]
    assert sheet.cell(8, 1).value == "Totaal"
    assert str(sheet.cell(8, 4).value).casefold() == f"={EMAIL_TOTAL}".casefold()
    assert str(sheet.cell(8, 11).value).casefold() == f"={STATUS_TOTAL}".casefold()


# --- without a table -------------------------------------------------------------------------


def test_without_a_totals_row_import_appends_below_the_table_as_before(tmp_path: Path) -> None:
    path = totals_workbook(tmp_path / "leergang.xlsx", people(3), total_row=False)
    imported(tmp_path, path, [11, 12])
    assert table(path).get("ref") == "A1:K6"  # grown down over the new rows
    assert [r.row for r in load_course(path).registrations] == [2, 3, 4, 5, 6]


def test_without_a_table_the_workbook_behaves_as_before(make_workbook: Any,
                                                        tmp_path: Path) -> None:
    path = make_workbook(registrations=people(4))
    assert main(["flag", str(path)]) == 0
    imported(tmp_path, path, [11, 12])
    course = load_course(path)
    assert [r.row for r in course.registrations] == [2, 3, 4, 5, 6, 7]
    assert course.layout.last_row == 7
