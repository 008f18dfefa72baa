"""Read bounces back from the sender's mailbox over IMAP, read-only (contract §3, §5).

Two halves. `classify_message(raw)` is pure: it says whether one message is a bounce (with
the failed recipients, their RFC 3463 status and the server's words, and the Message-ID and
`X-Leergang-Mail` kind of the returned original), an auto-reply, a delay notice, or something
else. RFC 3464 delivery status notifications are read directly; other formats are recognised
by GNU Mailman's `flufl.bounce`. `read_bounces(config, since, seen)` is the I/O: it opens the
folder with EXAMINE, looks only at messages since a date, skips (UIDVALIDITY, UID) pairs
already seen and fetches the rest with BODY.PEEK[]. It never stores flags, copies, moves,
deletes or expunges: people read that mailbox too.

Matching a bounce to our own mails is the ledger's job, not this module's.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from enum import StrEnum
from typing import Any

from leergang_ops.errors import DeliveryError, InputError
from leergang_ops.mail.login import (
    host_from,
    login_from,
    port_from,
    run_token_command,
    security_from,
    unknown_host,
)

log = logging.getLogger(__name__)

SECURITY_MODES = ("ssl", "starttls")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143}
PREFIX = "LEERGANG_IMAP"
FETCH_BATCH = 50  # messages per FETCH command
DIAGNOSTIC_LIMIT = 300  # characters of the server's words kept per recipient

# RFC 3463 enhanced status code: class.subject.detail
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# An SMTP reply line with an enhanced code, e.g. "550 5.1.1 <x@example.nl>: User unknown"
# or Gmail's multi-line "550-5.1.1 The email account ..."
SMTP_REPLY = re.compile(r"\b([245]\d\d)[ -]#?([245]\.\d{1,3}\.\d{1,3})\b[^\n]*")
# The code that starts each line of a (multi-line) reply: "550-5.1.1 " or "550 5.1.1 "
SMTP_CODE = re.compile(r"(?:^|(?<=\s))([245]\d\d)[ -]#?([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)")


# --- configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImapConfig:
    """How to reach the bounce mailbox (contract §5); the password never shows in a repr."""

    host: str
    user: str
    port: int = 993
    password: str | None = field(default=None, repr=False)
    token_command: str | None = None
    security: str = "ssl"  # ssl | starttls
    folder: str = "INBOX"
    timeout: float = 30

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ImapConfig | None:
        """Read LEERGANG_IMAP_*; None when no host is set. Bad values raise InputError."""
        host = host_from(env, PREFIX)
        if not host:
            return None
        security = security_from(env, PREFIX, SECURITY_MODES)
        user, password, token_command = login_from(
            env, PREFIX, missing_user="LEERGANG_IMAP_HOST is gezet, maar LEERGANG_IMAP_USER (het "
            "account van de mailbox van het afzenderadres) ontbreekt")
        return cls(
            host=host,
            user=user or "",
            port=port_from(env, PREFIX, DEFAULT_PORTS[security]),
            password=password,
            token_command=token_command,
            security=security,
            folder=_folder(env.get("LEERGANG_IMAP_FOLDER", "")),
        )


def _folder(raw: str) -> str:
    folder = raw.strip() or "INBOX"
    if any(ord(c) < 32 for c in folder):
        raise InputError(f"LEERGANG_IMAP_FOLDER bevat een ongeldig teken: {folder!r}")
    return folder


# --- what a message is (pure) ------------------------------------------------------------


class Kind(StrEnum):
    BOUNCE = "bounce"
    AUTO_REPLY = "auto-reply"
    DELAY = "delay"  # a delay notice: the server still tries, nothing failed yet
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports as failed."""

    recipient: str  # lower-case address
    status: str  # RFC 3463 enhanced status, e.g. "5.1.1"; "" when the bounce gives none
    diagnostic: str  # the server's words, one line


