"""`import PATH EXPORT` (contract §4): form exports into `Deelnemers`, nothing twice, nothing lost.

The exports are built here in the layouts the form tools really write: Microsoft Forms (.xlsx,
Dutch and English headers, responder account columns), Google Forms (.csv, as downloaded and
after a round trip through a Dutch Excel) and a plain list with the workbook's own headers.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any

import openpyxl
import pytest
import xlsxwriter

from leergang_ops.cli import main
from leergang_ops.errors import InputError, WorkbookInUse
from leergang_ops.importer import (
    FieldChange,
    import_export,
    parse_mapping,
    parse_timestamp,
    read_export,
    split_name,
)
from leergang_ops.model import Registration
from leergang_ops.workbook.read import load_course
from tests.conftest import (
    DEFAULT_MEETINGS,
    DEFAULT_SETTINGS,
    MEETING_HEADER,
    REGISTRATION_HEADER,
    person,
)

Build = Callable[..., Path]

MS_FORMS_NL = ["ID", "Begintijd", "Tijdstip van voltooien", "E-mail", "Naam",
               "Tijdstip van laatste wijziging", "Voornaam", "Achternaam",
               "Wat is uw e-mailadres?", "Welke gemeente vertegenwoordigt u?", "Beleidsdomein",
               "Functie", "Vragen of opmerkingen"]
MS_FORMS_EN = ["ID", "Start time", "Completion time", "Email", "Name", "Full name",
               "What is your email address?", "Which municipality do you represent?",
               "Policy domain", "Job title", "How did you hear about this course?"]
GOOGLE_NL = ["Tijdstempel", "E-mailadres", "Voornaam", "Achternaam",
             "Welke gemeente vertegenwoordigt u?", "Beleidsdomein", "Functie",
             "Vragen of opmerkingen"]
GOOGLE_EN = ["Timestamp", "Email address", "Full name", "Municipality", "Policy domain",
             "Questions, remarks"]


# --- building exports ----------------------------------------------------------------------


def write_xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]],
               sheet: str = "Sheet1") -> Path:
    """An .xlsx export as Microsoft Forms writes it: one sheet, header in row 1, real dates."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], *,
              delimiter: str = ",", encoding: str = "utf-8") -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def ms_forms_nl(path: Path, *rows: Sequence[Any]) -> Path:
    return write_xlsx(path, MS_FORMS_NL, rows, sheet="Form1")


def ms_row(n: int, first: str, last: str, email: str, gemeente: str, *,
           done: datetime | None = None, account: str = "anonymous",
           domein: str = "wonen", remark: str = "") -> list[Any]:
    """A Dutch MS Forms response; the responder account is `anonymous` by default."""
    done = done or datetime(2021, 10, 11, 14, n)
    start = done.replace(minute=max(done.minute - 1, 0))
    return [n, start, done, account, account, None, first, last, email, gemeente, domein,
            "beleidsadviseur", remark]


