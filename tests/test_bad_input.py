"""Bad input (contract §4, exit 2): one clear message naming where, no traceback, and nothing
written — not the workbook, not a backup, not a ledger, not an outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path

import openpyxl
import pytest

from leergang_ops.cli import main
from tests.conftest import DEFAULT_MEETINGS, person, write_workbook


def not_a_workbook(path: Path) -> None:
    path.write_text("Voornaam;Achternaam;E-mail\nAnna;Jansen;anna@example.nl\n", "utf-8")


def truncated(path: Path) -> None:
    write_workbook(path, registrations=[person(1)])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def missing_sheet(path: Path) -> None:
    write_workbook(path, registrations=[person(1)])
    book = openpyxl.load_workbook(path)
    del book["Bijeenkomsten"]
    book.save(path)


def missing_column(path: Path) -> None:
    header = ["Aangemeld op", "Voornaam", "Achternaam", "Gemeente"]
    write_workbook(path, registrations=[person(1)], registration_header=header)


def setting_not_a_number(path: Path) -> None:
    write_workbook(path, settings={"Max gemeenten": "twintig"}, registrations=[person(1)])


def meeting_ends_before_it_starts(path: Path) -> None:
    meetings = [list(m) for m in DEFAULT_MEETINGS]
    meetings[0][4] = time(13, 0)
    write_workbook(path, meetings=meetings, registrations=[person(1)])


def empty_workbook(path: Path) -> None:
    openpyxl.Workbook().save(path)


CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "not an xlsx": (not_a_workbook, ("leergang.xlsx",)),
    "truncated": (truncated, ("leergang.xlsx",)),
    "missing sheet": (missing_sheet, ("Bijeenkomsten",)),
    "missing column": (missing_column, ("Deelnemers", "E-mail")),
    "setting not a number": (setting_not_a_number, ("Instellingen", "Waarde", "twintig")),
    "meeting ends before it starts": (meeting_ends_before_it_starts,
                                      ("Bijeenkomsten", "rij 2", "Eindtijd")),
    "empty workbook": (empty_workbook, ("leergang.xlsx",)),
}


@pytest.mark.parametrize("command", ["validate", "flag", "run", "summary", "summary --send"])
@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_names_the_place_and_writes_nothing(
        case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build, expected = CASES[case]
    path = tmp_path / "leergang.xlsx"
    build(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    mtime = path.stat().st_mtime_ns
    assert main([*command.split(), str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err
    message = err.splitlines()[0].removeprefix("leergang-ops: ")
    assert err.count(message) == 1, f"the message is printed twice:\n{err}"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert path.stat().st_mtime_ns == mtime
