"""Delivery: the outbox, SMTP against a real aiosmtpd on loopback, fault classification."""

from __future__ import annotations

import dataclasses
import errno
import os
import smtplib
import socket
import ssl
import sys
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from leergang_ops.errors import EnvironmentFault, InputError
from leergang_ops.mail import transport as transport_module
from leergang_ops.mail.ics import ZONE
from leergang_ops.mail.render import Mail, Templates, render, sample_course
from leergang_ops.mail.replies import About, Step
from leergang_ops.mail.transport import (
    DeliveryFault,
    FaultKind,
    Outbox,
    SmtpConfig,
    SmtpTransport,
    classify,
    dot_stuffed,
    fault_from,
    open_transport,
)
from leergang_ops.model import MailIntent, MailKind
from tests.imap_server import make_certificate

if TYPE_CHECKING:
    from tests.smtp_server import SmtpServer

# The smtp_server and make_smtp_server fixtures come from tests/smtp_server.py, which
# tests/conftest.py loads with `pytest_plugins`.

NOW = datetime(2021, 11, 4, 9, 0, tzinfo=ZONE)
COURSE = sample_course()
TEMPLATES = Templates()
SECRET = "Geheim-wachtwoord-42"


def intent(n: int) -> MailIntent:
    return MailIntent(MailKind.WACHTLIJST, f"deelnemer{n}@example.nl", f"Deelnemer {n}", "-",
                      extra={"status": "wachtlijst", "melding": ""})


def rendered(it: MailIntent, now: datetime = NOW) -> Mail:
    return Mail.of(render(it, COURSE, TEMPLATES, now=now))


def batch(count: int) -> list[tuple[Mail, MailIntent]]:
    """`count` waiting-list mails to different invented participants."""
    return [(rendered(it), it) for it in map(intent, range(count))]


