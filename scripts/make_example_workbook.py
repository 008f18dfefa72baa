"""Write the example workbook for the 'Leergang slagvaardige wijkaanpak' (deterministically).

    python scripts/make_example_workbook.py [OUT]

OUT defaults to workbooks/leergang-wijkaanpak.xlsx. The settings and meetings follow the
public announcement; the ~50 registrations are invented (example.nl addresses) and chosen so
that one run shows every status and warning of the allocation: ongeldig (a missing name, an
address without @, a second registration with the same address), afgemeld (`ja` and a date),
overboekt (a fourth from Rotterdam), wachtlijst (Leiden and Heerlen, municipalities 21 and 22),
bevestigd; and warnings for two confirmed colleagues in one policy domain (Eindhoven), a
misspelled municipality (Amersfort), known variants (Den Haag, Den Bosch) and a bestuurder.
The tool columns are present but empty, as before the first run.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing the package

from leergang_ops.workbook import schema  # noqa: E402
from leergang_ops.workbook.template import (  # noqa: E402
    AFGEMELD_PROMPT,
    COLUMN_WIDTHS,
    DATE_FORMAT,
    DROPDOWNS,
    HINT_COLUMN,
    LAST_ROW,
    NUMBER_FORMATS,
    SETTING_DROPDOWNS,
    SETTING_HINTS,
    TOOL_COLUMN_NOTE,
)

DEFAULT_OUT = ROOT / "workbooks" / "leergang-wijkaanpak.xlsx"
CREATED = datetime(2021, 10, 1, 9, 0)  # fixed document date: same input, same file
NOTE_COLUMN = "Notitie organisatie"  # the organisers' own column; the tool leaves it alone

SETTINGS: dict[str, Any] = {
    "Leergang": "Leergang slagvaardige wijkaanpak",
    "Organisatie": "Platform31 en Verwey-Jonker Instituut",
    "Max deelnemers per gemeente": 3,
    "Max gemeenten": 20,
    "Contactpersoon": "Annemiek van Tol",
    "Contactpersoon e-mail": "annemiek.vantol@example.org",
    "Afzender naam": "Leergang slagvaardige wijkaanpak",
    "Afzender e-mail": "leergang-wijkaanpak@example.org",
    "Herinneringen (dagen vooraf)": "7, 1",
    "Wekelijks overzicht op": "maandag",
    "Bestuurders tellen mee": "nee",
    "Wachtlijstbericht": "ja",
}

MOLEN = ("Molen de Ster", "Molenpark 2-1, Utrecht")
MEETINGS: list[tuple[Any, ...]] = [
    (1, "Waarom een wijkaanpak? (oriëntatie)", date(2021, 11, 11), time(14), time(17), *MOLEN,
     None, schema.VOOR_PARTICIPANTS),
    (2, "Wat is een wijkaanpak en wat is er nodig? (oriëntatie)", date(2021, 12, 2), time(14),
     time(17), "online", None, "https://meet.example.org/leergang-wijkaanpak-2",
     schema.VOOR_PARTICIPANTS),
    (3, "Hoe ga je aan de slag met een wijkaanpak?", date(2022, 1, 20), time(14), time(17),
     *MOLEN, None, schema.VOOR_WITH_ADMINISTRATORS),
    (4, "Slotbijeenkomst", None, None, None, None, None, None, schema.VOOR_PARTICIPANTS),
]

DEELNEMER, BESTUURDER = schema.ROLES
# (Aangemeld op, Voornaam, Achternaam, E-mail, Gemeente, Beleidsdomein, Functie, Rol,
#  Afgemeld, Opmerking, Notitie organisatie)
REGISTRATIONS: list[tuple[Any, ...]] = [
    ((10, 1, 9, 14), "Sanne", "Verhoeven", "s.verhoeven@example.nl", "Utrecht", "Veiligheid",
     "Beleidsadviseur veiligheid", DEELNEMER, None, None, None),
    ((10, 1, 11, 2), "Joris", "van Dam", "joris.vandam@example.nl", "Amsterdam", "Wonen",
     "Programmamanager wijkaanpak", DEELNEMER, None, None, None),
    ((10, 1, 15, 47), "Fatima", "el Idrissi", "f.elidrissi@example.nl", "Rotterdam",
     "Onderwijs", "Beleidsmedewerker onderwijs", DEELNEMER, None, None, None),
    ((10, 4, 8, 55), "Mark", "de Groot", "mark.degroot@example.nl", "Utrecht", "Sociaal domein",
     "Wijkregisseur", DEELNEMER, None, None, None),
    ((10, 4, 10, 20), "Ilse", "Brouwer", "i.brouwer@example.nl", "Den Haag", "Veiligheid",
     "Adviseur openbare orde", DEELNEMER, None, None, None),
    ((10, 4, 13, 31), "Ruben", "Koster", "r.koster@example.nl", "Rotterdam",
     "Armoede en schulden", "Beleidsadviseur", DEELNEMER, None, None, None),
    ((10, 5, 9, 3), "Noor", "Hendriks", "noor.hendriks@example.nl", "Eindhoven", "Veiligheid",
     "Beleidsadviseur veiligheid", DEELNEMER, None, None, None),
    ((10, 5, 14, 12), "Thijs", "Mulder", "t.mulder@example.nl", "Groningen", "Wonen",
     "Gebiedsmanager", DEELNEMER, None, None, None),
    ((10, 6, 10, 45), "Lotte", "Bosman", "lotte.bosman@example.nl", "Amsterdam", "Onderwijs",
     "Beleidsadviseur onderwijs", DEELNEMER, None,
     "Is Molen de Ster goed bereikbaar met het openbaar vervoer?", None),
    ((10, 6, 16, 20), "Daan", "Smit", "daan.smit@example.nl", "Zwolle", "Sociaal domein",
     "Wijkcoördinator", DEELNEMER, None, None, None),
    ((10, 7, 9, 30), "Eva", "Visser", "eva.visser@example.nl", "Eindhoven", "Veiligheid",
     "Coördinator wijkveiligheid", DEELNEMER, None, None,
     "Zelfde domein als Noor Hendriks; navragen of een ander domein mee kan."),
    ((10, 7, 11, 11), "Sanne", "Verhoeven", "S.Verhoeven@example.nl ", "Utrecht", "Veiligheid",
     "Beleidsadviseur veiligheid", DEELNEMER, None, None, "Tweede keer het formulier ingevuld."),
    ((10, 8, 8, 40), "Bram", "Jacobs", "b.jacobs@example.nl", "Tilburg", "Jeugd",
     "Beleidsmedewerker jeugd", DEELNEMER, None, None, None),
    ((10, 8, 13, 5), "Femke", "de Wit", "femke.dewit@example.nl", "Arnhem", "Gezondheid",
     "Adviseur publieke gezondheid", DEELNEMER, None, None, None),
    ((10, 11, 9, 50), "Wouter", "Peeters", "w.peeters@example.nl", "Nijmegen", "Wonen",
     "Projectleider wijkvernieuwing", DEELNEMER, None, None, None),
    ((10, 11, 10, 2), "Anouk", None, "anouk.w@example.nl", "Nijmegen", "Jeugd",
     "Jeugdconsulent", DEELNEMER, None, None, "Achternaam nog opvragen."),
    ((10, 11, 15, 15), "Jeroen", "Vos", "jeroen.vos@example.nl", "Breda", "Veiligheid",
     "Beleidsadviseur", DEELNEMER, None, None, None),
    ((10, 12, 9, 25), "Mirjam", "Postma", "m.postma@example.nl", "Leeuwarden", "Sociaal domein",
     "Teamleider wijkteams", DEELNEMER, None, None, None),
    ((10, 12, 11, 48), "Tom", "Kuipers", "tom.kuipers@example.nl", "Enschede",
     "Werk en inkomen", "Beleidsadviseur", DEELNEMER, None, None, None),
    ((10, 12, 14, 30), "Yara", "Bakker", "yara.bakker@example.nl", "Utrecht", "Onderwijs",
     "Beleidsadviseur onderwijs", DEELNEMER, None, None, None),
    ((10, 13, 10, 10), "Pieter", "Veenstra", "p.veenstra@example.nl", "Rotterdam",
     "Veiligheid", "Senior adviseur veiligheid", DEELNEMER, None, None, None),
    ((10, 13, 13, 40), "Hanneke", "Dijkstra", "h.dijkstra@example.nl", "Haarlem", "Wonen",
     "Gebiedsregisseur", DEELNEMER, None, None, None),
    ((10, 14, 9, 0), "Marloes", "Willems", "marloes.willems@example.nl", "Amersfort",
     "Sociaal domein", "Beleidsmedewerker", DEELNEMER, None, None, None),
    ((10, 14, 11, 30), "Stefan", "van Leeuwen", "s.vanleeuwen@example.nl", "Den Bosch",
     "Veiligheid", "Adviseur veiligheid en handhaving", DEELNEMER, None, None, None),
    ((10, 14, 16, 5), "Esther", "Meijer", "esther.meijer@example.nl", "Zaanstad",
     "Armoede en schulden", "Beleidsadviseur", DEELNEMER, None, None, None),
    ((10, 15, 9, 35), "Rik", "Janssen", "rik.janssen@example.nl", "Maastricht", "Gezondheid",
     "Programmaleider gezond leven", DEELNEMER, None, None, None),
    ((10, 15, 12, 20), "Lisa", "van den Berg", "l.vandenberg@example.nl", "Dordrecht", "Jeugd",
     "Beleidsadviseur jeugd", DEELNEMER, None, None, None),
    ((10, 18, 10, 0), "Gijs", "Hoekstra", "g.hoekstra@example.nl", "Deventer", "Wonen",
     "Wijkmanager", DEELNEMER, None, None, None),
    ((10, 18, 11, 15), "Amira", "Bouzid", "a.bouzid@example.nl", "Amsterdam", "Werk en inkomen",
     "Beleidsadviseur", DEELNEMER, "ja", "Helaas verhinderd; een collega meldt zich aan.",
     None),
    ((10, 18, 14, 50), "Tim", "de Boer", "tim.deboer@example.nl", "Groningen", "Onderwijs",
     "Beleidsmedewerker onderwijs", DEELNEMER, None, None, None),
    ((10, 19, 9, 20), "Wendy", "Prins", "w.prins@example.nl", "Zwolle", "Veiligheid",
     "Adviseur openbare orde en veiligheid", DEELNEMER, None, None, None),
    ((10, 19, 10, 40), "Jan-Willem", "Schouten", "jw.schouten@example.nl", "Zwolle",
     "Wonen en wijken", "Wethouder wonen en wijken", BESTUURDER, None,
     "Ik kom graag naar de bijeenkomst van 20 januari.", "Wethouder, alleen bijeenkomst 3."),
    ((10, 19, 13, 25), "Carlijn", "Evers", "c.evers@example.nl", "Tilburg", "Onderwijs",
     "Beleidsadviseur onderwijs", DEELNEMER, date(2021, 10, 28), None,
     "Afgemeld per mail op 28 oktober."),
    ((10, 20, 9, 10), "Niels", "Verbeek", "n.verbeek@example.nl", "Eindhoven", "Wonen",
     "Projectleider wonen", DEELNEMER, None, None, None),
    ((10, 20, 11, 55), "Roos", "van Vliet", "roos.vanvliet@example.nl", "Arnhem", "Jeugd",
     "Jeugdregisseur", DEELNEMER, None, None, None),
    ((10, 20, 15, 30), "Hugo", "de Jong", "hugo.dejong.example.nl", "Breda", "Wonen",
     "Beleidsadviseur wonen", DEELNEMER, None, None, None),
    ((10, 21, 9, 45), "Maaike", "Scholten", "m.scholten@example.nl", "Den Haag",
     "Sociaal domein", "Strategisch adviseur", DEELNEMER, None,
     "Kunnen we de presentaties na afloop ontvangen?", None),
    ((10, 21, 14, 0), "Bas", "van Rijn", "bas.vanrijn@example.nl", "Enschede", "Veiligheid",
     "Beleidsadviseur veiligheid", DEELNEMER, None, None, None),
    ((10, 22, 10, 30), "Joyce", "Kramer", "j.kramer@example.nl", "Haarlem", "Onderwijs",
     "Beleidsmedewerker", DEELNEMER, None,
     "Wordt de online bijeenkomst opgenomen, zodat ik die later kan terugkijken?", None),
    ((10, 22, 13, 10), "Lars", "Wouters", "lars.wouters@example.nl", "Zaanstad", "Wonen",
     "Gebiedsmanager", DEELNEMER, None, None, None),
    ((10, 25, 9, 5), "Ahmed", "Amrani", "a.amrani@example.nl", "Rotterdam", "Wonen",
     "Wijkmanager", DEELNEMER, None, None, "Vierde uit Rotterdam."),
    ((10, 25, 11, 40), "Sophie", "Lammers", "s.lammers@example.nl", "Dordrecht", "Veiligheid",
     "Adviseur veiligheid", DEELNEMER, None, None, None),
    ((10, 26, 10, 15), "Koen", "Vermeulen", "koen.vermeulen@example.nl", "Amsterdam",
     "Sociaal domein", "Beleidsadviseur", DEELNEMER, None, None, "Neemt de plek van Amira over."),
    ((10, 27, 16, 45), "Iris", "Timmermans", "iris.timmermans@example.nl", "Zwolle",
     "Onderwijs", "Beleidsmedewerker onderwijs", DEELNEMER, None, None, None),
    ((10, 28, 9, 30), "Merel", "Huisman", "m.huisman@example.nl", "Groningen", "Veiligheid",
     "Beleidsadviseur", DEELNEMER, None, None, None),
    ((10, 29, 14, 20), "Tessa", "van Dijk", "tessa.vandijk@example.nl", "Deventer", "Onderwijs",
     "Beleidsadviseur onderwijs", DEELNEMER, None, None, None),
    ((11, 2, 10, 5), "Laura", "Claassen", "l.claassen@example.nl", "Leiden", "Veiligheid",
     "Beleidsadviseur veiligheid", DEELNEMER, None,
     "Wij willen graag met drie collega's deelnemen.", None),
    ((11, 3, 9, 40), "Vincent", "Bos", "v.bos@example.nl", "Leiden", "Onderwijs",
     "Beleidsmedewerker onderwijs", DEELNEMER, None, None, None),
    ((11, 4, 13, 15), "Marieke", "Smits", "marieke.smits@example.nl", "Heerlen",
     "Sociaal domein", "Kwartiermaker wijkaanpak", DEELNEMER, None,
     "Is er nog plek als er iemand afvalt?", None),
    # Typed in later from a phone call, so out of order: allocation goes by Aangemeld op.
    ((10, 12, 16, 0), "Ellen", "Gerritsen", "e.gerritsen@example.nl", "Leeuwarden", "Wonen",
     "Beleidsadviseur wonen", DEELNEMER, None, None, "Telefonisch aangemeld, later ingevoerd."),
]

DEELNEMERS_COLUMNS = (*schema.ORGANISER_COLUMNS, NOTE_COLUMN, *schema.TOOL_COLUMNS)


class Styles:
    """The workbook's cell formats, made once."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
        self.tool_header = book.add_format({"bold": True, "bg_color": "#E7E6E6", "bottom": 1})
        self.by_format = {fmt: book.add_format({"num_format": fmt})
                          for fmt in sorted({DATE_FORMAT, *NUMBER_FORMATS.values()})}

    def column(self, name: str) -> Format | None:
        fmt = NUMBER_FORMATS.get(name)
        return self.by_format[fmt] if fmt else None

    def date_in(self, name: str) -> Format:
        """A date's format in this column: the column's own, else dd-mm-jjjj (`Afgemeld`)."""
        return self.column(name) or self.by_format[DATE_FORMAT]


