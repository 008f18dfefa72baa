"""Generate organiser workbooks with many registrations, as a whole learning network would."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from pathlib import Path

import xlsxwriter

from leergang_ops import municipalities

DOMAINS = ("onderwijs", "veiligheid", "zorg", "wonen", "werk en inkomen", "jeugd", "armoede")
FIRST = ("Anna", "Bram", "Chantal", "Daan", "Eva", "Fatima", "Gijs", "Hanna", "Ilse", "Joost")
LAST = ("de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit", "Meijer", "de Boer")


def make_workbook(path: Path, registrations: int, *, seed: int = 31,
                  max_per_municipality: int = 3, max_municipalities: int = 20,
                  cancel_every: int = 25, summary_day: str = "maandag",
                  table: bool = False) -> Path:
    """Write a workbook with `registrations` invented rows spread over real municipalities.

    `table`: the shape a workbook saved by Excel or XlsxWriter's default mode has — texts in
    sharedStrings.xml and `Deelnemers` as an Excel table (the default writes inline strings
    in constant-memory mode, and no table).
    """
    rng = random.Random(seed)
    names = [m.name for m in municipalities.official()]
    book = xlsxwriter.Workbook(str(path), {} if table else {"constant_memory": True})
    _settings(book, max_per_municipality, max_municipalities, summary_day)
    _meetings(book)
    sheet = book.add_worksheet("Deelnemers")
    stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
    header = ("Aangemeld op", "Voornaam", "Achternaam", "E-mail", "Gemeente", "Beleidsdomein",
              "Functie", "Rol", "Afgemeld", "Opmerking")
    sheet.write_row(0, 0, header)
    if table:
        sheet.add_table(0, 0, registrations, len(header) - 1, {
            "name": "Aanmeldingen", "style": "Table Style Light 9",
            "columns": [{"header": name} for name in header]})
    start = datetime(2021, 9, 1, 8)
    for n in range(1, registrations + 1):
        sheet.write_datetime(n, 0, start + timedelta(minutes=7 * n), stamp)
        sheet.write_row(n, 1, (
            rng.choice(FIRST), f"{rng.choice(LAST)} {n}", f"deelnemer{n}@example.nl",
            rng.choice(names), rng.choice(DOMAINS), "beleidsadviseur",
            "bestuurder" if n % 40 == 0 else "deelnemer",
            "ja" if cancel_every and n % cancel_every == 0 else "",
            "Hoe betrekken we bewoners?" if n % 10 == 0 else "",
        ))
    book.close()
    return path


def _settings(book: xlsxwriter.Workbook, per_municipality: int, municipalities_max: int,
              summary_day: str) -> None:
    sheet = book.add_worksheet("Instellingen")
    rows = (
        ("Instelling", "Waarde"), ("Leergang", "Leernetwerk wijkaanpak (benchmark)"),
        ("Organisatie", "Platform31"), ("Max deelnemers per gemeente", per_municipality),
        ("Max gemeenten", municipalities_max), ("Contactpersoon", "Annemiek van Tol"),
        ("Contactpersoon e-mail", "contact@example.org"), ("Afzender naam", "Leernetwerk"),
        ("Afzender e-mail", "leergang@example.org"), ("Herinneringen (dagen vooraf)", "7, 1"),
        ("Wekelijks overzicht op", summary_day), ("Bestuurders tellen mee", "nee"),
        ("Wachtlijstbericht", "ja"),
    )
    for r, row in enumerate(rows):
        sheet.write_row(r, 0, row)


def _meetings(book: xlsxwriter.Workbook) -> None:
    sheet = book.add_worksheet("Bijeenkomsten")
    date_format = book.add_format({"num_format": "dd-mm-yyyy"})
    time_format = book.add_format({"num_format": "hh:mm"})
    sheet.write_row(0, 0, ("Nr", "Titel", "Datum", "Begintijd", "Eindtijd", "Locatie", "Adres",
                           "Online link", "Voor"))
    meetings = (
        (1, "Waarom een wijkaanpak?", datetime(2021, 11, 11), "Molen de Ster",
         "Molenpark 2-1, Utrecht", "", "deelnemers"),
        (2, "Wat is een wijkaanpak?", datetime(2021, 12, 2), "online", "",
         "https://meet.example.org/wijkaanpak", "deelnemers"),
        (3, "Hoe ga je aan de slag?", datetime(2022, 1, 20), "Molen de Ster",
         "Molenpark 2-1, Utrecht", "", "deelnemers en bestuurders"),
    )
    for r, (nr, title, day, place, address, link, voor) in enumerate(meetings, start=1):
        sheet.write_number(r, 0, nr)
        sheet.write_string(r, 1, title)
        sheet.write_datetime(r, 2, day, date_format)
        sheet.write_datetime(r, 3, time(14), time_format)
        sheet.write_datetime(r, 4, time(17), time_format)
        sheet.write_row(r, 5, (place, address, link, voor))
