"""Mails that come back later (contract §3): `run` reads the sender's mailbox on a real Dovecot.

The example workbook's mails go to a real SMTP server on loopback; the bounces are the real
ones Postfix 3.7 returned for the same workbook's mails (tests/data/bounces/postfix-README.md
— our Message-IDs derive from the mail's key, so they are the same here), beside Microsoft
365, Gmail and Exim samples written to their published formats, an out-of-office reply, a
human mail and a colleague's own bounced mail.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from leergang_ops.cli import main
from leergang_ops.ledger_location import ledger_path
from tests.imap_server import ImapServer
from tests.smtp_server import SmtpServer, free_port

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"
BOUNCES = Path(__file__).resolve().parent / "data" / "bounces"
SENT_DAY = ["--today", "2021-11-04"]  # the day the Postfix bounces' mails were sent
NEXT_DAY = ["--today", "2021-11-05"]

# What came back, and for whom (postfix-README.md).
ADDRESS_WRONG = ("r.koster@example.nl", "t.mulder@example.nl")  # 5.1.1, our mails
FULL = "lotte.bosman@example.nl"  # 5.2.2, our confirmation
SPAM = "p.veenstra@example.nl"  # 5.7.1 after DATA, our reminder: content
DELAYED = "daan.smit@example.nl"  # a delay notice: not a bounce
MAILBOX = ["postfix-5.1.1-user-unknown.eml", "postfix-5.1.1-user-unknown-herinnering.eml",
           "postfix-5.2.2-mailbox-full.eml", "postfix-5.7.1-remote-spam-after-data.eml",
           "postfix-delayed.eml", "postfix-colleague-bounce.eml",
           "m365-5.1.10-recipient-not-found.eml", "gmail-5.1.1-no-such-user.eml",
           "exim-5.1.1-plain-text.eml", "auto-reply-exchange-out-of-office.eml",
           "human-reply.eml"]


@pytest.fixture
def course(tmp_path: Path, smtp_server: SmtpServer, imap_server: ImapServer,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example workbook, its mails up to 4 November sent, the bounce mailbox set up.

    The confirmations go out a week earlier, the 7-day reminders on 4 November: the bounces
    (real Postfix ones among them) are of both kinds. (Confirmed on 4 November, they would
    stand in for the reminders.)
    """
    path = tmp_path / "leergang-wijkaanpak.xlsx"
    shutil.copy(EXAMPLE, path)
    for name, value in smtp_server.env().items():
        monkeypatch.setenv(name, value)
    assert main(["run", str(path), "--today", "2021-10-28"]) == 0
    assert main(["run", str(path), *SENT_DAY]) == 0
    for name, value in imap_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSL_CERT_FILE", str(imap_server.cert_file))  # trust the test CA
    return path


def fill_mailbox(imap_server: ImapServer, names: list[str] = MAILBOX) -> None:
    for n, name in enumerate(names):
        flags = (r"\Seen",) if n % 2 else ()  # some read by a colleague, some not
        imap_server.append((BOUNCES / name).read_bytes(), flags=flags)


def meldingen(path: Path) -> dict[str, str]:
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Deelnemers").to_python()
    header = [str(h) for h in rows[0]]
    email, melding = header.index("E-mail"), header.index("Melding")
    return {str(row[email]).lower(): str(row[melding]) for row in rows[1:] if row[email]}


def received(server: SmtpServer) -> Counter[tuple[str, str]]:
    return Counter((str(r.message["X-Leergang-Mail"]), rcpt)
                   for r in server.messages for rcpt in r.rcpt_tos)


def seen_count(path: Path) -> int:
    with sqlite3.connect(ledger_path(path, {})) as db:
        return int(db.execute("SELECT COUNT(*) FROM mailbox_seen").fetchone()[0])


def test_bounces_reach_the_right_rows_and_change_nothing_in_the_mailbox(
        course: Path, smtp_server: SmtpServer, imap_server: ImapServer) -> None:
    before_meldingen = meldingen(course)
    fill_mailbox(imap_server)
    before = imap_server.snapshot()
    sent_before = received(smtp_server)

    assert main(["run", str(course), *NEXT_DAY]) == 0
    after_meldingen = meldingen(course)
    for address in ADDRESS_WRONG:
        assert "Mail kwam terug" in after_meldingen[address]
        assert "5.1.1" in after_meldingen[address]
    changed = {a for a in after_meldingen if after_meldingen[a] != before_meldingen[a]}
    assert changed == set(ADDRESS_WRONG)  # the rest nothing: spam, delay, colleague, others
    assert imap_server.snapshot() == before  # messages, UIDs and flags identical

    # A full mailbox is temporary: that confirmation is due again, and went out again.
    new = received(smtp_server) - sent_before
    assert new[("bevestiging", FULL)] == 1
    assert not any(rcpt in ADDRESS_WRONG for _, rcpt in new)


def test_a_second_run_processes_nothing_again(course: Path, smtp_server: SmtpServer,
                                              imap_server: ImapServer) -> None:
    fill_mailbox(imap_server)
    assert main(["run", str(course), *NEXT_DAY]) == 0
    looked_at = seen_count(course)
    assert looked_at == len(MAILBOX)
    sent = received(smtp_server)
    assert main(["run", str(course), *NEXT_DAY]) == 0
    assert seen_count(course) == looked_at
    assert received(smtp_server) == sent  # no second resend of the full mailbox's mail


