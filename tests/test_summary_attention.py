"""The summary's attention list and colours, on the shipped example workbook (contract §3, §4).

Every warning an organiser should act on is listed, grouped (limits, invalid rows, warnings,
delivery) with where to fix it; counts are singular or plural as Dutch wants; a confirmed
person is never called invalid because of a duplicate row; the statuses have the same
colours in the organiser's workbook and in the summary, overboekt distinct from wachtlijst;
mails written to an outbox are "in outbox", not "verzonden".
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path

import openpyxl
import pytest

from leergang_ops.allocation import allocate
from leergang_ops.cli import main
from leergang_ops.jobs import read_state
from leergang_ops.summary import GROUPS, Problem, headline
from leergang_ops.workbook.read import load_course
from tests.conftest import person

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
DAY = date(2021, 11, 8)
Build = Callable[..., Path]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name))


def attention(path: Path) -> tuple[Problem, ...]:
    course = load_course(path)
    state = read_state(path, {})
    return headline(course, allocate(course, state.confirmed), [], DAY).problems


def test_the_attention_list_comes_in_its_groups_in_order(example: Path) -> None:
    groups = [p.group for p in attention(example)]
    assert groups == sorted(groups, key=GROUPS.index)
    assert set(groups) >= {"Limieten", "Ongeldige aanmeldingen", "Waarschuwingen"}


def test_the_same_policy_domain_twice_is_in_the_attention_list(example: Path) -> None:
    found = [p for p in attention(example) if "Zelfde beleidsdomein" in p.what]
    assert len(found) == 1
    assert found[0].group == "Waarschuwingen"
    assert found[0].what.startswith("Eva Visser: ")  # who, then what
    assert found[0].where == "Deelnemers, rij 12, kolom Beleidsdomein"


def test_a_misspelt_municipality_is_in_the_attention_list_with_the_suggestion(
        example: Path) -> None:
    found = [p for p in attention(example) if "Amersfort" in p.what]
    assert len(found) == 1
    assert "bedoelt u Amersfoort?" in found[0].what
    assert found[0].where == "Deelnemers, rij 24, kolom Gemeente"


def test_a_confirmed_person_is_never_called_invalid_because_of_a_duplicate_row(
        example: Path) -> None:
    found = attention(example)
    assert not any("Ongeldige aanmelding van Sanne Verhoeven" in p.what for p in found)
    duplicate = [p for p in found if "Sanne Verhoeven" in p.what]
    assert len(duplicate) == 1
    assert duplicate[0].what == ("Sanne Verhoeven staat twee keer op de lijst (rij 2, bevestigd, "
                                 "en rij 13); rij 13 telt niet mee: verwijder die rij")
    assert duplicate[0].where == "Deelnemers, rij 13"


def test_a_duplicate_address_of_someone_else_names_both(make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1), {**person(2), "E-mail":
                                                    "deelnemer1@example.nl"}])
    found = [p for p in attention(path) if p.group == "Ongeldige aanmeldingen"]
    assert len(found) == 1
    assert found[0].what.startswith("Rij 3 (Deelnemer2 Test2) ")
    assert "hetzelfde e-mailadres als rij 2 (Deelnemer1 Test1, bevestigd)" in found[0].what
    assert "een eigen adres" in found[0].what


@pytest.mark.parametrize(("extra", "word"), [(1, "1 aanmelding meer"),
                                             (2, "2 aanmeldingen meer")])
def test_overbooking_is_counted_in_singular_or_plural(make_workbook: Build, extra: int,
                                                     word: str) -> None:
    path = make_workbook(registrations=[person(n, "Utrecht", day=n) for n in
                                        range(1, 4 + extra)])
    limits = [p.what for p in attention(path) if p.group == "Limieten"]
    assert len(limits) == 1
    assert f"Utrecht heeft {word} dan de 3 plaatsen" in limits[0]


def test_no_text_in_the_summary_or_its_mail_writes_a_plural_in_brackets(example: Path) -> None:
    assert main(["run", str(example), "--today", "2021-11-08"]) == 0
    mail_file = next((example.parent / "outbox").glob("overzicht-*.eml"))
    mail = message_from_bytes(mail_file.read_bytes(), policy=policy.default)
    body = mail.get_body(("plain",)).get_content()
    attachment = next(p for p in mail.iter_attachments() if p.get_filename().endswith(".xlsx"))
    summary = example.parent / "overzicht.xlsx"
    summary.write_bytes(attachment.get_content())
    texts = [str(c.value) for ws in openpyxl.load_workbook(summary) for row in ws.iter_rows()
             for c in row if isinstance(c.value, str)]
    brackets = re.compile(r"\w\((en|s|n)\)")
    assert [t for t in (*texts, body) if brackets.search(t)] == []
    # The mail body carries the same groups as the sheet, under their headings.
    for group in ("Limieten (3)", "Ongeldige aanmeldingen (3)", "Waarschuwingen (3)"):
        assert group in body
        assert group in texts


def test_the_overview_sheet_shows_each_group_under_its_heading(example: Path) -> None:
    assert main(["summary", str(example), "--today", "2021-11-08", "--out",
                 str(example.parent / "s.xlsx")]) == 0
    ws = openpyxl.load_workbook(example.parent / "s.xlsx")["Overzicht"]
    column_a = [c.value for c in ws["A"] if c.value]
    start = column_a.index("Wat aandacht nodig heeft")
    headings = [v for v in column_a[start:] if re.fullmatch(r"[A-Z][a-z ]+ \(\d+\)", str(v))]
    assert headings == ["Limieten (3)", "Ongeldige aanmeldingen (3)", "Waarschuwingen (3)"]


# --- colours ----------------------------------------------------------------------------

def status_fills(ws: openpyxl.worksheet.worksheet.Worksheet) -> dict[str, set[str]]:
    """Status → the fills its cells (or rows) have on a sheet with a Status column."""
    headers = [c.value for c in ws[1]]
    col = headers.index("Status") + 1
    fills: dict[str, set[str]] = {}
    for row in range(2, ws.max_row + 1):
        cell = ws.cell(row, col)
        if cell.value:
            fills.setdefault(str(cell.value), set()).add(str(cell.fill.fgColor.rgb)[-6:])
    return fills


def test_overboekt_and_wachtlijst_have_distinct_colours_the_same_in_workbook_and_summary(
        example: Path) -> None:
    assert main(["flag", str(example)]) == 0
    assert main(["summary", str(example), "--today", "2021-11-08", "--out",
                 str(example.parent / "s.xlsx")]) == 0
    workbook = status_fills(openpyxl.load_workbook(example)["Deelnemers"])
    summary = status_fills(openpyxl.load_workbook(example.parent / "s.xlsx")["Deelnemers"])
    for status in ("bevestigd", "overboekt", "wachtlijst", "ongeldig", "afgemeld"):
        assert len(workbook[status]) == 1, status  # one colour per status
        assert workbook[status] == summary[status], status
    assert workbook["overboekt"] != workbook["wachtlijst"]
    assert len({next(iter(f)) for f in workbook.values()}) == 5  # five statuses, five colours


# --- outbox ----------------------------------------------------------------------------

def test_mails_in_the_outbox_are_in_outbox_not_sent_in_the_summary(example: Path) -> None:
    assert main(["run", str(example), "--today", "2021-11-08"]) == 0
    assert main(["summary", str(example), "--today", "2021-11-08", "--out",
                 str(example.parent / "s.xlsx")]) == 0
    book = openpyxl.load_workbook(example.parent / "s.xlsx")
    results = [row[4] for row in book["Verzonden"].iter_rows(min_row=2, values_only=True)]
    assert results and all(r.startswith("in outbox (") and "niet verzonden" in r
                           for r in results)
    overview = {row[0]: row[1] for row in book["Overzicht"].iter_rows(values_only=True)}
    assert overview["Mails verzonden in de afgelopen 7 dagen"] == 0
    assert overview["Mails in de outbox gezet (niet verzonden)"] == len(results)