@dataclass(frozen=True)
class Report:
    """What one message in the mailbox is."""

    kind: Kind
    failures: tuple[Failure, ...] = ()
    message_id: str | None = None  # the returned original's Message-ID, with <>
    mail_kind: str | None = None  # the returned original's X-Leergang-Mail
    date: datetime | None = None  # the message's Date (or the server's INTERNALDATE)
    subject: str = ""

    @property
    def is_bounce(self) -> bool:
        return self.kind is Kind.BOUNCE


def classify_message(raw: bytes, received: datetime | None = None) -> Report:
    """Say what one raw RFC 5322 message is; `received` stands in for a missing Date."""
    msg = message_from_bytes(raw)
    when = _date(msg) or received
    subject = _header_text(msg.get("Subject", ""))
    kind, failures = _what(msg, subject)
    message_id, mail_kind = _returned_ids(msg) if kind is Kind.BOUNCE else (None, None)
    return Report(kind, failures, message_id, mail_kind, when, subject)


def _what(msg: Message, subject: str) -> tuple[Kind, tuple[Failure, ...]]:
    """The kind of message and, for a bounce, its failures: DSN first, then flufl.bounce."""
    failed, delayed = _dsn(msg)
    if failed:
        return Kind.BOUNCE, failed
    if delayed:
        return Kind.DELAY, ()
    temporary: frozenset[str] = frozenset()
    # Heuristics only for what a mail system wrote: a person's mail may quote a bounce.
    if _from_mail_system(msg, subject):
        temporary, permanent = _flufl(msg)
        if permanent:
            return Kind.BOUNCE, tuple(_failure_from_text(msg, a) for a in sorted(permanent))
    if _auto_reply(msg, subject):
        return Kind.AUTO_REPLY, ()
    return (Kind.DELAY if temporary else Kind.OTHER), ()


# RFC 3464 ------------------------------------------------------------------------------


def _dsn(msg: Message) -> tuple[tuple[Failure, ...], bool]:
    """The failed recipients of a delivery status notification, and whether any is delayed."""
    failed: list[Failure] = []
    delayed = False
    for block in _dsn_blocks(msg):
        action = block.get("Action", "").strip().lower()
        if action.startswith(("failed", "error")):  # opensmtpd writes "error"
            failure = _dsn_failure(block)
            if failure is not None:
                failed.append(failure)
        elif action.startswith("delayed"):
            delayed = True
    return tuple(failed), delayed


def _dsn_blocks(msg: Message) -> Iterator[Message]:
    """The per-recipient field blocks of every message/delivery-status part."""
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            # The first block is per-message (Reporting-MTA, ...); it has no Action.
            yield from (b for b in payload if isinstance(b, Message))
        elif isinstance(payload, str):
            yield from _blocks_from_text(payload)


def _blocks_from_text(text: str) -> Iterator[Message]:
    """Field blocks of a delivery-status body the parser left as text (e.g. base64)."""
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    for chunk in blocks:
        yield HeaderParser().parsestr(chunk.strip() + "\n")


def _dsn_failure(block: Message) -> Failure | None:
    recipient = _typed_address(block.get("Original-Recipient", "")) \
        or _typed_address(block.get("Final-Recipient", ""))
    if not recipient:
        return None
    diagnostic = _smtp_words(_strip_type(block.get("Diagnostic-Code", "")))
    return Failure(recipient, _best_status(block.get("Status", ""), diagnostic),
                   diagnostic[:DIAGNOSTIC_LIMIT])


def _best_status(field: str, diagnostic: str) -> str:
    """The Status field, unless it is only a class (5.0.0) and the server said more."""
    status, said = _status(field), _status(diagnostic)
    if not status:
        return said
    if status.endswith(".0.0") and said[:1] == status[:1]:
        return said
    return status


def _smtp_words(text: str) -> str:
    """One line of what the server said: '550-5.1.1 a\n 550-5.1.1 b' -> '550 5.1.1 a b'."""
    text = _one_line(text)
    first = SMTP_CODE.match(text)
    if not first:
        return text
    rest = SMTP_CODE.sub(" ", text[first.end():])
    return _one_line(f"{first[1]} {first[2]} {rest}")


