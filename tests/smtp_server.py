"""A real SMTP server on loopback for tests (aiosmtpd), with faults you can switch on.

    # tests/conftest.py has `pytest_plugins = ["tests.smtp_server"]`: these fixtures are
    # everywhere: smtp_server, and make_smtp_server(require_auth=True, tls_context=…).

    def test_something(smtp_server):
        env = smtp_server.env()                    # LEERGANG_SMTP_* for this server
        smtp_server.fail_next(451)                 # next DATA gets 451, once
        smtp_server.reject("x@example.nl", 550)    # RCPT TO for that address gets 550
        smtp_server.drop_on_data(2)                # close the connection at the 2nd DATA
        smtp_server.refuse("RCPT", "554 5.7.1 <x>: Relay access denied")  # a real reply,
        smtp_server.refuse("DATA", "550 5.7.1 spam", address="x@example.nl", times=1)
                                                   # at EHLO, MAIL, RCPT or after DATA
        smtp_server.users["user"] = "secret"       # AUTH LOGIN/PLAIN
        smtp_server.tokens["user"] = "tok"         # AUTH XOAUTH2
        ...
        [r.message["Subject"] for r in smtp_server.messages]

Every accepted message is recorded with its envelope, the login and the connection number;
`Received.message` parses it (policy.default) when asked. `connections` counts connections.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cached_property
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    """One message the server accepted (parsed when first asked, to keep the server fast)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str | None  # the authenticated user, if any
    connection: int  # which connection (1-based) delivered it

    @cached_property
    def message(self) -> EmailMessage:
        """The message as a mail client reads it (policy.default)."""
        return cast(EmailMessage, message_from_bytes(self.data, policy=policy.default))


class RecordingHandler:
    """aiosmtpd handler: records messages, injects faults, checks logins."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.users: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.logins: list[tuple[str, str]] = []  # (mechanism, user) of successful logins
        self.failed_logins: list[tuple[str, str]] = []
        self.rejected: dict[str, int] = {}
        self.next_codes: deque[int] = deque()
        self.drop_at: set[int] = set()
        self.data_count = 0
        self.connections = 0
        # step → [address (None: any) → reply, times left (None: always)]
        self.script: dict[str, list[list[Any]]] = {}
        self.commands: list[str] = []  # MAIL, RCPT, DATA and AUTH as they arrived

    def scripted(self, step: str, address: str | None) -> str | None:
        """The scripted reply for this step (and recipient), counting it down."""
        with self.lock:
            for entry in self.script.get(step, []):
                wanted, reply, times = entry
                if wanted is not None and (address or "").lower() != wanted:
                    continue
                if times is not None:
                    if times <= 0:
                        continue
                    entry[2] = times - 1
                return str(reply)
        return None

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        reply = self.scripted("EHLO", None)
        return [reply] if reply else responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, mail_options: list[str]) -> str:
        self.commands.append("MAIL")
        reply = self.scripted("MAIL", address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        self.commands.append("RCPT")
        reply = self.scripted("RCPT", address)
        if reply:
            return reply
        code = self.rejected.get(address.lower())
        if code is not None:
            enhanced = "5.1.1" if code >= 500 else "4.2.1"
            return f"{code} {enhanced} <{address}>: Recipient address rejected"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.commands.append("DATA")
        reply = self.scripted("DATA", envelope.rcpt_tos[0] if envelope.rcpt_tos else None)
        if reply:
            return reply
        with self.lock:
            self.data_count += 1
            count = self.data_count
            code = self.next_codes.popleft() if self.next_codes else None
        if count in self.drop_at:
            # The client never sees a reply: as when a connection breaks mid-transaction.
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if code is not None:
            return f"{code} {'4.3.0 Try again later' if code < 500 else '5.7.1 Rejected'}"
        self._record(session, envelope)
        return "250 2.0.0 OK: queued"

    def _record(self, session: Session, envelope: Envelope) -> None:
        auth = session.auth_data
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=cast(bytes, envelope.original_content or b""),
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            connection=getattr(session, "connection_number", 0),
        )
        with self.lock:
            self.messages.append(received)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """LOGIN and PLAIN against `users`."""
        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.commands.append(f"AUTH {mechanism}")
        ok = user in self.users and self.users[user] == password
        (self.logins if ok else self.failed_logins).append((mechanism, user))
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 as Gmail and Microsoft 365 speak it, against `tokens`."""
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1) for part in blob.decode().split("\x01") if "=" in part
        )
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        if user in self.tokens and self.tokens[user] == token:
            self.logins.append(("XOAUTH2", user))
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        self.failed_logins.append(("XOAUTH2", user))
        # The protocol: a 334 with a JSON error, the client answers empty, then 535.
        error = json.dumps({"status": "401", "schemes": "bearer"})
        await server.challenge_auth(error)
        return AuthResult(success=False, handled=False)


