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
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from leergang_ops.errors import InputError, WorkbookInUse
from leergang_ops.store.graph import Graph, Item, RangeWrite, excel_value, is_graph_address
from leergang_ops.store.webdav import Fetched, WebDav
from leergang_ops.xlsx.write import CellWrite, column_letters

if TYPE_CHECKING:
    from leergang_ops.jobs import ToolWrites

log = logging.getLogger(__name__)

MAX_RACES = 3  # an organiser's save between our fetch and our upload: re-apply, try again


def data_folder(env: Mapping[str, str]) -> Path:
    """The user's data folder for the tool: working copies and their ledgers."""
    base = env.get("XDG_DATA_HOME", "").strip() or str(Path.home() / ".local" / "share")
    return Path(base) / "leergang-ops"


def working_folder(url: str, env: Mapping[str, str]) -> Path:
    """The private folder of one remote item, `<host>-<12 hex>`: its working copy and ledger.

    The key is the item, not how its address happens to be spelt — a ledger found by the
    spelling would mail everybody again when the operator writes the address differently
    (the safety net of contract §4 would stop that run, but it should not come to that).
    A WebDAV address counts as its normalised form (RFC 3986: case of scheme and host, the
    default port, percent-encoding). A Microsoft 365 item counts as its drive and item id,
    whichever link or address named it; until its first run resolves those, the address.
    """
    if is_graph_address(url, env):
        known = _graph_items(env).get(url)
        if known:
            return data_folder(env) / "remote" / known
        return _folder(env, "graph", url)
    return _folder(env, urlsplit(url).hostname or "server", normalised(url))