def _typed_address(value: str) -> str:
    """'rfc822; Jan@Example.nl' -> 'jan@example.nl' (RFC 3464 address-type; address)."""
    address = _strip_type(value).strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def _strip_type(value: str) -> str:
    """Drop the 'smtp;' / 'rfc822;' type prefix of a DSN field."""
    value = _one_line(value)
    head, sep, rest = value.partition(";")
    return rest.strip() if sep and re.fullmatch(r"[A-Za-z0-9-]+", head.strip()) else value


def _status(text: str) -> str:
    match = STATUS.search(text)
    return ".".join(match.groups()) if match else ""


# flufl.bounce for non-standard formats -----------------------------------------------------


def _flufl(msg: Message) -> tuple[frozenset[str], frozenset[str]]:
    """(temporary, permanent) failed addresses by flufl.bounce's detectors, lower-cased."""
    import flufl.bounce

    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:  # a heuristic detector choking on odd input is not our failure
        log.warning("flufl.bounce kon een bericht niet lezen", exc_info=True)
        return frozenset(), frozenset()
    return _addresses(temporary), _addresses(permanent)


def _addresses(found: Iterable[bytes]) -> frozenset[str]:
    decoded = (a.decode("ascii", "replace").strip().strip("<>").lower() for a in found)
    return frozenset(a for a in decoded if "@" in a)


def _failure_from_text(msg: Message, address: str) -> Failure:
    """A failure for an address flufl found: the status and reply near it in the text."""
    text = _report_text(msg)
    at = text.lower().find(address)
    window = text[at:at + 1500] if at >= 0 else text
    reply = SMTP_REPLY.search(window)
    if reply:
        words = _smtp_words(_with_continuation(window, reply))
        return Failure(address, _status(reply[0]), words[:DIAGNOSTIC_LIMIT])
    status = _status(window)
    line = next((ln for ln in window.splitlines() if status and status in ln), "")
    return Failure(address, status, _one_line(line)[:DIAGNOSTIC_LIMIT])


def _with_continuation(text: str, reply: re.Match[str]) -> str:
    """The reply and the indented lines that continue it (Exim folds long replies)."""
    start = text.rfind("\n", 0, reply.start()) + 1
    indent = len(text[start:]) - len(text[start:].lstrip(" \t"))
    lines = [reply[0]]
    for line in text[reply.end():].split("\n")[1:]:
        depth = len(line) - len(line.lstrip(" \t"))
        if not line.strip() or depth == 0 or depth < indent:
            break
        lines.append(line)
    return "\n".join(lines)


def _report_text(msg: Message) -> str:
    """The human-readable text of a bounce, without the returned message copy."""
    parts = []
    for part in _own_parts(msg):
        if part.get_content_maintype() == "text" and part.get_content_type() != \
                "text/rfc822-headers":
            parts.append(_decoded(part))
    text = "\n".join(parts)
    copy = re.search(r"^-+ ?This is a copy of (the|your) message", text, re.M | re.I)
    return text[:copy.start()] if copy else text


def _own_parts(msg: Message) -> Iterator[Message]:
    """The leaf parts of a message, not descending into attached messages."""
    if msg.get_content_maintype() == "message":
        return
    if msg.is_multipart():
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _own_parts(part)
    else:
        yield msg


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


# the returned original ---------------------------------------------------------------------


def _returned_ids(msg: Message) -> tuple[str | None, str | None]:
    """Message-ID and X-Leergang-Mail of the returned original, wherever the bounce has it."""
    for headers in _returned_headers(msg):
        message_id = _message_id(headers.get("Message-ID", ""))
        mail_kind = headers.get("X-Leergang-Mail", "").strip().lower() or None
        if message_id or mail_kind:
            return message_id, mail_kind
    return _inline_ids(_all_text(msg))


