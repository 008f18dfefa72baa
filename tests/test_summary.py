"""The weekly summary workbook: figures, sheets, safety against formula injection, printing."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from leergang_ops.model import (
    Allocation,
    Course,
    Decision,
    Finding,
    Level,
    Meeting,
    Registration,
    SentRecord,
    Settings,
    SheetLayout,
    Status,
)
from leergang_ops.summary import (
    build_summary,
    describe_scope,
    headline,
    write_summary,
)

TODAY = date(2021, 11, 8)  # a Monday, the default day of the weekly summary
SHEETS = ["Overzicht", "Gemeenten", "Deelnemers", "Vragen", "Verzonden"]

# ------------------------------------------------------------------------------ factory

SETTINGS = Settings(
    leergang="Leergang slagvaardige wijkaanpak",
    contactpersoon="Annemiek van Tol",
    contactpersoon_email="contact@example.org",
    afzender_naam="Leergang wijkaanpak",
    afzender_email="leergang@example.org",
    organisatie="Platform31 en Verwey-Jonker Instituut",
)
MEETINGS = (
    Meeting(1, "Waarom een wijkaanpak?", date(2021, 11, 11), time(14), time(17),
            "Molen de Ster", "Molenpark 2-1, Utrecht", row=2),
    Meeting(2, "Wat is een wijkaanpak en wat is er nodig?", date(2021, 12, 2), time(14),
            time(17), "online", "", "https://meet.example.org/wijkaanpak-2", row=3),
    Meeting(3, "Hoe ga je aan de slag met een wijkaanpak?", date(2022, 1, 20), time(14),
            time(17), "Molen de Ster", "Molenpark 2-1, Utrecht", voor_bestuurders=True, row=4),
    Meeting(4, "Terugblik en vervolg", None, None, None, "Molen de Ster",
            "Molenpark 2-1, Utrecht", row=5),
)
LAYOUT = SheetLayout("Deelnemers", 1, {"E-mail": 4}, 13, 60)


def reg(row: int, gemeente: str, **fields: object) -> Registration:
    """An invented registration on sheet row `row`."""
    values: dict[str, object] = {
        "aangemeld_op": datetime(2021, 10, 1, 9, 0) + timedelta(hours=row),
        "voornaam": f"Deelnemer{row}",
        "achternaam": f"Test{row}",
        "email": f"deelnemer{row}@example.nl",
        "gemeente": gemeente,
        "beleidsdomein": f"domein {row}",
        "functie": "beleidsadviseur",
    }
    values.update(fields)
    return Registration(row=row, **values)  # type: ignore[arg-type]


def make_course(registrations: Sequence[Registration], *, meetings: Sequence[Meeting] = MEETINGS,
                settings: Settings = SETTINGS) -> Course:
    return Course(settings, tuple(meetings), tuple(registrations), LAYOUT)


def make_allocation(course: Course, statuses: dict[int, Status], *,
                    messages: dict[int, tuple[str, ...]] | None = None,
                    findings: Sequence[Finding] = (), admitted: Sequence[str] = (),
                    waiting: Sequence[str] = ()) -> Allocation:
    """Decisions in row order; every row not in `statuses` is confirmed."""
    messages = messages or {}
    decisions = tuple(Decision(r.row, statuses.get(r.row, Status.BEVESTIGD),
                               messages.get(r.row, ())) for r in course.registrations)
    return Allocation(decisions, tuple(findings), tuple(admitted), tuple(waiting))


def record(kind: str, address: str, *, status: str = "sent", days_ago: int = 0,
           scope: str = "-", detail: str = "", name: str = "") -> SentRecord:
    at = datetime.combine(TODAY - timedelta(days=days_ago), time(7, 15))
    return SentRecord(kind, address.casefold(), scope, address, name or address.split("@")[0],
                      status, at, detail)


def small_scenario() -> tuple[Course, Allocation, list[SentRecord]]:
    """Two admitted municipalities (max 2), one waiting, one overbooked, invalid, cancelled."""
    regs = [
        reg(2, "Utrecht", beleidsdomein="veiligheid", opmerking="Hoe betrek je bewoners?"),
        reg(3, "Utrecht", beleidsdomein="onderwijs"),
        reg(4, "Utrecht", beleidsdomein="zorg", opmerking="Wat kost een wijkaanpak?"),
        reg(5, "Utrecht", beleidsdomein="wonen"),
        reg(6, "Zwolle", beleidsdomein="sociaal domein", opmerking="Ervaringen met wijkteams?"),
        reg(7, "Zwolle", rol="bestuurder", beleidsdomein="bestuur"),
        reg(8, "Den Haag", opmerking="Staan we op de wachtlijst?"),
        reg(9, "Zwolle", email="geen-adres"),
        reg(10, "Zwolle", afgemeld=True),
    ]
    course = make_course(regs, meetings=[replace(MEETINGS[0]),
                                         replace(MEETINGS[1], online_link=""),
                                         MEETINGS[2], MEETINGS[3]],
                         settings=replace(SETTINGS, max_gemeenten=2))
    invalid = Finding(Level.ERROR, "invalid-email", "Deelnemers", 9, "E-mail",
                      "E-mailadres 'geen-adres' is niet geldig")
    allocation = make_allocation(
        course,
        {5: Status.OVERBOEKT, 8: Status.WACHTLIJST, 9: Status.ONGELDIG, 10: Status.AFGEMELD},
        messages={5: ("Overboekt: gemeente Utrecht heeft al 3 deelnemers",),
                  8: ("Wachtlijst: gemeente 's-Gravenhage is nummer 1 op de wachtlijst",),
                  9: (invalid.message,)},
        findings=[invalid], admitted=["Utrecht", "Zwolle"], waiting=["'s-Gravenhage"])
    records = [
        record("bevestiging", "deelnemer2@example.nl", days_ago=3),
        record("bevestiging", "deelnemer3@example.nl", status="bounced", days_ago=1,
               detail="550 5.1.1 User unknown"),
        record("herinnering", "deelnemer4@example.nl", days_ago=10, scope="m1-7d"),
        record("wachtlijst", "deelnemer8@example.nl", status="deferred",
               detail="421 4.7.0 Try again later"),
    ]
    return course, allocation, records


def open_summary(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def rows_of(ws: Worksheet) -> list[tuple[object, ...]]:
    return [tuple(row) for row in ws.iter_rows(min_row=2, values_only=True)]


def column(ws: Worksheet, header: str) -> list[object]:
    headers = [c.value for c in ws[1]]
    index = headers.index(header)
    return [row[index] for row in rows_of(ws)]


def label_value(ws: Worksheet, label: str) -> object:
    """The cell right of the first cell in column A that says `label`."""
    for row in ws.iter_rows(min_col=1, max_col=2):
        if row[0].value == label:
            return row[1].value
    raise AssertionError(f"{label!r} not on {ws.title}")


# ------------------------------------------------------------------------------ headline


def test_headline_counts_match_the_allocation() -> None:
    course, allocation, records = small_scenario()
    head = headline(course, allocation, records, TODAY)
    assert (head.bevestigd, head.wachtlijst, head.overboekt, head.ongeldig, head.afgemeld) == (
        5, 1, 1, 1, 1)
    assert head.max_gemeenten == 2


def test_gemeenten_counts_municipalities_with_a_confirmed_participant() -> None:
    course, allocation, records = small_scenario()
    assert headline(course, allocation, records, TODAY).gemeenten == 2


def test_expected_attendance_counts_bestuurders_only_at_meetings_for_them() -> None:
    course, allocation, records = small_scenario()
    per_meeting = headline(course, allocation, records, TODAY).per_meeting
    assert per_meeting == (
        ("1. Waarom een wijkaanpak? — do 11-11-2021", 4),
        ("2. Wat is een wijkaanpak en wat is er nodig? — do 02-12-2021", 4),
        ("3. Hoe ga je aan de slag met een wijkaanpak? — do 20-01-2022", 5),
        ("4. Terugblik en vervolg — datum nog niet bekend", 4),
    )


def test_mails_this_week_counts_delivered_mails_of_the_past_seven_days_only() -> None:
    course, allocation, records = small_scenario()
    records.append(record("herinnering", "deelnemer6@example.nl", days_ago=7, scope="m1-7d"))
    records.append(record("herinnering", "deelnemer6@example.nl", days_ago=6, scope="m1-1d"))
    assert headline(course, allocation, records, TODAY).mails_this_week == 2


def test_problems_say_what_needs_a_person_and_where_to_fix_it() -> None:
    course, allocation, records = small_scenario()
    found = headline(course, allocation, records, TODAY).problems
    assert [(p.group, p.where) for p in found] == [
        ("Limieten", "Deelnemers, rij 5"),
        ("Limieten", "Instellingen, Max gemeenten; Deelnemers, rij 8"),
        ("Ongeldige aanmeldingen", "Deelnemers, rij 9, kolom E-mail"),
        ("Waarschuwingen", "Bijeenkomsten, rij 3, kolom Online link"),
        ("Waarschuwingen", "Bijeenkomsten, rij 5, kolom Datum"),
        ("Bezorging van mail", "Deelnemers, rij 3, kolom E-mail"),
    ]
    assert "550 5.1.1 User unknown" in found[-1].what
    assert "deelnemer3@example.nl" in found[-1].what
    assert "'s-Gravenhage" in found[1].what


def test_bounce_is_no_longer_a_problem_once_the_address_is_corrected() -> None:
    course, allocation, records = small_scenario()
    corrected = make_course([replace(r, email="nieuw3@example.nl") if r.row == 3 else r
                             for r in course.registrations], meetings=course.meetings,
                            settings=course.settings)
    found = headline(corrected, allocation, records, TODAY).problems
    assert not any("geweigerd" in what for what, _, _ in found)


def test_bounce_is_no_longer_a_problem_once_a_later_mail_is_delivered() -> None:
    course, allocation, records = small_scenario()
    records.append(record("herinnering", "deelnemer3@example.nl", days_ago=0, scope="m1-7d"))
    found = headline(course, allocation, records, TODAY).problems
    assert not any("geweigerd" in what for what, _, _ in found)


def test_a_mail_left_sending_by_an_interrupted_run_is_a_problem_the_next_day() -> None:
    course, allocation, records = small_scenario()
    records.append(record("bevestiging", "deelnemer4@example.nl", status="sending",
                          days_ago=1))
    found = headline(course, allocation, records, TODAY).problems
    assert found[-1] == (
        "Onbekend of de bevestiging aan deelnemer4 (deelnemer4@example.nl) van 07-11-2021 is "
        "aangekomen: het verzenden werd onderbroken; navragen", "Deelnemers, rij 4",
        "Bezorging van mail")
    records.append(record("bevestiging", "deelnemer4@example.nl", days_ago=0))
    assert not any("onderbroken" in what
                   for what, _, _ in headline(course, allocation, records, TODAY).problems)


def test_online_meeting_that_already_took_place_needs_no_link() -> None:
    course, allocation, records = small_scenario()
    found = headline(course, allocation, records, date(2021, 12, 3)).problems
    assert not any("Online link" in where for _, where, _ in found)


def test_nothing_to_do_when_all_is_in_order() -> None:
    course = make_course([reg(2, "Utrecht"), reg(3, "Zwolle")], meetings=MEETINGS[:3])
    allocation = make_allocation(course, {}, admitted=["Utrecht", "Zwolle"])
    assert headline(course, allocation, [], TODAY).problems == ()


# ------------------------------------------------------------------------------ the workbook


def test_sheets_come_in_the_agreed_order() -> None:
    wb = open_summary(build_summary(*small_scenario(), TODAY))
    assert wb.sheetnames == SHEETS


def test_overview_shows_title_date_and_headline_figures() -> None:
    course, allocation, records = small_scenario()
    ws = open_summary(build_summary(course, allocation, records, TODAY))["Overzicht"]
    assert ws["A1"].value == "Leergang slagvaardige wijkaanpak"
    assert ws["A2"].value == "Overzicht per maandag 8 november 2021"
    assert label_value(ws, "Gemeenten met bevestigde deelnemers") == 2
    assert label_value(ws, "Bevestigde deelnemers") == 5
    assert label_value(ws, "Overboekt (gemeente heeft al 3 deelnemers)") == 1
    assert label_value(ws, "Mails verzonden in de afgelopen 7 dagen") == 1
    assert label_value(ws, "3. Hoe ga je aan de slag met een wijkaanpak? — do 20-01-2022") == 4


def test_overview_lists_the_problems_with_where_to_fix_them() -> None:
    course, allocation, records = small_scenario()
    ws = open_summary(build_summary(course, allocation, records, TODAY))["Overzicht"]
    cells = [(row[0], row[3]) for row in ws.iter_rows(values_only=True)]  # what A:C, where D:E
    for what, where, _ in headline(course, allocation, records, TODAY).problems:
        assert (what, where) in cells


def test_gemeenten_sheet_has_one_row_per_municipality_with_its_status() -> None:
    wb = open_summary(build_summary(*small_scenario(), TODAY))
    ws = wb["Gemeenten"]
    table = {row[0]: row for row in rows_of(ws) if row[1] is not None}
    assert list(table) == ["Utrecht", "Zwolle", "'s-Gravenhage"]
    assert column(ws, "Status")[:3] == ["vol", "toegelaten", "wachtlijst"]
    assert column(ws, "Bevestigd")[:3] == [3, 1, 0]
    assert column(ws, "Bestuurders")[:3] == [0, 1, 0]
    assert column(ws, "Overboekt")[:3] == [1, 0, 0]
    assert column(ws, "Beleidsdomeinen")[0] == "veiligheid, onderwijs, zorg"


def test_overbooked_and_waiting_municipalities_are_highlighted() -> None:
    ws = open_summary(build_summary(*small_scenario(), TODAY))["Gemeenten"]
    fills = [ws.cell(row, 1).fill.fgColor.rgb for row in (2, 3, 4)]
    assert fills[0] != fills[1] != fills[2]
    assert fills[1] in (None, "00000000")


def test_deelnemers_sheet_lists_every_registration_with_status_and_melding() -> None:
    course, allocation, records = small_scenario()
    ws = open_summary(build_summary(course, allocation, records, TODAY))["Deelnemers"]
    assert column(ws, "Rij") == [r.row for r in course.registrations]
    assert column(ws, "Status") == [str(d.status) for d in allocation.decisions]
    assert column(ws, "Melding") == [d.melding or None for d in allocation.decisions]
    confirmed = column(ws, "Bevestiging verstuurd")
    assert confirmed[0] == datetime(2021, 11, 5)
    assert confirmed[1] is None  # the bounced one


def test_vragen_sheet_has_the_opmerking_texts_sorted_by_municipality() -> None:
    ws = open_summary(build_summary(*small_scenario(), TODAY))["Vragen"]
    assert [(row[0], row[1], row[4]) for row in rows_of(ws)] == [
        ("'s-Gravenhage", "Deelnemer8 Test8", "Staan we op de wachtlijst?"),
        ("Utrecht", "Deelnemer2 Test2", "Hoe betrek je bewoners?"),
        ("Utrecht", "Deelnemer4 Test4", "Wat kost een wijkaanpak?"),
        ("Zwolle", "Deelnemer6 Test6", "Ervaringen met wijkteams?"),
    ]


def test_verzonden_sheet_has_the_past_weeks_records_only() -> None:
    ws = open_summary(build_summary(*small_scenario(), TODAY))["Verzonden"]
    assert [(row[1], row[2], row[4]) for row in rows_of(ws)] == [
        ("Bevestiging", "deelnemer2@example.nl", "verzonden"),
        ("Bevestiging", "deelnemer3@example.nl", "geweigerd"),
        ("Wachtlijstbericht", "deelnemer8@example.nl", "uitgesteld, wordt opnieuw geprobeerd"),
    ]
    assert column(ws, "Toelichting")[1] == "550 5.1.1 User unknown"
    assert column(ws, "Datum")[0] == datetime(2021, 11, 5, 7, 15)


def test_ledger_times_in_utc_are_shown_and_counted_in_amsterdam_time() -> None:
    course, allocation, _ = small_scenario()

    def sent_at(moment: datetime) -> SentRecord:
        return SentRecord("bevestiging", "deelnemer2@example.nl", "-", "deelnemer2@example.nl",
                          "Deelnemer2 Test2", "sent", moment)

    # Monday 23:30 UTC is Tuesday 00:30 in Amsterdam: inside the week Tuesday 2 – Monday 8.
    early = sent_at(datetime(2021, 11, 1, 23, 30, tzinfo=UTC))
    # Monday 8 November 23:30 UTC is already Tuesday 9 in Amsterdam: next week's.
    late = sent_at(datetime(2021, 11, 8, 23, 30, tzinfo=UTC))
    ws = open_summary(build_summary(course, allocation, [early, late], TODAY))["Verzonden"]
    assert column(ws, "Datum") == [datetime(2021, 11, 2, 0, 30)]


def test_chart_of_confirmed_per_municipality_is_present() -> None:
    data = build_summary(*small_scenario(), TODAY)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        chart = archive.read("xl/charts/chart1.xml").decode()
    assert "Gemeenten!$B$2:$B$4" in chart  # confirmed per municipality
    assert "Gemeenten!$C$2:$C$4" in chart  # the limit as a line
    assert "<c:lineChart>" in chart


@pytest.mark.parametrize("sheet", SHEETS[1:])
def test_data_sheets_have_a_frozen_header_and_an_autofilter(sheet: str) -> None:
    ws = open_summary(build_summary(*small_scenario(), TODAY))[sheet]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref is not None
    assert ws.auto_filter.ref.startswith("A1:")


@pytest.mark.parametrize("sheet", SHEETS)
def test_every_sheet_prints_landscape_on_a4_one_page_wide(sheet: str) -> None:
    ws = open_summary(realistic_summary())[sheet]
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize or 0) == 9
    if sheet == "Gemeenten":
        return  # see the next test
    fit = ws.sheet_properties.pageSetUpPr
    assert fit is not None and fit.fitToPage
    # A missing fitToWidth/fitToHeight means 1. The short Overzicht fits one page tall; the
    # other sheets are one page wide and as many tall as they need (0).
    width, height = ws.page_setup.fitToWidth, ws.page_setup.fitToHeight
    assert (1 if width is None else width) == 1
    assert (1 if height is None else height) == (1 if sheet == "Overzicht" else 0)


def test_gemeenten_chart_prints_on_a_page_of_its_own() -> None:
    # Fit-to-width would ignore the page break, so the sheet has a fixed scale instead.
    ws = open_summary(realistic_summary())["Gemeenten"]
    assert 10 <= int(ws.page_setup.scale or 100) < 100
    assert [b.id for b in ws.row_breaks.brk] == [len(MUNICIPALITIES) + 4]


def test_a_formula_as_name_is_written_as_text() -> None:
    course, allocation, records = small_scenario()
    evil = '=HYPERLINK("http://example.com","x")'
    course = make_course([replace(r, voornaam=evil) if r.row == 2 else r
                          for r in course.registrations], meetings=course.meetings,
                         settings=course.settings)
    ws = open_summary(build_summary(course, allocation, records, TODAY))["Deelnemers"]
    cell = ws.cell(2, 3)
    assert cell.value == evil
    assert cell.data_type == "s"


@pytest.mark.parametrize("text", ["=1+1", "+31 6 1234", "-2+3", "@SUM(A1:A2)",
                                  "http://example.org/x"])
def test_no_cell_anywhere_becomes_a_formula_or_link(text: str) -> None:
    course, allocation, records = small_scenario()
    course = make_course(
        [replace(r, voornaam=text, achternaam=text, gemeente=text, beleidsdomein=text,
                 opmerking=text) if r.row in (2, 6) else r for r in course.registrations],
        meetings=course.meetings, settings=course.settings)
    records.append(record("bevestiging", "deelnemer4@example.nl", status="bounced",
                          detail=text, name=text))
    wb = open_summary(build_summary(course, allocation, records, TODAY))
    for ws in wb.worksheets:
        assert ws._hyperlinks == []  # type: ignore[attr-defined]
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate}"
                if isinstance(cell.value, str) and cell.value.startswith(text[:2]):
                    assert cell.data_type == "s"


def test_same_input_gives_the_same_bytes() -> None:
    assert build_summary(*small_scenario(), TODAY) == build_summary(*small_scenario(), TODAY)


def test_write_summary_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "overzicht.xlsx"
    target.write_bytes(b"old")
    data = build_summary(*small_scenario(), TODAY)
    write_summary(target, data)
    assert target.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["overzicht.xlsx"]


def test_describe_scope_in_dutch() -> None:
    assert describe_scope("m2-7d") == "bijeenkomst 2, 7 dagen vooraf"
    assert describe_scope("m2-1d") == "bijeenkomst 2, 1 dag vooraf"
    assert describe_scope("m3@2") == "bijeenkomst 3 (versie 2)"
    assert describe_scope("2021-W45") == "week 45 van 2021"
    assert describe_scope("-") == ""


# ------------------------------------------------------------------ a realistic course

FIRST_NAMES = ["Anouk", "Bram", "Charlotte", "Daan", "Eva", "Fleur", "Gijs", "Hanna", "Ilse",
               "Jeroen", "Kim", "Lars", "Marloes", "Niels", "Olga", "Pieter", "Roos", "Sander",
               "Tessa", "Vincent", "Wendy", "Yusuf", "Zeynep"]
LAST_NAMES = ["de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
              "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
              "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "El Amrani"]
DOMAINS = ["veiligheid", "onderwijs", "sociaal domein", "wonen", "zorg en welzijn",
           "economie en werk", "jeugd", "openbare ruimte", "armoede en schulden"]
# (municipality as typed, registrations) in order of first registration; 22 municipalities.
MUNICIPALITIES = [
    ("Utrecht", 4), ("Rotterdam", 2), ("Den Haag", 3), ("Amsterdam", 2), ("Zwolle", 3),
    ("Groningen", 2), ("Eindhoven", 2), ("Tilburg", 2), ("Den Bosch", 2), ("Almere", 2),
    ("Leeuwarden", 2), ("Arnhem", 3), ("Nijmegen", 2), ("Enschede", 1), ("Heerlen", 2),
    ("Súdwest-Fryslân", 1), ("Vlaardingen", 2), ("Schiedam", 2), ("Deventer", 2),
    ("Lelystad", 2), ("Zaanstad", 2), ("Dordrecht", 2),
]
QUESTIONS = [
    "Hoe krijgen we bewoners structureel betrokken bij de wijkaanpak, niet alleen bij de start?",
    "Wij zoeken voorbeelden van een gebiedsgerichte aanpak die ook na een collegewisseling "
    "overeind bleef. Wat maakt het verschil?",
    "Hoe verhoudt de wijkaanpak zich tot het Programma Leefbaarheid en Veiligheid?",
    "Welke indicatoren gebruiken andere gemeenten om voortgang te meten?",
    "Hoe organiseer je de samenwerking met corporaties en zorgpartijen zonder eindeloos "
    "overleg?",
    "Graag aandacht voor de rol van het onderwijs in de wijk.",
    "Kan mijn collega van wonen de tweede bijeenkomst vervangen?",
    "Wat is een realistisch budget voor een meerjarige wijkaanpak?",
    "Hoe houd je de gemeenteraad betrokken zonder dat het een politiek speelbal wordt?",
    "Onze wethouder wil graag bij bijeenkomst 3 aansluiten.",
    "Is er aandacht voor ondermijning en de aanpak van criminaliteit in kwetsbare wijken?",
    "Hoe combineer je een integrale aanpak met de verkokering binnen de eigen organisatie?",
    "Dieetwens: vegetarisch.",
    "Wij starten in 2022 in twee wijken; welke fouten moeten we vermijden?",
]


def realistic_scenario() -> tuple[Course, Allocation, list[SentRecord]]:
    """~50 registrations over 22 municipalities, 4 meetings: the course a month in."""
    regs: list[Registration] = []
    statuses: dict[int, Status] = {}
    messages: dict[int, tuple[str, ...]] = {}
    findings: list[Finding] = []
    row = 2
    people = iter([(f, s) for s in LAST_NAMES for f in FIRST_NAMES][::11])  # unique pairs
    for index, (gemeente, count) in enumerate(MUNICIPALITIES):
        for n in range(count):
            first, last = next(people)
            address = f"{first}.{last}".casefold().replace(" ", "") + "@example.nl"
            opmerking = QUESTIONS[row % len(QUESTIONS)] if row % 3 == 0 else ""
            regs.append(reg(row, gemeente, voornaam=first, achternaam=last, email=address,
                            beleidsdomein=DOMAINS[(index + n * 2) % len(DOMAINS)],
                            functie="beleidsadviseur" if n else "programmamanager",
                            opmerking=opmerking,
                            aangemeld_op=datetime(2021, 10, 1, 9) + timedelta(hours=3 * row)))
            if index >= 20:
                statuses[row] = Status.WACHTLIJST
                messages[row] = (f"Wachtlijst: gemeente {gemeente} is nummer {index - 19} op "
                                 "de wachtlijst (maximaal 20 gemeenten)",)
            elif n >= 3:
                statuses[row] = Status.OVERBOEKT
                messages[row] = (f"Overboekt: gemeente {gemeente} heeft al 3 deelnemers "
                                 "(maximum 3 per gemeente)",)
            row += 1
    # A bestuurder for meeting 3, a cancellation, a duplicate and a typo in an address.
    regs.append(reg(row, "Utrecht", voornaam="Wim", achternaam="Wethouder", rol="bestuurder",
                    email="wim.wethouder@example.nl", beleidsdomein="bestuur"))
    regs.append(reg(row + 1, "Arnhem", voornaam="Sanne", achternaam="Kok", afgemeld=True,
                    email="sanne.kok@example.nl", opmerking="Helaas verhinderd."))
    statuses[row + 1] = Status.AFGEMELD
    regs.append(reg(row + 2, "Zwolle", voornaam="Eva", achternaam="Visser",
                    email="eva.visser@example", beleidsdomein="jeugd"))
    statuses[row + 2] = Status.ONGELDIG
    bad = Finding(Level.ERROR, "invalid-email", "Deelnemers", row + 2, "E-mail",
                  "E-mailadres 'eva.visser@example' is niet geldig")
    findings.append(bad)
    messages[row + 2] = (bad.message,)
    course = make_course(regs, meetings=[*MEETINGS[:1], replace(MEETINGS[1], online_link=""),
                                         *MEETINGS[2:]])
    names = [municipality for municipality, _ in MUNICIPALITIES]
    allocation = make_allocation(course, statuses, messages=messages, findings=findings,
                                 admitted=names[:20], waiting=names[20:])
    return course, allocation, realistic_records(course, allocation)


@functools.cache
def realistic_summary() -> bytes:
    return build_summary(*realistic_scenario(), TODAY)


def realistic_records(course: Course, allocation: Allocation) -> list[SentRecord]:
    decisions = allocation.by_row()
    records = []
    for n, r in enumerate(course.registrations):
        status = decisions[r.row].status
        kind = {Status.BEVESTIGD: "bevestiging", Status.WACHTLIJST: "wachtlijst",
                Status.OVERBOEKT: "wachtlijst"}.get(status)
        if kind is None:
            continue
        result, detail = "sent", ""
        if n == 5:
            result, detail = "bounced", f"550 5.1.1 <{r.email}>: Recipient address rejected"
        elif n == 11:
            result, detail = "deferred", "421 4.7.0 Too many messages, try again later"
        records.append(SentRecord(kind, r.email_key, "-", r.email, r.naam, result,
                                  datetime(2021, 11, 2, 7, 15) + timedelta(days=n % 6,
                                                                           seconds=n), detail))
        if status == Status.BEVESTIGD and result == "sent":
            records.append(SentRecord("herinnering", r.email_key, "m1-7d", r.email, r.naam,
                                      "sent", datetime(2021, 11, 4, 7, 16, n)))
    records.append(SentRecord("overzicht", "contact@example.org", "2021-W44",
                              "contact@example.org", "Annemiek van Tol", "sent",
                              datetime(2021, 11, 1, 7, 17)))
    return records


def test_realistic_course_summary_figures_add_up() -> None:
    course, allocation, records = realistic_scenario()
    head = headline(course, allocation, records, TODAY)
    assert head.gemeenten == 20
    assert len(course.registrations) == 50
    assert head.bevestigd + head.wachtlijst + head.overboekt + head.ongeldig + head.afgemeld == 50
    assert dict(head.per_meeting)["3. Hoe ga je aan de slag met een wijkaanpak? — do 20-01-2022"] \
        == head.bevestigd


def convert_to_pdf(xlsx: Path, outdir: Path) -> Path:
    """Export with LibreOffice headless, in its own profile so parallel runs don't collide."""
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    profile = outdir / "lo-profile"
    subprocess.run([soffice, "--headless", f"-env:UserInstallation={profile.as_uri()}",
                    "--convert-to", "pdf", "--outdir", str(outdir), str(xlsx)],
                   check=True, timeout=120, capture_output=True)
    return outdir / f"{xlsx.stem}.pdf"


@pytest.mark.slow
def test_summary_exports_to_pdf_with_libreoffice(tmp_path: Path) -> None:
    source = tmp_path / "overzicht.xlsx"
    write_summary(source, realistic_summary())
    pdf = convert_to_pdf(source, tmp_path)
    assert pdf.exists()
    assert pdf.read_bytes().startswith(b"%PDF")
    assert pdf.stat().st_size > 10_000


def test_an_empty_course_still_gives_a_summary() -> None:
    course = make_course([], meetings=[], settings=replace(SETTINGS, leergang="Wijk & buurt"))
    wb = open_summary(build_summary(course, make_allocation(course, {}), [], TODAY))
    assert wb.sheetnames == SHEETS
    assert rows_of(wb["Deelnemers"]) == []
    # In a page header `&` starts a control code; `&&` prints one ampersand.
    header = wb["Overzicht"].oddHeader
    assert header is not None and header.left.text == "Wijk && buurt"
