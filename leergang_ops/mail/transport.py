"""Deliver rendered mails: to an outbox folder (the default) or over SMTP.

Both transports take `(mail, intent)` (a rendered `Mail`) and either return (delivered) or raise
`DeliveryFault`, classified by one pure function: TEMPORARY faults are retried (here with
backoff, then at the next run), PERMANENT ones are reported for that address. A fault in
the configuration (login refused, no STARTTLS, an invalid certificate) raises InputError:
no mail can go out until the operator fixes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import smtplib
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

from leergang_ops.environment import fault
from leergang_ops.errors import DeliveryError, InputError
from leergang_ops.mail.login import (
    host_from,
    login_from,
    port_from,
    run_token_command,
    security_from,
    unknown_host,
)
from leergang_ops.mail.render import Mail
from leergang_ops.mail.replies import (
    SENDER_HINT_START,
    About,
    Reply,
    Step,
    Verdict,
    configuration_hint,
    judge,
)
from leergang_ops.model import MailIntent

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
PREFIX = "LEERGANG_SMTP"


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP server (contract §5); the password never shows in a repr."""

    host: str
    port: int
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    security: str = "starttls"  # starttls | ssl | none
    token_command: str | None = None
    rate_per_minute: float | None = None
    timeout: float = 30

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpConfig | None:
        """Read LEERGANG_SMTP_*; None when no host is set. Bad values raise InputError."""
        host = host_from(env, PREFIX)
        if not host:
            return None
        security = security_from(env, PREFIX, SECURITY_MODES)
        user, password, token_command = login_from(env, PREFIX)
        return cls(
            host=host,
            port=port_from(env, PREFIX, DEFAULT_PORTS[security]),
            user=user,
            password=password,
            security=security,
            token_command=token_command,
            rate_per_minute=_rate(env.get("LEERGANG_SMTP_RATE", "")),
        )