def _returned_headers(msg: Message) -> Iterator[Message]:
    """The original's headers: a message/rfc822 part or a text/rfc822-headers part."""
    for part in msg.walk():
        kind = part.get_content_type()
        payload = part.get_payload()
        if kind == "message/rfc822" and isinstance(payload, list) and payload \
                and isinstance(payload[0], Message):
            yield payload[0]
        elif kind == "text/rfc822-headers":
            yield HeaderParser().parsestr(_decoded(part))


def _all_text(msg: Message) -> str:
    return "\n".join(_decoded(p) for p in _own_parts(msg) if p.get_content_maintype() == "text")


def _inline_ids(text: str) -> tuple[str | None, str | None]:
    """Header lines of the original quoted in a plain-text bounce (Exim, qmail, ...)."""
    mid = re.search(r"^[ >]*Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\s]+>)", text, re.M | re.I)
    kind = re.search(r"^[ >]*X-Leergang-Mail:[ \t]*([\w-]+)", text, re.M | re.I)
    return (mid[1] if mid else None), (kind[1].lower() if kind else None)


def _message_id(value: str) -> str | None:
    match = re.search(r"<[^>\s]+>", value)
    return match[0] if match else None


# auto-replies and the mail system ----------------------------------------------------------

DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mdaemon")
BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|mail delivery (failed|failure|system)|"
    r"returned mail|returned to sender|failure notice|delivery failure|nondeliverable|"
    r"onbestelbaar|niet bezorgd|kan niet worden bezorgd", re.I)
AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(automatic reply|automatisch antwoord|auto(matic)?[- ]?(reply|response)|"
    r"out of (the )?office|afwezig|niet aanwezig|vakantie|abwesenheit|r[ée]ponse automatique)",
    re.I)


def _from_mail_system(msg: Message, subject: str) -> bool:
    """Whether a mail system (not a person) wrote this: daemon sender or bounce subject.

    A null Return-Path is no sign: RFC 3834 auto-replies (vacation) use it too.
    """
    if msg.get("X-Failed-Recipients"):
        return True
    senders = getaddresses([msg.get("From", ""), msg.get("Sender", "")])
    if any(addr.split("@")[0].lower() in DAEMONS for _, addr in senders if addr):
        return True
    return bool(BOUNCE_SUBJECT.search(subject))


def _auto_reply(msg: Message, subject: str) -> bool:
    """RFC 3834 Auto-Submitted: auto-replied, the common vendor headers, or OOF subjects."""
    if msg.get("Auto-Submitted", "").strip().lower().startswith("auto-replied"):
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Vacation"):
        return True
    if msg.get("Precedence", "").strip().lower() == "auto_reply":
        return True
    return bool(AUTO_REPLY_SUBJECT.search(subject))


# small helpers -----------------------------------------------------------------------------


def _date(msg: Message) -> datetime | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _header_text(value: Any) -> str:
    try:
        return _one_line(str(make_header(decode_header(str(value)))))
    except (UnicodeError, LookupError, ValueError):
        return _one_line(str(value))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- reading the mailbox (I/O) --------------------------------------------------------------


class MailboxUnreachable(DeliveryError):
    """The IMAP server cannot be reached now (DNS, refused, timeout): try again next run."""


@dataclass(frozen=True)
class Scanned:
    """One message looked at, with what it is."""

    uid: int
    report: Report


@dataclass(frozen=True)
class Scan:
    """What one read of the mailbox looked at: only messages not seen before."""

    uidvalidity: int
    uids: tuple[int, ...]
    messages: tuple[Scanned, ...]

    @property
    def processed(self) -> frozenset[tuple[int, int]]:
        """(UIDVALIDITY, UID) of every message looked at: add these to `seen`."""
        return frozenset((self.uidvalidity, uid) for uid in self.uids)

    @property
    def bounces(self) -> tuple[Scanned, ...]:
        return tuple(m for m in self.messages if m.report.is_bounce)


