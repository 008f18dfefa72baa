"""Bounces read back over IMAP: what each message is, and reading without changing anything.

The samples in tests/data/bounces/ are written to the published formats (see its README);
the IMAP tests run against a private Dovecot (tests/imap_server.py).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from leergang_ops.errors import DeliveryError, InputError
from leergang_ops.mail import bounces
from leergang_ops.mail.bounces import (
    Failure,
    ImapConfig,
    Kind,
    MailboxUnreachable,
    check_connection,
    classify_message,
    read_bounces,
)

if TYPE_CHECKING:
    from tests.imap_server import ImapServer


SAMPLES = Path(__file__).parent / "data" / "bounces"
OUR_ID = re.compile(r"<[0-9a-f]{32}\.[a-z]+@example\.org>")
STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def written_samples() -> list[Path]:
    """The samples written to published formats (postfix-*.eml are real, made elsewhere)."""
    return sorted(p for p in SAMPLES.glob("*.eml") if not p.name.startswith("postfix-"))


# --- what each sample is -------------------------------------------------------------------

BOUNCES = [
    # file, recipient, status, returned Message-ID, X-Leergang-Mail
    ("m365-5.1.10-recipient-not-found.eml", "jan.devries@example.nl", "5.1.10",
     "<3f9a0c2e7b1d4e58a6c9f0b2d4e6a8c1.bevestiging@example.org>", "bevestiging"),
    ("m365-5.7.509-dmarc-reject.eml", "k.smit@gemeente.example.nl", "5.7.509",
     "<9d8c7b6a5f4e3d2c1b0a99887766554a.herinnering@example.org>", "herinnering"),
    ("gmail-5.1.1-no-such-user.eml", "f.elamrani@example.nl", "5.1.1",
     "<0c7d1e2f3a4b5c6d7e8f90a1b2c3d4e5.bevestiging@example.org>", "bevestiging"),
    ("gmail-5.2.2-mailbox-full.eml", "p.bakker@example.nl", "5.2.2",
     "<5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d.herinnering@example.org>", "herinnering"),
    ("exim-5.1.1-plain-text.eml", "s.visser@example.nl", "5.1.1",
     "<8e1f2a3b4c5d6e7f8091a2b3c4d5e6f7.bevestiging@example.org>", "bevestiging"),
    ("qmail-colleague-bounce.eml", "m.dekker@example.nl", "5.1.1",
     "<AM0PR01MB6402B7C1D2E3F4A5B6C7D8E9F0A1@AM0PR01MB6402.eurprd01.prod.exchangelabs.com>",
     None),
]
NOT_BOUNCES = [
    ("auto-reply-exchange-out-of-office.eml", Kind.AUTO_REPLY),
    ("auto-reply-vacation.eml", Kind.AUTO_REPLY),
    ("delay-warning.eml", Kind.DELAY),
    ("human-reply.eml", Kind.OTHER),
]


@pytest.mark.parametrize(("name", "recipient", "status", "message_id", "mail_kind"), BOUNCES)
def test_each_bounce_sample_names_recipient_status_and_our_original(
    name: str, recipient: str, status: str, message_id: str, mail_kind: str | None
) -> None:
    report = classify_message(sample(name))
    assert report.kind is Kind.BOUNCE
    assert [(f.recipient, f.status) for f in report.failures] == [(recipient, status)]
    assert (report.message_id, report.mail_kind) == (message_id, mail_kind)


@pytest.mark.parametrize(("name", "kind"), NOT_BOUNCES)
def test_auto_replies_delays_and_human_mail_are_not_bounces(name: str, kind: Kind) -> None:
    report = classify_message(sample(name))
    assert report.kind is kind
    assert not report.is_bounce
    assert report.failures == ()
    assert report.message_id is None


def test_every_sample_is_covered_by_a_test() -> None:
    named = {b[0] for b in BOUNCES} | {n[0] for n in NOT_BOUNCES}
    assert {p.name for p in written_samples()} == named


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("postfix-*.eml")), ids=lambda p: p.name)
def test_real_postfix_bounces_are_read_as_bounces_or_delays(path: Path) -> None:
    report = classify_message(path.read_bytes())
    if path.name.startswith("postfix-delayed"):
        assert report.kind is Kind.DELAY
        return
    assert report.kind is Kind.BOUNCE
    assert report.failures
    assert all(STATUS.fullmatch(f.status) and "@" in f.recipient and f.diagnostic
               for f in report.failures)


def test_microsoft_365_diagnostic_is_the_servers_words_on_one_line() -> None:
    (failure,) = classify_message(sample("m365-5.1.10-recipient-not-found.eml")).failures
    assert failure.diagnostic == ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
                                  "jan.devries@example.nl not found by SMTP address lookup")


def test_gmail_multiline_reply_is_joined_without_repeated_codes() -> None:
    (failure,) = classify_message(sample("gmail-5.1.1-no-such-user.eml")).failures
    assert failure.diagnostic.startswith(
        "550 5.1.1 The email account that you tried to reach does not exist. Please try "
        "double-checking the recipient's email address")
    assert "550-5.1.1" not in failure.diagnostic
    assert "\n" not in failure.diagnostic


def test_exim_plain_text_status_and_folded_reply_come_from_the_text_near_the_address() -> None:
    (failure,) = classify_message(sample("exim-5.1.1-plain-text.eml")).failures
    assert failure == Failure(
        "s.visser@example.nl", "5.1.1",
        "550 5.1.1 <s.visser@example.nl>: Recipient address rejected: User unknown in "
        "virtual mailbox table")


def test_a_colleagues_bounce_carries_none_of_our_headers() -> None:
    report = classify_message(sample("qmail-colleague-bounce.eml"))
    assert report.is_bounce
    assert report.mail_kind is None
    assert report.message_id is not None and not OUR_ID.fullmatch(report.message_id)


def test_a_bounce_dates_from_its_date_header_as_an_aware_datetime() -> None:
    report = classify_message(sample("m365-5.1.10-recipient-not-found.eml"))
    assert report.date == datetime(2021, 10, 4, 7, 0, 8, tzinfo=UTC)
    assert report.subject.startswith("Undeliverable: Bevestiging")


def test_without_a_date_header_the_received_time_is_the_date() -> None:
    raw = re.sub(rb"(?m)^Date:.*\n", b"", sample("exim-5.1.1-plain-text.eml"), count=1)
    received = datetime(2021, 10, 4, 7, 1, tzinfo=UTC)
    assert classify_message(raw, received).date == received


def dsn(status: str, diagnostic: str, action: str = "failed") -> bytes:
    """A minimal RFC 3464 report for one recipient, with our original's headers."""
    return (
        "From: MAILER-DAEMON@relay.example.org\nTo: leergang@example.org\n"
        "Subject: Undelivered Mail Returned to Sender\nDate: Mon, 4 Oct 2021 09:00:00 +0200\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nYour mail could not be delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.org\n\n"
        f"Final-Recipient: rfc822; Anna.Berg@Example.NL\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n\n"
        "--B\nContent-Type: text/rfc822-headers\n\nFrom: Platform31 <leergang@example.org>\n"
        "Message-ID: <00112233445566778899aabbccddeeff.herinnering@example.org>\n"
        "X-Leergang-Mail: herinnering\n\n--B--\n"
    ).encode()


