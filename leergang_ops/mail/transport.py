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
import shlex
import smtplib
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

from leergang_ops.errors import DeliveryError, InputError
from leergang_ops.mail.render import Mail
from leergang_ops.model import MailIntent

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
TOKEN_TIMEOUT = 60.0  # seconds a token command may take


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
        host = env.get("LEERGANG_SMTP_HOST", "").strip()
        if not host:
            return None
        if host.count(":") == 1 or any(c.isspace() for c in host):
            raise InputError(f"LEERGANG_SMTP_HOST moet alleen de servernaam zijn, niet {host!r}"
                             " (de poort hoort in LEERGANG_SMTP_PORT)")
        security = env.get("LEERGANG_SMTP_SECURITY", "").strip().lower() or "starttls"
        if security not in SECURITY_MODES:
            raise InputError(
                f"LEERGANG_SMTP_SECURITY moet starttls, ssl of none zijn, niet {security!r}"
            )
        user = env.get("LEERGANG_SMTP_USER", "").strip() or None
        password = env.get("LEERGANG_SMTP_PASSWORD") or None
        token_command = env.get("LEERGANG_SMTP_TOKEN_COMMAND", "").strip() or None
        _check_login(user, password, token_command)
        return cls(
            host=host,
            port=_port(env.get("LEERGANG_SMTP_PORT", ""), security),
            user=user,
            password=None if token_command else password,
            security=security,
            token_command=token_command,
            rate_per_minute=_rate(env.get("LEERGANG_SMTP_RATE", "")),
        )


def _port(raw: str, security: str) -> int:
    if not raw.strip():
        return DEFAULT_PORTS[security]
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise InputError(f"LEERGANG_SMTP_PORT moet een poortnummer (1-65535) zijn, niet {raw!r}")
    return port


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


def _check_login(user: str | None, password: str | None, token_command: str | None) -> None:
    """A login needs a user and a password or token command (never echo the values)."""
    if (password or token_command) and not user:
        given = "LEERGANG_SMTP_TOKEN_COMMAND" if token_command else "LEERGANG_SMTP_PASSWORD"
        raise InputError(f"{given} is gezet, maar LEERGANG_SMTP_USER (het account) ontbreekt")
    if user and not (password or token_command):
        raise InputError(
            "LEERGANG_SMTP_USER is gezet, maar LEERGANG_SMTP_PASSWORD en "
            "LEERGANG_SMTP_TOKEN_COMMAND ontbreken"
        )
    if password and token_command:
        log.warning("Both LEERGANG_SMTP_PASSWORD and LEERGANG_SMTP_TOKEN_COMMAND are set; "
                    "logging in with XOAUTH2")


# --- faults --------------------------------------------------------------------------


class FaultKind(StrEnum):
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class DeliveryFault(DeliveryError):
    """One mail was not delivered: `kind` says whether trying again can help."""

    def __init__(self, kind: FaultKind, code: int | None, reason: str) -> None:
        super().__init__(f"{code} {reason}" if code else reason)
        self.kind = kind
        self.code = code
        self.reason = reason  # the server's reply or what failed; never a secret


def classify(error: BaseException) -> FaultKind:
    """Retry or give up? 5xx replies are permanent (for that address); all else is temporary.

    Temporary: connection refused or lost, timeouts, TLS hiccups, 421 (server closing),
    432 (Microsoft's "slow down") and every other 4xx. When in doubt: temporary, so a mail
    is retried at the next run rather than silently dropped.
    """
    if isinstance(error, DeliveryFault):
        return error.kind
    code = reply_code(error)
    if code is not None and 500 <= code <= 599:
        return FaultKind.PERMANENT
    return FaultKind.TEMPORARY