def _rate(raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        rate = float(raw.strip().replace(",", "."))
    except ValueError:
        rate = 0.0
    if not (rate > 0 and math.isfinite(rate)):
        raise InputError(
            f"LEERGANG_SMTP_RATE moet een positief aantal berichten per minuut zijn, niet {raw!r}"
        )
    return rate


# --- faults --------------------------------------------------------------------------


class FaultKind(StrEnum):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class DeliveryFault(DeliveryError):
    """One mail was not delivered; `verdict` says what the refusal was about (mail/replies)."""

    def __init__(self, verdict: Verdict, *, data_sent: bool = False) -> None:
        super().__init__(str(verdict.reply))
        self.verdict = verdict
        self.data_sent = data_sent  # the message went out: it may have arrived after all

    @property
    def about(self) -> About:
        return self.verdict.about

    @property
    def kind(self) -> FaultKind:
        """Only an address refusal is permanent; everything else stays due."""
        return FaultKind.PERMANENT if self.about is About.ADDRESS else FaultKind.TEMPORARY

    @property
    def code(self) -> int | None:
        return self.verdict.reply.code

    @property
    def reason(self) -> str:
        """The server's reply or what failed; never a secret."""
        return self.verdict.reply.text

    @property
    def step(self) -> Step:
        return self.verdict.reply.step


class ServerRefusesUs(InputError):
    """The server refused our account, sender or relay: a configuration problem (exit 2)."""

    def __init__(self, where: str, verdict: Verdict) -> None:
        reply = verdict.reply
        super().__init__(
            f"De mailserver {where} weigert de verzending bij {reply.step}: \"{reply}\". "
            f"Dit ligt niet aan de deelnemers: {configuration_hint(verdict)}. Er is niets "
            "verstuurd en niets bij een deelnemer genoteerd; alle mails blijven klaarstaan "
            "voor de volgende run.")
        self.verdict = verdict
        # The sender address is the organisers' (Instellingen), the account the operator's.
        self.for_organisers = configuration_hint(verdict).startswith(SENDER_HINT_START)


def reply_of(error: BaseException, step: Step) -> Reply:
    """The server's reply carried by an SMTP or network error, at `step`."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        if not error.recipients:
            return Reply(None, "recipient refused", step)
        code, refusal = max(error.recipients.values())
        return Reply(code, _text(refusal), step)
    if isinstance(error, smtplib.SMTPResponseException) and error.smtp_code > 0:
        return Reply(int(error.smtp_code), _text(error.smtp_error), step)
    what = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return Reply(None, what, step)


def fault_from(error: BaseException, step: Step = Step.CONNECT) -> DeliveryFault:
    """The DeliveryFault for an SMTP or network error, judged by the rules."""
    if isinstance(error, DeliveryFault):
        return error
    return DeliveryFault(judge(reply_of(error, step)))


def classify(error: BaseException, step: Step = Step.RCPT) -> FaultKind:
    """Retry or give up, for an error at `step`: see mail/replies for the rules."""
    return fault_from(error, step).kind


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


class _Refused(Exception):
    """A reply other than the one the step wants, with the step it came at."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


# --- the outbox ----------------------------------------------------------------------


class Outbox:
    """Writes each mail as an .eml file; a resend of the same intent overwrites its file.

    The file name is derived from the intent key alone (no date), so a mail resent after a
    crash on another day still lands on the same file instead of becoming a second one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def destination(self) -> str:
        """What the ledger records as where the mails went: they were not sent."""
        return f"outbox:{self.folder}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def path_for(self, intent: MailIntent) -> Path:
        """The .eml file for an intent: `<kind>-<recipient>[-<scope>]-<hash>.eml`."""
        digest = hashlib.sha256("\x1f".join(intent.key).encode("utf-8")).hexdigest()[:8]
        parts = [str(intent.kind), _safe(intent.recipient)]
        if intent.scope.strip("- "):
            parts.append(_safe(intent.scope))
        return self.folder / f"{'-'.join(p for p in parts if p)}-{digest}.eml"

    def send(self, mail: Mail, intent: MailIntent, *, durable: Callable[[], None] | None = None,
             meanwhile: Iterator[object] | None = None) -> None:
        """Write the message atomically: a reader never sees half a file.

        `durable` and `meanwhile` as for SmtpTransport.send: `durable` before the file is
        written (if it raises, nothing is written), `meanwhile` run to its end after.
        """
        target = self.path_for(intent)
        pauses = _Pauses(durable, meanwhile)
        try:
            pauses.pause()
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, mail.data)
        except OSError as err:
            # A full or read-only disk stops the batch (exit 2); anything else is retried.
            raise fault(err, target) or DeliveryFault(judge(Reply(
                None, f"{target}: {err.strerror or err}", Step.MESSAGE))) from err
        finally:
            pauses.finish()
        log.info("%s voor %s geschreven naar %s", intent.kind, intent.recipient, target)


def _safe(text: str) -> str:
    """File-name safe: lower-case letters, digits, dots and hyphens, at most 60."""
    cleaned = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.")
    return cleaned[:60].strip("-.")


def _write_atomically(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the ledger will say "sent": the file must exist
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


# --- SMTP ----------------------------------------------------------------------------


class SmtpTransport:
    """One SMTP connection per batch: reconnects when dropped, paces, retries, classifies.

    Use as a context manager around a batch. A temporary fault is retried within `send`
    (reconnecting, backoff `backoff`, `2*backoff`, …) up to `retries` times, then raised
    as DeliveryFault(TEMPORARY); a 5xx reply raises DeliveryFault(PERMANENT) at once.
    When the server cannot be reached at all, the rest of the batch fails fast.
    """

    def __init__(
        self,
        config: SmtpConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        retries: int = 3,
        backoff: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._monotonic = monotonic
        self._context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._next_slot: float | None = None
        self._unreachable: DeliveryFault | None = None
        self._step = Step.CONNECT  # where the current transaction is
        self.data_sent = False  # whether the current message went out (it may have arrived)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye to the server (quietly: the batch is over either way)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    @property
    def destination(self) -> str:
        """What the ledger records as where the mails went."""
        return f"smtp:{self.config.host}"

    def send(self, mail: Mail, intent: MailIntent, *, durable: Callable[[], None] | None = None,
             meanwhile: Iterator[object] | None = None) -> None:
        """Deliver one message to `intent.address`, or raise DeliveryFault / ServerRefusesUs.

        Most of an SMTP transaction is waiting for the server's replies; `send` fills those
        pauses. `durable` is called in the first one, right after MAIL FROM went out and
        before anything the server could accept: the ledger records `sending` and commits
        there, so the statements and the disk's sync cost no time of their own. If it
        raises, the transaction is reset, nothing is sent and its exception propagates. When
        the transaction fails before MAIL FROM (no connection, TLS, login), `durable` is
        never called: nothing was begun, so nothing is left `sending`.
        `meanwhile` (CPU work in small steps, such as rendering the next mail) is stepped
        once while the server answers RCPT TO and run to its end while it takes in the
        message (the longest wait), in any case before `send` returns or raises; it must
        not raise.

        A raised DeliveryFault says in `data_sent` whether the message itself went out (a
        connection lost after that may have delivered it).
        """
        if self._unreachable is not None:
            raise DeliveryFault(self._unreachable.verdict)
        pauses = _Pauses(durable, meanwhile)
        try:
            self._deliver(mail.sender, intent, mail.data, pauses)
        finally:
            pauses.finish(begin=False)

    def _deliver(self, sender: str, intent: MailIntent, data: bytes, pauses: _Pauses) -> None:
        for attempt in range(self.retries + 1):
            self._pace()
            self._step, self.data_sent = Step.CONNECT, False
            try:
                self._transaction(sender, intent.address, data, pauses)
            except _Refused as refused:
                verdict = judge(refused.reply)
            except (smtplib.SMTPException, OSError) as err:
                verdict = judge(reply_of(err, self._step))
            else:
                log.info("%s verstuurd aan %s", intent.kind, intent.recipient)
                return
            if verdict.about is About.CONFIGURATION:
                log.info("SMTP-server %s weigert ons bij %s: %s", self.config.where,
                          verdict.reply.step, verdict.reply)
                self.close()
                raise ServerRefusesUs(self.config.where, verdict)
            fault = DeliveryFault(verdict, data_sent=self.data_sent)
            if verdict.about is not About.MOMENT:
                log.info("%s aan %s geweigerd (%s) door %s: %s", intent.kind,
                            intent.recipient, verdict.about, self.config.where, verdict.reply)
                raise fault
            self.close()
            if attempt == self.retries or self._step is Step.AUTH:
                # A login is tried once per run: accounts lock after repeated failures.
                self._give_up(fault)
                raise fault
            delay = self.backoff * 2**attempt
            log.info("Tijdelijke fout voor %s aan %s bij %s (poging %d van %d): %s; "
                        "opnieuw over %.1f s", intent.kind, intent.recipient,
                        self.config.where, attempt + 1, self.retries + 1, verdict.reply, delay)
            self._sleep(delay)

    def _transaction(self, sender: str, address: str, data: bytes, pauses: _Pauses) -> None:
        """One SMTP transaction, as `smtplib.SMTP.sendmail` does it for one recipient.

        Each command is sent, then `pauses` fills the wait, then the reply is read. A reply
        that is not the one wanted raises _Refused with the step it came at.
        """
        smtp = self._connection()
        options = ""
        if not (address.isascii() and sender.isascii()):
            # Non-ASCII addresses need SMTPUTF8; without it the server cannot take them.
            if not smtp.has_extn("smtputf8"):
                raise _Refused(Reply(553, "5.6.7 address needs SMTPUTF8, which the server "
                                     "lacks", Step.RCPT))
            options = " SMTPUTF8"
        self._step = Step.MAIL
        code, reply = self._command(smtp, pauses, "MAIL", f"FROM:{_path(sender)}{options}")
        if code != 250:
            self._refused(smtp, code, reply)
        self._step = Step.RCPT
        code, reply = self._command(smtp, pauses, "RCPT", f"TO:{_path(address)}")
        if code not in (250, 251):
            self._refused(smtp, code, reply)
        # No work in this pause: the server answers DATA at once (measured: work here only
        # delayed the message, while the wait after it is the longest).
        self._step = Step.DATA
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._refused(smtp, code, reply)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        self._step = Step.MESSAGE
        self.data_sent = True
        smtp.send(dot_stuffed(data) + b".\r\n")
        pauses.finish()  # the server reads the whole message now: the longest pause
        code, reply = smtp.getreply()
        if code != 250:
            self._refused(smtp, code, reply)

    def _refused(self, smtp: smtplib.SMTP, code: int, reply: bytes) -> None:
        """Reset the transaction (or close when the server is closing) and raise _Refused."""
        if code == 421 or code < 0:
            self.close()
        else:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.rset()
        raise _Refused(Reply(code if code > 0 else None, _text(reply), self._step))

    @staticmethod
    def _command(smtp: smtplib.SMTP, pauses: _Pauses, name: str,
                 args: str = "") -> tuple[int, bytes]:
        """Send one command, fill the pause, read the reply (smtplib's `docmd`, split).

        When the pause raises (`durable` refusing this mail, say), the reply is still read
        and the transaction reset, so the connection stays usable for the next mail. An
        interrupt (Ctrl-C) does not wait for the server: the batch ends anyway.
        """
        smtp.putcmd(name, args)
        try:
            pauses.pause()
        except Exception:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.getreply()
                smtp.rset()
            raise
        return smtp.getreply()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _give_up(self, fault: DeliveryFault) -> None:
        if fault.step in _SESSION_STEPS:
            # Nothing gets through; don't spend the whole backoff again on every mail.
            self._unreachable = fault
            log.info("SMTP-server %s niet bereikbaar: %s", self.config.where, fault)

    def _pace(self) -> None:
        """Wait until the next message may start: at most `rate_per_minute` a minute."""
        rate = self.config.rate_per_minute
        if not rate:
            return
        now = self._monotonic()
        if self._next_slot is not None and now < self._next_slot:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + 60.0 / rate

    def _connect(self) -> smtplib.SMTP:
        """Connect, greet, secure and log in; a refusal raises _Refused with its step."""
        cfg = self.config
        log.info("Verbinden met SMTP-server %s (%s)", cfg.where, cfg.security)
        self._step = Step.CONNECT
        try:
            if cfg.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                      context=self._tls_context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except ssl.SSLCertVerificationError as err:
            raise self._certificate_error(err) from err
        except ssl.SSLError as err:
            raise self._tls_mismatch(err) from err
        except smtplib.SMTPConnectError as err:
            raise _Refused(Reply(err.smtp_code if err.smtp_code > 0 else None,
                                 _text(err.smtp_error), Step.CONNECT)) from err
        except (TimeoutError, smtplib.SMTPServerDisconnected) as err:
            if cfg.security != "ssl" and cfg.port == DEFAULT_PORTS["ssl"]:
                raise self._tls_mismatch(err) from err
            raise
        except OSError as err:
            if unknown_host(err):
                raise InputError(f"SMTP-server {cfg.host} bestaat niet (servernaam onbekend); "
                                 "controleer LEERGANG_SMTP_HOST") from err
            raise
        try:
            self._greet(smtp)
            self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def check(self) -> str:
        """`validate --connect`: connect, greet, secure and log in, then QUIT; no MAIL.

        Returns one Dutch line on what works; raises InputError (configuration) or
        DeliveryFault (unreachable, temporary) on what does not.
        """
        cfg = self.config
        try:
            smtp = self._connect()
        except _Refused as refused:
            verdict = judge(refused.reply)
            if verdict.about is About.MOMENT:
                raise DeliveryFault(verdict) from refused
            raise ServerRefusesUs(cfg.where, verdict) from refused
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryFault(judge(reply_of(err, self._step))) from err
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
        secured = {"starttls": "STARTTLS", "ssl": "SSL/TLS", "none": "onversleuteld"}
        login = f"ingelogd als {cfg.user}" if cfg.user else "zonder login"
        return f"SMTP {cfg.where}: verbinding gelukt ({secured[cfg.security]}), {login}"

    def _tls_mismatch(self, err: BaseException) -> InputError:
        """The TLS mode does not fit the port: say which one does."""
        cfg = self.config
        return InputError(
            f"{cfg.where} spreekt geen {cfg.security}: de versleuteling past niet bij de poort "
            f"({type(err).__name__}: {err}). Poort 587 hoort bij LEERGANG_SMTP_SECURITY="
            "starttls, poort 465 bij ssl; zet de juiste in LEERGANG_SMTP_SECURITY of "
            "LEERGANG_SMTP_PORT")

    def _tls_context(self) -> ssl.SSLContext:
        """Certificate checks on (the system's CAs), made once per transport."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def _greet(self, smtp: smtplib.SMTP) -> None:
        self._step = Step.EHLO
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            raise _Refused(Reply(code if code > 0 else None, _text(reply), Step.EHLO))
        if self.config.security != "starttls":
            return
        if not smtp.has_extn("starttls"):
            raise InputError(
                f"{self.config.where} biedt geen STARTTLS aan: gebruik "
                "LEERGANG_SMTP_SECURITY=ssl (meestal poort 465), of none voor een relay "
                "op deze machine"
            )
        self._step = Step.STARTTLS
        try:
            smtp.starttls(context=self._tls_context())
        except ssl.SSLCertVerificationError as err:
            raise self._certificate_error(err) from err
        except smtplib.SMTPResponseException as err:
            raise _Refused(Reply(err.smtp_code, _text(err.smtp_error), Step.STARTTLS)) from err
        self._step = Step.EHLO
        code, reply = smtp.ehlo()
        if not 200 <= code < 300:
            raise _Refused(Reply(code if code > 0 else None, _text(reply), Step.EHLO))

    def _certificate_error(self, err: ssl.SSLCertVerificationError) -> InputError:
        return InputError(f"{self.config.where}: het certificaat van de SMTP-server is niet "
                          f"geldig ({err.verify_message or err.reason})")

    def _login(self, smtp: smtplib.SMTP) -> None:
        """Log in once, with one mechanism: a refusal is never followed by a second try.

        smtplib's `login` tries each mechanism it knows in turn, so a wrong password costs
        two or three failed logins a run; accounts with lockout rules lock.
        """
        cfg = self.config
        if not cfg.user:
            return
        self._step = Step.AUTH
        if not smtp.has_extn("auth"):
            raise InputError(f"{cfg.where} biedt geen inloggen (AUTH) aan: laat "
                             "LEERGANG_SMTP_USER leeg of kies een andere server")
        mechanism = self._mechanism(smtp)
        try:
            if mechanism == "XOAUTH2":
                auth = f"user={cfg.user}\x01auth=Bearer {self._token()}\x01\x01"
                # On failure the server sends a JSON challenge; the answer must be empty.
                smtp.auth("XOAUTH2", lambda challenge=None: auth if challenge is None else "",
                          initial_response_ok=True)
            else:
                smtp.user, smtp.password = cfg.user, cfg.password or ""
                method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
                smtp.auth(mechanism, method, initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as err:
            if 400 <= err.smtp_code < 500:
                raise  # e.g. 454: the server's auth backend is down; not retried this run
            raise InputError(
                f"SMTP-login geweigerd door {cfg.where} voor {cfg.user} ({mechanism}): "
                f"{err.smtp_code} {_text(err.smtp_error)}. Controleer LEERGANG_SMTP_USER en "
                "het wachtwoord of app-wachtwoord; de login is deze run niet opnieuw "
                "geprobeerd (accounts kunnen na herhaalde fouten geblokkeerd worden)"
            ) from err

    def _mechanism(self, smtp: smtplib.SMTP) -> str:
        """The one mechanism to log in with: XOAUTH2 with a token, else PLAIN, else LOGIN."""
        offered = (smtp.esmtp_features.get("auth") or "").upper().split()
        if self.config.token_command:
            return "XOAUTH2"
        for mechanism in ("PLAIN", "LOGIN"):
            if mechanism in offered:
                return mechanism
        raise InputError(f"{self.config.where} biedt geen inlogmethode aan die leergang-ops "
                         f"kent (aangeboden: {' '.join(offered) or 'geen'}; nodig: PLAIN of "
                         "LOGIN, of XOAUTH2 met LEERGANG_SMTP_TOKEN_COMMAND)")

    def _token(self) -> str:
        """Run LEERGANG_SMTP_TOKEN_COMMAND (no shell); its output is the OAuth2 token."""
        return run_token_command(self.config.token_command or "", "LEERGANG_SMTP_TOKEN_COMMAND")


def dot_stuffed(data: bytes) -> bytes:
    """RFC 5321 §4.5.2: every line that starts with a dot gets a second one.

    SMTP ends the message data with a line holding one dot. smtplib does this with the
    regex `(?m)^[.]`, which tries every position of the message (~0.1 ms for 10 KB); a line
    starts at the beginning or after a LF (`to_bytes` ends every line with CRLF).
    """
    stuffed = data.replace(b"\n.", b"\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


_UNUSABLE_IN_PATH = re.compile(r"[<>\s]")  # \s: whatever str.isspace() calls a space


def _path(address: str) -> str:
    """`<address>` for MAIL FROM and RCPT TO.

    smtplib's own quoting parses every address again (a tenth of a millisecond a mail); these
    were checked when the workbook was read, so only what could break the command is refused.
    """
    if not address or _UNUSABLE_IN_PATH.search(address):
        raise smtplib.SMTPRecipientsRefused({address: (553, b"address unusable in SMTP")})
    return f"<{address}>"


class _Pauses:
    """What `SmtpTransport.send` does while the server answers: see its docstring."""

    def __init__(self, durable: Callable[[], None] | None,
                 work: Iterator[object] | None) -> None:
        self._durable = durable
        self._work = work

    def pause(self) -> None:
        """One pause: `durable` in the first (it has the pause to itself), else one step."""
        if not self._make_durable() and self._work is not None \
                and next(self._work, _DONE) is _DONE:
            self._work = None

    def finish(self, *, begin: bool = True) -> None:
        """`durable` if it has not run (unless `begin` is False), then the rest of the work."""
        if begin:
            self._make_durable()
        self._durable = None
        work, self._work = self._work, None
        for _ in work or ():
            pass

    def _make_durable(self) -> bool:
        """Call `durable` unless it ran already; True when it ran now."""
        durable, self._durable = self._durable, None
        if durable is None:
            return False
        durable()
        return True


_DONE = object()
# Steps of the session, not of one mail: a failure there holds for the whole batch.
_SESSION_STEPS = frozenset({Step.CONNECT, Step.EHLO, Step.STARTTLS, Step.AUTH})


def open_transport(env: Mapping[str, str], outbox_default: Path) -> Outbox | SmtpTransport:
    """The outbox when LEERGANG_OUTBOX is set or no SMTP host is; else SMTP.

    Contract §5: with LEERGANG_OUTBOX each mail is written there *instead of* sent, so an
    operator can try a configuration that already names a real server without mailing
    anybody.
    """
    config = SmtpConfig.from_env(env)
    folder = outbox_folder(env, outbox_default)
    if config is None or folder is not None:
        if config is not None:
            log.info("LEERGANG_OUTBOX is ingesteld: mails gaan naar %s, niet naar %s", folder,
                     config.where)
        return Outbox(folder or outbox_default)
    return SmtpTransport(config)


def require_destination(env: Mapping[str, str]) -> None:
    """A scheduled run needs a mail server or an outbox chosen on purpose (contract §4).

    A cron job or systemd unit that lost its environment would otherwise fill the default
    outbox every day, and nobody would notice that nobody gets mail.
    """
    if env.get("LEERGANG_SMTP_HOST", "").strip() or env.get("LEERGANG_OUTBOX", "").strip():
        return
    raise InputError("Een geplande run heeft een mailserver nodig (LEERGANG_SMTP_HOST) of een "
                     "bewust gekozen map (LEERGANG_OUTBOX), en geen van beide is ingesteld: er "
                     "is niets verstuurd of geschreven. Kijk of de omgeving van de cron-job "
                     "of systemd-unit goed is (bijv. het EnvironmentFile).")


def outbox_reason(env: Mapping[str, str]) -> str:
    """Why mails go to an outbox folder instead of a server (the run's line says it)."""
    if env.get("LEERGANG_OUTBOX", "").strip():
        return "LEERGANG_OUTBOX is ingesteld"
    return "geen SMTP-server ingesteld"


def outbox_folder(env: Mapping[str, str], default: Path) -> Path | None:
    """Where mails go instead of being sent: LEERGANG_OUTBOX, else `default` without SMTP."""
    folder = env.get("LEERGANG_OUTBOX", "").strip()
    if folder:
        return Path(folder)
    return default if not env.get("LEERGANG_SMTP_HOST", "").strip() else None