def test_a_dsn_recipient_is_lower_case() -> None:
    (failure,) = classify_message(dsn("5.1.1", "550 5.1.1 User unknown")).failures
    assert failure.recipient == "anna.berg@example.nl"


def test_a_bare_status_class_gives_way_to_the_servers_own_code() -> None:
    (failure,) = classify_message(dsn("5.0.0", "550 #5.1.0 Address rejected.")).failures
    assert failure.status == "5.1.0"


def test_a_specific_status_field_wins_over_the_diagnostic() -> None:
    (failure,) = classify_message(dsn("5.7.1", "550 5.1.1 spam")).failures
    assert failure.status == "5.7.1"


def test_a_success_notice_is_not_a_bounce() -> None:
    assert classify_message(dsn("2.0.0", "250 2.0.0 OK", action="delivered")).kind is Kind.OTHER


def test_a_person_quoting_a_bounce_text_is_not_a_bounce() -> None:
    raw = (b"From: Joost Bos <j.bos@example.nl>\nTo: leergang@example.org\n"
           b"Subject: Wat betekent dit?\nDate: Mon, 4 Oct 2021 10:00:00 +0200\n\n"
           b"Ik kreeg dit terug:\n\nThis message was created automatically by mail delivery "
           b"software.\n\nA message that you sent could not be delivered to one or more of its "
           b"recipients.\n  a.collega@example.nl\n    SMTP error from remote mail server after "
           b"RCPT TO:<a.collega@example.nl>:\n    550 5.1.1 User unknown\n")
    assert classify_message(raw).kind is Kind.OTHER