class Clock:
    """A fake monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def transport(server: SmtpServer, clock: Clock, *, retries: int = 3,
              **changes: Any) -> SmtpTransport:
    """An SmtpTransport to `server` on the fake clock; `changes` adjust its SmtpConfig."""
    config = SmtpConfig.from_env(server.env())
    assert config is not None
    return SmtpTransport(dataclasses.replace(config, **changes), sleep=clock.sleep,
                         monotonic=clock.monotonic, retries=retries)


def send_all(smtp: SmtpTransport, mails: list[tuple[Mail, MailIntent]]) -> None:
    with smtp:
        for message, it in mails:
            smtp.send(message, it)


# --- SMTP ----------------------------------------------------------------------------


def test_a_batch_goes_over_one_connection(smtp_server: SmtpServer, clock: Clock) -> None:
    send_all(transport(smtp_server, clock), batch(5))
    assert smtp_server.recipients() == [f"deelnemer{n}@example.nl" for n in range(5)]
    assert smtp_server.connections == 1
    assert clock.sleeps == []


def test_the_envelope_and_message_arrive_intact(smtp_server: SmtpServer, clock: Clock) -> None:
    send_all(transport(smtp_server, clock), batch(1))
    [received] = smtp_server.messages
    assert received.mail_from == "leergang@example.org"
    assert received.message["X-Leergang-Mail"] == "wachtlijst"
    assert received.data.count(b"\n") == received.data.count(b"\r\n")  # no bare LF


def test_a_dropped_connection_mid_batch_reconnects_and_delivers_everything(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.drop_on_data(3)
    send_all(transport(smtp_server, clock), batch(5))
    assert smtp_server.recipients() == [f"deelnemer{n}@example.nl" for n in range(5)]
    assert smtp_server.connections == 2
    assert [r.connection for r in smtp_server.messages] == [1, 1, 2, 2, 2]
    assert clock.sleeps == [2.0]


def test_durable_runs_once_after_mail_from_and_before_the_message(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    seen: list[int] = []
    [(message, it)] = batch(1)
    with transport(smtp_server, clock) as smtp:
        smtp.send(message, it, durable=lambda: seen.append(len(smtp_server.messages)))
    assert seen == [0]  # called once, while nothing was delivered yet
    assert len(smtp_server.messages) == 1


def test_meanwhile_runs_in_the_pauses_and_to_its_end(smtp_server: SmtpServer,
                                                     clock: Clock) -> None:
    steps: list[int] = []

    def work() -> Iterator[None]:
        for n in range(10):  # more steps than pauses: the rest runs before send returns
            steps.append(n)
            yield

    [(message, it)] = batch(1)
    with transport(smtp_server, clock) as smtp:
        smtp.send(message, it, meanwhile=work())
    assert steps == list(range(10))
    assert smtp_server.recipients() == ["deelnemer0@example.nl"]


def test_durable_and_meanwhile_run_also_when_delivery_fails(smtp_server: SmtpServer,
                                                            clock: Clock) -> None:
    smtp_server.reject("deelnemer0@example.nl", 550)
    calls: list[str] = []

    def work() -> Iterator[None]:
        calls.append("work")
        yield

    [(message, it)] = batch(1)
    with transport(smtp_server, clock) as smtp, pytest.raises(DeliveryFault):
        smtp.send(message, it, durable=lambda: calls.append("durable"), meanwhile=work())
    assert calls == ["durable", "work"]


def test_a_refusing_durable_sends_nothing_and_leaves_the_connection_usable(
        smtp_server: SmtpServer, clock: Clock) -> None:
    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused

    (first, first_it), (second, second_it) = batch(2)
    with transport(smtp_server, clock) as smtp:
        with pytest.raises(Refused):
            smtp.send(first, first_it, durable=refuse)
        smtp.send(second, second_it)
    assert smtp_server.recipients() == ["deelnemer1@example.nl"]
    assert smtp_server.connections == 1


def test_a_message_line_starting_with_a_dot_arrives_intact(smtp_server: SmtpServer,
                                                           clock: Clock) -> None:
    [(message, it)] = batch(1)
    dotted = dataclasses.replace(message, data=message.data + b".\r\n..twee\r\n")
    send_all(transport(smtp_server, clock), [(dotted, it)])
    [received] = smtp_server.messages
    assert received.data.endswith(b"\r\n.\r\n..twee\r\n")


@pytest.mark.parametrize("data", [b"", b".", b"..", b".een\r\n", b"een\r\n.\r\n",
                                  b"een\r\n..twee\r\n.\r\n", b"\n.\n.", b"a.b\r\n. c",
                                  b"\r\n\r\n.\r\n"])
def test_dot_stuffing_does_what_smtplib_does(data: bytes) -> None:
    assert dot_stuffed(data) == smtplib._quote_periods(data)  # type: ignore[attr-defined]


@pytest.mark.parametrize("address", ["a b@example.nl", "a\tb@example.nl", "<a@example.nl>",
                                     "a@example.nl\r\nRCPT TO:<b@example.nl>", "a\u2003@example.nl",
                                     ""])
def test_an_address_that_would_break_the_command_is_refused(address: str) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        transport_module._path(address)


def test_outbox_writes_nothing_when_durable_refuses_and_still_finishes_meanwhile(
        tmp_path: Path) -> None:
    steps: list[int] = []

    def refuse() -> None:
        raise RuntimeError("al verstuurd")

    def work() -> Iterator[None]:
        steps.append(1)
        yield

    [(message, it)] = batch(1)
    with pytest.raises(RuntimeError):
        Outbox(tmp_path / "outbox").send(message, it, durable=refuse, meanwhile=work())
    assert not (tmp_path / "outbox").exists()
    assert steps == [1]


def test_outbox_calls_durable_before_writing(tmp_path: Path) -> None:
    written: list[int] = []
    [(message, it)] = batch(1)
    Outbox(tmp_path).send(message, it, durable=lambda: written.append(len(list(
        tmp_path.iterdir()))))
    assert written == [0]
    assert len(list(tmp_path.iterdir())) == 1


def test_451_once_then_delivered(smtp_server: SmtpServer, clock: Clock) -> None:
    smtp_server.fail_next(451)
    send_all(transport(smtp_server, clock), batch(2))
    assert smtp_server.recipients() == ["deelnemer0@example.nl", "deelnemer1@example.nl"]
    assert clock.sleeps == [2.0]


def test_temporary_faults_back_off_then_raise_temporary(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.fail_next(421, times=10)
    [(message, it)] = batch(1)
    with transport(smtp_server, clock, retries=2) as smtp, \
            pytest.raises(DeliveryFault) as err:
        smtp.send(message, it)
    assert (err.value.kind, err.value.code) == (FaultKind.TEMPORARY, 421)
    assert "Try again later" in err.value.reason
    assert clock.sleeps == [2.0, 4.0]
    assert smtp_server.messages == []


def test_550_raises_permanent_at_once_and_the_batch_goes_on(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.reject("deelnemer1@example.nl", 550)
    mails = batch(3)
    with transport(smtp_server, clock) as smtp:
        smtp.send(*mails[0])
        with pytest.raises(DeliveryFault) as err:
            smtp.send(*mails[1])
        smtp.send(*mails[2])
    assert (err.value.kind, err.value.code) == (FaultKind.PERMANENT, 550)
    assert "Recipient address rejected" in err.value.reason
    assert smtp_server.recipients() == ["deelnemer0@example.nl", "deelnemer2@example.nl"]
    assert smtp_server.connections == 1
    assert clock.sleeps == []


def test_rate_pacing_sleeps_between_messages(smtp_server: SmtpServer, clock: Clock) -> None:
    send_all(transport(smtp_server, clock, rate_per_minute=30), batch(3))
    assert clock.sleeps == [2.0, 2.0]
    assert len(smtp_server.messages) == 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_is_temporary_and_the_rest_fails_fast(clock: Clock) -> None:
    config = SmtpConfig("127.0.0.1", free_port(), security="none", timeout=2)
    mails = batch(2)
    with SmtpTransport(config, sleep=clock.sleep, monotonic=clock.monotonic) as smtp:
        for message, it in mails:
            with pytest.raises(DeliveryFault) as err:
                smtp.send(message, it)
            assert err.value.kind is FaultKind.TEMPORARY
    assert clock.sleeps == [2.0, 4.0, 8.0]  # backoff for the first mail only


def test_password_login(make_smtp_server: Any, clock: Clock) -> None:
    server = make_smtp_server(require_auth=True)
    server.users["leergang@example.org"] = SECRET
    env = server.env(LEERGANG_SMTP_USER="leergang@example.org", LEERGANG_SMTP_PASSWORD=SECRET)
    config = SmtpConfig.from_env(env)
    assert config is not None
    send_all(SmtpTransport(config, sleep=clock.sleep), batch(1))
    assert [r.login for r in server.messages] == ["leergang@example.org"]


def test_a_refused_password_is_a_configuration_error_without_the_password(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.users["leergang@example.org"] = "iets anders"
    config = SmtpConfig.from_env(smtp_server.env(LEERGANG_SMTP_USER="leergang@example.org",
                                                 LEERGANG_SMTP_PASSWORD=SECRET))
    assert config is not None
    with SmtpTransport(config, sleep=clock.sleep) as smtp, pytest.raises(InputError) as err:
        smtp.send(*batch(1)[0])
    assert str(err.value).startswith(f"SMTP-login geweigerd door 127.0.0.1:{smtp_server.port}")
    assert SECRET not in str(err.value)
    assert smtp_server.messages == []


def token_command(token: str) -> str:
    return f"{sys.executable} -c \"print('{token}')\""


def test_xoauth2_login_with_a_token_command(smtp_server: SmtpServer, clock: Clock) -> None:
    smtp_server.tokens["leergang@example.org"] = "tok-123"
    config = SmtpConfig.from_env(smtp_server.env(
        LEERGANG_SMTP_USER="leergang@example.org",
        LEERGANG_SMTP_TOKEN_COMMAND=token_command("tok-123")))
    assert config is not None
    send_all(SmtpTransport(config, sleep=clock.sleep), batch(1))
    assert smtp_server.logins == [("XOAUTH2", "leergang@example.org")]
    assert [r.login for r in smtp_server.messages] == ["leergang@example.org"]


def test_a_refused_token_is_a_configuration_error_without_the_token(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    smtp_server.tokens["leergang@example.org"] = "tok-123"
    config = SmtpConfig.from_env(smtp_server.env(
        LEERGANG_SMTP_USER="leergang@example.org",
        LEERGANG_SMTP_TOKEN_COMMAND=token_command("verlopen-token")))
    assert config is not None
    with SmtpTransport(config, sleep=clock.sleep) as smtp, pytest.raises(InputError) as err:
        smtp.send(*batch(1)[0])
    assert "SMTP-login geweigerd" in str(err.value)
    assert "verlopen-token" not in str(err.value)


def test_a_failing_token_command_names_the_program_not_its_arguments(clock: Clock) -> None:
    command = f"{sys.executable} -c \"import sys; sys.exit(3)\" --client-secret {SECRET}"
    config = SmtpConfig("127.0.0.1", 25, "u@example.org", security="none",
                        token_command=command)
    with pytest.raises(InputError, match="exitstatus 3") as err:
        SmtpTransport(config)._token()
    assert SECRET not in str(err.value)
    assert Path(sys.executable).name in str(err.value)


def test_starttls_not_offered_is_a_configuration_error(
    smtp_server: SmtpServer, clock: Clock
) -> None:
    with transport(smtp_server, clock, security="starttls") as smtp, \
            pytest.raises(InputError, match="biedt geen STARTTLS"):
        smtp.send(*batch(1)[0])


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as the IMAP fixture makes one."""
    return make_certificate(tmp_path)


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], make_smtp_server: Any) -> SmtpServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return make_smtp_server(tls_context=context)


