"""`init`: a new organisers' workbook that reads back and helps while typing."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from leergang_ops.errors import InputError
from leergang_ops.workbook import schema
from leergang_ops.workbook.read import load_course
from leergang_ops.workbook.template import write_template

REQUIRED = {
    "Leergang": "Leergang slagvaardige wijkaanpak",
    "Contactpersoon": "Annemiek van Tol",
    "Contactpersoon e-mail": "contact@example.org",
    "Afzender naam": "Leergang wijkaanpak",
    "Afzender e-mail": "leergang@example.org",
}


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "nieuw.xlsx"
    write_template(path)
    return path


def header(sheet: Worksheet) -> list[object]:
    return [cell.value for cell in sheet[1]]


def fill_required_settings(path: Path) -> None:
    book = openpyxl.load_workbook(path)
    sheet = book[schema.SHEET_SETTINGS]
    for row in sheet.iter_rows(min_row=2):
        if row[0].value in REQUIRED:
            row[1].value = REQUIRED[str(row[0].value)]
    book.save(path)


def validations(sheet: Worksheet) -> dict[str, tuple[str, bool]]:
    """Cell range → (list formula, whether a wrong value is refused)."""
    return {str(dv.sqref): (str(dv.formula1), bool(dv.showErrorMessage))
            for dv in sheet.data_validations.dataValidation}


def test_new_workbook_has_the_three_sheets_with_their_columns(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    assert book.sheetnames == list(schema.SHEETS)
    assert header(book[schema.SHEET_SETTINGS]) == [*schema.SETTINGS_COLUMNS, "Toelichting"]
    assert header(book[schema.SHEET_MEETINGS]) == list(schema.MEETING_COLUMNS)
    assert header(book[schema.SHEET_REGISTRATIONS]) == list(schema.REGISTRATION_COLUMNS)


def test_settings_are_listed_with_defaults_and_explanations(template: Path) -> None:
    sheet = openpyxl.load_workbook(template)[schema.SHEET_SETTINGS]
    rows = {r[0]: (r[1], r[2]) for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert list(rows) == list(schema.SETTING_KEYS)
    assert rows["Max deelnemers per gemeente"][0] == 3
    assert rows["Herinneringen (dagen vooraf)"][0] == "7, 1"
    assert rows["Wekelijks overzicht op"][0] == "maandag"
    assert all(rows[key][0] is None for key in schema.REQUIRED_SETTINGS)
    assert all(hint for _, hint in rows.values())


def test_new_workbook_is_refused_until_required_settings_are_filled(template: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_course(template)
    assert {(f.column, f.code) for f in caught.value.findings} == {("Waarde", "setting-missing")}
    assert len(caught.value.findings) == len(schema.REQUIRED_SETTINGS)


def test_new_workbook_reads_back_once_required_settings_are_filled(template: Path) -> None:
    fill_required_settings(template)
    course = load_course(template)
    assert course.settings.leergang == REQUIRED["Leergang"]
    assert course.settings.max_gemeenten == 20 and course.settings.herinneringen == (7, 1)
    assert course.settings.wachtlijstbericht and not course.settings.bestuurders_tellen_mee
    assert course.meetings == () and course.registrations == ()
    assert course.layout.columns == {name: i for i, name in
                                     enumerate(schema.REGISTRATION_COLUMNS, start=1)}
    assert [f.code for f in course.findings] == ["no-meetings"]


def test_dates_and_times_typed_into_the_new_workbook_read_back(template: Path) -> None:
    fill_required_settings(template)
    book = openpyxl.load_workbook(template)
    book[schema.SHEET_MEETINGS].append([1, "Start", date(2021, 11, 11), time(14), time(17),
                                        "online", None, "https://meet.example.org/1", None])
    book[schema.SHEET_REGISTRATIONS].append([datetime(2021, 10, 1, 9, 30), "Ada", "Lovelace",
                                             "ada@example.nl", "Utrecht"])
    book.save(template)
    course = load_course(template)
    assert course.meetings[0].starts_at() == datetime(2021, 11, 11, 14, 0)
    assert course.registrations[0].aangemeld_op == datetime(2021, 10, 1, 9, 30)


def test_header_rows_are_bold_and_frozen(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.bold for cell in sheet[1])
        assert (sheet.column_dimensions["B"].width or 0) > 8


def test_date_and_time_columns_have_dutch_number_formats(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    meetings, people = book[schema.SHEET_MEETINGS], book[schema.SHEET_REGISTRATIONS]
    assert meetings.column_dimensions["C"].number_format == "dd-mm-yyyy"  # Datum
    assert meetings.column_dimensions["D"].number_format == "hh:mm"  # Begintijd
    assert meetings.column_dimensions["E"].number_format == "hh:mm"  # Eindtijd
    assert people.column_dimensions["A"].number_format == "dd-mm-yyyy hh:mm"  # Aangemeld op
    assert people.column_dimensions["M"].number_format == "dd-mm-yyyy hh:mm"


def test_dropdowns_offer_roles_audiences_and_cancellation(template: Path) -> None:
    book = openpyxl.load_workbook(template)
    people = validations(book[schema.SHEET_REGISTRATIONS])
    assert people["H2:H5000"] == ('"deelnemer,bestuurder"', True)  # Rol
    # Afgemeld suggests `ja` but accepts a date: no error alert.
    assert people["I2:I5000"] == ('"ja"', False)
    meetings = validations(book[schema.SHEET_MEETINGS])
    assert meetings["I2:I5000"] == ('"deelnemers,deelnemers en bestuurders"', True)


def test_yes_no_and_weekday_settings_have_dropdowns(template: Path) -> None:
    sheet = openpyxl.load_workbook(template)[schema.SHEET_SETTINGS]
    rows = {row[0].value: row[1].coordinate for row in sheet.iter_rows(min_row=2)}
    found = validations(sheet)
    assert found[rows["Bestuurders tellen mee"]] == ('"ja,nee"', True)
    assert found[rows["Wachtlijstbericht"]] == ('"ja,nee"', True)
    assert found[rows["Wekelijks overzicht op"]][0] == '"' + ",".join(schema.WEEKDAYS) + '"'


def test_init_refuses_to_overwrite_an_existing_file(template: Path) -> None:
    fill_required_settings(template)
    before = template.read_bytes()
    with pytest.raises(InputError) as caught:
        write_template(template)
    assert "bestaat al" in str(caught.value)
    assert template.read_bytes() == before


def test_init_refuses_a_name_that_is_not_xlsx(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_template(tmp_path / "leergang.xls")
    assert list(tmp_path.iterdir()) == []


def test_init_into_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        write_template(tmp_path / "bestaat-niet" / "leergang.xlsx")
    assert "bestaat niet" in str(caught.value)