def test_x_autoreply_header_marks_an_auto_reply() -> None:
    raw = (b"From: Eva Mulder <e.mulder@example.nl>\nTo: leergang@example.org\n"
           b"Subject: Re: Herinnering\nX-Autoreply: yes\n\nIk ben er niet.\n")
    assert classify_message(raw).kind is Kind.AUTO_REPLY


def test_garbage_is_other_not_an_error() -> None:
    assert classify_message(b"\x00\xff not a mail at all").kind is Kind.OTHER


# --- configuration -------------------------------------------------------------------------

BASE_ENV = {"LEERGANG_IMAP_HOST": "imap.example.org", "LEERGANG_IMAP_USER": "leergang",
            "LEERGANG_IMAP_PASSWORD": "zeer-geheim-123"}


def test_no_imap_host_means_no_bounce_reading() -> None:
    assert ImapConfig.from_env({"LEERGANG_IMAP_USER": "x"}) is None


def test_imap_defaults_are_ssl_on_993_and_the_inbox() -> None:
    config = ImapConfig.from_env(BASE_ENV)
    assert config is not None
    assert (config.security, config.port, config.folder) == ("ssl", 993, "INBOX")


def test_starttls_defaults_to_port_143() -> None:
    config = ImapConfig.from_env({**BASE_ENV, "LEERGANG_IMAP_SECURITY": "STARTTLS"})
    assert config is not None and (config.security, config.port) == ("starttls", 143)


@pytest.mark.parametrize(("extra", "variable"), [
    ({"LEERGANG_IMAP_SECURITY": "tls"}, "LEERGANG_IMAP_SECURITY"),
    ({"LEERGANG_IMAP_PORT": "imaps"}, "LEERGANG_IMAP_PORT"),
    ({"LEERGANG_IMAP_PORT": "70000"}, "LEERGANG_IMAP_PORT"),
    ({"LEERGANG_IMAP_USER": ""}, "LEERGANG_IMAP_USER"),
    ({"LEERGANG_IMAP_PASSWORD": ""}, "LEERGANG_IMAP_PASSWORD"),
    ({"LEERGANG_IMAP_HOST": "imap.example.org:993"}, "LEERGANG_IMAP_HOST"),
])
def test_bad_imap_settings_name_the_variable_and_never_the_password(
    extra: dict[str, str], variable: str
) -> None:
    with pytest.raises(InputError, match=variable) as caught:
        ImapConfig.from_env({**BASE_ENV, **extra})
    assert "zeer-geheim-123" not in str(caught.value)


def test_the_password_is_not_in_the_repr() -> None:
    assert "zeer-geheim-123" not in repr(ImapConfig.from_env(BASE_ENV))


def test_a_token_command_replaces_the_password() -> None:
    config = ImapConfig.from_env({**BASE_ENV, "LEERGANG_IMAP_TOKEN_COMMAND": "haal-token"})
    assert config is not None
    assert (config.password, config.token_command) == (None, "haal-token")


# --- against a real Dovecot ----------------------------------------------------------------

OLD = datetime(2021, 6, 1, 12, 0, tzinfo=UTC)  # before the course's first mail
SINCE = date(2021, 9, 1)
RECEIVED = datetime(2021, 10, 4, 9, 0, tzinfo=UTC)


def config_for(server: ImapServer, **extra: str) -> ImapConfig:
    config = ImapConfig.from_env(server.env(**extra))
    assert config is not None
    return config


@pytest.fixture
def mailbox(imap_server: ImapServer) -> ImapServer:
    """Every sample, some read and flagged by the people who share the mailbox."""
    for n, path in enumerate(written_samples()):
        flags = [(), (r"\Seen",), (r"\Seen", r"\Flagged"), ("$Label1",)][n % 4]
        imap_server.append(path.read_bytes(), flags=flags, date=RECEIVED)
    return imap_server


def test_read_bounces_finds_every_bounce_and_only_bounces(mailbox: ImapServer) -> None:
    scan = read_bounces(config_for(mailbox), SINCE, set(), mailbox.ssl_context())
    found = sorted((f.recipient, f.status) for m in scan.bounces for f in m.report.failures)
    assert found == sorted((b[1], b[2]) for b in BOUNCES)
    assert len(scan.messages) == len(scan.uids) == len(BOUNCES) + len(NOT_BOUNCES)


