"""A remote workbook's session: fetch, work on a private copy, put back only if unchanged.

Contract §1 "Where the workbook lives". The job itself (read, allocate, plan, send, write the
tool columns) runs on a working copy as on any local file; this module wraps it:

1. Fetch the file into its working folder — per remote item, in the user's data folder
   (`$XDG_DATA_HOME/leergang-ops/…`, not a cache that may be cleaned; mode 0700, file
   0600) — and remember the ETag. The send ledger lives there too, found by the course
   as always (`LEERGANG_STATE` still wins), so it is keyed by the remote item.
2. Before anything is sent: a lock held by someone else (an online editor) is "in use"
   (exit 3); a file the account may not write is exit 2.
3. After the job: put the copy back with `If-Match`, if it changed (a run that changes
   nothing uploads nothing). When an organiser saved meanwhile (412), take their version,
   write the tool columns into it from the ledger — the allocation is recomputed on their
   rows, so each registration is found by its content, not its row number, and their edits
   and sorting stay — and try again, a few times. The mails already sent stay recorded; if
   their saves keep winning, exit 3 and the next run writes the columns.

The previous version of the workbook is the server's own version history: no backup copy is
put on the server (the local backup beside the working copy is the job's usual one).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from leergang_ops.errors import InputError, WorkbookInUse
from leergang_ops.store.webdav import Fetched, WebDav

log = logging.getLogger(__name__)

MAX_RACES = 3  # an organiser's save between our fetch and our upload: re-apply, try again


def data_folder(env: Mapping[str, str]) -> Path:
    """The user's data folder for the tool: working copies and their ledgers."""
    base = env.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "leergang-ops"


def working_folder(url: str, env: Mapping[str, str]) -> Path:
    """The private folder of one remote item: `<host>-<12 hex of the address>`."""
    host = (urlsplit(url).hostname or "server").replace(":", "_")
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    return data_folder(env) / "remote" / f"{host}-{key}"


def working_copy(url: str, env: Mapping[str, str]) -> Path:
    """Where the remote workbook's working copy is kept (it may not exist yet)."""
    return working_folder(url, env) / WebDav.name_of(url)


class RemoteSession:
    """One command's use of a remote workbook."""

    def __init__(self, url: str, env: Mapping[str, str]) -> None:
        self.url = url
        self.env = env
        self.server = WebDav(url, env)
        self.path = working_copy(url, env)
        self.fetched: Fetched | None = None

    def open(self, *, writes: bool) -> Path:
        """Fetch the workbook into the working copy; for a command that writes, check first
        that nobody holds a lock and that the account may write."""
        props = self.server.props()
        if writes and props.locked_by is not None:
            who = f" door {props.locked_by}" if props.locked_by else ""
            raise WorkbookInUse(f"{self.url} is vergrendeld{who} (bijvoorbeeld geopend in een "
                                "online editor); er is niets verstuurd of geschreven. De "
                                "volgende run probeert het opnieuw.")
        if writes and props.may_write is False:
            raise InputError(f"{self.url}: {self.server.user} mag dit bestand niet wijzigen "
                             "(oc:permissions zonder W); vraag de eigenaar het met "
                             "bewerkrechten te delen. Er is niets verstuurd.")
        self.fetched = self.server.fetch()
        _write_private(self.path, self.fetched.content)
        return self.path

    def put_back(self, reapply: Callable[[Path], None]) -> bool:
        """Upload the working copy if it changed; on an organiser's save, re-apply and retry.

        `reapply(path)` writes the tool columns into the workbook at `path` from the ledger
        (`jobs.flag`). Returns True when something was uploaded.
        """
        assert self.fetched is not None, "open() comes first"
        content = self.path.read_bytes()
        for _ in range(MAX_RACES):
            if content == self.fetched.content:
                return False  # nothing changed: nothing to upload
            etag = self.server.put(content, self.fetched.etag)
            if etag is not None:
                log.info("%s teruggezet (ETag %s)", self.url, etag)
                return True
            log.info("%s is intussen door iemand anders opgeslagen: hun versie, met onze "
                     "kolommen erin, gaat terug", self.url)
            self.fetched = self.server.fetch()
            _write_private(self.path, self.fetched.content)
            reapply(self.path)
            content = self.path.read_bytes()
        raise WorkbookInUse(f"{self.url} werd steeds opnieuw opgeslagen terwijl de run zijn "
                            f"kolommen terugzette ({MAX_RACES} keer); de verstuurde mails staan "
                            "in het verzendlogboek, de volgende run schrijft de kolommen.")

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def remote_workbook(url: str, env: Mapping[str, str], *, writes: bool,
                    reapply: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """The working copy of the workbook at `url` for the block; put back after it when
    `writes` (only if the block ends normally: a failed run leaves the server's file as it
    is, and the next run writes the columns)."""
    session = RemoteSession(url, env)
    try:
        path = session.open(writes=writes)
        yield path
        if writes:
            session.put_back(reapply or (lambda _: None))
    finally:
        session.close()


def _write_private(path: Path, content: bytes) -> None:
    """Write the working copy readable by this user only (it holds people's addresses)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".~fetch-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.replace(tmp, path)