class _CountingController(Controller):
    """Numbers each connection, so tests can see reconnects."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is what these tests want; aiosmtpd warns on every connection.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            smtp = super().factory()
        handler = cast(RecordingHandler, self.handler)
        original = smtp.connection_made

        def connection_made(transport: Any) -> None:
            original(transport)
            with handler.lock:
                handler.connections += 1
                number = handler.connections
            if smtp.session is not None:
                smtp.session.connection_number = number

        smtp.connection_made = connection_made
        return smtp


class SmtpServer:
    """aiosmtpd on 127.0.0.1 at a free port; `start()`/`stop()` or use the fixture."""

    def __init__(
        self, *, require_auth: bool = False, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.handler = RecordingHandler()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.controller = _CountingController(
            self.handler,
            hostname=self.host,
            port=self.port,
            authenticator=self.handler.authenticate,
            auth_require_tls=False,
            auth_required=require_auth,
            tls_context=tls_context,
            require_starttls=False,
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        self.handler.connections = 0  # start() made one connection of its own to check
        return self

    def stop(self) -> None:
        self.controller.stop()

    def env(self, **extra: str) -> dict[str, str]:
        """LEERGANG_SMTP_* pointing at this server (plain SMTP, as to a local relay)."""
        return {
            "LEERGANG_SMTP_HOST": self.host,
            "LEERGANG_SMTP_PORT": str(self.port),
            "LEERGANG_SMTP_SECURITY": "none",
            **extra,
        }

    # faults and accounts -------------------------------------------------------------

    def fail_next(self, code: int = 451, times: int = 1) -> None:
        """Answer the next `times` DATA commands with `code` (451: try again later)."""
        self.handler.next_codes.extend([code] * times)

    def reject(self, address: str, code: int = 550) -> None:
        """Refuse `address` at RCPT TO with `code`."""
        self.handler.rejected[address.lower()] = code

    def refuse(self, step: str, reply: str, *, address: str | None = None,
               times: int | None = None) -> None:
        """Answer `step` (EHLO, MAIL, RCPT, or DATA: after the content) with `reply`.

        Only for `address` when given (the recipient; at MAIL the sender), `times` times
        when given. Use the real servers' replies: tests/data/server_replies.md.
        """
        self.handler.script.setdefault(step, []).append(
            [address.lower() if address else None, reply, times])

    def lift(self) -> None:
        """The operator fixed the server: no more scripted refusals."""
        with self.handler.lock:
            self.handler.script.clear()

    def drop_on_data(self, *numbers: int) -> None:
        """Close the connection, without a reply, at the Nth DATA command (1-based, overall)."""
        self.handler.drop_at.update(numbers)

    @property
    def users(self) -> dict[str, str]:
        return self.handler.users

    @property
    def tokens(self) -> dict[str, str]:
        return self.handler.tokens

    # what arrived ----------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def connections(self) -> int:
        return self.handler.connections

    @property
    def logins(self) -> list[tuple[str, str]]:
        return list(self.handler.logins)

    def recipients(self) -> list[str]:
        """Every accepted recipient, in order of arrival."""
        return [rcpt for received in self.messages for rcpt in received.rcpt_tos]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A fresh recording SMTP server on loopback for one test."""
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with options (`require_auth=True`, `tls_context=…`); stopped after."""
    started: list[SmtpServer] = []

    def make(**options: Any) -> SmtpServer:
        server = SmtpServer(**options).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def smtp_env(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    """`smtp_server`, with LEERGANG_SMTP_* set for it: `main(["run", …])` mails it."""
    for name, value in smtp_server.env().items():
        monkeypatch.setenv(name, value)
    return smtp_server