def write_header(sheet: Worksheet, columns: tuple[str, ...], styles: Styles) -> None:
    """Bold header row, frozen; widths and number formats per column."""
    for position, name in enumerate(columns):
        tool = name in schema.TOOL_COLUMNS
        sheet.write_string(0, position, name, styles.tool_header if tool else styles.header)
        if tool:
            sheet.write_comment(0, position, TOOL_COLUMN_NOTE, {"author": "leergang-ops"})
        sheet.set_column(position, position, COLUMN_WIDTHS.get(name, 30), styles.column(name))
    sheet.freeze_panes(1, 0)


def write_row(sheet: Worksheet, row: int, columns: tuple[str, ...], values: tuple[Any, ...],
              styles: Styles) -> None:
    """One row; dates and times as real Excel dates with the column's format."""
    for position, (name, value) in enumerate(zip(columns, values, strict=True)):
        if value is None:
            continue
        if isinstance(value, (date, time)):
            sheet.write_datetime(row, position, value, styles.date_in(name))
        else:
            sheet.write(row, position, value)


def add_dropdowns(sheet: Worksheet, columns: tuple[str, ...]) -> None:
    for position, name in enumerate(columns):
        if name in DROPDOWNS:
            sheet.data_validation(1, position, LAST_ROW - 1, position, dropdown(name))