def test_starttls_checks_the_certificate(tls_server: SmtpServer, clock: Clock) -> None:
    with transport(tls_server, clock, security="starttls") as smtp, \
            pytest.raises(InputError, match="certificaat van de SMTP-server is niet geldig"):
        smtp.send(*batch(1)[0])
    assert tls_server.messages == []


def test_starttls_with_a_trusted_certificate_delivers(
    tls_server: SmtpServer, certificate: tuple[Path, Path], clock: Clock
) -> None:
    config = SmtpConfig("127.0.0.1", tls_server.port, security="starttls")
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    send_all(SmtpTransport(config, sleep=clock.sleep, ssl_context=trusted), batch(1))
    assert len(tls_server.messages) == 1


# --- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "kind"), [
    (ConnectionRefusedError(111, "Connection refused"), FaultKind.TEMPORARY),
    (ConnectionResetError(104, "reset"), FaultKind.TEMPORARY),
    (TimeoutError("timed out"), FaultKind.TEMPORARY),
    (smtplib.SMTPAuthenticationError(454, b"4.7.0 temporary auth failure"),
     FaultKind.TEMPORARY),
    (ssl.SSLError("bad record"), FaultKind.TEMPORARY),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), FaultKind.TEMPORARY),
    (smtplib.SMTPConnectError(-1, b"no greeting"), FaultKind.TEMPORARY),
    (smtplib.SMTPDataError(421, b"4.7.0 closing"), FaultKind.TEMPORARY),
    (smtplib.SMTPDataError(432, b"4.3.2 slow down"), FaultKind.TEMPORARY),
    (smtplib.SMTPDataError(451, b"4.3.0 try later"), FaultKind.TEMPORARY),
    (smtplib.SMTPSenderRefused(452, b"4.3.1 full", "a@example.org"), FaultKind.TEMPORARY),
    (smtplib.SMTPRecipientsRefused({"a@example.nl": (450, b"4.2.1 busy")}),
     FaultKind.TEMPORARY),
    (smtplib.SMTPRecipientsRefused({"a@example.nl": (550, b"5.1.1 unknown")}),
     FaultKind.PERMANENT),
    # Refused at RCPT, only an address refusal is permanent (mail/replies has the rules).
    (smtplib.SMTPResponseException(552, b"5.2.2 mailbox full"), FaultKind.TEMPORARY),
    (smtplib.SMTPResponseException(554, b"5.7.1 Relay access denied"), FaultKind.TEMPORARY),
    (smtplib.SMTPException("something else"), FaultKind.TEMPORARY),
])
def test_classify_at_rcpt(error: BaseException, kind: FaultKind) -> None:
    assert classify(error, Step.RCPT) is kind