def _folder(env: Mapping[str, str], host: str, key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return data_folder(env) / "remote" / f"{host.replace(':', '_')}-{digest}"


def normalised(url: str) -> str:
    """The address with what does not change its meaning made uniform (RFC 3986 §6.2.2)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    path = quote(unquote(parts.path), safe="/")
    return f"{scheme}://{host}{port}{path}"


_GRAPH_ITEMS = "graph-items.json"  # address → the folder of the drive item it named


def _graph_items(env: Mapping[str, str]) -> dict[str, str]:
    try:
        data = json.loads((data_folder(env) / "remote" / _GRAPH_ITEMS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_graph_item(url: str, folder: Path, env: Mapping[str, str]) -> None:
    known = {**_graph_items(env), url: folder.name}
    _write_private(data_folder(env) / "remote" / _GRAPH_ITEMS,
                   json.dumps(known, indent=1, sort_keys=True).encode())


def working_copy(url: str, env: Mapping[str, str]) -> Path:
    """Where the remote workbook's working copy is kept (it may not exist yet)."""
    if is_graph_address(url, env):
        existing = sorted(working_folder(url, env).glob("*.xlsx"))
        named = [p for p in existing if not p.name.startswith(".")
                 and not p.stem.endswith(".backup")]
        return named[0] if named else working_folder(url, env) / "werkmap.xlsx"
    return working_folder(url, env) / WebDav.name_of(url)


class WebDavSession:
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
                log.info("%s teruggezet%s", self.url, f" (ETag {etag})" if etag else "")
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


class GraphSession:
    """One command's use of a workbook in Microsoft 365 (store/graph.py).

    The file is read whole; the tool's cells go back through Excel's workbook service, cell
    by cell, as a co-author's would — never by replacing the file, which fails while it is
    open in Excel and would undo organisers' edits. Before writing, the session re-reads the
    E-mail column: a row that no longer holds the registration the cells were computed for
    (rows inserted, sorted, deleted meanwhile) means: read the file again and recompute.
    """

    def __init__(self, url: str, env: Mapping[str, str]) -> None:
        self.url, self.env = url, env
        self.server = Graph(url, env)
        self.item: Item | None = None
        self.path = working_copy(url, env)

    def open(self, *, writes: bool) -> Path:
        self.item = self.server.item()
        folder = _folder(self.env, "graph", f"{self.item.drive}/{self.item.item}")
        _remember_graph_item(self.url, folder, self.env)
        self.path = folder / _safe_name(self.item.name)
        if writes:  # the right to write, found out before anything is sent
            self.server.open_session(self.item)
            self.server.close_session(self.item)
        self._fetch()
        return self.path

    def _fetch(self) -> None:
        assert self.item is not None
        content = self.server.download(self.item)
        _write_private(self.path, content)
        _write_private(self.server_copy, content)

    @property
    def server_copy(self) -> Path:
        """The file as the server holds it: the cells to write are computed against it."""
        return self.path.with_name(f".server-{self.path.name}")

    def put_back(self, compute: Callable[[Path], ToolWrites]) -> bool:
        assert self.item is not None, "open() comes first"
        for _ in range(MAX_RACES):
            writes = compute(self.server_copy)
            if not writes.cells:
                return False
            self.server.open_session(self.item)
            try:
                moved = self._rows_moved(writes)
                if not moved:
                    for block in range_writes(writes.cells):
                        self.server.write(self.item, writes.sheet, block)
            finally:
                self.server.close_session(self.item)
            if not moved:
                return True
            log.info("%s: rijen zijn intussen verschoven; opnieuw gelezen", self.url)
            self._fetch()
        raise WorkbookInUse(f"{self.url}: de rijen veranderden steeds terwijl de run zijn "
                            f"kolommen schreef ({MAX_RACES} keer); de verstuurde mails staan in "
                            "het verzendlogboek, de volgende run schrijft de kolommen.")

    def _rows_moved(self, writes: ToolWrites) -> bool:
        assert self.item is not None
        rows = sorted({row for row, _ in writes.cells if row in writes.emails})
        if not rows:
            return False
        column = column_letters(writes.email_column)
        now = self.server.read_range(self.item, writes.sheet,
                                     f"{column}{rows[0]}:{column}{rows[-1]}")
        for row in rows:
            offset = row - rows[0]
            there = str(now[offset][0]) if offset < len(now) and now[offset] else ""
            if there.strip().casefold() != writes.emails[row].strip().casefold():
                return True
        return False

    def close(self) -> None:
        self.server.close()


def range_writes(cells: Mapping[tuple[int, int], CellWrite]) -> list[RangeWrite]:
    """The cells as ranges of one row and adjacent columns, each with its fills and fonts
    (the status colours and a new column's bold header, as the write-back gives them)."""
    blocks: list[RangeWrite] = []
    for row in sorted({r for r, _ in cells}):
        columns = sorted(c for r, c in cells if r == row)
        runs: list[list[int]] = []
        for col in columns:
            if runs and col == runs[-1][-1] + 1:
                runs[-1].append(col)
            else:
                runs.append([col])
        for run in runs:
            writes = [cells[(row, col)] for col in run]
            address = f"{column_letters(run[0])}{row}"
            if len(run) > 1:
                address += f":{column_letters(run[-1])}{row}"
            fills = [(f"{column_letters(col)}{row}", f"#{w.style.fill[-6:]}")
                     for col, w in zip(run, writes, strict=True) if w.style and w.style.fill]
            fonts = [(f"{column_letters(col)}{row}", font)
                     for col, w in zip(run, writes, strict=True) if (font := _font(w))]
            blocks.append(RangeWrite(
                address, [[excel_value(w.value) for w in writes]],
                [[w.style.number_format if w.style else None for w in writes]], fills, fonts))
    return blocks


def _font(write: CellWrite) -> dict[str, object]:
    """Graph's RangeFont for a write's style: only what the style changes."""
    style = write.style
    if style is None:
        return {}
    font: dict[str, object] = {}
    if style.font_color:
        font["color"] = f"#{style.font_color[-6:]}"
    if style.bold:
        font["bold"] = True
    return font


def _safe_name(name: str) -> str:
    """The item's name as a file name here (no folders, no hidden file)."""
    cleaned = Path(name).name.lstrip(".") or "werkmap.xlsx"
    return cleaned if cleaned.lower().endswith(".xlsx") else cleaned + ".xlsx"


@contextlib.contextmanager
def remote_workbook(url: str, env: Mapping[str, str], *, writes: bool,
                    reapply: Callable[[Path], None] | None = None,
                    cells: Callable[[Path], ToolWrites] | None = None) -> Iterator[Path]:
    """The working copy of the workbook at `url` for the block; put back after it when
    `writes` (only if the block ends normally: a failed run leaves the server's file as it
    is, and the next run writes the columns).

    WebDAV puts the file back, `reapply` redoing the command's writes on an organiser's
    newer version; Microsoft 365 writes `cells(server's version)` (default: the tool
    columns from the ledger) through Excel's service."""
    session: WebDavSession | GraphSession = (GraphSession(url, env)
                                             if is_graph_address(url, env)
                                             else WebDavSession(url, env))
    try:
        path = session.open(writes=writes)
        if writes and cells is not None and isinstance(session, GraphSession):
            cells(session.server_copy)  # refused now (e.g. a table) rather than after the job
        yield path
        if writes and isinstance(session, GraphSession):
            from leergang_ops.jobs import tool_writes

            session.put_back(cells or (lambda copy: tool_writes(copy, env)))
        elif writes and isinstance(session, WebDavSession):
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
