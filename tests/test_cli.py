"""The command line end to end (contract §4): exit statuses, messages, nothing written on error."""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.ledger import Ledger
from leergang_ops.ledger_location import ledger_path
from leergang_ops.model import MailIntent, MailKind
from leergang_ops.run_lock import run_lock
from tests.conftest import REGISTRATION_HEADER, person

Build = Callable[..., Path]


def tool_columns(path: Path) -> dict[int, tuple[str, str]]:
    """Status and Melding per Deelnemers row, as any reader sees them."""
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    header = [str(h) for h in rows[0]]
    status, melding = header.index("Status"), header.index("Melding")
    return {n: (str(r[status]), str(r[melding])) for n, r in enumerate(rows[1:], start=2)}


def four_from_utrecht(make_workbook: Build, **kwargs: object) -> Path:
    return make_workbook(registrations=[person(n, day=n) for n in range(1, 5)], **kwargs)


def test_init_writes_a_workbook_and_refuses_to_overwrite(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nieuw.xlsx"
    assert main(["init", str(target)]) == 0
    before = target.read_bytes()
    assert main(["init", str(target)]) == 2
    assert target.read_bytes() == before
    assert "nieuw.xlsx" in capsys.readouterr().err


def test_validate_clean_workbook_exits_0(make_workbook: Build,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1), person(2, "Zeist")])
    assert main(["validate", str(path), "--today", "2021-10-01"]) == 0
    out = capsys.readouterr().out
    assert "Overzicht: gemeenten 2/20" in out and "2 bevestigd" in out


def test_validate_reports_errors_with_row_and_column_and_exits_1(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1), person(2, **{"E-mail": "geen-adres"})])
    before = path.read_bytes()
    assert main(["validate", str(path), "--today", "2021-10-01"]) == 1
    out = capsys.readouterr().out
    assert "Fouten (1)" in out and "Deelnemers, rij 3, kolom E-mail" in out
    assert path.read_bytes() == before