def three_ms_forms_rows() -> list[list[Any]]:
    return [
        ms_row(1, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht"),
        ms_row(2, "Ruud", "van 't Hof", "ruud.vanthof@example.org", "Zeist",
               remark="Kan ik ook online deelnemen?"),
        ms_row(3, "Kees", "in 't Veld", "kees.intveld@example.nl", "'s-Hertogenbosch"),
    ]


def new_people(path: Path) -> list[Registration]:
    """The registrations below the two the fixture workbook starts with."""
    return list(load_course(path).registrations[2:])


@pytest.fixture
def workbook(make_workbook: Build) -> Path:
    """Two registrations already in: deelnemer1@ and deelnemer2@example.nl (Utrecht)."""
    return make_workbook("leergang.xlsx", registrations=[person(1), person(2)])


# --- the form tools' layouts -----------------------------------------------------------------


def test_ms_forms_dutch_export_adds_rows_below_the_table(workbook: Path, tmp_path: Path) -> None:
    export = ms_forms_nl(tmp_path / "Aanmelding leergang(1-3).xlsx", *three_ms_forms_rows())
    report = import_export(workbook, export)
    added = new_people(workbook)
    assert [(r.row, r.voornaam, r.achternaam, r.email, r.gemeente) for r in added] == [
        (4, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht"),
        (5, "Ruud", "van 't Hof", "ruud.vanthof@example.org", "Zeist"),
        (6, "Kees", "in 't Veld", "kees.intveld@example.nl", "'s-Hertogenbosch"),
    ]
    assert added[1].opmerking == "Kan ik ook online deelnemen?"
    assert [a.sheet_row for a in report.added] == [4, 5, 6]
    assert report.unmapped_columns == ()


def test_aangemeld_op_is_the_completion_time_as_a_datetime_cell(workbook: Path,
                                                                tmp_path: Path) -> None:
    done = datetime(2021, 10, 11, 14, 3, 12)
    export = ms_forms_nl(tmp_path / "export.xlsx",
                         ms_row(1, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht",
                                done=done))
    import_export(workbook, export)
    assert new_people(workbook)[0].aangemeld_op == done
    cell = openpyxl.load_workbook(workbook)["Deelnemers"]["A4"]
    assert cell.is_date and cell.number_format == "dd-mm-yyyy hh:mm"


def test_ms_forms_account_address_is_used_when_the_question_was_left_empty(
        workbook: Path, tmp_path: Path) -> None:
    row = ms_row(1, "Zoë", "de Boer", "", "Utrecht", account="zoe.deboer@example.nl")
    import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", row))
    assert new_people(workbook)[0].email == "zoe.deboer@example.nl"


def test_ms_forms_question_address_wins_over_the_account(workbook: Path, tmp_path: Path) -> None:
    """Someone may register a colleague: the address typed for the registration counts."""
    row = ms_row(1, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht",
                 account="secretariaat@example.nl")
    import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", row))
    assert new_people(workbook)[0].email == "zoe.deboer@example.nl"


def test_ms_forms_english_export_splits_the_full_name(workbook: Path, tmp_path: Path) -> None:
    rows = [[1, datetime(2021, 10, 11, 14, 1), datetime(2021, 10, 11, 14, 3), "anonymous",
             "anonymous", "Ruud van 't Hof", "ruud.vanthof@example.org", "Zeist", "zorg",
             "policy advisor", "Newsletter"],
            [2, datetime(2021, 10, 12, 9, 0), datetime(2021, 10, 12, 9, 5), "anonymous",
             "anonymous", "Jan Peter de Vries", "jp.devries@example.nl", "Houten", "wonen",
             "wethouder", "Colleague"]]
    report = import_export(workbook, write_xlsx(tmp_path / "Registration.xlsx", MS_FORMS_EN,
                                                rows))
    added = new_people(workbook)
    assert [(r.voornaam, r.achternaam, r.beleidsdomein, r.aangemeld_op) for r in added] == [
        ("Ruud", "van 't Hof", "zorg", datetime(2021, 10, 11, 14, 3)),
        ("Jan Peter", "de Vries", "wonen", datetime(2021, 10, 12, 9, 5)),
    ]
    assert report.unmapped_columns == ("How did you hear about this course?",)


def test_google_forms_csv_saved_by_dutch_excel_cp1252_semicolons(workbook: Path,
                                                                 tmp_path: Path) -> None:
    rows = [["11-10-2021 14:03:12", "zoe.deboer@example.nl", "Zoë", "de Boer",
             "Súdwest-Fryslân", "sociaal domein", "coördinator", "Geen; dank u"],
            ["12-10-2021 9:15", "ruud.vanthof@example.org", "Ruud", "van 't Hof", "Zeist",
             "wonen", "adviseur", ""]]
    export = write_csv(tmp_path / "Aanmelding.csv", GOOGLE_NL, rows, delimiter=";",
                       encoding="cp1252")
    import_export(workbook, export)
    added = new_people(workbook)
    assert [(r.voornaam, r.gemeente, r.functie, r.opmerking, r.aangemeld_op) for r in added] == [
        ("Zoë", "Súdwest-Fryslân", "coördinator", "Geen; dank u",
         datetime(2021, 10, 11, 14, 3, 12)),
        ("Ruud", "Zeist", "adviseur", "", datetime(2021, 10, 12, 9, 15)),
    ]


def test_google_forms_csv_download_utf8_bom_commas_and_gmt_offsets(workbook: Path,
                                                                    tmp_path: Path) -> None:
    rows = [["2021/10/11 2:03:12 PM GMT+2", "zoe.deboer@example.nl", "Zoë de Boer",
             "Utrecht", "wonen", "Eén vraag,\nover parkeren"],
            ["2021/11/02 9:30:00 AM GMT+1", "ruud.vanthof@example.org", "Ruud van 't Hof",
             "Zeist", "zorg", ""],
            ["2021/11/02 10:00:00 AM GMT", "kees.intveld@example.nl", "Kees in 't Veld",
             "Houten", "zorg", ""]]
    export = write_csv(tmp_path / "Aanmelding.csv", GOOGLE_EN, rows, encoding="utf-8-sig")
    import_export(workbook, export)
    added = new_people(workbook)
    assert [(r.voornaam, r.achternaam, r.aangemeld_op) for r in added] == [
        ("Zoë", "de Boer", datetime(2021, 10, 11, 14, 3, 12)),
        ("Ruud", "van 't Hof", datetime(2021, 11, 2, 9, 30)),
        ("Kees", "in 't Veld", datetime(2021, 11, 2, 11, 0)),  # UTC → Amsterdam (CET)
    ]
    assert added[0].opmerking == "Eén vraag,\nover parkeren"


def test_plain_xlsx_with_the_workbooks_own_headers(workbook: Path, tmp_path: Path) -> None:
    people = [person(11, "Zeist", day=5, Rol="bestuurder"), person(12, "Houten", day=6)]
    export = write_xlsx(tmp_path / "lijst.xlsx", REGISTRATION_HEADER,
                        [[p.get(c) for c in REGISTRATION_HEADER] for p in people])
    report = import_export(workbook, export)
    added = new_people(workbook)
    assert [(r.email, r.gemeente, r.rol, r.aangemeld_op) for r in added] == [
        ("deelnemer11@example.nl", "Zeist", "bestuurder", datetime(2021, 10, 5, 9)),
        ("deelnemer12@example.nl", "Houten", "deelnemer", datetime(2021, 10, 6, 9)),
    ]
    assert report.unmapped_columns == () and report.mapped_columns == ()


def test_tool_columns_of_an_export_are_never_written(make_workbook: Build,
                                                     tmp_path: Path) -> None:
    header = [*REGISTRATION_HEADER, "Status", "Melding", "Bevestiging verstuurd"]
    path = make_workbook(registrations=[person(1)], registration_header=header)
    row = {**person(11), "Status": "bevestigd", "Melding": "oud", "Bevestiging verstuurd": "ja"}
    import_export(path, write_xlsx(tmp_path / "lijst.xlsx", header,
                                   [[row.get(c) for c in header]]))
    sheet = openpyxl.load_workbook(path)["Deelnemers"]
    assert sheet["D3"].value == "deelnemer11@example.nl"
    assert [sheet.cell(3, c).value for c in (11, 12, 13)] == [None, None, None]


def test_answers_the_workbook_has_no_column_for_are_reported(make_workbook: Build,
                                                              tmp_path: Path) -> None:
    header = [c for c in REGISTRATION_HEADER if c not in ("Beleidsdomein", "Functie")]
    path = make_workbook(registrations=[person(1)], registration_header=header)
    report = import_export(path, ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows()))
    assert report.missing_columns == ("Beleidsdomein", "Functie")
    assert "Niet overgenomen, want Deelnemers heeft deze kolommen niet: Beleidsdomein, " \
           "Functie" in report.lines()
    assert len(load_course(path).registrations) == 4


# --- nothing twice -------------------------------------------------------------------------


def test_second_import_of_the_same_export_adds_nothing(workbook: Path, tmp_path: Path) -> None:
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    import_export(workbook, export)
    after_first = workbook.read_bytes()
    report = import_export(workbook, export)
    assert workbook.read_bytes() == after_first
    assert report.added == () and len(report.skipped) == 3
    assert report.lines()[-1] == "0 toegevoegd, 3 overgeslagen (al ingeschreven), " \
                                 "0 gewijzigde herhaalde inzendingen gemeld"


def test_address_already_in_the_workbook_is_skipped_whatever_its_case(workbook: Path,
                                                                      tmp_path: Path) -> None:
    row = ms_row(1, "Deelnemer1", "Test1", "  Deelnemer1@Example.NL ", "Utrecht",
                 domein="domein 1")
    report = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", row))
    assert report.added == () and report.changed == ()
    assert [(s.export_row, s.code) for s in report.skipped] == [(2, "already-registered")]
    assert "Deelnemers rij 2" in report.lines()[0]


def test_duplicate_within_the_export_first_is_added_later_reported(workbook: Path,
                                                                   tmp_path: Path) -> None:
    rows = three_ms_forms_rows()
    again = ms_row(4, "Zoë", "de Boer", "ZOE.DEBOER@example.nl", "Utrecht")
    report = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", *rows, again))
    assert [r.email for r in new_people(workbook)] == [
        "zoe.deboer@example.nl", "ruud.vanthof@example.org", "kees.intveld@example.nl"]
    assert [(s.export_row, s.code) for s in report.skipped] == [(5, "already-registered")]
    assert "deze export, rij 2" in report.skipped[0].reason


def test_resubmission_with_a_changed_field_is_reported_not_merged(workbook: Path,
                                                                  tmp_path: Path) -> None:
    before = load_course(workbook).registrations[0]
    row = ms_row(1, "Deelnemer1", "Test1", "deelnemer1@example.nl", "Zeist", domein="domein 1")
    report = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", row))
    assert report.added == () and report.skipped == ()
    [changed] = report.changed
    assert (changed.export_row, changed.earlier) == (2, "Deelnemers rij 2")
    assert changed.changes == (FieldChange("Gemeente", "Utrecht", "Zeist"),)
    assert load_course(workbook).registrations[0] == before
    lines = report.lines()
    assert "Gemeente “Utrecht” → “Zeist”" in lines[0]
    assert lines[-1] == "0 toegevoegd, 0 overgeslagen, 1 gewijzigde herhaalde inzending gemeld"


def test_changed_resubmission_within_the_export_is_reported(workbook: Path,
                                                            tmp_path: Path) -> None:
    rows = [ms_row(1, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht"),
            ms_row(2, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht", domein="zorg")]
    report = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", *rows))
    assert len(report.added) == 1
    assert [(c.export_row, c.changes) for c in report.changed] == [
        (3, (FieldChange("Beleidsdomein", "wonen", "zorg"),))]


def test_report_lines_and_closing_count(workbook: Path, tmp_path: Path) -> None:
    rows = [*three_ms_forms_rows(),
            ms_row(4, "Deelnemer2", "Test2", "deelnemer2@example.nl", "Utrecht",
                   domein="domein 2"),
            ms_row(5, "Deelnemer1", "Test1", "deelnemer1@example.nl", "Zeist",
                   domein="domein 1")]
    lines = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", *rows)).lines()
    assert lines[0] == "Toegevoegd: Zoë de Boer <zoe.deboer@example.nl>, Utrecht " \
                       "(exportrij 2 → Deelnemers rij 4)"
    assert lines[3] == "Overgeslagen: deelnemer2@example.nl (exportrij 5): al ingeschreven " \
                       "(Deelnemers rij 3)"
    assert lines[4].startswith("Gewijzigde herhaalde inzending: deelnemer1@example.nl")
    assert lines[-1] == "3 toegevoegd, 1 overgeslagen (al ingeschreven), " \
                        "1 gewijzigde herhaalde inzending gemeld"


def test_row_without_an_address_is_skipped_and_reported(workbook: Path, tmp_path: Path) -> None:
    rows = [ms_row(1, "Zoë", "de Boer", "", "Utrecht"),
            ms_row(2, "Ruud", "van 't Hof", "ruud.vanthof@example.org", "Zeist")]
    report = import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", *rows))
    assert [s.code for s in report.skipped] == ["no-email"]
    assert len(new_people(workbook)) == 1
    assert "1 overgeslagen (zonder e-mailadres)" in report.lines()[-1]


# --- columns -------------------------------------------------------------------------------


def test_unmapped_columns_are_reported(workbook: Path, tmp_path: Path) -> None:
    header = [*GOOGLE_NL, "Hoe heeft u van de leergang gehoord?", "Dieetwensen"]
    row = ["11-10-2021 14:03", "zoe.deboer@example.nl", "Zoë", "de Boer", "Utrecht", "wonen",
           "adviseur", "", "Nieuwsbrief", "vegetarisch"]
    export = write_csv(tmp_path / "export.csv", header, [row])
    rows, unmapped = read_export(export)
    assert unmapped == ["Hoe heeft u van de leergang gehoord?", "Dieetwensen"]
    assert rows[0]["Gemeente"] == "Utrecht" and "Dieetwensen" not in rows[0]
    lines = import_export(workbook, export).lines()
    assert any("“Hoe heeft u van de leergang gehoord?”, “Dieetwensen”" in line for line in lines)


def test_explicit_mapping_overrides_and_ignores_columns(workbook: Path, tmp_path: Path) -> None:
    header = ["Tijdstempel", "E-mailadres", "Naam", "Namens welke organisatie?", "Dieetwensen"]
    row = ["11-10-2021 14:03", "zoe.deboer@example.nl", "Zoë de Boer", "Utrecht", "geen"]
    export = write_csv(tmp_path / "export.csv", header, [row])
    assert read_export(export)[1] == ["Namens welke organisatie?", "Dieetwensen"]
    mapping = parse_mapping(["Namens welke organisatie?=Gemeente", "dieetwensen=-"])
    report = import_export(workbook, export, mapping)
    assert report.unmapped_columns == ()
    assert ("Namens welke organisatie?", "Gemeente") in report.mapped_columns
    assert new_people(workbook)[0].gemeente == "Utrecht"


def test_parse_mapping_accepts_aliases_and_the_full_name() -> None:
    assert parse_mapping(["Welke gemeente?=Gemeente", "Mail=email", "Wie bent u? = naam",
                          "a=b=Functie"]) == {
        "Welke gemeente?": "Gemeente", "Mail": "E-mail", "Wie bent u?": "Naam",
        "a=b": "Functie"}


@pytest.mark.parametrize("item", ["Welke gemeente?", "=Gemeente", "Welke gemeente?=",
                                  "Welke gemeente?=Woonplaats", "Status?=Status"])
def test_parse_mapping_refuses_malformed_items_and_unknown_columns(item: str) -> None:
    with pytest.raises(InputError, match="--map"):
        parse_mapping([item])


def test_mapping_a_header_the_export_does_not_have_is_an_error(workbook: Path,
                                                               tmp_path: Path) -> None:
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    before = workbook.read_bytes()
    with pytest.raises(InputError, match="Welke gemeent\\?"):
        import_export(workbook, export, {"Welke gemeent?": "Gemeente"})
    assert workbook.read_bytes() == before


def test_first_and_last_name_questions_win_over_the_account_name(tmp_path: Path) -> None:
    row = ms_row(1, "Zoë", "de Boer", "zoe.deboer@example.nl", "Utrecht",
                 account="Z. de Boer-Jansen")
    rows, unmapped = read_export(ms_forms_nl(tmp_path / "export.xlsx", row))
    assert (rows[0]["Voornaam"], rows[0]["Achternaam"]) == ("Zoë", "de Boer")
    assert unmapped == []


def test_tussenvoegsel_question_goes_in_front_of_the_surname(tmp_path: Path) -> None:
    header = ["Tijdstempel", "E-mailadres", "Voornaam", "Tussenvoegsel", "Achternaam"]
    export = write_csv(tmp_path / "export.csv", header,
                       [["11-10-2021 14:03", "ruud.vanthof@example.org", "Ruud", "van 't",
                         "Hof"]])
    assert read_export(export)[0][0]["Achternaam"] == "van 't Hof"


@pytest.mark.parametrize(("full", "first", "last"), [
    ("Ruud van 't Hof", "Ruud", "van 't Hof"),
    ("Jan Peter de Vries", "Jan Peter", "de Vries"),
    ("Kees in 't Veld", "Kees", "in 't Veld"),
    ("Els ter Horst", "Els", "ter Horst"),
    ("Anna van der Berg-de Jong", "Anna", "van der Berg-de Jong"),
    ("Fatima el Amrani", "Fatima", "el Amrani"),
    ("Mark Jansen", "Mark", "Jansen"),
    ("Hof, Ruud van ’t", "Ruud", "van 't Hof"),
    ("Madonna", "Madonna", ""),
])
def test_split_name(full: str, first: str, last: str) -> None:
    assert split_name(full) == (first, last)


@pytest.mark.parametrize(("value", "expected"), [
    ("11-10-2021 14:03:12", datetime(2021, 10, 11, 14, 3, 12)),
    ("11-10-2021 14:03", datetime(2021, 10, 11, 14, 3)),
    ("2021/10/11 2:03:12 PM GMT+2", datetime(2021, 10, 11, 14, 3, 12)),
    ("2021/10/11 2:03:12 p.m. GMT+02:00", datetime(2021, 10, 11, 14, 3, 12)),
    ("2021-10-11T12:03:12Z", datetime(2021, 10, 11, 14, 3, 12)),
    ("2021/10/11 2:03:12 PM CEST", datetime(2021, 10, 11, 14, 3, 12)),
    ("11-10-21 14:03", datetime(2021, 10, 11, 14, 3)),
    (datetime(2021, 10, 11, 14, 3, 12), datetime(2021, 10, 11, 14, 3, 12)),
    (44480.58555555555, datetime(2021, 10, 11, 14, 3, 12)),  # a date cell shown as a number
    ("gisteren", None),
    ("31-02-2021 10:00", None),
])
def test_parse_timestamp(value: object, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


# --- dry run and bad exports ---------------------------------------------------------------


def test_dry_run_reports_and_writes_nothing(workbook: Path, tmp_path: Path) -> None:
    before = workbook.read_bytes()
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    report = import_export(workbook, export, dry_run=True)
    assert workbook.read_bytes() == before
    assert [a.sheet_row for a in report.added] == [4, 5, 6]
    assert report.lines()[0].startswith("Zou toevoegen: Zoë de Boer")
    assert report.lines()[-1].startswith("Proefdraai, niets geschreven: 3 toe te voegen")


def _no_email_column(path: Path) -> Path:
    return write_csv(path.with_suffix(".csv"), ["Tijdstempel", "Naam", "Gemeente"],
                     [["11-10-2021 14:03", "Zoë de Boer", "Utrecht"]])


def _bad_date(path: Path) -> Path:
    rows = [["11-10-2021 14:03", "zoe.deboer@example.nl", "Zoë", "de Boer", "Utrecht", "", "",
             ""],
            ["gisteren", "ruud.vanthof@example.org", "Ruud", "van 't Hof", "Zeist", "", "",
             ""]]
    return write_csv(path.with_suffix(".csv"), GOOGLE_NL, rows, delimiter=";")


def _corrupt_xlsx(path: Path) -> Path:
    target = path.with_suffix(".xlsx")
    target.write_bytes(b"PK\x03\x04 niet echt een zip")
    return target


def _pdf(path: Path) -> Path:
    target = path.with_suffix(".pdf")
    target.write_bytes(b"%PDF-1.4")
    return target


def _empty_csv(path: Path) -> Path:
    target = path.with_suffix(".csv")
    target.write_bytes(b"")
    return target


@pytest.mark.parametrize(("build", "message"), [
    (lambda p: p.with_name("bestaat-niet.xlsx"), r"Export niet gevonden: .*bestaat-niet\.xlsx"),
    (_pdf, r"export\.pdf: dit bestandstype kan niet"),
    (_corrupt_xlsx, r"export\.xlsx: de export kan niet gelezen worden"),
    (_empty_csv, r"de export is leeg"),
    (_no_email_column, r"geen kolom met e-mailadressen gevonden"),
    (_bad_date, r"export\.csv: rij 3, kolom “Tijdstempel”: “gisteren” is geen leesbare datum"),
])
def test_bad_export_is_input_error_and_leaves_the_workbook_alone(
        workbook: Path, tmp_path: Path, build: Callable[[Path], Path], message: str) -> None:
    before = workbook.read_bytes()
    with pytest.raises(InputError, match=message):
        import_export(workbook, build(tmp_path / "export"))
    assert workbook.read_bytes() == before


def test_unreadable_dates_are_findings_with_row_and_column(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_export(_bad_date(tmp_path / "export"))
    assert [(f.sheet, f.row, f.column, f.code) for f in caught.value.findings] == [
        ("export.csv", 3, "Tijdstempel", "unreadable-date")]


def test_workbook_open_in_excel_is_left_alone(workbook: Path, tmp_path: Path) -> None:
    lock = workbook.with_name(f"~${workbook.name}")
    lock.write_bytes(b"")
    before = workbook.read_bytes()
    with pytest.raises(WorkbookInUse):
        import_export(workbook, ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows()))
    assert workbook.read_bytes() == before


# --- the command line ----------------------------------------------------------------------


def test_cli_import_end_to_end(workbook: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    assert main(["import", str(workbook), str(export)]) == 0
    out = capsys.readouterr().out
    assert "Toegevoegd: Ruud van 't Hof <ruud.vanthof@example.org>, Zeist" in out
    assert out.rstrip().endswith("3 toegevoegd, 0 overgeslagen, "
                                 "0 gewijzigde herhaalde inzendingen gemeld")
    assert len(new_people(workbook)) == 3


def test_cli_import_with_map_and_dry_run(workbook: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = workbook.read_bytes()
    export = write_csv(tmp_path / "export.csv", ["E-mailadres", "Naam", "Namens?"],
                       [["zoe.deboer@example.nl", "Zoë de Boer", "Utrecht"]])
    assert main(["import", str(workbook), str(export), "--map", "Namens?=Gemeente",
                 "--dry-run"]) == 0
    assert "Zou toevoegen: Zoë de Boer <zoe.deboer@example.nl>, Utrecht" in \
        capsys.readouterr().out
    assert workbook.read_bytes() == before


def test_cli_bad_export_exits_2_with_a_dutch_message(workbook: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    before = workbook.read_bytes()
    assert main(["import", str(workbook), str(_no_email_column(tmp_path / "export"))]) == 2
    assert "geen kolom met e-mailadressen" in capsys.readouterr().err
    assert workbook.read_bytes() == before


# --- fidelity of the write-back ------------------------------------------------------------


def xlsxwriter_workbook(path: Path) -> Path:
    """An organiser workbook as Excel would keep it: Deelnemers as a table, a chart elsewhere."""
    book = xlsxwriter.Workbook(str(path))
    moment = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
    day = book.add_format({"num_format": "dd-mm-yyyy"})
    clock = book.add_format({"num_format": "hh:mm"})
    settings = book.add_worksheet("Instellingen")
    settings.write_row(0, 0, ["Instelling", "Waarde"])
    for n, (key, value) in enumerate(DEFAULT_SETTINGS.items(), start=1):
        settings.write_row(n, 0, [key, value])
    meetings = book.add_worksheet("Bijeenkomsten")
    meetings.write_row(0, 0, MEETING_HEADER)
    for n, meeting in enumerate(DEFAULT_MEETINGS, start=1):
        for col, value in enumerate(meeting):
            if isinstance(value, (date, time)):
                meetings.write_datetime(n, col, value, day if isinstance(value, date) else clock)
            else:
                meetings.write(n, col, value)
    people = book.add_worksheet("Deelnemers")
    rows = [person(1), person(2, "Zeist")]
    data = [[p.get(c) for c in REGISTRATION_HEADER] for p in rows]
    people.add_table(0, 0, len(data), len(REGISTRATION_HEADER) - 1, {
        "name": "Deelnemers", "data": data,
        "columns": [{"header": h, "format": moment if h == "Aangemeld op" else None}
                    for h in REGISTRATION_HEADER]})
    chart_sheet = book.add_worksheet("Grafiek")
    chart = book.add_chart({"type": "column"})
    chart.add_series({"name": "Nr", "categories": "=Bijeenkomsten!$B$2:$B$4",
                      "values": "=Bijeenkomsten!$A$2:$A$4"})
    chart_sheet.insert_chart("B2", chart)
    book.close()
    return path


def zip_parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def sheet_part(parts: dict[str, bytes], sheet: str) -> str:
    """The worksheet part of a sheet, found through workbook.xml and its relationships."""
    workbook = parts["xl/workbook.xml"].decode()
    rid = re.search(rf'<sheet [^>]*name="{sheet}"[^>]*r:id="([^"]+)"', workbook)
    assert rid is not None
    rels = parts["xl/_rels/workbook.xml.rels"].decode()
    target = re.search(rf'<Relationship [^>]*Id="{rid.group(1)}"[^>]*Target="([^"]+)"', rels) \
        or re.search(rf'<Relationship [^>]*Target="([^"]+)"[^>]*Id="{rid.group(1)}"', rels)
    assert target is not None
    return str(PurePosixPath("xl") / target.group(1).lstrip("/").removeprefix("xl/"))


def table_parts(parts: dict[str, bytes]) -> list[str]:
    return [name for name in parts if name.startswith("xl/tables/")]


def test_write_back_keeps_every_other_part_and_extends_the_table(tmp_path: Path) -> None:
    path = xlsxwriter_workbook(tmp_path / "leergang.xlsx")
    before = zip_parts(path)
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows()[:2])
    import_export(path, export)
    after = zip_parts(path)
    changed = {sheet_part(before, "Deelnemers"), "xl/styles.xml", *table_parts(before)}
    assert list(after) == list(before)
    assert {n for n in before if before[n] != after[n]} <= changed
    [table] = table_parts(after)
    assert re.search(rb'<table [^>]*ref="A1:J5"', after[table])
    assert re.search(rb'<autoFilter [^>]*ref="A1:J5"', after[table])
    assert [r.email for r in load_course(path).registrations[2:]] == [
        "zoe.deboer@example.nl", "ruud.vanthof@example.org"]
