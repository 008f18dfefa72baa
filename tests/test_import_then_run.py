"""Contract §4: `run` right after an `import` confirms the new registrations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from leergang_ops.cli import main
from tests.conftest import person


def test_run_after_import_confirms_the_new_registrations(
        make_workbook: Callable[..., Path], tmp_path: Path) -> None:
    path = make_workbook(registrations=[person(1)])
    export = tmp_path / "Formulierreacties.csv"
    export.write_text(
        "Tijdstempel;E-mailadres;Voornaam;Achternaam;Gemeente;Beleidsdomein\n"
        "12-10-2021 09:14:03;anna.devries@example.nl;Anna;de Vries;Zeist;Onderwijs\n"
        "12-10-2021 10:02:51;bram.jansen@example.nl;Bram;Jansen;Houten;Veiligheid\n",
        encoding="cp1252")
    assert main(["import", str(path), str(export)]) == 0
    assert main(["run", str(path), "--today", "2021-10-13"]) == 0
    confirmations = sorted(p.name for p in (path.parent / "outbox").glob("bevestiging-*.eml"))
    assert [n.split("-")[1] for n in confirmations] == [
        "anna.devries", "bram.jansen", "deelnemer1"]