def test_validate_json_lists_findings_as_the_contract_says(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1, "Utreht")])
    assert main(["validate", str(path), "--json", "--today", "2021-10-01"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert {"level", "code", "sheet", "row", "column", "message"} <= set(findings[0])
    unknown = [f for f in findings if f["code"] == "unknown-municipality"]
    assert unknown == [{"level": "warning", "code": "unknown-municipality",
                        "sheet": "Deelnemers", "row": 2, "column": "Gemeente",
                        "message": "'Utreht' is geen Nederlandse gemeente; bedoelt u Utrecht?"}]


def test_validate_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    not_a_workbook = tmp_path / "leergang.xlsx"
    not_a_workbook.write_text("Voornaam;Achternaam\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "leergang_ops", "validate",
                             str(not_a_workbook)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_validate_json_on_bad_input_still_prints_json(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "leergang.xlsx"
    broken.write_bytes(b"PK\x03\x04 truncated")
    assert main(["validate", str(broken), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)[0]["level"] == "error"


def test_flag_writes_status_and_melding(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["flag", str(path)]) == 0
    columns = tool_columns(path)
    assert [columns[r][0] for r in (2, 3, 4, 5)] == ["bevestigd"] * 3 + ["overboekt"]
    assert "heeft al 3 deelnemers" in columns[5][1]


def test_flag_adds_the_tool_columns_right_of_the_last_organiser_column(
        make_workbook: Build) -> None:
    # The workbook has no tool columns yet; its last column (Opmerking) holds organiser text.
    path = make_workbook(registrations=[person(1, Opmerking="komt later"), person(2)])
    assert REGISTRATION_HEADER[-1] == "Opmerking"
    assert main(["flag", str(path)]) == 0
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    assert [str(h) for h in rows[0]] == [*REGISTRATION_HEADER, "Status", "Melding",
                                         "Bevestiging verstuurd"]
    last = len(REGISTRATION_HEADER) - 1
    assert (rows[1][last], rows[1][last + 1]) == ("komt later", "bevestigd")


def test_flag_twice_leaves_the_file_untouched(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["flag", str(path)]) == 0
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert main(["flag", str(path)]) == 0
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_flag_with_excel_lock_file_exits_3_and_writes_nothing(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    (path.parent / f"~${path.name}").write_bytes(b"owner")
    before = path.read_bytes()
    assert main(["flag", str(path)]) == 3
    assert path.read_bytes() == before


def test_run_dry_run_prints_the_plan_and_writes_nothing(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)
    before = sorted(p.name for p in path.parent.iterdir())
    content = path.read_bytes()
    assert main(["run", str(path), "--today", "2021-10-05", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "bevestiging" in out and "deelnemer1@example.nl" in out and "wachtlijst" in out
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == before


def test_validate_writes_nothing_not_even_into_an_older_ledger(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    capsys.readouterr()
    # As left by an earlier release (schema 1): validate reads it, only `run` migrates it.
    with contextlib.closing(sqlite3.connect(ledger_path(path, {}))) as db:
        db.execute("DROP TABLE checks")
        db.execute("PRAGMA user_version = 1")
    before = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    assert ledger_path(path, {}).name in before
    assert main(["validate", str(path), "--today", "2021-10-06"]) == 0
    assert "3 bevestigd" in capsys.readouterr().out  # read with the ledger's confirmed set
    after = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    assert after == before  # no -wal or -shm files left behind either


def test_run_writes_mails_to_the_outbox_once(make_workbook: Build,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    # three confirmations, one waiting-list notice and the week's overview
    outbox = path.parent / "outbox"
    assert capsys.readouterr().out.strip() == (
        f"5 mails in de map {outbox} gezet (niet verzonden: geen SMTP-server ingesteld)")
    kinds = sorted(f.name.split("-")[0] for f in outbox.glob("*.eml"))
    assert kinds == ["bevestiging"] * 3 + ["overzicht", "wachtlijst"]
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    assert capsys.readouterr().out.strip().startswith("0 mails in de map")
    assert len(list(outbox.glob("*.eml"))) == 5


def test_run_mirrors_the_confirmation_date_into_the_workbook(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    column = [str(h) for h in rows[0]].index("Bevestiging verstuurd")
    assert str(rows[1][column]).startswith("2021-10-05")
    assert rows[4][column] in ("", None)  # the overbooked one got no confirmation


def test_run_with_bad_smtp_setting_exits_2_and_writes_nothing(
        make_workbook: Build, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)
    monkeypatch.setenv("LEERGANG_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("LEERGANG_SMTP_PORT", "vijfhonderd")
    before = path.read_bytes()
    assert main(["run", str(path)]) == 2
    assert "LEERGANG_SMTP_PORT" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert not (path.parent / "outbox").exists()


def test_run_with_a_broken_template_override_sends_nothing(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)
    override = path.parent / "mail_templates"
    override.mkdir()
    (override / "bevestiging.txt.j2").write_text("Beste {{ onbekende_variabele }},\n{% if %}\n")
    assert main(["validate", str(path)]) == 1
    assert "bevestiging.txt.j2" in capsys.readouterr().out
    assert main(["run", str(path)]) == 2
    assert not (path.parent / "outbox").exists()


def test_templates_that_passed_are_not_checked_again_until_they_change(
        make_workbook: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    from leergang_ops.mail.render import Templates

    path = four_from_utrecht(make_workbook)
    checks: list[int] = []
    original = Templates.check

    def counted(self: Templates) -> list[object]:
        checks.append(1)
        return original(self)

    monkeypatch.setattr(Templates, "check", counted)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    assert main(["run", str(path), "--today", "2021-10-06"]) == 0
    assert len(checks) == 1  # the second run knew these templates
    override = path.parent / "mail_templates"
    override.mkdir()
    (override / "herinnering.txt.j2").write_text("{{ onbekende_variabele }}\n")
    assert main(["run", str(path), "--today", "2021-10-07"]) == 2  # changed: checked, refused
    assert len(checks) == 2


def test_preview_renders_eml_and_html_and_sends_nothing(make_workbook: Build,
                                                        tmp_path: Path) -> None:
    path = four_from_utrecht(make_workbook)
    out = tmp_path / "voorbeeld"
    assert main(["preview", str(path), "--out", str(out), "--today", "2021-10-05"]) == 0
    assert len(list(out.glob("*.eml"))) == len(list(out.glob("*.html"))) == 5
    assert not (path.parent / "outbox").exists()


def test_preview_of_the_weekly_overview_reads_the_ledger(make_workbook: Build,
                                                         tmp_path: Path) -> None:
    path = four_from_utrecht(make_workbook)
    refused = MailIntent(MailKind.BEVESTIGING, "deelnemer2@example.nl", "Deelnemer2", "-",
                         row=3, meetings=(1,))
    with Ledger(ledger_path(path, {})) as ledger:
        ledger.begin(refused, datetime(2021, 11, 1, 7, tzinfo=UTC))
        ledger.mark_failed(refused, datetime(2021, 11, 1, 7, tzinfo=UTC), permanent=True,
                           reason="550 mailbox unavailable")
    out = tmp_path / "voorbeeld"
    assert main(["preview", str(path), "--out", str(out), "--today", "2021-11-08"]) == 0
    [overview] = out.glob("*-overzicht-*.eml")
    message = email.message_from_bytes(overview.read_bytes(), policy=email.policy.default)
    text = message.get_body(("plain",))
    assert isinstance(text, email.message.EmailMessage)
    # The refused address is one of the points that need a person, as in the real overview.
    assert "rij 3, kolom E-mail" in text.get_content()


def test_summary_writes_the_workbook_beside(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["summary", str(path), "--today", "2021-11-08"]) == 0
    summary = path.with_name("overzicht-2021-11-08.xlsx")
    sheets = CalamineWorkbook.from_path(str(summary)).sheet_names
    assert sheets[0] == "Overzicht"


def test_summary_send_mails_it_to_the_contact_person_beside_the_weekly_one(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = four_from_utrecht(make_workbook)  # the weekly overview is due on mondays
    assert main(["summary", str(path), "--send", "--today", "2021-11-04"]) == 0
    assert "en verstuurd" in capsys.readouterr().out
    outbox = path.parent / "outbox"
    [sent] = [email.message_from_bytes(f.read_bytes()) for f in outbox.glob("*.eml")]
    assert sent["To"] == "Annemiek van Tol <contact@example.org>"
    assert sent["X-Leergang-Mail"] == "overzicht"
    [attached] = [part.get_filename() for part in sent.walk() if part.get_filename()]
    assert attached == "overzicht-2021-11-04.xlsx"
    # Asked for on a thursday, it does not stand in for the weekly overview of monday.
    assert main(["run", str(path), "--today", "2021-11-08"]) == 0
    kinds = [email.message_from_bytes(f.read_bytes())["X-Leergang-Mail"]
             for f in outbox.glob("*.eml")]
    assert kinds.count("overzicht") == 2


def test_summary_send_during_a_run_exits_3_and_writes_nothing(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    # A run's batch holds the ledger's write lock between its mails: the two must not meet.
    path = four_from_utrecht(make_workbook)
    before = sorted(p.name for p in path.parent.iterdir())
    with run_lock(ledger_path(path, {})):
        assert main(["summary", str(path), "--send", "--today", "2021-11-04"]) == 3
    assert "Er loopt al een run" in capsys.readouterr().err
    after = sorted(p.name for p in path.parent.iterdir())
    assert [name for name in after if name not in before] == [
        ledger_path(path, {}).name + ".lock"]  # the lock the test itself took


def test_summary_without_send_writes_nothing_into_an_older_ledger(make_workbook: Build) -> None:
    path = four_from_utrecht(make_workbook)
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    with contextlib.closing(sqlite3.connect(ledger_path(path, {}))) as db:
        db.execute("DROP TABLE checks")
        db.execute("PRAGMA user_version = 1")
    before = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    assert main(["summary", str(path), "--today", "2021-10-06"]) == 0
    after = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    assert after.pop("overzicht-2021-10-06.xlsx")
    assert after == before


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "leergang_ops", "--help"],
                            capture_output=True, text=True, check=True)
    assert "validate" in result.stdout and "schedule" in result.stdout


def test_only_the_program_itself_leaves_its_objects_to_the_exit(make_workbook: Build) -> None:
    """Called as the program (no argv), main freezes what is alive for a quick exit; called
    from Python (tests, the scheduler) it leaves the collector as it was."""
    path = make_workbook()
    code = ("import gc, sys\n"
            "from leergang_ops.cli import main\n"
            f"main(['validate', {str(path)!r}])\n"
            "print('frozen', gc.get_freeze_count())\n"
            f"sys.argv = ['leergang-ops', 'validate', {str(path)!r}]\n"
            "main()\n"
            "print('frozen', gc.get_freeze_count())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    as_library, as_program = (int(line.split()[1]) for line in result.stdout.splitlines()
                              if line.startswith("frozen "))
    assert as_library == 0
    assert as_program > 0
