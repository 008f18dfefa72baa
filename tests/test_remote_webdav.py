"""A workbook on a WebDAV server (contract §1 "Where the workbook lives", §4, §5).

Against a real WebDAV server (WsgiDAV, tests/webdav_server.py): the same findings, statuses
and mails as on a local copy; the server's file keeps every original part; an organiser's
save between fetch and upload (rows sorted differently) keeps their change and puts the
statuses on the right people, nobody mailed twice; a lock by someone else is "in use"; a
wrong login or address is exit 2 with a Dutch message that prints no secret.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest

from leergang_ops.cli import main
from leergang_ops.remote import working_copy, working_folder
from tests.conftest import outbox_mails
from tests.webdav_server import (
    ORGANISER,
    ORGANISER_PASSWORD,
    PASSWORD,
    WebDavServer,
    webdav_server,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
NAME = "leergang wijkaanpak.xlsx"  # a space, as organisers name files: %20 in the address
DAY = ["--today", "2021-10-05"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebDavServer]:
    root = tmp_path / "dav"
    root.mkdir()
    shutil.copy(EXAMPLE, root / NAME)
    with webdav_server(root) as running:
        yield running


@pytest.fixture
def remote(server: WebDavServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The example workbook's address; the tool's data folder and outbox in tmp_path."""
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("LEERGANG_OUTBOX", str(tmp_path / "outbox-remote"))
    return server.url(NAME.replace(" ", "%20"))


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """The same workbook as a local file, with its own ledger and outbox."""
    folder = tmp_path / "local"
    folder.mkdir()
    return Path(shutil.copy(EXAMPLE, folder / NAME))


def on_server(server: WebDavServer) -> Path:
    return server.root / NAME



def statuses(path: Path) -> dict[str, tuple[object, ...]]:
    """E-mail → (Status, Melding, Bevestiging verstuurd, Notitie organisatie) of each row."""
    ws = openpyxl.load_workbook(path)["Deelnemers"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) for name in header if name}
    found = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        if row[col["E-mail"]]:
            key = f"{row[col['E-mail']]}|{row[col['Voornaam']]}"
            found[key] = (row[col["Status"]], row[col["Melding"]],
                          row[col["Bevestiging verstuurd"]], row[col["Notitie organisatie"]])
    return found


def run_local(local: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              *args: str) -> int:
    with monkeypatch.context() as patch:
        patch.setenv("LEERGANG_OUTBOX", str(tmp_path / "outbox-local"))
        return main([*args[:1], str(local), *args[1:]])


# --- the same as on a local file -------------------------------------------------------

