"""Names of sheets, columns and settings, with the variants organisers actually type."""

from __future__ import annotations

import functools

# The sheet names are the core's (its findings name them); REQUIRED_REGISTRATION_FIELDS too.
from leergang_ops.model import SHEET_MEETINGS, SHEET_REGISTRATIONS, SHEET_SETTINGS
from leergang_ops.xlsx.names import loose_key as header_key  # headers and sheet names alike

SHEETS = (SHEET_SETTINGS, SHEET_MEETINGS, SHEET_REGISTRATIONS)

# Canonical column names, in the order `init` writes them.
SETTINGS_COLUMNS = ("Instelling", "Waarde")
MEETING_COLUMNS = (
    "Nr", "Titel", "Datum", "Begintijd", "Eindtijd", "Locatie", "Adres", "Online link", "Voor",
)
ORGANISER_COLUMNS = (
    "Aangemeld op", "Voornaam", "Achternaam", "E-mail", "Gemeente", "Beleidsdomein", "Functie",
    "Rol", "Afgemeld", "Opmerking",
)
TOOL_COLUMNS = ("Status", "Melding", "Bevestiging verstuurd")
REGISTRATION_COLUMNS = ORGANISER_COLUMNS + TOOL_COLUMNS
REQUIRED_MEETING_COLUMNS = ("Nr", "Titel", "Datum")
REQUIRED_REGISTRATION_COLUMNS = ("Voornaam", "Achternaam", "E-mail", "Gemeente")

# Variants that mean the same column (compared after `header_key`).
ALIASES: dict[str, tuple[str, ...]] = {
    "Instelling": ("Setting", "Naam", "Sleutel"),
    "Waarde": ("Value",),
    "Nr": ("Nummer", "No", "Nr.", "#", "Bijeenkomst"),
    "Titel": ("Title", "Onderwerp", "Thema"),
    "Datum": ("Date", "Dag"),
    "Begintijd": ("Begin", "Start", "Starttijd", "Aanvang", "Van"),
    "Eindtijd": ("Eind", "Einde", "Tot", "End"),
    "Locatie": ("Plaats", "Location", "Waar"),
    "Adres": ("Address", "Bezoekadres"),
    "Online link": ("Link", "Onlinelink", "Online-link", "Teams link", "Zoom link", "Url"),
    "Voor": ("Doelgroep", "Voor wie"),
    "Aangemeld op": ("Aangemeld", "Aanmelddatum", "Datum aanmelding", "Tijdstempel",
                     "Timestamp", "Registered", "Datum aangemeld"),
    "Voornaam": ("First name", "Roepnaam"),
    "Achternaam": ("Last name", "Surname", "Familienaam", "Tussenvoegsel en achternaam"),
    "E-mail": ("Email", "E-mailadres", "Emailadres", "E-mail adres", "Mail", "Mailadres",
               "Email address", "E mail"),
    "Gemeente": ("Municipality", "Organisatie gemeente"),
    "Beleidsdomein": ("Domein", "Beleidsterrein", "Beleidsveld", "Policy domain"),
    "Functie": ("Function", "Job title", "Rol binnen gemeente"),
    "Rol": ("Role", "Deelnemer/bestuurder", "Type"),
    "Afgemeld": ("Afmelding", "Geannuleerd", "Cancelled"),
    "Opmerking": ("Opmerkingen", "Vraag", "Vragen", "Toelichting", "Remarks", "Comment"),
    "Status": (),
    "Melding": ("Meldingen", "Toelichting status"),
    "Bevestiging verstuurd": ("Bevestigd op", "Bevestiging gestuurd"),
}

# Settings keys (sheet Instellingen, column Instelling) → attribute of model.Settings.
SETTING_KEYS: dict[str, str] = {
    "Leergang": "leergang",
    "Organisatie": "organisatie",
    "Max deelnemers per gemeente": "max_deelnemers_per_gemeente",
    "Max gemeenten": "max_gemeenten",
    "Contactpersoon": "contactpersoon",
    "Contactpersoon e-mail": "contactpersoon_email",
    "Afzender naam": "afzender_naam",
    "Afzender e-mail": "afzender_email",
    "Herinneringen (dagen vooraf)": "herinneringen",
    "Wekelijks overzicht op": "overzicht_weekdag",
    "Bestuurders tellen mee": "bestuurders_tellen_mee",
    "Wachtlijstbericht": "wachtlijstbericht",
}
REQUIRED_SETTINGS = (
    "Leergang", "Contactpersoon", "Contactpersoon e-mail", "Afzender naam", "Afzender e-mail",
)
SETTING_ALIASES: dict[str, tuple[str, ...]] = {
    "Max deelnemers per gemeente": ("Max deelnemers", "Maximum deelnemers per gemeente"),
    "Max gemeenten": ("Maximum gemeenten", "Max aantal gemeenten"),
    "Contactpersoon e-mail": ("E-mail contactpersoon", "Contactpersoon email"),
    "Afzender e-mail": ("Afzender email", "E-mail afzender"),
    "Herinneringen (dagen vooraf)": ("Herinneringen", "Herinnering (dagen vooraf)"),
    "Wekelijks overzicht op": ("Wekelijks overzicht", "Overzicht op"),
}
# Defaults as the organisers see them in `Instellingen` (text, as `init` writes them).
SETTING_DEFAULTS: dict[str, str] = {
    "Leergang": "",
    "Organisatie": "",
    "Max deelnemers per gemeente": "3",
    "Max gemeenten": "20",
    "Contactpersoon": "",
    "Contactpersoon e-mail": "",
    "Afzender naam": "",
    "Afzender e-mail": "",
    "Herinneringen (dagen vooraf)": "7, 1",
    "Wekelijks overzicht op": "maandag",
    "Bestuurders tellen mee": "nee",
    "Wachtlijstbericht": "ja",
}

WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
YES, NO = "ja", "nee"
VOOR_PARTICIPANTS = "deelnemers"
VOOR_WITH_ADMINISTRATORS = "deelnemers en bestuurders"
ROLES = ("deelnemer", "bestuurder")

def _index(aliases: dict[str, tuple[str, ...]], names: tuple[str, ...]) -> dict[str, str]:
    index = {header_key(name): name for name in names}
    for name in names:
        for alias in aliases.get(name, ()):
            index.setdefault(header_key(alias), name)
    return index


_SETTING_INDEX = _index(SETTING_ALIASES, tuple(SETTING_KEYS))


@functools.cache
def _column_index(allowed: tuple[str, ...]) -> dict[str, str]:
    return _index(ALIASES, allowed)


def canonical_column(header: object, allowed: tuple[str, ...]) -> str | None:
    """The canonical column a header means, if it is one of `allowed`."""
    return _column_index(allowed).get(header_key(header))


def canonical_setting(key: object) -> str | None:
    """The canonical settings key a cell in column `Instelling` means."""
    return _SETTING_INDEX.get(header_key(key))


def canonical_sheet(name: str) -> str | None:
    key = header_key(name)
    return next((s for s in SHEETS if header_key(s) == key), None)