def test_content_refused_after_data_is_not_permanent() -> None:
    fault = fault_from(smtplib.SMTPDataError(554, b"5.7.1 rejected"), Step.MESSAGE)
    assert (fault.kind, fault.about) == (FaultKind.TEMPORARY, About.CONTENT)


# --- the outbox ----------------------------------------------------------------------


def test_outbox_writes_a_parseable_eml(tmp_path: Path) -> None:
    [(message, it)] = batch(1)
    with Outbox(tmp_path / "outbox") as outbox:
        outbox.send(message, it)
    [file] = (tmp_path / "outbox").iterdir()
    assert file.name == f"wachtlijst-deelnemer0-example.nl-{file.name[-12:-4]}.eml"
    parsed = message_from_bytes(file.read_bytes(), policy=policy.default)
    assert parsed["X-Leergang-Mail"] == "wachtlijst"
    assert parsed["To"].addresses[0].addr_spec == "deelnemer0@example.nl"


def test_a_resend_overwrites_the_same_file(tmp_path: Path) -> None:
    it = intent(1)
    outbox = Outbox(tmp_path)
    outbox.send(rendered(it), it)
    outbox.send(rendered(it, datetime(2021, 11, 6, 9, 0, tzinfo=ZONE)), it)
    [file] = tmp_path.iterdir()
    assert "06 Nov 2021" in message_from_bytes(file.read_bytes())["Date"]