def read_bounces(config: ImapConfig, since: date, seen: Set[tuple[int, int]],
                 ssl_context: ssl.SSLContext | None = None) -> Scan:
    """Classify the folder's messages since `since` that are not in `seen`; change nothing."""
    with _Mailbox(config, ssl_context) as box:
        uidvalidity, _ = box.examine()
        found = box.search_since(since)
        new = tuple(uid for uid in found if (uidvalidity, uid) not in seen)
        messages = tuple(box.classified(new))
    log.info("IMAP %s: %d %s sinds %s, %d nieuw", config.where, len(found),
             "bericht" if len(found) == 1 else "berichten", since, len(new))
    return Scan(uidvalidity, new, messages)


def check_connection(config: ImapConfig, ssl_context: ssl.SSLContext | None = None) -> str:
    """Log in, EXAMINE the folder, log out; one Dutch line saying what works."""
    with _Mailbox(config, ssl_context) as box:
        _, count = box.examine()
    return (f"IMAP {config.where}: inloggen gelukt, map {config.folder} gevonden "
            f"({count} {'bericht' if count == 1 else 'berichten'})")


class _Mailbox:
    """One read-only IMAP session; translates every failure into InputError or Unreachable."""

    def __init__(self, config: ImapConfig, ssl_context: ssl.SSLContext | None) -> None:
        self.config = config
        self.context = ssl_context or ssl.create_default_context()
        self.client: Any = None
        self.token: str | None = None

    def __enter__(self) -> _Mailbox:
        self.client = self._guarded(self._connect)
        try:
            self._guarded(self._login)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def examine(self) -> tuple[int, int]:
        """Open the folder read-only (EXAMINE): (UIDVALIDITY, number of messages)."""
        from imapclient.exceptions import IMAPClientError

        try:
            info = self._guarded(lambda: self.client.select_folder(self.config.folder,
                                                                   readonly=True))
        except IMAPClientError as err:
            raise InputError(
                f"IMAP {self.config.where}: map {self.config.folder!r} niet gevonden "
                f"({self._said(err)}); controleer LEERGANG_IMAP_FOLDER (de naam zoals de "
                "server hem kent, bijvoorbeeld INBOX)") from err
        return int(info[b"UIDVALIDITY"]), int(info.get(b"EXISTS", 0))

    def search_since(self, since: date) -> list[int]:
        return sorted(int(uid) for uid in self._guarded(
            lambda: self.client.search(["SINCE", since])))

    def classified(self, uids: Sequence[int]) -> Iterator[Scanned]:
        """Fetch BODY.PEEK[] (which leaves \\Seen alone) in batches and classify each."""
        for start in range(0, len(uids), FETCH_BATCH):
            batch = list(uids[start:start + FETCH_BATCH])
            answer = self._guarded(
                lambda b=batch: self.client.fetch(b, ["BODY.PEEK[]", "INTERNALDATE"]))
            for uid in batch:
                data = answer.get(uid, {})
                raw = data.get(b"BODY[]", b"")
                yield Scanned(uid, classify_message(raw, _aware(data.get(b"INTERNALDATE"))))

    # -- connection ----------------------------------------------------------------------

    def _connect(self) -> Any:
        from imapclient import IMAPClient

        cfg = self.config
        log.info("Verbinden met IMAP-server %s (%s)", cfg.where, cfg.security)
        client = IMAPClient(cfg.host, cfg.port, ssl=cfg.security == "ssl",
                            ssl_context=self.context, timeout=cfg.timeout)
        client.normalise_times = False  # INTERNALDATE as an aware datetime
        if cfg.security == "starttls":
            self._starttls(client)
        return client

    def _starttls(self, client: Any) -> None:
        from imapclient.exceptions import CapabilityError

        try:
            client.starttls(self.context)
        except CapabilityError as err:
            client.shutdown()
            raise InputError(
                f"IMAP {self.config.where} biedt geen STARTTLS aan: gebruik "
                "LEERGANG_IMAP_SECURITY=ssl (meestal poort 993)") from err

    def _login(self) -> None:
        from imapclient.exceptions import LoginError

        cfg = self.config
        try:
            if cfg.token_command:
                self.token = run_token_command(cfg.token_command, "LEERGANG_IMAP_TOKEN_COMMAND")
                self.client.oauth2_login(cfg.user, self.token)
            else:
                self.client.login(cfg.user, cfg.password or "")
        except LoginError as err:
            what = "het token (LEERGANG_IMAP_TOKEN_COMMAND)" if cfg.token_command else \
                "het wachtwoord (LEERGANG_IMAP_PASSWORD; bij Microsoft 365 en Gmail vaak een " \
                "app-wachtwoord)"
            raise InputError(
                f"IMAP-login geweigerd door {cfg.where} voor {cfg.user}: {self._said(err)}; "
                f"controleer het account (LEERGANG_IMAP_USER) en {what}") from err

    def _close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:  # the session is over either way
            log.debug("IMAP logout failed", exc_info=True)
            try:
                client.shutdown()
            except Exception:
                log.debug("IMAP shutdown failed", exc_info=True)

    def _said(self, err: BaseException) -> str:
        """What the server said, one line, with the password or token (if echoed) removed."""
        text = _one_line(str(err))
        text = re.sub(r"^b?['\"](.*)['\"]$", r"\1", text)
        for secret in (self.config.password, self.token):
            if secret:
                text = text.replace(secret, "***")
        return text or type(err).__name__

    def _guarded(self, step: Any) -> Any:
        """Run one network step; turn network and TLS failures into our errors."""
        try:
            return step()
        except imaplib.IMAP4.abort as err:  # the server hung up mid-session
            raise MailboxUnreachable(self._unreachable(err)) from err
        except ssl.SSLCertVerificationError as err:
            raise InputError(
                f"IMAP {self.config.where}: het certificaat van de server is niet geldig "
                f"({err.verify_message or err.reason}); controleer LEERGANG_IMAP_HOST") from err
        except ssl.SSLError as err:
            raise InputError(self._tls_mismatch(err)) from err
        except (socket.gaierror, ConnectionError, TimeoutError, OSError) as err:
            if unknown_host(err):
                raise InputError(f"IMAP-server {self.config.host} bestaat niet (servernaam "
                                 "onbekend); controleer LEERGANG_IMAP_HOST") from err
            raise MailboxUnreachable(self._unreachable(err)) from err

    def _unreachable(self, err: BaseException) -> str:
        cfg = self.config
        hint = ""
        if cfg.security == "starttls" and cfg.port == DEFAULT_PORTS["ssl"]:
            hint = " (poort 993 hoort bij LEERGANG_IMAP_SECURITY=ssl)"
        return (f"IMAP-server {cfg.where} is niet bereikbaar ({_network_reason(err)}){hint}; "
                "de bounces worden bij de volgende run gelezen")

    def _tls_mismatch(self, err: ssl.SSLError) -> str:
        cfg = self.config
        hint = ("poort 993 hoort bij LEERGANG_IMAP_SECURITY=ssl, poort 143 bij starttls"
                if cfg.security == "ssl" else
                "poort 993 hoort bij LEERGANG_IMAP_SECURITY=ssl")
        return (f"IMAP {cfg.where}: TLS mislukt ({err.reason or err}) met "
                f"LEERGANG_IMAP_SECURITY={cfg.security}; {hint}")


def _network_reason(err: BaseException) -> str:
    if isinstance(err, socket.gaierror):
        return "servernaam onbekend"
    if isinstance(err, ConnectionRefusedError):
        return "verbinding geweigerd"
    if isinstance(err, TimeoutError):
        return "geen antwoord binnen de tijd"
    if isinstance(err, ConnectionError | imaplib.IMAP4.abort):
        return "verbinding verbroken"
    return getattr(err, "strerror", None) or type(err).__name__


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
