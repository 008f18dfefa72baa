"""What the SMTP and IMAP settings share (contract §5): host, port and login, read alike.

`LEERGANG_SMTP_*` and `LEERGANG_IMAP_*` name the same things for two servers; the checks and
their Dutch messages live here once, with the variable's prefix passed in. Secrets are never
echoed: a message names the variable, not its value.
"""

from __future__ import annotations

import logging
import shlex
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from leergang_ops.errors import InputError

log = logging.getLogger(__name__)

TOKEN_TIMEOUT = 60.0  # seconds a token command may take


def host_from(env: Mapping[str, str], prefix: str) -> str:
    """`<prefix>_HOST`, '' when unset; a port or spaces in it are refused."""
    host = env.get(f"{prefix}_HOST", "").strip()
    if host.count(":") == 1 or any(c.isspace() for c in host):
        raise InputError(f"{prefix}_HOST moet alleen de servernaam zijn, niet {host!r}"
                         f" (de poort hoort in {prefix}_PORT)")
    return host


def security_from(env: Mapping[str, str], prefix: str, modes: tuple[str, ...]) -> str:
    """`<prefix>_SECURITY`, one of `modes` (the first is the default)."""
    security = env.get(f"{prefix}_SECURITY", "").strip().lower() or modes[0]
    if security not in modes:
        allowed = ", ".join(modes[:-1]) + f" of {modes[-1]}"
        raise InputError(f"{prefix}_SECURITY moet {allowed} zijn, niet {security!r}")
    return security


def port_from(env: Mapping[str, str], prefix: str, default: int) -> int:
    """`<prefix>_PORT`, `default` when unset."""
    raw = env.get(f"{prefix}_PORT", "")
    if not raw.strip():
        return default
    try:
        port = int(raw.strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise InputError(f"{prefix}_PORT moet een poortnummer (1-65535) zijn, niet {raw!r}")
    return port


def login_from(env: Mapping[str, str], prefix: str, *, missing_user: str | None = None,
               ) -> tuple[str | None, str | None, str | None]:
    """`<prefix>_USER`, `_PASSWORD`, `_TOKEN_COMMAND`, checked; the password is None when a
    token command logs in instead. `missing_user`: the message when a user is required."""
    user = env.get(f"{prefix}_USER", "").strip() or None
    password = env.get(f"{prefix}_PASSWORD") or None
    token_command = env.get(f"{prefix}_TOKEN_COMMAND", "").strip() or None
    if missing_user and not user:
        raise InputError(missing_user)
    check_login(prefix, user, password, token_command)
    return user, None if token_command else password, token_command


def check_login(prefix: str, user: str | None, password: str | None,
                token_command: str | None) -> None:
    """A login needs a user and a password or token command (never echo the values)."""
    if (password or token_command) and not user:
        given = f"{prefix}_TOKEN_COMMAND" if token_command else f"{prefix}_PASSWORD"
        raise InputError(f"{given} is gezet, maar {prefix}_USER (het account) ontbreekt")
    if user and not (password or token_command):
        raise InputError(f"{prefix}_USER is gezet, maar {prefix}_PASSWORD en "
                         f"{prefix}_TOKEN_COMMAND ontbreken")
    if password and token_command:
        log.warning("Zowel %s_PASSWORD als %s_TOKEN_COMMAND is ingesteld; inloggen met XOAUTH2",
                    prefix, prefix)


def run_token_command(command: str, variable: str) -> str:
    """Run a token command (no shell); its output is the OAuth2 access token."""
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise InputError(f"{variable} is geen geldige opdracht: {err}") from err
    if not argv:
        raise InputError(f"{variable} is leeg")
    program = Path(argv[0]).name  # only the program: its arguments may hold a client secret
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOKEN_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as err:
        raise InputError(f"{variable} ({program}) gaf binnen {TOKEN_TIMEOUT:.0f} s geen token") \
            from err
    except OSError as err:
        raise InputError(f"{variable} ({program}) kon niet worden gestart: "
                         f"{err.strerror or type(err).__name__}") from err
    token = done.stdout.strip()
    if done.returncode != 0 or not token or any(c.isspace() for c in token):
        raise InputError(f"{variable} ({program}) gaf geen bruikbaar token (exitstatus "
                         f"{done.returncode}); voer de opdracht zelf uit om te zien waarom")
    return token


def unknown_host(err: BaseException) -> bool:
    """A host name that does not exist (a typo, say): configuration, not a passing fault.

    A name server that cannot be asked right now (EAI_AGAIN) is a passing fault.
    """
    return isinstance(err, socket.gaierror) and err.errno in _NO_SUCH_NAME


_NO_SUCH_NAME = frozenset(getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA")
                          if hasattr(socket, name))