def reply_code(error: BaseException) -> int | None:
    """The SMTP reply code an error carries (the worst one for refused recipients)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return max(codes, default=None)
    if isinstance(error, smtplib.SMTPResponseException) and error.smtp_code > 0:
        return int(error.smtp_code)
    return None


def fault_from(error: BaseException) -> DeliveryFault:
    """The DeliveryFault for an SMTP or network error, with the server's reply."""
    if isinstance(error, DeliveryFault):
        return error
    return DeliveryFault(classify(error), reply_code(error), _reason(error))


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = [_text(reply) for _, reply in error.recipients.values()]
        return "; ".join(replies) or "recipient refused"
    if isinstance(error, smtplib.SMTPResponseException):
        return _text(error.smtp_error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


# --- the outbox ----------------------------------------------------------------------


class Outbox:
    """Writes each mail as an .eml file; a resend of the same intent overwrites its file.

    The file name is derived from the intent key alone (no date), so a mail resent after a
    crash on another day still lands on the same file instead of becoming a second one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

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
            raise DeliveryFault(FaultKind.TEMPORARY, None, f"{target}: {err.strerror or err}") \
                from err
        finally:
            pauses.finish()
        log.info("Wrote %s mail for %s to %s", intent.kind, intent.recipient, target)


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
        self._connect_failed = False
        self._unreachable: DeliveryFault | None = None

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

    def send(self, mail: Mail, intent: MailIntent, *, durable: Callable[[], None] | None = None,
             meanwhile: Iterator[object] | None = None) -> None:
        """Deliver one message to `intent.address`, or raise DeliveryFault.

        Most of an SMTP transaction is waiting for the server's replies; `send` fills those
        pauses. `durable` is called in the first one, right after MAIL FROM went out and
        before anything the server could accept: the ledger records `sending` and commits
        there, so the statements and the disk's sync cost no time of their own. If it
        raises, the transaction is reset, nothing is sent and its exception propagates.
        `meanwhile` (CPU work in small steps, such as rendering the next mail) is stepped
        once while the server answers RCPT TO and run to its end while it takes in the
        message (the longest wait), in any case before `send` returns or raises; it must
        not raise. (A pause given more work than the server's answer takes only delays the
        batch: measured, the sync alone fills the first pause, and DATA is answered at
        once.)
        """
        if self._unreachable is not None:
            if durable is not None:
                durable()
            raise DeliveryFault(FaultKind.TEMPORARY, self._unreachable.code,
                                self._unreachable.reason)
        pauses = _Pauses(durable, meanwhile)
        try:
            self._deliver(mail.sender, intent, mail.data, pauses)
        finally:
            pauses.finish()

    def _deliver(self, sender: str, intent: MailIntent, data: bytes, pauses: _Pauses) -> None:
        for attempt in range(self.retries + 1):
            self._pace()
            try:
                self._transaction(sender, intent.address, data, pauses)
            except (smtplib.SMTPException, OSError) as err:
                fault = fault_from(err)
                if self._connect_failed and fault.kind is FaultKind.PERMANENT:
                    # A 5xx greeting or EHLO refusal is about us, not about this address.
                    fault = DeliveryFault(FaultKind.TEMPORARY, fault.code, fault.reason)
                if fault.kind is FaultKind.PERMANENT:
                    log.warning("Permanent fault for %s mail to %s at %s: %s", intent.kind,
                                intent.recipient, self.config.where, fault)
                    raise fault from err
                self.close()
                if attempt == self.retries:
                    self._give_up(fault)
                    raise fault from err
                delay = self.backoff * 2**attempt
                log.warning("Temporary fault for %s mail to %s at %s (attempt %d of %d): %s; "
                            "retrying in %.1fs", intent.kind, intent.recipient,
                            self.config.where, attempt + 1, self.retries + 1, fault, delay)
                self._sleep(delay)
            else:
                log.info("Sent %s mail to %s", intent.kind, intent.recipient)
                return

    def _transaction(self, sender: str, address: str, data: bytes, pauses: _Pauses) -> None:
        """One SMTP transaction, as `smtplib.SMTP.sendmail` does it for one recipient.

        Each command is sent, then `pauses` fills the wait, then the reply is read. A
        refused recipient raises SMTPRecipientsRefused.
        """
        smtp = self._connection()
        options = ""
        if not (address.isascii() and sender.isascii()):
            # Non-ASCII addresses need SMTPUTF8; without it the server cannot take them.
            if not smtp.has_extn("smtputf8"):
                raise smtplib.SMTPRecipientsRefused(
                    {address: (553, b"address needs SMTPUTF8, which the server lacks")})
            options = " SMTPUTF8"
        code, reply = self._command(smtp, pauses, "MAIL", f"FROM:{_path(sender)}{options}")
        if code != 250:
            self._abandon(smtp, code)
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        code, reply = self._command(smtp, pauses, "RCPT", f"TO:{_path(address)}")
        if code not in (250, 251):
            self._abandon(smtp, code)
            raise smtplib.SMTPRecipientsRefused({address: (code, reply)})
        # No work in this pause: the server answers DATA at once (measured: work here only
        # delayed the message, while the wait after it is the longest).
        code, reply = smtp.docmd("DATA")
        if code != 354:
            self._abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        smtp.send(dot_stuffed(data) + b".\r\n")
        pauses.finish()  # the server reads the whole message now: the longest pause
        code, reply = smtp.getreply()
        if code != 250:
            self._abandon(smtp, code)
            raise smtplib.SMTPDataError(code, reply)

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

    def _abandon(self, smtp: smtplib.SMTP, code: int) -> None:
        """After a refusal: reset the transaction, or close when the server is closing (421)."""
        if code == 421:
            self.close()
            return
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._connect_failed = True
            self._smtp = self._connect()
            self._connect_failed = False
        return self._smtp

    def _give_up(self, fault: DeliveryFault) -> None:
        if self._connect_failed:
            # Nothing gets through; don't spend the whole backoff again on every mail.
            self._unreachable = fault
            log.error("Cannot reach SMTP server %s: %s", self.config.where, fault)

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
        cfg = self.config
        log.info("Connecting to SMTP server %s (%s)", cfg.where, cfg.security)
        try:
            if cfg.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                      context=self._tls_context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        except ssl.SSLCertVerificationError as err:
            raise self._certificate_error(err) from err
        try:
            self._greet(smtp)
            self._login(smtp)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        """Certificate checks on (the system's CAs), made once per transport."""
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context

    def _greet(self, smtp: smtplib.SMTP) -> None:
        smtp.ehlo()
        if self.config.security != "starttls":
            return
        if not smtp.has_extn("starttls"):
            raise InputError(
                f"{self.config.where} biedt geen STARTTLS aan: gebruik "
                "LEERGANG_SMTP_SECURITY=ssl (meestal poort 465), of none voor een relay "
                "op deze machine"
            )
        try:
            smtp.starttls(context=self._tls_context())
        except ssl.SSLCertVerificationError as err:
            raise self._certificate_error(err) from err
        smtp.ehlo()

    def _certificate_error(self, err: ssl.SSLCertVerificationError) -> InputError:
        return InputError(f"{self.config.where}: het certificaat van de SMTP-server is niet "
                          f"geldig ({err.verify_message or err.reason})")

    def _login(self, smtp: smtplib.SMTP) -> None:
        cfg = self.config
        if not cfg.user:
            return
        try:
            if cfg.token_command:
                auth = f"user={cfg.user}\x01auth=Bearer {self._token()}\x01\x01"
                # On failure the server sends a JSON challenge; the answer must be empty.
                smtp.auth("XOAUTH2", lambda challenge=None: auth if challenge is None else "",
                          initial_response_ok=True)
            else:
                smtp.login(cfg.user, cfg.password or "")
        except smtplib.SMTPAuthenticationError as err:
            if 400 <= err.smtp_code < 500:
                raise  # e.g. 454: the server's auth backend is down; try again later
            raise InputError(
                f"SMTP-login geweigerd door {cfg.where} voor {cfg.user}: "
                f"{err.smtp_code} {_text(err.smtp_error)}"
            ) from err
        except smtplib.SMTPNotSupportedError as err:
            raise InputError(f"{cfg.where} biedt geen inloggen (AUTH) aan: laat "
                             "LEERGANG_SMTP_USER leeg of kies een andere server") from err

    def _token(self) -> str:
        """Run LEERGANG_SMTP_TOKEN_COMMAND (no shell); its output is the OAuth2 token."""
        command = self.config.token_command or ""
        try:
            argv = shlex.split(command)
        except ValueError as err:
            raise InputError(f"LEERGANG_SMTP_TOKEN_COMMAND is geen geldige opdracht: {err}") \
                from err
        if not argv:
            raise InputError("LEERGANG_SMTP_TOKEN_COMMAND is leeg")
        # Name only the program: its arguments may hold a client secret.
        program = Path(argv[0]).name
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TOKEN_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired as err:
            raise InputError(f"LEERGANG_SMTP_TOKEN_COMMAND ({program}) gaf binnen "
                             f"{TOKEN_TIMEOUT:.0f} s geen token") from err
        except OSError as err:
            raise InputError(f"LEERGANG_SMTP_TOKEN_COMMAND ({program}) kon niet worden "
                             f"gestart: {err.strerror or type(err).__name__}") from err
        token = done.stdout.strip()
        if done.returncode != 0 or not token or any(c.isspace() for c in token):
            raise InputError(
                f"LEERGANG_SMTP_TOKEN_COMMAND ({program}) gaf geen bruikbaar token "
                f"(exitstatus {done.returncode}); voer de opdracht zelf uit om te zien waarom"
            )
        return token


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

    def finish(self) -> None:
        """`durable` if it has not run, then the rest of the work."""
        self._make_durable()
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


def open_transport(env: Mapping[str, str], outbox_default: Path) -> Outbox | SmtpTransport:
    """The outbox when LEERGANG_OUTBOX is set or no SMTP host is; else SMTP.

    Contract §5: with LEERGANG_OUTBOX each mail is written there *instead of* sent, so an
    operator can try a configuration that already names a real server without mailing
    anybody.
    """
    config = SmtpConfig.from_env(env)
    folder = env.get("LEERGANG_OUTBOX", "").strip()
    if config is None or folder:
        if config is not None:
            log.info("LEERGANG_OUTBOX is set: mails go to %s, not to %s", folder, config.where)
        return Outbox(Path(folder) if folder else outbox_default)
    return SmtpTransport(config)
