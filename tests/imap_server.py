"""A real IMAP server for tests: a private Dovecot instance on loopback, config in tmp_path.

    pytest_plugins = ["tests.imap_server"]   # in conftest.py (or a test module)

    def test_something(imap_server):
        imap_server.append(raw_bytes, flags=(r"\\Seen",), date=datetime(2021, 10, 1, tzinfo=UTC))
        before = imap_server.snapshot()            # UIDVALIDITY + (uid, flags, bytes) per mail
        env = imap_server.env()                    # LEERGANG_IMAP_* for the imaps listener
        env = imap_server.env(LEERGANG_IMAP_SECURITY="starttls",
                              LEERGANG_IMAP_PORT=str(imap_server.plain_port))
        context = imap_server.ssl_context()        # trusts the self-signed test certificate

Two listeners: `port` (implicit TLS, "imaps") and `plain_port` (plain IMAP offering STARTTLS).
One passwd-file user, `afzender@example.org` (password `PASSWORD`), with a maildir. The config,
certificate, passwd file, state_dir and log are in tmp_path; base_dir and the maildirs too,
except as root: Dovecot stores no mail as root, the mail processes then run as `nobody`, who
cannot enter pytest's 0700 tmp_path, so those two go into a private /tmp/dovecot-* folder that
stop() removes. It never touches a system Dovecot (/run/dovecot, /etc/dovecot).
Dovecot 2.3 (Debian 12) and 2.4 (Debian 13) need different configuration syntax;
`dovecot --version` decides which is written. Tests skip when `dovecot` is not installed.
As root the package's `dovecot`/`dovenull` users must exist (they come with the package).
"""

from __future__ import annotations

import contextlib
import getpass
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

USER = "afzender@example.org"
PASSWORD = "geheim-imap-wachtwoord"
START_TIMEOUT = 10.0  # seconds Dovecot may take to answer on its port
STOP_GRACE = 0.3  # seconds Dovecot may take to stop before it is killed
SOCKET_PATH_ROOM = 60  # Dovecot adds up to ~40 bytes of socket names; the limit is 107


@dataclass(frozen=True)
class Stored:
    """One message as the server holds it."""

    uid: int
    flags: frozenset[str]
    data: bytes


@dataclass(frozen=True)
class Snapshot:
    """A folder's UIDVALIDITY and every message in it, to compare before and after."""

    uidvalidity: int
    messages: tuple[Stored, ...]


def dovecot_version(binary: str) -> tuple[int, int]:
    """(major, minor) of `dovecot --version`, e.g. (2, 3) for '2.3.19.1 (9b53102964)'."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    match = re.match(r"(\d+)\.(\d+)", out.stdout.strip())
    if not match:
        raise RuntimeError(f"unexpected dovecot --version output: {out.stdout!r}")
    return int(match[1]), int(match[2])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the cryptography package is a test extra)."""
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file


@dataclass(frozen=True)
class _Layout:
    """Where the private instance keeps its files, and as whom it runs."""

    root: Path
    port: int
    plain_port: int
    internal_user: str
    login_user: str
    root_run: bool
    spool: Path  # base_dir and the maildirs (see _spool)
    mail_uid: int
    mail_gid: int

    @property
    def base_dir(self) -> Path:
        return self.spool / "run"

    @property
    def mail_root(self) -> Path:
        return self.spool / "mail"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def log(self) -> Path:
        return self.root / "dovecot.log"

    @property
    def passwd(self) -> Path:
        return self.root / "passwd"

    @property
    def cert(self) -> Path:
        return self.root / "cert.pem"

    @property
    def key(self) -> Path:
        return self.root / "key.pem"


def _common(layout: _Layout) -> list[str]:
    """Settings spelled the same in 2.3 and 2.4."""
    lines = [
        f"base_dir = {layout.base_dir}",
        f"state_dir = {layout.state_dir}",
        f"log_path = {layout.log}",
        "protocols = imap",
        "listen = 127.0.0.1",
        f"default_internal_user = {layout.internal_user}",
        f"default_login_user = {layout.login_user}",
        f"first_valid_uid = {min(layout.mail_uid, 500)}",
        "ssl = yes",
        "namespace inbox {\n  inbox = yes\n  separator = /\n}",
        "service imap-login {",
        f"  inet_listener imap {{\n    port = {layout.plain_port}\n  }}",
        f"  inet_listener imaps {{\n    port = {layout.port}\n    ssl = yes\n  }}",
    ]
    if layout.root_run:
        # tmp_path is mode 0700: the auth process must read the passwd file as root.
        lines += ["}", "service auth {\n  user = root\n}"]
    else:
        lines += ["  chroot =", "}", "service anvil {\n  chroot =\n}"]  # chroot needs root
    return lines


