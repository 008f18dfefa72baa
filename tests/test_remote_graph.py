"""A workbook in Microsoft 365, against a stand-in for Microsoft Graph (tests/graph_standin.py).

Microsoft's service cannot be reached from here; the stand-in implements only the
documented endpoints the tool uses. What holds: the file is read whole and never replaced
(no PUT of the content); the tool cells arrive through Excel's workbook service in a session;
rows that moved between the read and the write are found by the E-mail column and the cells
recomputed; a missing grant is exit 2 before anything is sent; no secret is printed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from leergang_ops.cli import main
from tests.conftest import outbox_mails
from tests.graph_standin import CLIENT_SECRET, SHARE_LINK, StandIn, graph_standin
from tests.imap_server import make_certificate

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
DAY = ["--today", "2021-10-05"]


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    certs = tmp_path / "certs"
    certs.mkdir()
    cert, key = make_certificate(certs)
    stored = tmp_path / "m365" / "leergang wijkaanpak.xlsx"
    stored.parent.mkdir()
    shutil.copy(EXAMPLE, stored)
    with graph_standin(stored, cert, key) as running:
        for name, value in running.env(cert).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        monkeypatch.setenv("LEERGANG_OUTBOX", str(tmp_path / "outbox-m365"))
        yield running


@pytest.fixture
def local(tmp_path: Path) -> Path:
    folder = tmp_path / "local"
    folder.mkdir()
    return Path(shutil.copy(EXAMPLE, folder / EXAMPLE.name))



def statuses(path: Path) -> dict[str, tuple[object, ...]]:
    """E-mail|Voornaam → (Status, Bevestiging verstuurd, fill and font colour of Status)."""
    ws = openpyxl.load_workbook(path)["Deelnemers"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) for name in header if name}
    found = {}
    for row in ws.iter_rows(min_row=2):
        email = row[col["E-mail"]].value
        if email:
            status = row[col["Status"]]
            sent = row[col["Bevestiging verstuurd"]].value
            found[f"{email}|{row[col['Voornaam']].value}"] = (
                status.value, sent.date() if hasattr(sent, "date") else sent,
                str(status.fill.fgColor.rgb)[-6:] if status.fill.fill_type else None,
                str(status.font.color.rgb)[-6:] if status.font.color is not None else None)
    return found


def run_local(local: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    with monkeypatch.context() as patch:
        patch.setenv("LEERGANG_OUTBOX", str(tmp_path / "outbox-local"))
        return main([args[0], str(local), *args[1:]])


def test_run_writes_the_tool_cells_through_the_workbook_service_never_the_file(
        standin: StandIn, local: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["run", standin.item_url(), *DAY]) == 0
    assert run_local(local, tmp_path, monkeypatch, "run", *DAY) == 0
    assert outbox_mails(tmp_path / "outbox-m365") == outbox_mails(tmp_path / "outbox-local")
    assert statuses(standin.saved()) == statuses(local)  # values, dates and fills alike
    methods = [m for m, _ in standin.requests]
    assert "PUT" not in methods  # the file is never replaced
    assert "PATCH" in methods
    patched = {p for m, p in standin.requests if m == "PATCH"}
    assert all("/workbook/worksheets('Deelnemers')/range(" in p for p in patched)


def test_a_sharing_link_is_resolved_to_its_item(standin: StandIn,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", SHARE_LINK, *DAY]) == 1  # the example has errors; it was read
    assert any(p.startswith("/v1.0/shares/u!") for _, p in standin.requests)
    assert "Dubbele aanmelding" in capsys.readouterr().out


def test_rows_inserted_between_read_and_write_put_each_status_on_its_person(
        standin: StandIn, local: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def organiser_inserts_a_row() -> None:
        standin.workbook()["Deelnemers"].insert_rows(2)

    # The write's session: the first is the rights check before sending, the second writes.
    standin.on_create_session.extend([lambda: None, organiser_inserts_a_row])
    assert main(["run", standin.item_url(), *DAY]) == 0
    assert len(standin.sessions) == 3  # rights check, a write that found the rows moved, again
    assert run_local(local, tmp_path, monkeypatch, "run", *DAY) == 0
    assert statuses(standin.saved()) == statuses(local)
    assert openpyxl.load_workbook(standin.saved())["Deelnemers"]["D2"].value is None  # their row
    assert outbox_mails(tmp_path / "outbox-m365") == outbox_mails(tmp_path / "outbox-local")


def test_a_run_that_changes_nothing_patches_nothing(standin: StandIn) -> None:
    assert main(["run", standin.item_url(), *DAY]) == 0
    patches = [m for m, _ in standin.requests].count("PATCH")
    assert main(["run", standin.item_url(), *DAY]) == 0
    assert [m for m, _ in standin.requests].count("PATCH") == patches


def test_no_grant_for_the_site_is_exit_2_before_anything_is_sent(
        standin: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    standin.refuse["createSession"] = (403, "accessDenied")
    before = standin.saved().read_bytes()
    assert main(["run", standin.item_url(), *DAY]) == 2
    err = capsys.readouterr().err
    assert "403" in err and "Sites.Selected" in err
    assert not (tmp_path / "outbox-m365").exists()
    assert standin.saved().read_bytes() == before


def test_a_wrong_client_secret_is_exit_2_without_printing_it(
        standin: StandIn, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEERGANG_GRAPH_CLIENT_SECRET", "fout-geheim-999")
    assert main(["validate", standin.item_url()]) == 2
    err = capsys.readouterr().err
    assert "invalid_client" in err and "LEERGANG_GRAPH_CLIENT_SECRET" in err
    assert "fout-geheim-999" not in err and CLIENT_SECRET not in err


def test_no_such_item_is_exit_2(standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", standin.item_url().replace("LEERGANG", "WEG")]) == 2
    assert "bestaat niet in Microsoft 365 (404" in capsys.readouterr().err


def test_missing_settings_are_exit_2(standin: StandIn, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LEERGANG_GRAPH_CLIENT_ID")
    assert main(["validate", standin.item_url()]) == 2
    assert "LEERGANG_GRAPH_CLIENT_ID" in capsys.readouterr().err


def test_validate_connect_signs_in_and_checks_the_right_to_write(
        standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", standin.item_url(), "--connect", *DAY])
    out = capsys.readouterr().out
    assert "✓ Microsoft 365" in out and "mag schrijven" in out
    assert "PATCH" not in [m for m, _ in standin.requests]


def test_import_into_microsoft_365_writes_the_new_rows_through_the_service(
        standin: StandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_import import ms_forms_nl, three_ms_forms_rows

    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    before = len(statuses(standin.saved()))
    assert main(["import", standin.item_url(), str(export)]) == 0
    assert "3 toegevoegd" in capsys.readouterr().out
    after = statuses(standin.saved())
    assert len(after) == before + 3
    assert "PUT" not in [m for m, _ in standin.requests]
    assert main(["import", standin.item_url(), str(export)]) == 0  # again: nothing new
    assert len(statuses(standin.saved())) == before + 3
    # The same values, dates included, as the lossless import writes into a local file.
    local = Path(shutil.copy(EXAMPLE, tmp_path / "lokaal.xlsx"))
    assert main(["import", str(local), str(export)]) == 0
    rows = [list(r)[:10] for r in openpyxl.load_workbook(standin.saved())["Deelnemers"]
            .iter_rows(min_row=2, values_only=True)]
    expected = [list(r)[:10] for r in openpyxl.load_workbook(local)["Deelnemers"]
                .iter_rows(min_row=2, values_only=True)]
    assert rows == expected


def test_import_into_an_excel_table_in_microsoft_365_is_refused_before_anything(
        tmp_path: Path, standin: StandIn, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_import import ms_forms_nl, three_ms_forms_rows
    from tests.test_totals_row import people, totals_workbook

    totals_workbook(standin.file, people(2))
    before = standin.saved().read_bytes()
    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    assert main(["import", standin.item_url(), str(export)]) == 2
    err = capsys.readouterr().err
    assert "Excel-tabel" in err and "niets geïmporteerd" in err
    assert "Toegevoegd" not in err
    assert "PATCH" not in [m for m, _ in standin.requests]
    assert standin.saved().read_bytes() == before


def test_the_same_item_by_its_sharing_link_mails_nobody_again(
        standin: StandIn, tmp_path: Path) -> None:
    """The ledger belongs to the drive item, however it is named (contract §3, §4)."""
    assert main(["run", standin.item_url(), *DAY]) == 0
    first = sum(outbox_mails(tmp_path / "outbox-m365").values())
    assert first == 46
    assert main(["run", SHARE_LINK, *DAY]) == 0
    assert sum(outbox_mails(tmp_path / "outbox-m365").values()) == first
    data = tmp_path / "data" / "leergang-ops" / "remote"
    assert len([p for p in data.iterdir() if p.is_dir()]) == 1  # one working folder, one ledger
