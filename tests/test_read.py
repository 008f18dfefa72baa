"""Reading the organisers' workbook: every way people type, and every way it can be unusable."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter

from leergang_ops.errors import InputError
from leergang_ops.model import Course, Finding, Level
from leergang_ops.workbook.read import load_course
from tests.conftest import (
    CORPUS,
    DEFAULT_MEETINGS,
    DEFAULT_SETTINGS,
    MEETING_HEADER,
    REGISTRATION_HEADER,
    person,
)

MakeWorkbook = Callable[..., Path]

SETTINGS_ROWS: list[list[Any]] = [["Instelling", "Waarde"],
                                  *([k, v] for k, v in DEFAULT_SETTINGS.items())]
MEETING_ROWS: list[list[Any]] = [MEETING_HEADER, *DEFAULT_MEETINGS]


def write_sheets(path: Path, sheets: dict[str, Sequence[Sequence[Any]]]) -> Path:
    """Write sheets of raw rows (None is an empty cell) with openpyxl, in the given order."""
    book = openpyxl.Workbook()
    assert book.active is not None
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


def registration_rows(*people: dict[str, Any],
                      header: Sequence[str] = REGISTRATION_HEADER) -> list[list[Any]]:
    return [list(header), *([p.get(c) for c in header] for p in people)]


def refused(path: Path) -> list[tuple[str | None, int | None, str | None, str]]:
    """Load a workbook that must be refused; the file stays byte-identical."""
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        load_course(path)
    assert path.read_bytes() == before
    assert caught.value.findings, "an InputError must say where"
    assert all(f.level is Level.ERROR for f in caught.value.findings)
    return [(f.sheet, f.row, f.column, f.code) for f in caught.value.findings]


def codes(findings: Sequence[Finding]) -> list[tuple[str | None, int | None, str | None, str]]:
    return [(f.sheet, f.row, f.column, f.code) for f in findings]


def one_meeting(make_workbook: MakeWorkbook, **cells: Any) -> Course:
    """A workbook with one meeting whose cells are overridden by name."""
    values = dict(zip(MEETING_HEADER, DEFAULT_MEETINGS[0], strict=True)) | cells
    return load_course(make_workbook(meetings=[[values[c] for c in MEETING_HEADER]]))


def one_registration(make_workbook: MakeWorkbook, **cells: Any) -> Course:
    return load_course(make_workbook(registrations=[person(1, **cells)]))


# --- the ordinary workbook ---------------------------------------------------------------


def test_ordinary_workbook_reads_settings_meetings_and_registrations(
        make_workbook: MakeWorkbook) -> None:
    path = make_workbook(registrations=[person(1), person(2, "Amsterdam")])
    course = load_course(path)
    assert course.settings.leergang == "Leergang slagvaardige wijkaanpak"
    assert course.settings.contactpersoon_email == "contact@example.org"
    assert course.settings.max_deelnemers_per_gemeente == 3
    assert course.settings.herinneringen == (7, 1)
    assert [m.nr for m in course.meetings] == [1, 2, 3]
    assert course.meetings[0].datum == date(2021, 11, 11)
    assert course.meetings[0].begintijd == time(14, 0)
    assert course.meetings[1].online and not course.meetings[0].online
    assert [m.voor_bestuurders for m in course.meetings] == [False, False, True]
    assert [(r.row, r.email, r.gemeente) for r in course.registrations] == [
        (2, "deelnemer1@example.nl", "Utrecht"), (3, "deelnemer2@example.nl", "Amsterdam")]
    assert course.registrations[0].aangemeld_op == datetime(2021, 10, 1, 9, 0)
    assert course.path == path
    assert course.findings == ()


def test_optional_settings_left_out_take_their_defaults(make_workbook: MakeWorkbook) -> None:
    optional = {k: None for k in ("Organisatie", "Max deelnemers per gemeente", "Max gemeenten",
                                  "Herinneringen (dagen vooraf)", "Wekelijks overzicht op",
                                  "Bestuurders tellen mee", "Wachtlijstbericht")}
    settings = load_course(make_workbook(settings=optional)).settings
    assert (settings.organisatie, settings.max_deelnemers_per_gemeente, settings.max_gemeenten,
            settings.herinneringen, settings.overzicht_weekdag, settings.bestuurders_tellen_mee,
            settings.wachtlijstbericht) == ("", 3, 20, (7, 1), 0, False, True)


def test_layout_describes_the_registrations_table(tmp_path: Path) -> None:
    header = [*REGISTRATION_HEADER, "Notitie organisatie", "Status", "Melding"]
    rows = registration_rows(person(1), person(2), header=header)
    rows[2][header.index("Notitie organisatie")] = "belt terug"
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": SETTINGS_ROWS,
                                              "Bijeenkomsten": MEETING_ROWS,
                                              "Deelnemers": [[], *rows, [], []]})
    layout = load_course(path).layout
    assert layout.sheet_name == "Deelnemers"
    assert layout.header_row == 2
    assert layout.columns["E-mail"] == 4
    assert layout.columns["Status"] == 12 and layout.columns["Melding"] == 13
    assert "Bevestiging verstuurd" not in layout.columns
    assert "Notitie organisatie" not in layout.columns
    assert (layout.last_column, layout.last_row) == (13, 4)


def test_tool_columns_current_values_are_read_as_text(make_workbook: MakeWorkbook) -> None:
    header = [*REGISTRATION_HEADER, "Status", "Melding", "Bevestiging verstuurd"]
    registration = person(1, Status="bevestigd", Melding=" Let op: zelfde domein ") | {
        "Bevestiging verstuurd": datetime(2021, 10, 4, 8, 0)}
    course = load_course(make_workbook(registrations=[registration],
                                       registration_header=header))
    found = course.registrations[0]
    assert (found.status, found.melding, found.bevestiging_verstuurd) == (
        "bevestigd", "Let op: zelfde domein", "04-10-2021 08:00")


def test_row_level_problems_are_left_to_the_allocation(make_workbook: MakeWorkbook) -> None:
    people = [person(1, Achternaam=None), person(2) | {"E-mail": "geen-adres"},
              person(3) | {"E-mail": "deelnemer1@example.nl"}, person(4, Gemeente=None)]
    course = load_course(make_workbook(registrations=people))
    assert len(course.registrations) == 4
    assert course.findings == ()


# --- names, order and layout of sheets and columns ------------------------------------------


def test_header_aliases_are_recognised(tmp_path: Path) -> None:
    header = ["Tijdstempel", "First name", "Last name", "E-mailadres", "Municipality",
              "Domein", "Functie", "Role", "Geannuleerd", "Vragen"]
    people = [{h: v for h, v in zip(header, [datetime(2021, 10, 1, 9), "Ada", "Lovelace",
                                             "ada@example.nl", "Utrecht", "wonen", "adviseur",
                                             "deelnemer", None, "Is er koffie?"], strict=True)}]
    meetings = [["#", "Onderwerp", "Dag", "Aanvang", "Einde", "Plaats", "Bezoekadres",
                 "Teams link", "Voor wie"], *DEFAULT_MEETINGS]
    path = write_sheets(tmp_path / "w.xlsx", {
        "Instellingen": [["Setting", "Value"], *SETTINGS_ROWS[1:]],
        "Bijeenkomsten": meetings,
        "Deelnemers": registration_rows(*people, header=header)})
    course = load_course(path)
    registration = course.registrations[0]
    assert (registration.voornaam, registration.email, registration.opmerking) == (
        "Ada", "ada@example.nl", "Is er koffie?")
    assert course.meetings[2].voor_bestuurders and course.meetings[1].online_link
    assert course.layout.columns["E-mail"] == 4


def test_sheet_and_column_names_ignore_case_and_spaces(tmp_path: Path) -> None:
    header = [f"  {h.upper()} " for h in REGISTRATION_HEADER]
    rows: list[list[Any]] = [header, [person(1).get(h) for h in REGISTRATION_HEADER]]
    path = write_sheets(tmp_path / "w.xlsx", {" instellingen": SETTINGS_ROWS,
                                              "BIJEENKOMSTEN ": MEETING_ROWS,
                                              "deelnemers": rows})
    course = load_course(path)
    assert course.registrations[0].email == "deelnemer1@example.nl"
    assert course.layout.sheet_name == "deelnemers"


def test_header_row_below_a_title_is_found(tmp_path: Path) -> None:
    title = [["Aanmeldingen leergang wijkaanpak"], ["Bijgewerkt door het secretariaat"], []]
    path = write_sheets(tmp_path / "w.xlsx", {
        "Instellingen": [["Instellingen van de leergang"], *SETTINGS_ROWS],
        "Bijeenkomsten": [[], [], *MEETING_ROWS],
        "Deelnemers": [*title, *registration_rows(person(1), person(2))]})
    course = load_course(path)
    assert course.layout.header_row == 4
    assert [r.row for r in course.registrations] == [5, 6]
    assert [m.row for m in course.meetings] == [4, 5, 6]
    assert course.settings.max_gemeenten == 20


def test_table_may_start_further_right(tmp_path: Path) -> None:
    rows = [[None, None, *row] for row in registration_rows(person(1))]
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": SETTINGS_ROWS,
                                              "Bijeenkomsten": MEETING_ROWS, "Deelnemers": rows})
    course = load_course(path)
    assert course.registrations[0].voornaam == "Deelnemer1"
    assert course.layout.columns["Aangemeld op"] == 3
    assert course.layout.last_column == 12


def test_sheets_in_another_order_with_extra_sheets_are_fine(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "w.xlsx", {
        "Notities": [["Bel Annemiek over de zaal"]],
        "Deelnemers": registration_rows(person(1)),
        "Bijeenkomsten": MEETING_ROWS,
        "Instellingen": SETTINGS_ROWS})
    course = load_course(path)
    assert len(course.registrations) == 1 and len(course.meetings) == 3


def test_extra_columns_are_ignored(make_workbook: MakeWorkbook) -> None:
    header = ["Notitie organisatie", *REGISTRATION_HEADER, "Betaald"]
    people = [person(1) | {"Notitie organisatie": "VIP", "Betaald": "ja"}]
    course = load_course(make_workbook(registrations=people, registration_header=header))
    assert course.registrations[0].voornaam == "Deelnemer1"
    assert course.layout.columns["Aangemeld op"] == 2


def test_blank_rows_are_skipped_and_rows_keep_excel_numbers(tmp_path: Path) -> None:
    rows = registration_rows(person(1), {}, person(2), {"Voornaam": "   "}, {}, person(3))
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": [*SETTINGS_ROWS, [], []],
                                              "Bijeenkomsten": [*MEETING_ROWS[:2], [],
                                                                *MEETING_ROWS[2:]],
                                              "Deelnemers": rows})
    course = load_course(path)
    assert [r.row for r in course.registrations] == [2, 4, 7]
    assert [m.row for m in course.meetings] == [2, 4, 5]


def test_row_with_only_tool_columns_is_no_registration(make_workbook: MakeWorkbook) -> None:
    header = [*REGISTRATION_HEADER, "Status"]
    course = load_course(make_workbook(registrations=[person(1), {"Status": "bevestigd"}],
                                       registration_header=header))
    assert [r.row for r in course.registrations] == [2]


def test_stray_spaces_are_stripped(make_workbook: MakeWorkbook) -> None:
    course = one_registration(make_workbook, Voornaam="  Ada ", Gemeente=" Utrecht\u00a0",
                              **{"E-mail": " ada@example.nl  "})
    found = course.registrations[0]
    assert (found.voornaam, found.gemeente, found.email) == ("Ada", "Utrecht", "ada@example.nl")


# --- dates, times and numbers however Excel stores them -------------------------------------


@pytest.mark.parametrize("typed", [
    "11-11-2021", "11/11/2021", "11.11.2021", "11-11-21", "2021-11-11", "11 november 2021",
    "donderdag 11 november 2021", "11 nov. 2021", " 11-11-2021 ",
])
def test_date_typed_as_dutch_text_is_read(make_workbook: MakeWorkbook, typed: str) -> None:
    assert one_meeting(make_workbook, Datum=typed).meetings[0].datum == date(2021, 11, 11)


@pytest.mark.parametrize(("typed", "expected"), [
    ("05-10-2021 14:30", datetime(2021, 10, 5, 14, 30)),
    ("5-10-2021 9:12:33", datetime(2021, 10, 5, 9, 12, 33)),
    ("2021-10-05T14:30:00", datetime(2021, 10, 5, 14, 30)),
    ("2021-10-05 14:30:00.250", datetime(2021, 10, 5, 14, 30)),
    ("5 oktober 2021 om 14.30 uur", datetime(2021, 10, 5, 14, 30)),
    ("05/10/2021, 14:30", datetime(2021, 10, 5, 14, 30)),
    ("05-10-2021", datetime(2021, 10, 5)),
])
def test_datetime_typed_as_dutch_text_is_read(make_workbook: MakeWorkbook, typed: str,
                                              expected: datetime) -> None:
    course = one_registration(make_workbook, **{"Aangemeld op": typed})
    assert course.registrations[0].aangemeld_op == expected
    assert course.findings == ()


def test_registration_date_without_time_means_midnight(make_workbook: MakeWorkbook) -> None:
    course = one_registration(make_workbook, **{"Aangemeld op": date(2021, 10, 5)})
    assert course.registrations[0].aangemeld_op == datetime(2021, 10, 5, 0, 0)


def test_empty_registration_date_is_none_without_a_finding(make_workbook: MakeWorkbook) -> None:
    course = one_registration(make_workbook, day=0)
    assert course.registrations[0].aangemeld_op is None
    assert course.findings == ()


@pytest.mark.parametrize("typed", ["gisteren", "31-02-2021", "11-11-2021 25:00", "2021"])
def test_unreadable_registration_date_is_a_warning_and_none(make_workbook: MakeWorkbook,
                                                            typed: str) -> None:
    course = one_registration(make_workbook, **{"Aangemeld op": typed})
    assert course.registrations[0].aangemeld_op is None
    assert codes(course.findings) == [("Deelnemers", 2, "Aangemeld op", "unreadable-date")]
    assert course.findings[0].level is Level.WARNING


@pytest.mark.parametrize("typed", [
    time(14, 0), 0.5833, 0.5833333333333334, "14:00", "14.00", "14u", "14 uur", "14:00:00",
    datetime(2021, 11, 11, 14, 0), 14,
])
def test_time_written_every_way_is_read(make_workbook: MakeWorkbook, typed: Any) -> None:
    assert one_meeting(make_workbook, Begintijd=typed).meetings[0].begintijd == time(14, 0)


def test_time_with_minutes_after_u_is_read(make_workbook: MakeWorkbook) -> None:
    assert one_meeting(make_workbook, Eindtijd="17u30").meetings[0].eindtijd == time(17, 30)


def test_date_stored_as_plain_serial_number_is_read(tmp_path: Path) -> None:
    rows: list[list[Any]] = [MEETING_HEADER,
                             [1, "Start", 44511, 0.5833333333333334, 0.7083333333333334]]
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": SETTINGS_ROWS,
                                              "Bijeenkomsten": rows,
                                              "Deelnemers": registration_rows()})
    meeting = load_course(path).meetings[0]
    assert (meeting.datum, meeting.begintijd, meeting.eindtijd) == (
        date(2021, 11, 11), time(14), time(17))


def test_date_and_time_typed_together_in_datum_give_the_start(make_workbook: MakeWorkbook) -> None:
    meeting = one_meeting(make_workbook, Datum="11-11-2021 14:00", Begintijd=None).meetings[0]
    assert (meeting.datum, meeting.begintijd) == (date(2021, 11, 11), time(14, 0))


@pytest.mark.parametrize("typed", ["3", "3,0", " 3 ", 3.0, "3.0"])
def test_numbers_stored_as_text_are_read(make_workbook: MakeWorkbook, typed: Any) -> None:
    course = load_course(make_workbook(
        settings={"Max deelnemers per gemeente": typed},
        meetings=[[typed, *DEFAULT_MEETINGS[0][1:]]]))
    assert course.settings.max_deelnemers_per_gemeente == 3
    assert course.meetings[0].nr == 3


@pytest.mark.parametrize(("typed", "expected"), [
    ("7, 1", (7, 1)), ("7;1", (7, 1)), ("7 en 1", (7, 1)), ("1, 7", (7, 1)), (7, (7,)),
    (7.0, (7,)), ("14, 7, 1", (14, 7, 1)), ("7,1,1", (7, 1)), ("0", (0,)), ("geen", ()),
    ("7 dagen en 1 dag", (7, 1)),
])
def test_reminders_are_a_list_of_days(make_workbook: MakeWorkbook, typed: Any,
                                      expected: tuple[int, ...]) -> None:
    course = load_course(make_workbook(settings={"Herinneringen (dagen vooraf)": typed}))
    assert course.settings.herinneringen == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("maandag", 0), ("Dinsdag", 1), (" woensdag ", 2), ("do", 3), ("vr", 4), ("zaterdag", 5),
    ("ZONDAG", 6), ("monday", 0),
])
def test_dutch_weekday_names_are_read(make_workbook: MakeWorkbook, typed: str,
                                      expected: int) -> None:
    course = load_course(make_workbook(settings={"Wekelijks overzicht op": typed}))
    assert course.settings.overzicht_weekdag == expected


@pytest.mark.parametrize(("typed", "expected"), [
    ("ja", True), ("Nee", False), (True, True), (False, False), ("JA ", True), (1, True),
])
def test_yes_no_settings_accept_text_and_booleans(make_workbook: MakeWorkbook, typed: Any,
                                                  expected: bool) -> None:
    course = load_course(make_workbook(settings={"Bestuurders tellen mee": typed,
                                                 "Wachtlijstbericht": typed}))
    assert course.settings.bestuurders_tellen_mee is expected
    assert course.settings.wachtlijstbericht is expected


def test_setting_names_accept_aliases_and_a_trailing_colon(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["Instelling", "Waarde"], ["Leergang:", "L"], ["Contactpersoon", "C"],
            ["E-mail contactpersoon", "c@example.org"], ["Afzender naam", "A"],
            ["afzender email", "a@example.org"], ["Max aantal gemeenten", 12]]
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": rows,
                                              "Bijeenkomsten": MEETING_ROWS,
                                              "Deelnemers": registration_rows()})
    settings = load_course(path).settings
    assert (settings.leergang, settings.contactpersoon_email, settings.max_gemeenten) == (
        "L", "c@example.org", 12)


def test_unknown_and_repeated_settings_are_warnings(tmp_path: Path) -> None:
    rows = [*SETTINGS_ROWS, ["Koffie", "ja"], ["Max gemeenten", 5]]
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": rows,
                                              "Bijeenkomsten": MEETING_ROWS,
                                              "Deelnemers": registration_rows()})
    course = load_course(path)
    assert course.settings.max_gemeenten == 20
    assert codes(course.findings) == [("Instellingen", 14, "Instelling", "setting-unknown"),
                                      ("Instellingen", 15, "Instelling", "setting-duplicate")]


def test_formulas_are_read_through_their_cached_values(tmp_path: Path) -> None:
    path = tmp_path / "formulas.xlsx"
    book = xlsxwriter.Workbook(str(path))
    settings = book.add_worksheet("Instellingen")
    for row, values in enumerate(SETTINGS_ROWS):
        settings.write_row(row, 0, values)
    settings.write_formula(4, 1, "=10*2", None, 20)  # Max gemeenten
    settings.write_formula(1, 1, '="Leergang "&"wijkaanpak"', None, "Leergang wijkaanpak")
    meetings = book.add_worksheet("Bijeenkomsten")
    meetings.write_row(0, 0, MEETING_HEADER)
    meetings.write_row(1, 0, [1, "Start"])
    meetings.write_formula(1, 2, "=DATE(2021,11,11)", book.add_format({"num_format": "d-m-yyyy"}),
                           44511)
    people = book.add_worksheet("Deelnemers")
    people.write_row(0, 0, REGISTRATION_HEADER)
    people.write_row(1, 1, ["Ada", "Lovelace", "ada@example.nl"])
    people.write_formula(1, 4, '=PROPER("utrecht")', None, "Utrecht")
    book.close()
    course = load_course(path)
    assert course.settings.max_gemeenten == 20
    assert course.settings.leergang == "Leergang wijkaanpak"
    assert course.meetings[0].datum == date(2021, 11, 11)
    assert course.registrations[0].gemeente == "Utrecht"


# --- meetings --------------------------------------------------------------------------------


def test_meeting_without_date_is_a_warning(make_workbook: MakeWorkbook) -> None:
    course = one_meeting(make_workbook, Datum=None, Begintijd=None, Eindtijd=None)
    assert course.meetings[0].datum is None
    assert codes(course.findings) == [("Bijeenkomsten", 2, "Datum", "meeting-no-date")]
    assert course.findings[0].level is Level.WARNING
    assert "nog geen datum" in course.findings[0].message


def test_online_meeting_without_link_is_a_warning(make_workbook: MakeWorkbook) -> None:
    course = one_meeting(make_workbook, Locatie="Online", Adres=None)
    assert course.meetings[0].online
    assert codes(course.findings) == [("Bijeenkomsten", 2, "Online link",
                                       "meeting-online-no-link")]


def test_online_with_a_platform_named_is_still_online(make_workbook: MakeWorkbook) -> None:
    course = one_meeting(make_workbook, Locatie="Online (Teams)",
                         **{"Online link": "https://meet.example.org/x"})
    assert course.meetings[0].online and course.findings == ()


@pytest.mark.parametrize(("typed", "expected"), [
    (None, False), ("deelnemers", False), ("Deelnemers", False),
    ("deelnemers en bestuurders", True), ("Deelnemers + bestuurders", True),
    ("ook bestuurders", True),
])
def test_voor_mentioning_bestuurders_opens_the_meeting_to_them(
        make_workbook: MakeWorkbook, typed: str | None, expected: bool) -> None:
    assert one_meeting(make_workbook, Voor=typed).meetings[0].voor_bestuurders is expected


def test_meetings_come_in_order_of_their_number(make_workbook: MakeWorkbook) -> None:
    course = load_course(make_workbook(meetings=list(reversed(DEFAULT_MEETINGS))))
    assert [m.nr for m in course.meetings] == [1, 2, 3]
    assert [m.row for m in course.meetings] == [4, 3, 2]


def test_empty_meetings_sheet_is_a_warning(make_workbook: MakeWorkbook) -> None:
    course = load_course(make_workbook(meetings=[]))
    assert course.meetings == ()
    assert codes(course.findings) == [("Bijeenkomsten", None, None, "no-meetings")]


# --- registrations ---------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "expected"), [
    (None, "deelnemer"), ("Deelnemer", "deelnemer"), ("bestuurder", "bestuurder"),
    ("Bestuurder ", "bestuurder"), ("wethouder", "bestuurder"),
])
def test_role_is_normalised(make_workbook: MakeWorkbook, typed: str | None,
                            expected: str) -> None:
    course = one_registration(make_workbook, Rol=typed)
    assert course.registrations[0].rol == expected
    assert course.findings == ()


def test_unknown_role_is_a_warning_and_counts_as_deelnemer(make_workbook: MakeWorkbook) -> None:
    course = one_registration(make_workbook, Rol="toehoorder")
    assert course.registrations[0].rol == "deelnemer"
    assert codes(course.findings) == [("Deelnemers", 2, "Rol", "unknown-role")]


@pytest.mark.parametrize(("typed", "expected"), [
    (None, False), ("nee", False), ("Nee", False), ("ja", True), ("x", True),
    (date(2021, 10, 20), True), ("20-10-2021", True), (True, True), (False, False),
])
def test_afgemeld_ja_x_or_a_date_means_cancelled(make_workbook: MakeWorkbook, typed: Any,
                                                 expected: bool) -> None:
    assert one_registration(make_workbook, Afgemeld=typed).registrations[0].afgemeld is expected


def test_many_registrations_are_read_in_sheet_order(make_workbook: MakeWorkbook) -> None:
    people = [person(n, f"Gemeente{n % 30}", day=1 + n % 28) for n in range(1, 501)]
    course = load_course(make_workbook(registrations=people))
    assert [r.row for r in course.registrations] == list(range(2, 502))
    assert course.layout.last_row == 501


# --- what makes a workbook unusable ----------------------------------------------------------


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_course(tmp_path / "nergens.xlsx")
    assert codes(caught.value.findings) == [(None, None, None, "file-not-found")]


def test_folder_instead_of_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_course(tmp_path)
    assert codes(caught.value.findings) == [(None, None, None, "file-not-found")]


def test_text_file_renamed_to_xlsx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "aanmeldingen.xlsx"
    path.write_text("Voornaam;Achternaam\nAda;Lovelace\n", encoding="utf-8")
    assert refused(path) == [(None, None, None, "not-xlsx")]


def test_csv_export_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Voornaam,Achternaam\nAda,Lovelace\n", encoding="utf-8")
    assert refused(path) == [(None, None, None, "not-xlsx")]


def test_zip_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bijlagen.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notulen.txt", "Vergadering 1")
    assert refused(path) == [(None, None, None, "not-xlsx")]


def test_old_xls_or_password_protected_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "oud.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    assert refused(path) == [(None, None, None, "not-xlsx")]


def test_truncated_workbook_is_refused(make_workbook: MakeWorkbook) -> None:
    path = make_workbook(registrations=[person(1)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert refused(path) == [(None, None, None, "corrupt-file")]


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "leeg.xlsx"
    path.touch()
    assert refused(path) == [(None, None, None, "corrupt-file")]


def test_empty_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "leeg.xlsx"
    openpyxl.Workbook().save(path)
    assert refused(path) == [(None, None, None, "empty-workbook")]


def test_missing_sheet_is_named(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": SETTINGS_ROWS,
                                              "Aanmeldingen": registration_rows(person(1))})
    assert refused(path) == [("Bijeenkomsten", None, None, "missing-sheet"),
                             ("Deelnemers", None, None, "missing-sheet")]


def test_missing_required_column_is_named(make_workbook: MakeWorkbook) -> None:
    header = [h for h in REGISTRATION_HEADER if h not in ("E-mail", "Gemeente")]
    path = make_workbook(registrations=[person(1)], registration_header=header)
    assert refused(path) == [("Deelnemers", 1, "E-mail", "missing-column"),
                             ("Deelnemers", 1, "Gemeente", "missing-column")]


def test_sheet_without_any_header_names_the_missing_columns(tmp_path: Path) -> None:
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": SETTINGS_ROWS,
                                              "Bijeenkomsten": [["iets anders"]],
                                              "Deelnemers": registration_rows()})
    assert refused(path) == [("Bijeenkomsten", None, "Nr", "missing-column"),
                             ("Bijeenkomsten", None, "Titel", "missing-column"),
                             ("Bijeenkomsten", None, "Datum", "missing-column")]


def test_missing_required_setting_is_named(make_workbook: MakeWorkbook) -> None:
    path = make_workbook(settings={"Leergang": None, "Afzender e-mail": "  "})
    assert refused(path) == [("Instellingen", None, "Instelling", "setting-missing"),
                             ("Instellingen", 8, "Waarde", "setting-missing")]


def test_setting_that_is_not_a_number_is_named(make_workbook: MakeWorkbook) -> None:
    path = make_workbook(settings={"Max gemeenten": "twintig"})
    with pytest.raises(InputError) as caught:
        load_course(path)
    assert codes(caught.value.findings) == [("Instellingen", 5, "Waarde", "setting-invalid")]
    finding = caught.value.findings[0]
    assert "Max gemeenten" in finding.message and "twintig" in finding.message
    assert finding.location() == "Instellingen, rij 5, kolom Waarde"
    assert "Instellingen, rij 5, kolom Waarde" in str(caught.value)


@pytest.mark.parametrize(("key", "typed", "row"), [
    ("Max deelnemers per gemeente", 0, 4), ("Max deelnemers per gemeente", 2.5, 4),
    ("Max gemeenten", True, 5), ("Contactpersoon e-mail", "annemiek at example.org", 7),
    ("Afzender e-mail", "leergang@", 9), ("Herinneringen (dagen vooraf)", "een week", 10),
    ("Herinneringen (dagen vooraf)", 7.1, 10), ("Wekelijks overzicht op", "weekend", 11),
    ("Bestuurders tellen mee", "misschien", 12), ("Wachtlijstbericht", 2, 13),
])
def test_setting_of_the_wrong_type_is_refused(make_workbook: MakeWorkbook, key: str,
                                              typed: Any, row: int) -> None:
    path = make_workbook(settings={key: typed})
    assert refused(path) == [("Instellingen", row, "Waarde", "setting-invalid")]


def test_meeting_ending_before_it_starts_is_refused(make_workbook: MakeWorkbook) -> None:
    meetings = [[1, "Start", date(2021, 11, 11), time(17), time(14), "Utrecht", None, None,
                 None]]
    path = make_workbook(meetings=meetings)
    assert refused(path) == [("Bijeenkomsten", 2, "Eindtijd", "meeting-end-before-start")]


@pytest.mark.parametrize(("column", "typed", "code"), [
    ("Nr", None, "meeting-bad-number"), ("Nr", "een", "meeting-bad-number"),
    ("Nr", 0, "meeting-bad-number"), ("Datum", "binnenkort", "meeting-bad-date"),
    ("Datum", "30-02-2022", "meeting-bad-date"), ("Begintijd", "middag", "meeting-bad-time"),
    ("Eindtijd", "25:00", "meeting-bad-time"), ("Voor", "iedereen", "meeting-bad-voor"),
])
def test_unreadable_meeting_cell_is_refused(make_workbook: MakeWorkbook, column: str,
                                            typed: Any, code: str) -> None:
    values = dict(zip(MEETING_HEADER, DEFAULT_MEETINGS[0], strict=True)) | {column: typed}
    path = make_workbook(meetings=[[values[c] for c in MEETING_HEADER]])
    assert refused(path) == [("Bijeenkomsten", 2, column, code)]


def test_duplicate_meeting_number_is_refused(make_workbook: MakeWorkbook) -> None:
    meetings = [DEFAULT_MEETINGS[0], [1, *DEFAULT_MEETINGS[1][1:]]]
    path = make_workbook(meetings=meetings)
    assert refused(path) == [("Bijeenkomsten", 3, "Nr", "meeting-duplicate-number")]


def test_findings_name_the_column_as_the_organisers_wrote_it(tmp_path: Path) -> None:
    rows = [["Setting", "Value"], *SETTINGS_ROWS[1:], ["Max gemeenten", "veel"]]
    rows = [r for r in rows if r[0] != "Max gemeenten" or r[1] == "veel"]
    path = write_sheets(tmp_path / "w.xlsx", {"Instellingen": rows,
                                              "Bijeenkomsten": MEETING_ROWS,
                                              "Deelnemers": registration_rows()})
    assert refused(path) == [("Instellingen", 13, "Value", "setting-invalid")]


def test_every_error_is_reported_at_once(make_workbook: MakeWorkbook) -> None:
    meetings = [[1, "Start", "ooit", None, None, None, None, None, None]]
    header = [h for h in REGISTRATION_HEADER if h != "Voornaam"]
    path = make_workbook(settings={"Max gemeenten": "veel", "Contactpersoon": None},
                         meetings=meetings, registration_header=header)
    assert refused(path) == [
        ("Instellingen", None, "Instelling", "setting-missing"),
        ("Instellingen", 5, "Waarde", "setting-invalid"),
        ("Bijeenkomsten", 2, "Datum", "meeting-bad-date"),
        ("Deelnemers", 1, "Voornaam", "missing-column"),
    ]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus of real workbooks not present")
@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.xls*"))
                         if CORPUS.is_dir() else [])
def test_real_workbooks_of_other_kinds_give_findings_not_tracebacks(name: str) -> None:
    path = CORPUS / name
    before = path.read_bytes()
    with pytest.raises(InputError) as caught:
        load_course(path)
    assert caught.value.findings
    assert path.read_bytes() == before