def config_23(layout: _Layout) -> str:
    """dovecot.conf for Dovecot 2.3."""
    uid, gid = layout.mail_uid, layout.mail_gid
    return "\n".join([
        *_common(layout),
        # 2.3's XOAUTH2 checks the token as a password against the passdb: the test's token
        # is the password. (2.4 wants a passdb oauth2 for it, so 2.4 offers no XOAUTH2 here.)
        "auth_mechanisms = plain login xoauth2",
        "auth_failure_delay = 0",  # a wrong-password test need not wait 2 s
        f"ssl_cert = <{layout.cert}",
        f"ssl_key = <{layout.key}",
        "mail_location = maildir:~/Maildir",
        f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {layout.passwd}\n}}",
        f"userdb {{\n  driver = static\n  args = uid={uid} gid={gid} "
        f"home={layout.mail_root}/%u\n}}",
        "",
    ])


def config_24(layout: _Layout) -> str:
    """dovecot.conf for Dovecot 2.4 (the version settings must come first)."""
    uid, gid = layout.mail_uid, layout.mail_gid
    # 2.4 chowns its internal sockets to default_internal_group (default `dovecot`), which
    # fails for a non-root user who is not in it: use the user's own group then.
    group = [] if layout.root_run else [f"default_internal_group = {grp.getgrgid(gid).gr_name}"]
    return "\n".join([
        "dovecot_config_version = 2.4.0",
        "dovecot_storage_version = 2.4.0",
        *_common(layout),
        *group,
        "auth_mechanisms = plain login",
        "auth_failure_delay = 0",  # as in 2.3: a wrong-password test need not wait 2 s
        f"ssl_server_cert_file = {layout.cert}",
        f"ssl_server_key_file = {layout.key}",
        "mail_driver = maildir",
        "mail_path = ~/Maildir",
        "passdb passwd-file {",
        f"  passwd_file_path = {layout.passwd}",
        "}",
        "userdb static {",
        f"  fields {{\n    uid = {uid}\n    gid = {gid}\n"
        f"    home = {layout.mail_root}/%{{user}}\n  }}",
        "}",
        "",
    ])


class ImapServer:
    """A private Dovecot on 127.0.0.1; `start()`/`stop()` or use the fixture."""

    def __init__(self, root: Path, binary: str) -> None:
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.binary = binary
        self.version = dovecot_version(binary)
        self.layout = _layout(root)
        self.port = self.layout.port
        self.plain_port = self.layout.plain_port
        self.cert_file, _ = make_certificate(root)
        self.config = root / "dovecot.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self.xoauth2 = self.version < (2, 4)  # the token is the password (see config_23)

    def start(self) -> ImapServer:
        """Write the config, start `dovecot -F` and wait until both ports answer."""
        layout = self.layout
        for folder in (layout.base_dir, layout.state_dir, layout.mail_root):
            folder.mkdir(exist_ok=True)
        os.chown(layout.mail_root, layout.mail_uid, layout.mail_gid)
        layout.passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        writer = config_24 if self.version >= (2, 4) else config_23
        self.config.write_text(writer(layout))
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends master and children
        )
        self._wait_until_listening()
        return self

    def stop(self) -> None:
        """Stop the whole instance (see _terminate) and remove its /tmp folder, if any."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        if self.layout.spool != self.layout.root:
            shutil.rmtree(self.layout.spool, ignore_errors=True)

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = {self.port, self.plain_port}
        while pending:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"dovecot stopped at start-up:\n{self._output()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not listen within {START_TIMEOUT} s:\n"
                                   f"{self._output()}")
            pending = {port for port in pending
                       if not _answers(self.host, port, greet=port == self.plain_port)}
            if pending:
                time.sleep(0.02)

    def _output(self) -> str:
        text = ""
        if self._process is not None and self._process.stdout is not None \
                and self._process.poll() is not None:
            text = self._process.stdout.read().decode(errors="replace")
        if self.layout.log.exists():
            text += self.layout.log.read_text(errors="replace")
        return text

    # --- for tests -----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test certificate (and checks the host name)."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def env(self, **extra: str) -> dict[str, str]:
        """LEERGANG_IMAP_* pointing at the imaps listener; `extra` overrides or adds."""
        env = {
            "LEERGANG_IMAP_HOST": self.host,
            "LEERGANG_IMAP_PORT": str(self.port),
            "LEERGANG_IMAP_USER": self.user,
            "LEERGANG_IMAP_PASSWORD": self.password,
            "LEERGANG_IMAP_SECURITY": "ssl",
        }
        env.update(extra)
        return env

    def connect(self) -> imaplib.IMAP4_SSL:
        """A logged-in imaplib connection over implicit TLS."""
        imap = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self.ssl_context(),
                                 timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[str] = (),
               date: datetime | None = None) -> None:
        """IMAP APPEND as the user; `date` becomes the INTERNALDATE (default: now)."""
        imap = self.connect()
        try:
            if folder.upper() != "INBOX":
                imap.create(_quoted(folder))  # an existing folder answers NO: fine
            when = imaplib.Time2Internaldate(date or datetime.now(UTC))
            typ, data = imap.append(_quoted(folder), f"({' '.join(flags)})" if flags else None,
                                    when, raw)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            imap.logout()

    def snapshot(self, folder: str = "INBOX") -> Snapshot:
        """UIDVALIDITY and (uid, flags, RFC822 bytes) of each message, read without side effects."""
        imap = self.connect()
        try:
            typ, _ = imap.select(_quoted(folder), readonly=True)
            if typ != "OK":
                raise RuntimeError(f"no folder {folder!r}")
            _, values = imap.response("UIDVALIDITY")
            uidvalidity = int(cast(bytes, values[0]))
            typ, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            if typ != "OK":
                raise RuntimeError(f"FETCH failed: {data!r}")
            return Snapshot(uidvalidity, tuple(sorted(_stored(data), key=lambda s: s.uid)))
        finally:
            imap.logout()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the instance's own process group, SIGKILL to what is left after a moment.

    A login process with a half-open client lingers for seconds after SIGTERM, and the
    master waits for it; a test has no use for a graceful goodbye. The master is reaped
    only at the end, so the group id (its pid) cannot have been reused when it is signalled.
    """
    if process.returncode is None:
        _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and not _exited(process.pid):
            time.sleep(0.01)
        _signal_group(process.pid, signal.SIGKILL)  # children may outlive the master
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def _exited(pid: int) -> bool:
    """Whether the process has exited, without reaping it (WNOWAIT)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # the group id is the master's pid (start_new_session)


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stored(data: list[object]) -> Iterator[Stored]:
    """Parse imaplib's FETCH answer: (b'1 (UID 3 FLAGS (\\Seen) BODY[] {n}', body), b')'."""
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item[0].decode(), item[1]
        uid = re.search(r"UID (\d+)", head)
        flags = re.search(r"FLAGS \(([^)]*)\)", head)
        if uid is None or flags is None:
            raise RuntimeError(f"unexpected FETCH answer: {head!r}")
        # \Recent belongs to the session, not the message: the first session to see it has it.
        yield Stored(int(uid[1]), frozenset(flags[1].split()) - {"\\Recent"}, body)


