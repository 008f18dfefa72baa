"""What the tool writes in its own columns (contract §1): the mirror of the ledger and notices
organisers can act on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.jobs import MELDING_LIMIT, fit_melding
from tests.conftest import person

Build = Callable[..., Path]


def column(path: Path, name: str) -> list[object]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    index = [str(h) for h in rows[0]].index(name)
    return [row[index] for row in rows[1:]]


def test_the_confirmation_date_is_shown_only_on_the_row_that_was_confirmed(
        make_workbook: Build) -> None:
    twice = person(1, day=2)  # the same address again, a day later: a duplicate
    path = make_workbook(registrations=[person(1, day=1), person(2, "Zeist", day=1), twice])
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    assert column(path, "Status") == ["bevestigd", "bevestigd", "ongeldig"]
    sent = column(path, "Bevestiging verstuurd")
    assert sent[0] and sent[1]
    assert sent[2] in ("", None)


def test_a_long_melding_is_cut_in_the_middle_and_keeps_what_to_do() -> None:
    text = "Dubbele aanmelding: dit e-mailadres staat al in rij " + ", ".join(
        str(n) for n in range(2, 20_000)) + "; controleer het adres"
    fitted = fit_melding(text)
    assert len(fitted) <= MELDING_LIMIT
    assert fitted.startswith("Dubbele aanmelding: dit e-mailadres staat al in rij 2, 3, 4")
    assert fitted.endswith("; controleer het adres")
    assert "(ingekort)" in fitted


def test_a_melding_that_fits_is_left_alone() -> None:
    assert fit_melding("Overboekt: gemeente Utrecht; controleer") == \
        "Overboekt: gemeente Utrecht; controleer"