def test_outbox_file_names_are_safe_and_distinct_per_key(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    odd = MailIntent(MailKind.HERINNERING, "../../Evil Name@Example.NL", "x", "m2-7d")
    other = dataclasses.replace(odd, scope="m2-1d")
    names = {outbox.path_for(odd).name, outbox.path_for(other).name}
    assert len(names) == 2
    for name in names:
        assert name.startswith("herinnering-evil-name-example.nl-m2-")
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789.-")
        assert outbox.path_for(odd).parent == tmp_path


def test_outbox_leaves_no_half_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(message, it)] = batch(1)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(DeliveryFault) as err:
        Outbox(tmp_path).send(message, it)
    assert err.value.kind is FaultKind.TEMPORARY
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_under_the_outbox_stops_the_batch_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(message, it)] = batch(1)

    def full(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(EnvironmentFault, match="schijf vol") as err:
        Outbox(tmp_path).send(message, it)
    assert err.value.exit_status == 2
    assert list(tmp_path.iterdir()) == []


def test_outbox_lines_end_in_crlf(tmp_path: Path) -> None:
    [(message, it)] = batch(1)
    Outbox(tmp_path).send(message, it)
    data = next(tmp_path.iterdir()).read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")


# --- configuration -------------------------------------------------------------------


def test_no_host_means_no_smtp() -> None:
    assert SmtpConfig.from_env({}) is None
    assert SmtpConfig.from_env({"LEERGANG_SMTP_HOST": "  "}) is None


def test_smtp_defaults_to_starttls_on_587() -> None:
    config = SmtpConfig.from_env({"LEERGANG_SMTP_HOST": "smtp.example.org"})
    assert config == SmtpConfig("smtp.example.org", 587, security="starttls")


def test_ssl_defaults_to_465_and_rate_is_read() -> None:
    config = SmtpConfig.from_env({"LEERGANG_SMTP_HOST": "smtp.example.org",
                                  "LEERGANG_SMTP_SECURITY": "SSL", "LEERGANG_SMTP_RATE": "30"})
    assert config is not None
    assert (config.port, config.security, config.rate_per_minute) == (465, "ssl", 30.0)


@pytest.mark.parametrize(("variable", "value"), [
    ("LEERGANG_SMTP_HOST", "smtp.example.org:587"),
    ("LEERGANG_SMTP_PORT", "vijf"),
    ("LEERGANG_SMTP_PORT", "70000"),
    ("LEERGANG_SMTP_SECURITY", "tls"),
    ("LEERGANG_SMTP_RATE", "-1"),
    ("LEERGANG_SMTP_RATE", "snel"),
])
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    env = {"LEERGANG_SMTP_HOST": "smtp.example.org", "LEERGANG_SMTP_USER": "u@example.org",
           "LEERGANG_SMTP_PASSWORD": SECRET, variable: value}
    with pytest.raises(InputError, match=variable) as err:
        SmtpConfig.from_env(env)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(("env", "named"), [
    ({"LEERGANG_SMTP_PASSWORD": SECRET}, "LEERGANG_SMTP_USER"),
    ({"LEERGANG_SMTP_TOKEN_COMMAND": "get-token"}, "LEERGANG_SMTP_USER"),
    ({"LEERGANG_SMTP_USER": "u@example.org"}, "LEERGANG_SMTP_PASSWORD"),
])
def test_incomplete_login_names_what_is_missing(env: dict[str, str], named: str) -> None:
    with pytest.raises(InputError, match=named) as err:
        SmtpConfig.from_env({"LEERGANG_SMTP_HOST": "smtp.example.org", **env})
    assert SECRET not in str(err.value)


def test_the_password_is_not_in_the_repr() -> None:
    config = SmtpConfig.from_env({"LEERGANG_SMTP_HOST": "smtp.example.org",
                                  "LEERGANG_SMTP_USER": "u@example.org",
                                  "LEERGANG_SMTP_PASSWORD": SECRET})
    assert config is not None and config.password == SECRET
    assert SECRET not in repr(config)


def test_open_transport_chooses_outbox_or_smtp(tmp_path: Path) -> None:
    default = tmp_path / "outbox"
    assert isinstance(open_transport({}, default), Outbox)
    assert open_transport({}, default).folder == default  # type: ignore[union-attr]
    chosen = open_transport({"LEERGANG_OUTBOX": str(tmp_path / "elders")}, default)
    assert isinstance(chosen, Outbox) and chosen.folder == tmp_path / "elders"
    smtp = open_transport({"LEERGANG_SMTP_HOST": "smtp.example.org"}, default)
    assert isinstance(smtp, SmtpTransport) and smtp.config.host == "smtp.example.org"


def test_outbox_setting_wins_over_an_smtp_host(tmp_path: Path) -> None:
    # Contract §5: LEERGANG_OUTBOX means "write there instead of sending".
    env = {"LEERGANG_SMTP_HOST": "smtp.example.org", "LEERGANG_OUTBOX": str(tmp_path / "proef")}
    chosen = open_transport(env, tmp_path / "outbox")
    assert isinstance(chosen, Outbox) and chosen.folder == tmp_path / "proef"
