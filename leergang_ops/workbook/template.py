"""`init`: a new, empty organisers' workbook that explains itself.

The layout constants here (widths, number formats, dropdowns, the settings' explanations) are
shared with `scripts/make_example_workbook.py`, so the example looks like what `init` makes.
"""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from leergang_ops.errors import InputError
from leergang_ops.model import Finding, Level
from leergang_ops.workbook import schema

HINT_COLUMN = "Toelichting"  # the settings sheet's third column; the reader ignores it
LAST_ROW = 5000  # number formats and dropdowns reach this far down

SETTING_HINTS: dict[str, str] = {
    "Leergang": "Naam van de leergang, zoals die in de mails staat (verplicht).",
    "Organisatie": "Wie de leergang organiseert; staat onder de mails.",
    "Max deelnemers per gemeente": "Hoeveel deelnemers één gemeente mag sturen (heel getal, 1 "
                                   "of meer); wie daarna komt, is overboekt.",
    "Max gemeenten": "Hoeveel gemeenten mee kunnen doen; latere gemeenten komen op de "
                     "wachtlijst.",
    "Contactpersoon": "Wie vragen van deelnemers beantwoordt (verplicht).",
    "Contactpersoon e-mail": "Ontvangt het wekelijks overzicht; antwoorden op de mails komen "
                             "hier binnen (verplicht).",
    "Afzender naam": "Naam waaronder de mails verstuurd worden (verplicht).",
    "Afzender e-mail": "Adres waarvandaan de mails verstuurd worden (verplicht).",
    "Herinneringen (dagen vooraf)": "Hoeveel dagen vóór elke bijeenkomst een herinnering "
                                    "uitgaat, bijvoorbeeld 7, 1 — of 'geen'.",
    "Wekelijks overzicht op": "Dag waarop de contactpersoon het overzicht krijgt "
                              "(maandag … zondag).",
    "Bestuurders tellen mee": "ja: bestuurders tellen mee voor het maximum per gemeente; "
                              "nee: ze komen erbij.",
    "Wachtlijstbericht": "ja: wie op de wachtlijst komt of overboekt is, krijgt daarvan "
                         "bericht; nee: geen bericht.",
}

DATE_FORMAT = "dd-mm-yyyy"  # Dutch Excel shows it as dd-mm-jjjj
TIME_FORMAT = "hh:mm"
DATETIME_FORMAT = "dd-mm-yyyy hh:mm"
NUMBER_FORMATS: dict[str, str] = {
    "Datum": DATE_FORMAT,
    "Begintijd": TIME_FORMAT,
    "Eindtijd": TIME_FORMAT,
    "Aangemeld op": DATETIME_FORMAT,
    "Bevestiging verstuurd": DATETIME_FORMAT,
}
COLUMN_WIDTHS: dict[str, float] = {
    "Instelling": 32, "Waarde": 40, HINT_COLUMN: 90,
    "Nr": 6, "Titel": 44, "Datum": 12, "Begintijd": 10, "Eindtijd": 10, "Locatie": 18,
    "Adres": 28, "Online link": 40, "Voor": 26,
    "Aangemeld op": 17, "Voornaam": 14, "Achternaam": 18, "E-mail": 32, "Gemeente": 20,
    "Beleidsdomein": 20, "Functie": 24, "Rol": 12, "Afgemeld": 11, "Opmerking": 40,
    "Status": 12, "Melding": 50, "Bevestiging verstuurd": 20,
}
# Dropdown lists per column (`Afgemeld` also takes a date, so it never refuses input).
DROPDOWNS: dict[str, tuple[str, ...]] = {
    "Rol": schema.ROLES,
    "Voor": (schema.VOOR_PARTICIPANTS, schema.VOOR_WITH_ADMINISTRATORS),
    "Afgemeld": (schema.YES,),
}
SETTING_DROPDOWNS: dict[str, tuple[str, ...]] = {
    "Wekelijks overzicht op": schema.WEEKDAYS,
    "Bestuurders tellen mee": (schema.YES, schema.NO),
    "Wachtlijstbericht": (schema.YES, schema.NO),
}
WHOLE_NUMBER_SETTINGS = ("Max deelnemers per gemeente", "Max gemeenten")
TOOL_COLUMN_NOTE = "leergang-ops vult deze kolom in; wijzigingen worden bij de volgende run " \
                   "overschreven."
AFGEMELD_PROMPT = "Vul 'ja' in of de datum van afmelding."

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TOOL_HEADER_FILL = PatternFill("solid", fgColor="E7E6E6")


