"""The example workbook in workbooks/: it loads, shows the course, and is reproducible."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from leergang_ops.model import Course
from leergang_ops.workbook.read import load_course

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "workbooks" / "leergang-wijkaanpak.xlsx"
SCRIPT = ROOT / "scripts" / "make_example_workbook.py"
INVENTED_DOMAINS = ("example.nl", "example.org")


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(EXAMPLE)


def cell_values(path: Path) -> dict[str, list[tuple[object, ...]]]:
    book = openpyxl.load_workbook(path)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def test_example_is_the_announced_course(course: Course) -> None:
    settings = course.settings
    assert settings.leergang == "Leergang slagvaardige wijkaanpak"
    assert "Platform31" in settings.organisatie and "Verwey-Jonker" in settings.organisatie
    assert settings.contactpersoon == "Annemiek van Tol"
    assert (settings.max_deelnemers_per_gemeente, settings.max_gemeenten) == (3, 20)


def test_example_has_four_meetings_one_undated_one_online_one_for_bestuurders(
        course: Course) -> None:
    meetings = course.meetings
    assert [m.nr for m in meetings] == [1, 2, 3, 4]
    assert [m.datum is None for m in meetings] == [False, False, False, True]
    assert [m.online for m in meetings] == [False, True, False, False]
    assert [m.voor_bestuurders for m in meetings] == [False, False, True, False]
    assert meetings[1].online_link.startswith("https://meet.example.org/")
    assert meetings[0].adres == "Molenpark 2-1, Utrecht"
    assert [f.code for f in course.findings] == ["meeting-no-date"]


def test_example_has_about_fifty_registrations_from_over_twenty_municipalities(
        course: Course) -> None:
    assert 45 <= len(course.registrations) <= 60
    assert len({r.gemeente for r in course.registrations if r.gemeente}) >= 21
    assert any(r.is_bestuurder for r in course.registrations)
    assert sum(r.afgemeld for r in course.registrations) >= 2
    assert all(r.aangemeld_op is not None for r in course.registrations)


def test_example_uses_only_invented_addresses(course: Course) -> None:
    addresses = [course.settings.contactpersoon_email, course.settings.afzender_email,
                 *(r.email for r in course.registrations if r.email)]
    assert all(a.strip().casefold().endswith(INVENTED_DOMAINS) for a in addresses)


def test_example_tool_columns_are_present_but_empty(course: Course) -> None:
    assert {"Status", "Melding", "Bevestiging verstuurd"} <= set(course.layout.columns)
    assert not any(r.status or r.melding or r.bevestiging_verstuurd
                   for r in course.registrations)


def test_regenerating_the_example_gives_the_same_content(tmp_path: Path) -> None:
    fresh = tmp_path / "opnieuw.xlsx"
    subprocess.run([sys.executable, str(SCRIPT), str(fresh)], check=True, capture_output=True)
    assert cell_values(fresh) == cell_values(EXAMPLE)


def test_example_shows_every_status_and_warning_of_the_allocation(course: Course) -> None:
    from leergang_ops.allocation import allocate

    decisions = allocate(course).by_row()
    names = {r.row: f"{r.voornaam} {r.gemeente}" for r in course.registrations}
    not_confirmed = {names[row]: str(d.status) for row, d in decisions.items()
                     if str(d.status) != "bevestigd"}
    assert not_confirmed == {
        "Sanne Utrecht": "ongeldig",  # the same address again
        "Anouk Nijmegen": "ongeldig",  # no Achternaam
        "Hugo Breda": "ongeldig",  # an address without @
        "Amira Amsterdam": "afgemeld", "Carlijn Tilburg": "afgemeld",
        "Ahmed Rotterdam": "overboekt",  # the fourth from Rotterdam
        "Laura Leiden": "wachtlijst", "Vincent Leiden": "wachtlijst",  # municipality 21
        "Marieke Heerlen": "wachtlijst",  # municipality 22
    }
    warned = {names[row] for row, d in decisions.items()
              if str(d.status) == "bevestigd" and d.melding}
    assert {"Eva Eindhoven", "Marloes Amersfort"} <= warned  # same domain; misspelled
