"""`run` against a real SMTP server that refuses at each step with real servers' replies.

Contract §3 "What the mail server says decides what happens": the address, the sender/
account/policy, the content or the moment — and after a configuration refusal is fixed,
every mail is delivered exactly once. The replies are those in tests/data/server_replies.md.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.ledger_location import ledger_path
from tests.conftest import person
from tests.smtp_server import SmtpServer

Build = Callable[..., Path]
CONFIRM_DAY = ["--today", "2021-10-05"]  # confirmations, the waiting list, the overview
REMIND_DAY = ["--today", "2021-11-04"]  # 7 days before meeting 1: the reminders
SECRET = "s3cret-app-password"


def five(make_workbook: Build) -> Path:
    """Five confirmed participants in five municipalities."""
    gemeenten = ("Utrecht", "Zeist", "Houten", "Amersfoort", "Nieuwegein")
    return make_workbook(registrations=[person(n, g, day=n)
                                        for n, g in enumerate(gemeenten, start=1)])


def received(server: SmtpServer) -> Counter[tuple[str, str]]:
    return Counter((str(r.message["X-Leergang-Mail"]), rcpt)
                   for r in server.messages for rcpt in r.rcpt_tos)


def ledger_rows(path: Path) -> list[tuple[Any, ...]]:
    """(kind, recipient, status, about) of every ledger row."""
    ledger = ledger_path(path, {})
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger) as db:
        return db.execute("SELECT kind, recipient, status, about FROM mails "
                          "ORDER BY kind, recipient").fetchall()


def meldingen(path: Path) -> list[str]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    header = [str(h) for h in rows[0]]
    if "Melding" not in header:
        return []
    return [str(row[header.index("Melding")]) for row in rows[1:]]


def login_server(make_smtp_server: Any, monkeypatch: pytest.MonkeyPatch, *,
                 password: str) -> SmtpServer:
    """A server that wants a login, whose account has `password`; we log in with SECRET."""
    server: SmtpServer = make_smtp_server(require_auth=True)
    server.users["leergang@example.org"] = password
    for name, value in server.env(LEERGANG_SMTP_USER="leergang@example.org",
                                  LEERGANG_SMTP_PASSWORD=SECRET).items():
        monkeypatch.setenv(name, value)
    return server


def every_mail_once(server: SmtpServer) -> None:
    """No mail arrived twice: each Message-ID (derived from the mail's key) once."""
    ids = Counter(str(r.message["Message-ID"]) for r in server.messages)
    assert all(count == 1 for count in ids.values()), ids


# --- the sender, the account, the policy: stop, blame nobody, all stays due -------------

@pytest.mark.parametrize(("step", "reply"), [
    ("RCPT", "554 5.7.1 <{addr}>: Relay access denied"),  # Postfix, no login
    ("RCPT", "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"),
    ("MAIL", "553 5.7.1 <leergang@example.org>: Sender address rejected: not owned by user "
             "leergang"),  # Postfix, reject_sender_login_mismatch
    ("MAIL", "530 5.7.57 Client not authenticated to send mail."),  # Microsoft 365
    ("MAIL", "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
    ("DATA", "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiException"
             "SendAsDenied; Failed to process message due to a permanent exception"),
])
def test_a_configuration_refusal_stops_the_run_blames_nobody_and_all_is_delivered_after_the_fix(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, step: str, reply: str) -> None:
    path = five(make_workbook)
    smtp_env.refuse(step, reply.replace("{addr}", "deelnemer1@example.nl"))
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    err = capsys.readouterr().err
    assert "weigert de verzending" in err and "niets bij een deelnemer genoteerd" in err
    assert "Traceback" not in err
    assert smtp_env.messages == []
    assert ledger_rows(path) == []  # nothing recorded against anyone, not even `sending`
    assert not any("controleer" in m for m in meldingen(path))

    smtp_env.lift()  # the operator fixed the account
    with caplog.at_level(logging.WARNING, "leergang_ops"):
        assert main(["run", str(path), *CONFIRM_DAY]) == 0
    assert caplog.records == []  # no "an interrupted run may have delivered" in particular
    assert len(received(smtp_env)) == 6  # five confirmations and the overview
    every_mail_once(smtp_env)


def test_a_5xx_greeting_reply_to_ehlo_is_configuration(make_workbook: Build,
                                                       smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    smtp_env.refuse("EHLO", "554 5.7.1 Access denied")
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    assert ledger_rows(path) == []


def test_the_same_refusal_for_three_recipients_in_a_row_is_not_about_them(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = five(make_workbook)
    for n in range(1, 6):
        address = f"deelnemer{n}@example.nl"
        smtp_env.refuse("RCPT", f"550 <{address}>: Recipient address rejected: Access denied",
                        address=address)
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    assert "drie verschillende adressen na elkaar" in capsys.readouterr().err
    assert smtp_env.handler.commands.count("RCPT") == 3  # stopped at the third
    assert ledger_rows(path) == []
    smtp_env.lift()
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    every_mail_once(smtp_env)
    assert len(received(smtp_env)) == 6


def test_address_codes_are_never_taken_for_a_streak(make_workbook: Build,
                                                    smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    for n in range(1, 5):
        address = f"deelnemer{n}@example.nl"
        smtp_env.refuse("RCPT", f"550 5.1.1 <{address}>: Recipient address rejected: User "
                                "unknown in local recipient table", address=address)
    assert main(["run", str(path), *CONFIRM_DAY]) == 1
    assert sorted(received(smtp_env)) == [("bevestiging", "deelnemer5@example.nl"),
                                          ("overzicht", "contact@example.org")]
    refused = [row for row in ledger_rows(path) if row[2] == "bounced"]
    assert [(r[1], r[3]) for r in refused] == [(f"deelnemer{n}@example.nl", "address")
                                               for n in range(1, 5)]
    assert sum("controleer het adres" in m for m in meldingen(path)) == 4


def test_a_plain_refusal_followed_by_a_delivery_stands_as_an_address_refusal(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    smtp_env.refuse("RCPT", "550 Unrouteable address", address="deelnemer2@example.nl")
    assert main(["run", str(path), *CONFIRM_DAY]) == 1
    assert ("bevestiging", "deelnemer2@example.nl", "bounced", "address") in ledger_rows(path)
    assert "controleer het adres" in meldingen(path)[1]
    assert len(received(smtp_env)) == 5


# --- the content: reported, not blamed on the address -----------------------------------

def test_content_refused_after_data_is_reported_and_not_blamed_on_the_address(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    smtp_env.refuse("DATA", "550 5.7.1 Message rejected as spam", address="deelnemer3@example.nl")
    assert main(["run", str(path), *REMIND_DAY]) == 1
    assert "inhoud geweigerd" in capsys.readouterr().err
    assert ("herinnering", "deelnemer3@example.nl", "deferred", "content") in ledger_rows(path)
    assert not any("controleer" in m for m in meldingen(path))
    summary = path.parent / "overzicht.xlsx"
    assert main(["summary", str(path), "--out", str(summary), *REMIND_DAY]) == 0
    overview = CalamineWorkbook.from_path(str(summary)).get_sheet_by_name("Overzicht")
    text = " ".join(str(cell) for row in overview.to_python() for cell in row)
    assert "deelnemer3@example.nl is om de inhoud geweigerd" in text
    smtp_env.lift()
    assert main(["run", str(path), "--today", "2021-11-05"]) == 0  # still due, sent now
    assert received(smtp_env)[("herinnering", "deelnemer3@example.nl")] == 1


def test_three_content_refusals_of_one_kind_make_that_kind_wait_for_the_next_run(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    # Gmail's reply, on two lines as Gmail sends it.
    smtp_env.refuse("DATA", "550-5.7.1 Our system has detected that this message is\r\n"
                            "550 5.7.1 likely unsolicited mail.")
    assert main(["run", str(path), *REMIND_DAY]) == 1
    # The first run's six; then three reminders and the weekly overview (another kind).
    assert smtp_env.handler.commands.count("DATA") == 6 + 3 + 1
    reminders = [row for row in ledger_rows(path) if row[0] == "herinnering"]
    assert len(reminders) == 3  # the other two were not tried and hold no record at all
    smtp_env.lift()
    assert main(["run", str(path), "--today", "2021-11-05"]) == 0
    assert sum(1 for kind, _ in received(smtp_env) if kind == "herinnering") == 5
    every_mail_once(smtp_env)


# --- a full mailbox: temporary for three runs ------------------------------------------

def test_a_full_mailbox_is_retried_at_the_next_runs_and_permanent_after_three(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    smtp_env.refuse("RCPT", "552 5.2.2 <deelnemer4@example.nl>: Mailbox full",
                    address="deelnemer4@example.nl")
    for day, status in (("05", "deferred"), ("06", "deferred"), ("07", "bounced")):
        assert main(["run", str(path), "--today", f"2021-10-{day}"]) == 1
        row = [r for r in ledger_rows(path) if r[1] == "deelnemer4@example.nl"]
        assert row == [("bevestiging", "deelnemer4@example.nl", status, "mailbox-full")]
    assert smtp_env.handler.commands.count("RCPT") == 6 + 1 + 1  # tried once a run


def test_two_refusals_on_one_day_count_as_one_run(make_workbook: Build,
                                                  smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    smtp_env.refuse("RCPT", "452 4.2.2 Over quota", address="deelnemer4@example.nl")
    for _ in range(3):
        assert main(["run", str(path), *CONFIRM_DAY]) == 1
    [row] = [r for r in ledger_rows(path) if r[1] == "deelnemer4@example.nl"]
    assert row[2] == "deferred"


# --- logins and TLS ----------------------------------------------------------------------

def test_a_refused_login_is_tried_once_with_one_mechanism_and_records_nothing(
        make_workbook: Build, make_smtp_server: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    server = login_server(make_smtp_server, monkeypatch, password="the-right-one")
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    err = capsys.readouterr().err
    assert "SMTP-login geweigerd" in err and SECRET not in err
    assert [c for c in server.handler.commands if c.startswith("AUTH")] == ["AUTH PLAIN"]
    assert ledger_rows(path) == []
    with caplog.at_level(logging.WARNING, "leergang_ops.ledger"):
        assert main(["run", str(path), *CONFIRM_DAY]) == 2
    assert "mogelijk al afgeleverd" not in caplog.text


def test_ssl_against_a_plain_port_is_configuration_with_a_hint(
        make_workbook: Build, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in smtp_server.env(LEERGANG_SMTP_SECURITY="ssl").items():
        monkeypatch.setenv(name, value)
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    err = capsys.readouterr().err
    assert "Poort 587 hoort bij LEERGANG_SMTP_SECURITY=starttls" in err
    assert ledger_rows(path) == []


# --- the Date header ---------------------------------------------------------------------

def test_the_date_header_is_the_moment_of_sending_not_the_today_of_the_run(
        make_workbook: Build, smtp_env: SmtpServer) -> None:
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    for message in (r.message for r in smtp_env.messages):
        assert parsedate_to_datetime(message["Date"]).year >= 2026


# --- retry -----------------------------------------------------------------------------

def test_retry_clears_a_refusal_and_its_mails_are_due_again(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = five(make_workbook)
    smtp_env.refuse("RCPT", "550 5.1.1 <deelnemer2@example.nl>: User unknown",
                    address="deelnemer2@example.nl")
    assert main(["run", str(path), *CONFIRM_DAY]) == 1
    assert main(["run", str(path), *CONFIRM_DAY]) == 0  # refused for good: not tried again
    assert smtp_env.handler.commands.count("RCPT") == 6
    smtp_env.lift()
    assert main(["retry", str(path), "Deelnemer2@Example.nl"]) == 0
    assert "1 mail staat weer klaar" in capsys.readouterr().out
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    assert received(smtp_env)[("bevestiging", "deelnemer2@example.nl")] == 1
    assert "controleer het adres" not in meldingen(path)[1]


def test_retry_of_an_address_without_a_refusal_is_exit_2(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 0
    assert main(["retry", str(path), "deelnemer2@example.nl"]) == 2
    assert "geen weigering of teruggekomen mail" in capsys.readouterr().err


# --- validate --connect ----------------------------------------------------------------

def test_validate_connect_logs_in_and_sends_nothing(
        make_workbook: Build, make_smtp_server: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = login_server(make_smtp_server, monkeypatch, password=SECRET)
    path = five(make_workbook)
    assert main(["validate", str(path), "--connect"]) == 0
    out = capsys.readouterr().out
    assert "verbinding gelukt" in out and "ingelogd als leergang@example.org" in out
    assert "IMAP: geen postbus ingesteld" in out
    assert server.handler.commands == ["AUTH PLAIN"]  # no MAIL, no RCPT, no DATA
    assert server.logins == [("PLAIN", "leergang@example.org")]


def test_validate_connect_with_a_wrong_password_says_so_and_exits_2(
        make_workbook: Build, make_smtp_server: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    login_server(make_smtp_server, monkeypatch, password="another")
    path = five(make_workbook)
    assert main(["validate", str(path), "--connect"]) == 2
    out = capsys.readouterr().out
    assert "werkt niet" in out and "SMTP-login geweigerd" in out and SECRET not in out


def test_an_smtp_host_that_does_not_exist_is_configuration(
        make_workbook: Build, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEERGANG_SMTP_HOST", "smtp.invalid")  # never resolves (RFC 2606)
    monkeypatch.setenv("LEERGANG_SMTP_SECURITY", "none")
    path = five(make_workbook)
    assert main(["run", str(path), *CONFIRM_DAY]) == 2
    assert "smtp.invalid bestaat niet" in capsys.readouterr().err
    assert ledger_rows(path) == []