def test_a_second_read_with_the_seen_set_processes_nothing(mailbox: ImapServer) -> None:
    config, context = config_for(mailbox), mailbox.ssl_context()
    first = read_bounces(config, SINCE, set(), context)
    again = read_bounces(config, SINCE, first.processed, context)
    assert again.uids == () and again.messages == ()
    assert again.uidvalidity == first.uidvalidity


def test_only_new_messages_are_fetched_on_the_next_read(mailbox: ImapServer) -> None:
    config, context = config_for(mailbox), mailbox.ssl_context()
    first = read_bounces(config, SINCE, set(), context)
    mailbox.append(sample("gmail-5.2.2-mailbox-full.eml"), date=RECEIVED)
    again = read_bounces(config, SINCE, first.processed, context)
    assert again.uids == (max(first.uids) + 1,)
    assert [m.report.failures[0].recipient for m in again.bounces] == ["p.bakker@example.nl"]


def test_seen_pairs_of_an_old_uidvalidity_do_not_hide_messages(mailbox: ImapServer) -> None:
    config, context = config_for(mailbox), mailbox.ssl_context()
    first = read_bounces(config, SINCE, set(), context)
    stale = {(first.uidvalidity - 1, uid) for uid in first.uids}
    assert read_bounces(config, SINCE, stale, context).uids == first.uids


def test_reading_leaves_messages_uids_and_flags_exactly_as_they_were(
    mailbox: ImapServer,
) -> None:
    before = mailbox.snapshot()
    assert any(r"\Seen" not in m.flags for m in before.messages)  # unread mail stays unread
    read_bounces(config_for(mailbox), SINCE, set(), mailbox.ssl_context())
    check_connection(config_for(mailbox), mailbox.ssl_context())
    assert mailbox.snapshot() == before


def test_since_excludes_messages_from_before_the_first_mail(imap_server: ImapServer) -> None:
    imap_server.append(sample("m365-5.1.10-recipient-not-found.eml"), date=OLD)
    imap_server.append(sample("gmail-5.1.1-no-such-user.eml"), date=RECEIVED)
    scan = read_bounces(config_for(imap_server), SINCE, set(), imap_server.ssl_context())
    assert [m.report.failures[0].recipient for m in scan.messages] == ["f.elamrani@example.nl"]


def test_messages_are_fetched_in_batches(mailbox: ImapServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounces, "FETCH_BATCH", 3)
    scan = read_bounces(config_for(mailbox), SINCE, set(), mailbox.ssl_context())
    assert [m.uid for m in scan.messages] == list(scan.uids)
    assert len(scan.bounces) == len(BOUNCES)


def test_another_folder_can_be_read(imap_server: ImapServer) -> None:
    imap_server.append(sample("exim-5.1.1-plain-text.eml"), folder="Bounces", date=RECEIVED)
    config = config_for(imap_server, LEERGANG_IMAP_FOLDER="Bounces")
    scan = read_bounces(config, SINCE, set(), imap_server.ssl_context())
    assert [m.report.mail_kind for m in scan.bounces] == ["bevestiging"]


def test_check_connection_over_ssl_says_what_works(mailbox: ImapServer) -> None:
    line = check_connection(config_for(mailbox), mailbox.ssl_context())
    assert line == (f"IMAP 127.0.0.1:{mailbox.port}: inloggen gelukt, map INBOX gevonden "
                    f"({len(BOUNCES) + len(NOT_BOUNCES)} berichten)")


def test_starttls_on_the_plain_port_works(mailbox: ImapServer) -> None:
    config = config_for(mailbox, LEERGANG_IMAP_SECURITY="starttls",
                        LEERGANG_IMAP_PORT=str(mailbox.plain_port))
    assert "inloggen gelukt" in check_connection(config, mailbox.ssl_context())
    assert len(read_bounces(config, SINCE, set(), mailbox.ssl_context()).bounces) == \
        len(BOUNCES)


def test_a_token_command_logs_in_with_xoauth2(imap_server: ImapServer) -> None:
    if not imap_server.xoauth2:
        pytest.skip("this Dovecot offers no XOAUTH2 without an OAuth2 server")
    env = imap_server.env(LEERGANG_IMAP_TOKEN_COMMAND=f"echo {imap_server.password}")
    del env["LEERGANG_IMAP_PASSWORD"]
    config = ImapConfig.from_env(env)
    assert config is not None
    assert "inloggen gelukt" in check_connection(config, imap_server.ssl_context())


