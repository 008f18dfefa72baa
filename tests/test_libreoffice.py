"""LibreOffice opens a workbook after the write-back and reads the status columns."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from leergang_ops.workbook.write import write_cells
from tests.test_writeback import HEADER, TOOL, rich_workbook, status_cells

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed"),
]


def test_libreoffice_reads_the_written_status_columns(tmp_path: Path) -> None:
    workbook = rich_workbook(tmp_path / "leergang.xlsx")  # table, chart, formula column
    assert write_cells(workbook, "Deelnemers", status_cells())
    # Comma-separated, UTF-8, formatted as shown, only sheet 2 (Deelnemers).
    options = "44,34,76,1,,0,false,true,true,false,false,2"
    assert SOFFICE is not None
    result = subprocess.run(
        [SOFFICE, "--headless", f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
         "--convert-to", f"csv:Text - txt - csv (StarCalc):{options}",
         "--outdir", str(tmp_path / "csv"), str(workbook)],
        capture_output=True, text=True, timeout=120, check=False)
    # LibreOffice 7.4 names it leergang-Deelnemers.csv when one sheet is picked.
    converted = sorted((tmp_path / "csv").glob("leergang*.csv"))
    assert len(converted) == 1, f"soffice: {result.stdout}{result.stderr}"
    with converted[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][: len(HEADER) + len(TOOL)] == HEADER + TOOL
    statuses = [(row[6], row[7], row[8]) for row in rows[1:5]]
    assert statuses == [("bevestigd", "", "04-10-2021"), ("wachtlijst", "Gemeente zit vol", ""),
                        ("bevestigd", "", "04-10-2021"), ("wachtlijst", "Gemeente zit vol", "")]
    assert [row[1] for row in rows[1:5]] == [f"Deelnemer{n}" for n in range(1, 5)]