def write_template(path: Path) -> None:
    """Write a new organisers' workbook; refuse to overwrite an existing file."""
    path = Path(path)
    _check_target(path)
    workbook = Workbook()
    first = workbook.active
    if first is not None:
        workbook.remove(first)
    _settings_sheet(workbook.create_sheet(schema.SHEET_SETTINGS))
    _table_sheet(workbook.create_sheet(schema.SHEET_MEETINGS), schema.MEETING_COLUMNS)
    _table_sheet(workbook.create_sheet(schema.SHEET_REGISTRATIONS), schema.REGISTRATION_COLUMNS)
    _save_new(workbook, path)


def _init_error(message: str) -> InputError:
    return InputError(message, [Finding(Level.ERROR, "init-refused", None, None, None, message)])


def _check_target(path: Path) -> None:
    if path.suffix.casefold() != ".xlsx":
        raise _init_error(f"{path}: een nieuwe werkmap moet eindigen op .xlsx.")
    if path.exists():
        raise _init_error(f"{path} bestaat al; kies een andere naam (er wordt niets "
                          "overschreven).")
    if not path.parent.is_dir():
        raise _init_error(f"De map {path.parent} bestaat niet.")


def _save_new(workbook: Workbook, path: Path) -> None:
    """Create the file exclusively, so a file that appeared meanwhile is not overwritten."""
    try:
        with path.open("xb") as fh:
            workbook.save(fh)
    except FileExistsError as err:
        raise _init_error(f"{path} bestaat al; er wordt niets overschreven.") from err
    except OSError as err:
        path.unlink(missing_ok=True)
        raise _init_error(f"{path} kan niet geschreven worden: {err.strerror or err}.") from err


def _header(sheet: Worksheet, columns: tuple[str, ...]) -> None:
    """Bold header in row 1, frozen, with widths; tool columns grey with a note."""
    sheet.append(list(columns))
    for position, name in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=position)
        cell.font = HEADER_FONT
        cell.fill = TOOL_HEADER_FILL if name in schema.TOOL_COLUMNS else HEADER_FILL
        if name in schema.TOOL_COLUMNS:
            cell.comment = Comment(TOOL_COLUMN_NOTE, "leergang-ops")
        letter = get_column_letter(position)
        sheet.column_dimensions[letter].width = COLUMN_WIDTHS.get(name, 16)
    sheet.freeze_panes = "A2"


def _table_sheet(sheet: Worksheet, columns: tuple[str, ...]) -> None:
    """A sheet with a header, number formats and dropdowns on its columns."""
    _header(sheet, columns)
    for position, name in enumerate(columns, start=1):
        letter = get_column_letter(position)
        if name in NUMBER_FORMATS:
            # A column style: Excel applies it to whatever is typed into the column later.
            sheet.column_dimensions[letter].number_format = NUMBER_FORMATS[name]
        if name in DROPDOWNS:
            sheet.add_data_validation(_dropdown(name, f"{letter}2:{letter}{LAST_ROW}"))


def _dropdown(name: str, ref: str) -> DataValidation:
    """A list dropdown; for `Afgemeld` only a suggestion, since a date is fine too."""
    choices = DROPDOWNS.get(name) or SETTING_DROPDOWNS[name]
    validation = DataValidation(type="list", formula1=f'"{",".join(choices)}"',
                                allow_blank=True)
    if name == "Afgemeld":
        validation.showErrorMessage = False
        validation.promptTitle, validation.prompt = "Afgemeld", AFGEMELD_PROMPT
        validation.showInputMessage = True
    else:
        validation.showErrorMessage = True
        validation.errorTitle = name
        validation.error = "Kies een waarde uit de lijst: " + ", ".join(choices) + "."
    validation.add(ref)
    return validation


def _settings_sheet(sheet: Worksheet) -> None:
    """Every setting with its default and an explanation; required ones left empty."""
    _header(sheet, (*schema.SETTINGS_COLUMNS, HINT_COLUMN))
    for key, default in schema.SETTING_DEFAULTS.items():
        # Numbers as numbers (no "stored as text" triangles); no cell at all for an empty value.
        value: str | int | None = int(default) if default.isdigit() else default or None
        sheet.append([key, value, SETTING_HINTS.get(key, "")])
        row = sheet.max_row
        if key in SETTING_DROPDOWNS:
            sheet.add_data_validation(_dropdown(key, f"B{row}"))
        if key in WHOLE_NUMBER_SETTINGS:
            sheet.add_data_validation(_whole_number(key, f"B{row}"))


def _whole_number(name: str, ref: str) -> DataValidation:
    validation = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="1",
                                showErrorMessage=True, errorTitle=name,
                                error="Vul een heel getal van 1 of meer in.")
    validation.add(ref)
    return validation