def test_a_refused_token_is_configuration_without_the_token(imap_server: ImapServer) -> None:
    if not imap_server.xoauth2:
        pytest.skip("this Dovecot offers no XOAUTH2 without an OAuth2 server")
    config = replace(config_for(imap_server), password=None,
                     token_command="echo verlopen-token-xyz")
    with pytest.raises(InputError, match="LEERGANG_IMAP_TOKEN_COMMAND") as caught:
        check_connection(config, imap_server.ssl_context())
    assert "verlopen-token-xyz" not in str(caught.value)


def test_a_wrong_password_is_configuration_and_the_password_is_not_shown(
    imap_server: ImapServer,
) -> None:
    config = replace(config_for(imap_server), password="fout-wachtwoord-42")
    with pytest.raises(InputError, match="IMAP-login geweigerd") as caught:
        read_bounces(config, SINCE, set(), imap_server.ssl_context())
    message = str(caught.value)
    assert "fout-wachtwoord-42" not in message and imap_server.password not in message
    assert "LEERGANG_IMAP_USER" in message and "app-wachtwoord" in message
    assert not isinstance(caught.value, DeliveryError)


def test_a_folder_that_does_not_exist_is_configuration(imap_server: ImapServer) -> None:
    config = config_for(imap_server, LEERGANG_IMAP_FOLDER="Onbestelbaar")
    with pytest.raises(InputError, match="map 'Onbestelbaar' niet gevonden") as caught:
        read_bounces(config, SINCE, set(), imap_server.ssl_context())
    assert "LEERGANG_IMAP_FOLDER" in str(caught.value)


def test_nothing_listening_is_unreachable_not_configuration() -> None:
    from tests.imap_server import free_port

    config = ImapConfig("127.0.0.1", "afzender@example.org", port=free_port(), password="x",
                        timeout=5)
    with pytest.raises(MailboxUnreachable, match="niet bereikbaar") as caught:
        read_bounces(config, SINCE, set())
    assert caught.value.exit_status == 1


def test_a_host_name_that_does_not_exist_is_configuration() -> None:
    config = ImapConfig("imap.example.invalid", "afzender@example.org", password="x")
    with pytest.raises(InputError, match=r"bestaat niet.*LEERGANG_IMAP_HOST"):
        check_connection(config)


def test_ssl_against_the_plain_port_is_configuration_with_a_hint(
    imap_server: ImapServer,
) -> None:
    config = config_for(imap_server, LEERGANG_IMAP_PORT=str(imap_server.plain_port))
    with pytest.raises(InputError, match="poort 143 bij starttls"):
        check_connection(config, imap_server.ssl_context())


def test_an_untrusted_certificate_is_configuration(imap_server: ImapServer) -> None:
    with pytest.raises(InputError, match="certificaat van de server is niet geldig"):
        check_connection(config_for(imap_server))  # the system's CAs do not know it


@pytest.fixture
def no_starttls_server() -> Iterator[int]:
    """A bare IMAP greeting that offers no STARTTLS, then silence; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            while data := conn.recv(1024):
                tag = data.split(b" ", 1)[0]
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n"
                             if b"CAPABILITY" in data.upper() else tag + b" BAD no\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    listener.close()
    thread.join(timeout=5)


def test_starttls_when_the_server_does_not_offer_it_is_configuration(
    no_starttls_server: int,
) -> None:
    config = ImapConfig("127.0.0.1", "afzender@example.org", port=no_starttls_server,
                        password="x", security="starttls", timeout=5)
    with pytest.raises(InputError, match="biedt geen STARTTLS aan"):
        check_connection(config)


# --- the fixture itself ----------------------------------------------------------------------


def test_dovecot_24_gets_its_own_configuration_syntax(imap_server: ImapServer) -> None:
    from tests.imap_server import config_23, config_24

    new, old = config_24(imap_server.layout), config_23(imap_server.layout)
    assert new.splitlines()[0] == "dovecot_config_version = 2.4.0"
    assert "passwd_file_path = " in new and "mail_driver = maildir" in new
    assert "ssl_server_cert_file = " in new and "mail_location" not in new
    assert "mail_location = maildir:~/Maildir" in old and "dovecot_config_version" not in old


def test_the_private_dovecot_keeps_its_runtime_files_out_of_the_system_folders(
    imap_server: ImapServer,
) -> None:
    text = imap_server.config.read_text()
    assert "/run/dovecot" not in text and "/etc/dovecot" not in text
    assert f"base_dir = {imap_server.layout.base_dir}" in text
