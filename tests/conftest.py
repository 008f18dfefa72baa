"""Shared fixtures: real .xlsx organiser workbooks written into tmp_path from inline rows."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl
import pytest

pytest_plugins = ["tests.smtp_server", "tests.imap_server"]

# A fresh temp folder for the session, before any test module builds its Templates: Jinja's
# compiled-template cache lives there, and one left by an earlier run (of other code) must not
# stand in for what this code compiles.
tempfile.tempdir = tempfile.mkdtemp(prefix="leergang-tests-")
# Others may pass through (not list): the IMAP fixture's mail processes run as `nobody`.
os.chmod(tempfile.tempdir, 0o711)
atexit.register(shutil.rmtree, tempfile.tempdir, ignore_errors=True)

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus" / "xlsx"

DEFAULT_SETTINGS: dict[str, Any] = {
    "Leergang": "Leergang slagvaardige wijkaanpak",
    "Organisatie": "Platform31 en Verwey-Jonker Instituut",
    "Max deelnemers per gemeente": 3,
    "Max gemeenten": 20,
    "Contactpersoon": "Annemiek van Tol",
    "Contactpersoon e-mail": "contact@example.org",
    "Afzender naam": "Leergang wijkaanpak",
    "Afzender e-mail": "leergang@example.org",
    "Herinneringen (dagen vooraf)": "7, 1",
    "Wekelijks overzicht op": "maandag",
    "Bestuurders tellen mee": "nee",
    "Wachtlijstbericht": "ja",
}

MEETING_HEADER = ["Nr", "Titel", "Datum", "Begintijd", "Eindtijd", "Locatie", "Adres",
                  "Online link", "Voor"]
DEFAULT_MEETINGS: list[list[Any]] = [
    [1, "Waarom een wijkaanpak?", date(2021, 11, 11), time(14), time(17), "Molen de Ster",
     "Molenpark 2-1, Utrecht", None, "deelnemers"],
    [2, "Wat is een wijkaanpak en wat is er nodig?", date(2021, 12, 2), time(14), time(17),
     "online", None, "https://meet.example.org/wijkaanpak-2", "deelnemers"],
    [3, "Hoe ga je aan de slag met een wijkaanpak?", date(2022, 1, 20), time(14), time(17),
     "Molen de Ster", "Molenpark 2-1, Utrecht", None, "deelnemers en bestuurders"],
]

REGISTRATION_HEADER = ["Aangemeld op", "Voornaam", "Achternaam", "E-mail", "Gemeente",
                       "Beleidsdomein", "Functie", "Rol", "Afgemeld", "Opmerking"]


def person(n: int, gemeente: str = "Utrecht", *, day: int = 1, domein: str | None = None,
           **extra: Any) -> dict[str, Any]:
    """An invented registration; `n` makes name and address unique."""
    row: dict[str, Any] = {
        "Aangemeld op": datetime(2021, 10, day, 9, 0) if day else None,
        "Voornaam": f"Deelnemer{n}",
        "Achternaam": f"Test{n}",
        "E-mail": f"deelnemer{n}@example.nl",
        "Gemeente": gemeente,
        "Beleidsdomein": domein if domein is not None else f"domein {n}",
        "Functie": "beleidsadviseur",
        "Rol": "deelnemer",
    }
    row.update(extra)
    return row


def write_workbook(path: Path, *, settings: dict[str, Any] | None = None,
                   meetings: Sequence[Sequence[Any]] | None = None,
                   registrations: Sequence[dict[str, Any]] = (),
                   registration_header: Sequence[str] = REGISTRATION_HEADER) -> Path:
    """Write a real organiser workbook with openpyxl and return its path."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Instellingen"
    ws.append(["Instelling", "Waarde"])
    for key, value in {**DEFAULT_SETTINGS, **(settings or {})}.items():
        if value is not None:
            ws.append([key, value])
    mt = wb.create_sheet("Bijeenkomsten")
    mt.append(MEETING_HEADER)
    for meeting in DEFAULT_MEETINGS if meetings is None else meetings:
        mt.append(list(meeting))
    rt = wb.create_sheet("Deelnemers")
    rt.append(list(registration_header))
    for reg in registrations:
        rt.append([reg.get(col) for col in registration_header])
    wb.save(path)
    return path


@pytest.fixture(autouse=True)
def _no_leergang_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without LEERGANG_* settings: none may reach a real mail server
    or ledger configured on the machine; a test sets what it needs itself."""
    for name in list(os.environ):
        if name.startswith("LEERGANG_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_workbook(tmp_path: Path) -> Callable[..., Path]:
    """Build a workbook in tmp_path: `make_workbook(registrations=[person(1), ...])`."""
    counter = iter(range(1, 10_000))

    def build(name: str | None = None, **kwargs: Any) -> Path:
        target = tmp_path / (name or f"leergang{next(counter)}.xlsx")
        return write_workbook(target, **kwargs)

    return build


def outbox_mails(folder: Path) -> Counter[tuple[str, str]]:
    """(recipient, subject) of every mail written to an outbox folder, with how often."""
    from email import message_from_bytes, policy

    found: Counter[tuple[str, str]] = Counter()
    for path in folder.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[(str(message["To"]), str(message["Subject"]))] += 1
    return found