def _answers(host: str, port: int, *, greet: bool) -> bool:
    """Whether the port accepts; with `greet`, whether it sends the IMAP greeting.

    Dovecot greets only once its auth process is ready, so a greeting means ready to log in.
    """
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            return not greet or sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _layout(root: Path) -> _Layout:
    """Ports and users for one instance: as root Dovecot drops to the package's users."""
    root_run = os.geteuid() == 0
    internal, login = ("dovecot", "dovenull") if root_run else (getpass.getuser(),) * 2
    for name in (internal, login):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.skip(f"user {name!r} (from the dovecot package) does not exist")
    plain = free_port()
    imaps = free_port()
    while imaps == plain:
        imaps = free_port()
    # Dovecot refuses to store mail as root: as root, mail belongs to `nobody`.
    uid, gid = _mail_owner(root_run)
    return _Layout(root, imaps, plain, internal, login, root_run, _spool(root, root_run),
                   uid, gid)


def _mail_owner(root_run: bool) -> tuple[int, int]:
    if not root_run:
        return os.getuid(), os.getgid()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("user 'nobody' does not exist (Dovecot stores no mail as root)")
    return nobody.pw_uid, nobody.pw_gid


def _spool(root: Path, root_run: bool) -> Path:
    """root, unless the mail user cannot reach it or its socket paths would be too long.

    pytest makes tmp_path's parents mode 0700 for root; the mail processes run as `nobody`
    then, so base_dir and the maildirs go into a short private folder in /tmp instead.
    """
    if len(str(root)) <= SOCKET_PATH_ROOM and (not root_run or _traversable(root)):
        return root
    spool = Path(tempfile.mkdtemp(prefix="dovecot-"))
    spool.chmod(0o755)
    return spool


def _traversable(path: Path) -> bool:
    """Whether every folder from / to `path` lets others pass (o+x)."""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def _binary() -> str:
    binary = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)),
        None)
    if binary is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    return binary


@pytest.fixture
def make_imap_server(tmp_path: Path) -> Iterator[Callable[[], ImapServer]]:
    """A factory: each call starts one more private Dovecot (each in its own folder)."""
    servers: list[ImapServer] = []
    binary = _binary()

    def make() -> ImapServer:
        root = tmp_path / f"dovecot{len(servers)}"
        root.mkdir()
        server = ImapServer(root, binary)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def imap_server(make_imap_server: Callable[[], ImapServer]) -> ImapServer:
    """One private Dovecot with the user afzender@example.org and an empty INBOX."""
    return make_imap_server()