def test_only_new_messages_are_fetched_the_next_time(course: Path,
                                                     imap_server: ImapServer) -> None:
    fill_mailbox(imap_server, MAILBOX[:3])
    assert main(["run", str(course), *NEXT_DAY]) == 0
    fill_mailbox(imap_server, MAILBOX[3:])
    assert main(["run", str(course), *NEXT_DAY]) == 0
    assert seen_count(course) == len(MAILBOX)


def test_no_more_mails_to_a_bounced_address_until_retry(
        course: Path, smtp_server: SmtpServer, imap_server: ImapServer) -> None:
    fill_mailbox(imap_server, MAILBOX[:1])  # r.koster's confirmation bounced
    assert main(["run", str(course), *NEXT_DAY]) == 0
    assert main(["run", str(course), "--today", "2021-11-10"]) == 0  # the 1-day reminders
    assert received(smtp_server)[("herinnering", "r.koster@example.nl")] == 1  # only before
    assert main(["retry", str(course), "r.koster@example.nl"]) == 0
    assert main(["run", str(course), "--today", "2021-11-10"]) == 0
    assert received(smtp_server)[("bevestiging", "r.koster@example.nl")] == 2  # due again
    assert "kwam terug" not in meldingen(course)["r.koster@example.nl"]


def test_the_summary_names_the_bounce_a_colleague_got_as_mogelijk_only(
        course: Path, imap_server: ImapServer, tmp_path: Path) -> None:
    fill_mailbox(imap_server, ["postfix-colleague-bounce-two-recipients.eml",
                               "postfix-5.7.1-remote-spam-after-data.eml"])
    assert main(["run", str(course), *NEXT_DAY]) == 0
    assert all("kwam terug" not in m for m in meldingen(course).values())
    out = tmp_path / "overzicht.xlsx"
    assert main(["summary", str(course), "--out", str(out), *NEXT_DAY]) == 0
    text = "\n".join(str(cell) for sheet in ("Overzicht", "Verzonden")
                     for row in CalamineWorkbook.from_path(str(out)).get_sheet_by_name(sheet)
                     .to_python() for cell in row)
    assert "Mogelijk teruggekomen mail voor r.koster@example.nl" in text
    assert "Mogelijk teruggekomen mail voor t.mulder@example.nl" in text
    assert f"aan {SPAM} kwam terug om de inhoud of het beleid" in text


def test_an_auto_reply_and_a_delay_notice_are_not_bounces(course: Path,
                                                          imap_server: ImapServer) -> None:
    before = meldingen(course)
    fill_mailbox(imap_server, ["auto-reply-exchange-out-of-office.eml", "auto-reply-vacation.eml",
                               "postfix-delayed.eml", "postfix-delayed-4.2.2-mailbox-full.eml",
                               "human-reply.eml"])
    assert main(["run", str(course), *NEXT_DAY]) == 0
    assert meldingen(course) == before
    assert DELAYED in before


# --- bad configuration -------------------------------------------------------------------

def test_a_wrong_imap_password_stops_even_the_first_run_before_its_first_mail(
        tmp_path: Path, smtp_server: SmtpServer, imap_server: ImapServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nieuw.xlsx"
    shutil.copy(EXAMPLE, path)
    for name, value in {**smtp_server.env(), **imap_server.env(),
                        "LEERGANG_IMAP_PASSWORD": "wrong-secret-123"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SSL_CERT_FILE", str(imap_server.cert_file))
    assert main(["run", str(path), *SENT_DAY]) == 2
    assert smtp_server.messages == []


@pytest.mark.parametrize(("setting", "value", "words"), [
    ("LEERGANG_IMAP_PASSWORD", "wrong-secret-123", "LEERGANG_IMAP_USER"),
    ("LEERGANG_IMAP_FOLDER", "Bounces", "Bounces"),
])
def test_a_wrong_imap_login_or_folder_is_exit_2_and_sends_nothing(
        course: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], setting: str, value: str, words: str) -> None:
    monkeypatch.setenv(setting, value)
    sent = len(smtp_server.messages)
    capsys.readouterr()
    assert main(["run", str(course), "--today", "2021-11-10"]) == 2  # reminders were due
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len(smtp_server.messages) == sent
    for place in (err, *(p.read_bytes().decode("latin-1") for p in course.parent.iterdir()
                         if p.is_file())):
        assert "wrong-secret-123" not in place  # not printed, not in the ledger or workbook


def test_an_unknown_imap_host_is_exit_2_and_sends_nothing(
        course: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEERGANG_IMAP_HOST", "imap.invalid")  # never resolves (RFC 2606)
    sent = len(smtp_server.messages)
    assert main(["run", str(course), "--today", "2021-11-10"]) == 2
    assert "bestaat niet" in capsys.readouterr().err
    assert len(smtp_server.messages) == sent


def test_an_unreachable_imap_server_is_reported_and_the_run_goes_on_with_exit_1(
        course: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LEERGANG_IMAP_PORT", str(free_port()))  # nothing listens there
    sent = len(smtp_server.messages)
    assert main(["run", str(course), "--today", "2021-11-10"]) == 1
    assert "niet bereikbaar" in capsys.readouterr().err
    assert len(smtp_server.messages) > sent  # the reminders still went out


def test_validate_connect_reports_the_mailbox(course: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(course), "--connect", *NEXT_DAY]) in (0, 1)
    out = capsys.readouterr().out
    assert "inloggen gelukt, map INBOX gevonden" in out