def dropdown(name: str) -> dict[str, Any]:
    """The same dropdowns as `init` makes; `Afgemeld` only suggests, since a date is fine too."""
    choices = list(DROPDOWNS.get(name) or SETTING_DROPDOWNS[name])
    if name == "Afgemeld":
        return {"validate": "list", "source": choices, "show_error": False,
                "input_title": "Afgemeld", "input_message": AFGEMELD_PROMPT}
    return {"validate": "list", "source": choices, "error_title": name,
            "error_message": "Kies een waarde uit de lijst: " + ", ".join(choices) + "."}


def settings_sheet(book: xlsxwriter.Workbook, styles: Styles) -> None:
    sheet = book.add_worksheet(schema.SHEET_SETTINGS)
    write_header(sheet, (*schema.SETTINGS_COLUMNS, HINT_COLUMN), styles)
    for row, (key, value) in enumerate(SETTINGS.items(), start=1):
        sheet.write_row(row, 0, [key, value, SETTING_HINTS[key]])
        if key in SETTING_DROPDOWNS:
            sheet.data_validation(row, 1, row, 1, dropdown(key))


def meetings_sheet(book: xlsxwriter.Workbook, styles: Styles) -> None:
    sheet = book.add_worksheet(schema.SHEET_MEETINGS)
    write_header(sheet, schema.MEETING_COLUMNS, styles)
    for row, meeting in enumerate(MEETINGS, start=1):
        write_row(sheet, row, schema.MEETING_COLUMNS, meeting, styles)
    add_dropdowns(sheet, schema.MEETING_COLUMNS)


def registrations_sheet(book: xlsxwriter.Workbook, styles: Styles) -> None:
    sheet = book.add_worksheet(schema.SHEET_REGISTRATIONS)
    write_header(sheet, DEELNEMERS_COLUMNS, styles)
    for row, (moment, *rest) in enumerate(REGISTRATIONS, start=1):
        month, day, hour, minute = moment
        values = (datetime(2021, month, day, hour, minute), *rest, None, None, None)
        write_row(sheet, row, DEELNEMERS_COLUMNS, values, styles)
    add_dropdowns(sheet, DEELNEMERS_COLUMNS)


def build(path: Path) -> None:
    """Write the example workbook to `path` (overwriting it)."""
    book = xlsxwriter.Workbook(str(path))
    book.set_properties({"title": SETTINGS["Leergang"], "author": "leergang-ops",
                         "created": CREATED})
    styles = Styles(book)
    settings_sheet(book, styles)
    meetings_sheet(book, styles)
    registrations_sheet(book, styles)
    book.worksheets()[2].activate()  # open on Deelnemers, where the organisers work
    book.close()


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    build(out)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
