"""The weekly summary of the shipped example workbook, as the contact person receives it."""

from __future__ import annotations

import shutil
from collections import Counter
from email import message_from_bytes, policy
from pathlib import Path

import openpyxl
import pytest

from leergang_ops import municipalities
from leergang_ops.allocation import allocate
from leergang_ops.cli import main
from leergang_ops.model import Status
from leergang_ops.workbook.read import load_course

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name))


def figures(sheet: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, object]:
    """Label → value of the Kerncijfers block on Overzicht."""
    return {str(row[0].value): row[1].value for row in sheet.iter_rows(min_row=5, max_row=13)
            if row[0].value}


def test_weekly_mail_carries_a_summary_that_matches_the_allocation(example: Path) -> None:
    assert main(["run", str(example), "--today", "2021-11-08"]) == 0
    overviews = list((example.parent / "outbox").glob("overzicht-*.eml"))
    assert len(overviews) == 1
    mail = message_from_bytes(overviews[0].read_bytes(), policy=policy.default)
    attachment = next(p for p in mail.iter_attachments() if p.get_filename().endswith(".xlsx"))
    summary = example.parent / "uit-de-mail.xlsx"
    summary.write_bytes(attachment.get_content())

    course = load_course(EXAMPLE)
    allocation = allocate(course)
    counts = Counter(d.status for d in allocation.decisions)
    book = openpyxl.load_workbook(summary)
    assert book.sheetnames[:5] == ["Overzicht", "Gemeenten", "Deelnemers", "Vragen", "Verzonden"]
    values = figures(book["Overzicht"])
    assert values["Bevestigde deelnemers"] == counts[Status.BEVESTIGD]
    assert values["Ongeldige aanmeldingen"] == counts[Status.ONGELDIG]
    assert values["Afgemeld"] == counts[Status.AFGEMELD]
    confirmed_places = {municipalities.identity(r.gemeente) for r in course.registrations
                        if allocation.by_row()[r.row].status == Status.BEVESTIGD}
    assert values["Gemeenten met bevestigde deelnemers"] == len(confirmed_places)
    registrations = book["Deelnemers"]
    assert registrations.max_row - 1 == len(course.registrations)
    questions = [c.value for row in book["Vragen"].iter_rows() for c in row if c.value]
    for reg in course.registrations:
        if reg.opmerking:
            assert reg.opmerking in questions
    assert book["Gemeenten"]._charts, "the summary has a native chart"