def test_validate_on_the_address_finds_what_it_finds_on_a_local_copy(
        remote: str, local: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", remote, *DAY]) == 1  # the example has errors
    on_the_server = json.loads(capsys.readouterr().out)
    assert main(["validate", "--json", str(local), *DAY]) == 1
    assert on_the_server == json.loads(capsys.readouterr().out)
    assert len(on_the_server) > 5


def test_run_on_the_address_sends_the_same_mails_and_writes_the_same_statuses(
        remote: str, local: Path, server: WebDavServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["run", remote, *DAY]) == 0
    assert run_local(local, tmp_path, monkeypatch, "run", *DAY) == 0
    sent = outbox_mails(tmp_path / "outbox-remote")
    assert sent == outbox_mails(tmp_path / "outbox-local")
    assert sum(sent.values()) == 46
    assert statuses(on_server(server)) == statuses(local)
    # The server's file is exactly what the same run writes into a local file.
    assert on_server(server).read_bytes() == local.read_bytes()


def test_the_file_on_the_server_keeps_every_original_part(remote: str,
                                                          server: WebDavServer) -> None:
    with zipfile.ZipFile(EXAMPLE) as zf:
        before = {name: zf.read(name) for name in zf.namelist()}
    assert main(["flag", remote]) == 0
    with zipfile.ZipFile(on_server(server)) as zf:
        after = {name: zf.read(name) for name in zf.namelist()}
    assert list(after) == list(before)
    changed = {name for name in before if after[name] != before[name]}
    assert changed <= {"xl/worksheets/sheet3.xml", "xl/styles.xml", "xl/sharedStrings.xml"}
    assert "xl/worksheets/sheet3.xml" in changed  # Deelnemers, with the tool columns


def test_a_run_that_changes_nothing_uploads_nothing(remote: str, server: WebDavServer) -> None:
    assert main(["run", remote, *DAY]) == 0
    assert server.methods().count("PUT") == 1
    before = on_server(server).read_bytes()
    assert main(["run", remote, *DAY]) == 0
    assert server.methods().count("PUT") == 1  # nothing changed, nothing uploaded
    assert on_server(server).read_bytes() == before


def test_read_only_commands_never_write_to_the_server(remote: str, server: WebDavServer,
                                                      tmp_path: Path) -> None:
    before = on_server(server).read_bytes()
    assert main(["run", remote, *DAY, "--dry-run"]) == 0
    assert main(["preview", remote, *DAY, "--out", str(tmp_path / "voorbeeld")]) == 0
    assert main(["summary", remote, *DAY, "--out", str(tmp_path / "overzicht.xlsx")]) == 0
    assert "PUT" not in server.methods() and "LOCK" not in server.methods()
    assert on_server(server).read_bytes() == before


def test_the_ledger_stays_on_this_machine_keyed_by_the_address(
        remote: str, server: WebDavServer, tmp_path: Path) -> None:
    assert main(["run", remote, *DAY]) == 0
    folder = working_folder(remote, os.environ)
    assert list(folder.glob("*.leergang.sqlite"))  # beside the working copy, not on the server
    assert not [p for p in server.root.iterdir() if p.name != NAME]  # no ledger, no backup
    first = sum(outbox_mails(tmp_path / "outbox-remote").values())
    assert main(["run", remote, *DAY]) == 0
    assert sum(outbox_mails(tmp_path / "outbox-remote").values()) == first  # nobody twice


def test_the_working_copy_is_private(remote: str) -> None:
    assert main(["flag", remote]) == 0
    copy = working_copy(remote, os.environ)
    assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


# --- an organiser saves meanwhile -------------------------------------------------------

def organiser_saves_sorted(path: Path) -> None:
    """What an organiser's Excel writes: rows sorted by surname, and a note of theirs."""
    book = openpyxl.load_workbook(path)
    ws = book["Deelnemers"]
    header = [c.value for c in ws[1]]
    rows = [list(r) for r in ws.iter_rows(min_row=2, values_only=True) if any(r)]
    rows.sort(key=lambda r: (str(r[header.index("Achternaam")] or ""), str(r[1] or "")))
    note = header.index("Notitie organisatie")
    rows[0][note] = "Gebeld op 5 oktober"
    for r, values in enumerate(rows, start=2):
        for c, value in enumerate(values, start=1):
            ws.cell(r, c).value = value  # (ws.cell(r, c, None) would keep the old value)
    tmp = path.with_name("opgeslagen.xlsx")
    book.save(tmp)
    os.replace(tmp, path)  # a new file, as a sync client or an editor writes it: a new ETag


def test_an_organisers_save_before_the_upload_keeps_their_change_and_the_right_statuses(
        remote: str, local: Path, server: WebDavServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.before_put.append(lambda: organiser_saves_sorted(on_server(server)))
    assert main(["run", remote, *DAY]) == 0
    assert server.methods().count("PUT") == 2  # refused with 412, then theirs went back
    assert run_local(local, tmp_path, monkeypatch, "run", *DAY) == 0
    theirs = statuses(on_server(server))
    expected = statuses(local)
    assert theirs.keys() == expected.keys()
    noted = [key for key, value in theirs.items() if value[3] == "Gebeld op 5 oktober"]
    assert len(noted) == 1  # their note is there
    for key, (status, melding, sent, _) in theirs.items():
        assert (status, sent) == expected[key][:1] + expected[key][2:3], key
        # The same notice, naming the rows where they are now (their sorting moved them).
        assert re.sub(r"rij \d+", "rij N", str(melding)) == re.sub(
            r"rij \d+", "rij N", str(expected[key][1])), key
    ws = openpyxl.load_workbook(on_server(server))["Deelnemers"]
    surnames = [r[2] for r in ws.iter_rows(min_row=2, values_only=True) if r[2]]
    assert surnames == sorted(surnames)  # their order, not ours
    sent = outbox_mails(tmp_path / "outbox-remote")
    assert sent == outbox_mails(tmp_path / "outbox-local")  # each mail once
    assert max(sent.values()) == 1


def test_saves_that_keep_winning_end_in_exit_3_with_the_mails_recorded(
        remote: str, server: WebDavServer, tmp_path: Path) -> None:
    for _ in range(3):
        server.before_put.append(lambda: organiser_saves_sorted(on_server(server)))
    assert main(["run", remote, *DAY]) == 3
    first = sum(outbox_mails(tmp_path / "outbox-remote").values())
    assert first == 46
    assert main(["run", remote, *DAY]) == 0  # the next run writes the columns
    assert sum(outbox_mails(tmp_path / "outbox-remote").values()) == first  # nothing again
    assert all(v[0] for v in statuses(on_server(server)).values())


# --- in use, and errors ----------------------------------------------------------------

LOCK_BODY = (b'<?xml version="1.0" encoding="utf-8"?><d:lockinfo xmlns:d="DAV:">'
             b"<d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
             b"<d:owner>Collabora Online (Annemiek van Tol)</d:owner></d:lockinfo>")


def test_a_lock_by_someone_else_is_in_use_and_nothing_is_sent(
        remote: str, server: WebDavServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    locked = httpx.request("LOCK", remote, content=LOCK_BODY, auth=(ORGANISER,
                                                                    ORGANISER_PASSWORD),
                           headers={"Timeout": "Second-600", "Depth": "0"})
    assert locked.status_code == 200, locked.text
    before = on_server(server).read_bytes()
    assert main(["run", remote, *DAY]) == 3
    err = capsys.readouterr().err
    assert "vergrendeld" in err and "Collabora Online" in err
    assert on_server(server).read_bytes() == before
    assert not (tmp_path / "outbox-remote").exists()
    assert main(["validate", remote, *DAY]) == 1  # reading is fine: validate still works


def test_a_wrong_password_is_exit_2_naming_the_address_and_not_the_password(
        remote: str, server: WebDavServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEERGANG_WEBDAV_PASSWORD", "geheim-maar-fout-789")
    assert main(["run", remote, *DAY]) == 2
    err = capsys.readouterr().err
    assert remote in err and "401" in err and "LEERGANG_WEBDAV_USER" in err
    assert "geheim-maar-fout-789" not in err and PASSWORD not in err


def test_no_such_file_is_exit_2(remote: str, server: WebDavServer,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", server.url("bestaat-niet.xlsx"), *DAY]) == 2
    assert "bestaat niet op de server (404)" in capsys.readouterr().err


def test_a_file_that_is_no_workbook_is_exit_2(remote: str, server: WebDavServer,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (server.root / "notities.xlsx").write_text("geen werkmap")
    assert main(["validate", server.url("notities.xlsx")]) == 2
    assert "geen Excel-werkmap" in capsys.readouterr().err


def test_an_address_with_a_password_in_it_is_refused_without_repeating_it(
        remote: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", remote.replace("http://", "http://leergang:s3cr3t@")]) == 2
    err = capsys.readouterr().err
    assert "s3cr3t" not in err and "LEERGANG_WEBDAV_USER" in err


def test_plain_http_is_only_for_this_computer(remote: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "http://cloud.example.org/remote.php/dav/files/a/w.xlsx"]) == 2
    assert "gebruik https" in capsys.readouterr().err


def test_missing_credentials_are_exit_2(remote: str, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("LEERGANG_WEBDAV_PASSWORD")
    assert main(["validate", remote]) == 2
    assert "LEERGANG_WEBDAV_PASSWORD" in capsys.readouterr().err


def test_validate_connect_checks_the_servers_login_and_writes_nothing(
        remote: str, server: WebDavServer, capsys: pytest.CaptureFixture[str]) -> None:
    before = on_server(server).read_bytes()
    main(["validate", remote, "--connect", *DAY])
    out = capsys.readouterr().out
    assert f"✓ WebDAV {remote}: ingelogd als leergang, bestand gevonden" in out
    assert "PUT" not in server.methods()
    assert on_server(server).read_bytes() == before


def test_a_weak_etag_is_fetched_again_until_strong_so_no_false_race(
        remote: str, server: WebDavServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apache's mod_dav (seen in the lab) marks an ETag weak for the second after a change;
    If-Match compares strongly, so an upload against it would always fail with 412."""
    monkeypatch.setattr("leergang_ops.store.webdav.WEAK_ETAG_PAUSE", 0)
    server.weak_etags = 1
    assert main(["flag", remote]) == 0
    assert server.methods().count("GET") == 2  # the weak answer, then the strong one
    assert server.methods().count("PUT") == 1  # accepted at once: no race that was not one


def test_import_on_the_address_adds_the_rows_on_the_server(
        remote: str, server: WebDavServer, tmp_path: Path) -> None:
    from tests.test_import import ms_forms_nl, three_ms_forms_rows

    export = ms_forms_nl(tmp_path / "export.xlsx", *three_ms_forms_rows())
    before = len(statuses(on_server(server)))
    assert main(["import", remote, str(export)]) == 0
    assert len(statuses(on_server(server))) == before + 3


def test_an_address_that_is_no_webdav_is_exit_2(tmp_path: Path, remote: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A plain web server (here Python's own) answers PROPFIND with 501."""
    import http.server
    import threading

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{httpd.server_address[1]}/leergang.xlsx"
        assert main(["validate", address]) == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert "geen WebDAV-adres (de server antwoordt 501" in capsys.readouterr().err


def test_no_server_at_the_address_is_exit_2(remote: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["run", f"http://127.0.0.1:{port}/leergang.xlsx", *DAY]) == 2
    assert "niet bereikbaar" in capsys.readouterr().err


def test_a_scheduled_run_without_mail_server_refuses_before_fetching(
        remote: str, server: WebDavServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEERGANG_OUTBOX")
    assert main(["run", remote, "--scheduled", *DAY]) == 2
    assert server.requests == []


# --- the right to write --------------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data" / "webdav"


def test_a_nextcloud_read_only_share_is_read_as_no_right_to_write() -> None:
    from leergang_ops.store.webdav import _parse_props

    props = _parse_props((DATA / "nextcloud-propfind-read-only-share.xml").read_bytes())
    assert props.may_write is False
    assert props.etag == '"a1b2c3d4e5f60718293a4b5c6d7e8f90"'
    assert props.locked_by is None  # lockdiscovery came back 404: no lock


def test_a_file_the_account_may_not_write_is_exit_2_before_anything_is_sent(
        remote: str, server: WebDavServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The server says `oc:permissions` without W, as Nextcloud does for a read-only share
    (set here as a property with PROPPATCH, so the real server answers it in PROPFIND)."""
    body = (b'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" '
            b'xmlns:oc="http://owncloud.org/ns"><d:set><d:prop>'
            b"<oc:permissions>SRG</oc:permissions></d:prop></d:set></d:propertyupdate>")
    done = httpx.request("PROPPATCH", remote, content=body,
                         auth=(ORGANISER, ORGANISER_PASSWORD))
    assert done.status_code == 207, done.text
    before = on_server(server).read_bytes()
    assert main(["run", remote, *DAY]) == 2
    assert "mag dit bestand niet wijzigen" in capsys.readouterr().err
    assert not (tmp_path / "outbox-remote").exists()
    assert on_server(server).read_bytes() == before
    assert main(["validate", remote, *DAY]) == 1  # reading is allowed


def test_init_on_an_address_puts_a_new_workbook_there_and_never_overwrites(
        remote: str, server: WebDavServer, capsys: pytest.CaptureFixture[str]) -> None:
    new = server.url("nieuwe%20leergang.xlsx")
    assert main(["init", new]) == 0
    assert openpyxl.load_workbook(server.root / "nieuwe leergang.xlsx").sheetnames == [
        "Instellingen", "Bijeenkomsten", "Deelnemers"]
    before = on_server(server).read_bytes()
    assert main(["init", remote]) == 2  # the example is there already
    assert "bestaat al" in capsys.readouterr().err
    assert on_server(server).read_bytes() == before


def test_the_same_file_by_another_spelling_of_its_address_mails_nobody_again(
        remote: str, server: WebDavServer, tmp_path: Path) -> None:
    """`%6C` is `l` (RFC 3986 §6.2.2.2): the same item, so the same working copy and ledger."""
    assert main(["run", remote, *DAY]) == 0
    first = sum(outbox_mails(tmp_path / "outbox-remote").values())
    respelt = remote.replace("/leergang%20", "/%6Ceergang%20")
    assert respelt != remote
    assert working_folder(respelt, os.environ) == working_folder(remote, os.environ)
    assert main(["run", respelt, *DAY]) == 0
    assert sum(outbox_mails(tmp_path / "outbox-remote").values()) == first
