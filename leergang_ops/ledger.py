"""The send ledger (SQLite beside the workbook): what was sent, and the state planning reads.

Where it lives is ledger_location.py; the lock that keeps two runs apart is run_lock.py.

The ledger is the truth about what was sent: one row per idempotency key
`(kind, recipient, scope)`, moving sending → sent / deferred / bounced. A mail is recorded as
`sending` before the server could accept it and as `sent` after the server accepted it.
A mail's `sent` is written and committed together with the next mail's `sending`: one commit
(one disk sync) per mail. A batch does both in the next SMTP transaction's first wait, while
the server answers MAIL FROM (`begin(..., defer_commit=True)`, then `commit(hold=True)`),
so always before anything goes out that the server could accept; the last `sent` is
committed when the ledger is next read or closed. So a crash (even SIGKILL or a power cut)
leaves at most the one mail of the moment ambiguous. A row still `sending` counts as not
sent: that mail may go out twice, once — the accepted price of never dropping one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from leergang_ops.environment import fault, translated
from leergang_ops.errors import EnvironmentFault, InputError
from leergang_ops.model import LedgerState, MailIntent, MailKind, MeetingDetails, SentRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

STATE_ENV = "LEERGANG_STATE"
LEDGER_SUFFIX = ".leergang.sqlite"
BUSY_TIMEOUT_MS = 5_000
CHECKPOINT_EVERY = 32  # commits between passive WAL checkpoints in a batch
# Mails that tell a recipient a meeting's details; only these count for `wijziging`.
DETAIL_KINDS = frozenset({MailKind.BEVESTIGING, MailKind.HERINNERING, MailKind.WIJZIGING})

# Migrations by version: _MIGRATIONS[v] brings a ledger from user_version v to v + 1.
# Append, never edit: ledgers in the field are at every version that ever shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE mails (
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            scope TEXT NOT NULL,
            address TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL
                CHECK (status IN ('sending', 'sent', 'deferred', 'bounced')),
            at TEXT NOT NULL,
            at_epoch REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (kind, recipient, scope)
        ) WITHOUT ROWID""",
        "CREATE INDEX mails_by_time ON mails (at_epoch)",
        """CREATE TABLE sent_details (
            recipient TEXT NOT NULL,
            nr INTEGER NOT NULL,
            details TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (recipient, nr)
        ) WITHOUT ROWID""",
        """CREATE TABLE meeting_versions (
            nr INTEGER PRIMARY KEY,
            details TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            at TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL
        )""",
    ),
    (
        # What passed a check, by fingerprint, so an unchanged thing need not be checked again.
        """CREATE TABLE checks (
            what TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
    ),
    (
        # What a refusal was about (mail/replies.About, or 'bounce'): decides its wording.
        "ALTER TABLE mails ADD COLUMN about TEXT NOT NULL DEFAULT ''",
        # Runs that found a recipient's mailbox full: permanent on the third.
        """CREATE TABLE mailbox_full (
            recipient TEXT PRIMARY KEY,
            runs INTEGER NOT NULL,
            last_day TEXT NOT NULL
        ) WITHOUT ROWID""",
        # The bounce mailbox's messages looked at, by folder, UIDVALIDITY and UID: once each.
        """CREATE TABLE mailbox_seen (
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            uid INTEGER NOT NULL,
            PRIMARY KEY (folder, uidvalidity, uid)
        ) WITHOUT ROWID""",
        # Bounces that blame nobody (policy, content) or match none of our mails ("mogelijk").
        """CREATE TABLE bounce_reports (
            address TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            about TEXT NOT NULL,
            diagnostic TEXT NOT NULL,
            arrived TEXT NOT NULL,
            matched INTEGER NOT NULL,
            PRIMARY KEY (address, kind, status, arrived)
        ) WITHOUT ROWID""",
        # Facts about the course the ledger keeps for when the workbook cannot be read.
        """CREATE TABLE facts (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
    ),
    (
        # Where a mail went: `smtp:<host>` or `outbox:<folder>` (an outbox mail was not sent).
        "ALTER TABLE mails ADD COLUMN destination TEXT NOT NULL DEFAULT ''",
        # Reminders a confirmation stood in for (sent on or after their due day): never sent.
        """CREATE TABLE covered (
            kind TEXT NOT NULL,
            recipient TEXT NOT NULL,
            scope TEXT NOT NULL,
            by_kind TEXT NOT NULL,
            by_scope TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (kind, recipient, scope)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
TEMPLATES_CHECKED = "templates"  # `checks` row: the mail templates passed Templates.check

_UPSERT_MAIL = """
    INSERT INTO mails (kind, recipient, scope, address, name, status, at, at_epoch, attempts,
                       message_id, detail, about, destination)
    VALUES (:kind, :recipient, :scope, :address, :name, :status, :at, :at_epoch, :attempts,
            :message_id, :detail, :about, :destination)
    ON CONFLICT (kind, recipient, scope) DO UPDATE SET
        address = excluded.address, name = excluded.name, status = excluded.status,
        at = excluded.at, at_epoch = excluded.at_epoch,
        attempts = mails.attempts + excluded.attempts,
        message_id = excluded.message_id, detail = excluded.detail, about = excluded.about,
        destination = excluded.destination
    WHERE mails.status != 'sent'
"""


WORKBOOK_FACT = "werkmap"  # the file name of the workbook the ledger last served


def _fact(db: sqlite3.Connection, name: str) -> str | None:
    if not _has_table(db, "facts"):
        return None
    row = db.execute("SELECT value FROM facts WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def read_fact(path: Path, name: str) -> str | None:
    """One fact the ledger at `path` remembers, read without writing; None when there is none."""
    return _read_only(path, lambda db: _fact(db, name), None)


_SentRecord = tuple[MailIntent, datetime, str, Mapping[int, tuple[MeetingDetails, int]], str]


class Ledger:
    """The SQLite send ledger; one connection for the object's life."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending = False  # an open write transaction waits for `commit`
        self._sent: list[_SentRecord] = []  # `mark_sent` records that `commit` writes first
        self._interrupted: set[tuple[str, str, str]] | None = None
        self._prior: dict[tuple[str, str, str], list[Any]] = {}  # rows not sent, at the start
        self._versions: dict[int, tuple[str, int]] = {}  # meeting versions written here
        self._commits = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)  # we BEGIN ourselves
        except (OSError, sqlite3.Error) as err:
            raise fault(err, path) or InputError(
                f"{path}: het verzendlogboek kan niet worden geopend: {err}") from err
        try:
            self._configure()
            self._migrate()
        except sqlite3.Error as err:
            self._db.close()
            raise fault(err, path) or InputError(
                f"{path}: het verzendlogboek kan niet worden gelezen: {err}") from err
        except BaseException:
            self._db.close()
            raise

    def _configure(self) -> None:
        """Wait briefly for a busy database, and switch to WAL with synchronous=FULL."""
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":  # e.g. some network file systems; still correct, only slower
            log.warning("%s: WAL-modus niet beschikbaar, journal_mode is %s", self.path, mode)
        # FULL syncs the WAL at every commit, so a power cut cannot undo recorded `sent`
        # rows and resend a batch; NORMAL (no sync until a checkpoint) only survives process
        # crashes. The fsync costs 0.1–a few ms, nothing beside an SMTP round trip.
        self._db.execute("PRAGMA synchronous = FULL")

    def _version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Bring the schema up to SCHEMA_VERSION, refusing a ledger from a newer release."""
        if self._version() == SCHEMA_VERSION:
            return  # the common case takes no write lock
        with self._transaction() as db:
            version = self._version()  # again: another process may have migrated meanwhile
            _refuse_newer(self.path, version)
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block and commit, together with anything pending (written first)."""
        if self._sent:
            self._write_sent()
        with self._uncommitted() as db:
            yield db
        self.commit()

    @contextmanager
    def _uncommitted(self) -> Iterator[sqlite3.Connection]:
        """Run the block in the write transaction that `commit` will commit.

        The write lock is taken up front (BEGIN IMMEDIATE) unless a transaction is pending
        already; a failing block rolls back everything pending.
        """
        if not self._pending:
            with translated(self.path):
                self._db.execute("BEGIN IMMEDIATE")
        self._pending = True
        try:
            with translated(self.path):
                yield self._db
        except BaseException:
            self._pending = False
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself
                self._db.execute("ROLLBACK")
            raise

    def commit(self, *, hold: bool = False) -> None:
        """Commit what `mark_sent` or a deferred `begin` left pending (a no-op without).

        With `hold` the next write transaction starts at once. A batch commits this way in
        each mail's first pause: taking the write lock (BEGIN IMMEDIATE) costs more than
        the `begin` it is for, and would otherwise fall between two mails, when the server
        waits. (The run lock keeps other writers away during a run anyway; readers are not
        held up.)
        """
        if self._sent:
            self._write_sent()
        if self._pending:
            self._pending = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                # A full disk fails the commit; SQLite may or may not have rolled back.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                found = fault(err, self.path)
                if found is None:
                    raise
                raise found from err
            self._commits += 1
            if self._commits % CHECKPOINT_EVERY == 0:
                self._checkpoint()
        if hold:
            with translated(self.path):
                self._db.execute("BEGIN IMMEDIATE")
            self._pending = True

    def _checkpoint(self) -> None:
        """Copy the WAL into the database so the WAL is reused from its start, not grown.

        PASSIVE, never TRUNCATE: the WAL keeps its size, so a later commit in this batch
        writes into space it already has, and a disk that fills up meanwhile cannot strike
        between the server's 250 and the *sent* record. (Without checkpoints the WAL grew to
        557 KB for 86 mails.)
        """
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Commit what is pending and close (SQLite checkpoints the WAL on the last close)."""
        try:
            self.commit()
        finally:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def state(self) -> LedgerState:
        """Read what was sent, to whom and with which meeting details, as one snapshot."""
        self.commit()
        return _snapshot(self._db)

    def _rows(self, query: str, *params: object) -> list[Any]:
        return self._db.execute(query, params).fetchall()

    def begin(self, intent: MailIntent, at: datetime, *, defer_commit: bool = False) -> bool:
        """Record `sending` before the server could accept the mail; False when it was sent.

        Its commit also makes the previous mail's `sent` durable (see `mark_sent`). With
        `defer_commit` the caller commits (`commit`), as a batch does in the SMTP
        transaction's first pause, before anything is sent that the server could accept
        (SmtpTransport's `durable`): the statements and the disk's sync then overlap the
        server's first reply.
        """
        if any(record[0].key == intent.key for record in self._sent):
            return False  # sent in this run; its record waits for the next commit
        interrupted = self._left_sending()
        with self._uncommitted() as db:
            # The upsert leaves a `sent` row alone: no change means sent already.
            changed = db.execute(_UPSERT_MAIL, _mail_row(intent, "sending", at, attempts=1))
        if not defer_commit:
            self.commit()
        if changed.rowcount == 0:
            return False
        if intent.key in interrupted:
            interrupted.discard(intent.key)
            log.warning("%s aan %s (%s): een onderbroken run heeft deze mail mogelijk al "
                        "afgeleverd; hij wordt opnieuw verstuurd", *intent.key)
        return True

    def _left_sending(self) -> set[tuple[str, str, str]]:
        """The keys an earlier, interrupted run left `sending` (read once, with the others
        not sent, which `undo_begin` restores)."""
        if self._interrupted is None:
            self._prior = {(k, r, s): rest for k, r, s, *rest in self._rows(
                "SELECT kind, recipient, scope, status, at, at_epoch, attempts, detail, about "
                "FROM mails WHERE status != 'sent'")}
            self._interrupted = {key for key, rest in self._prior.items()
                                 if rest[0] == "sending"}
        return self._interrupted

    def undo_begin(self, intent: MailIntent) -> None:
        """Take back a `begin` whose mail was never sent: the row is as it was before.

        For a refusal that blames nobody (a configuration problem found at RCPT, say): the
        mail stays due, and no "may have delivered" warning follows it.
        """
        self._left_sending()
        prior = self._prior.get(intent.key)
        kind, recipient, scope = intent.key
        with self._transaction() as db:
            if prior is None:
                db.execute("DELETE FROM mails WHERE kind = ? AND recipient = ? AND scope = ? "
                           "AND status = 'sending'", (kind, recipient, scope))
            else:
                db.execute("UPDATE mails SET status = ?, at = ?, at_epoch = ?, attempts = ?, "
                           "detail = ?, about = ? WHERE kind = ? AND recipient = ? AND "
                           "scope = ? AND status = 'sending'", (*prior, kind, recipient, scope))

    def mark_sent(
        self,
        intent: MailIntent,
        at: datetime,
        message_id: str,
        meetings: Mapping[int, tuple[MeetingDetails, int]],
        destination: str = "",
    ) -> None:
        """Record `sent`, and for meeting mails the details and SEQUENCE the recipient got.

        `destination` is where it went (`smtp:<host>`, `outbox:<folder>`); the reminders the
        mail stood in for (`intent.covers`) are recorded as covered, never to be sent.
        Written and committed by the next `commit`: in a batch the next mail's, while the
        server answers its MAIL FROM (or a read, a failure record or `close`). So it is
        durable before the server could accept the next mail, at one commit a mail instead
        of two, and its statements run while the client waits anyway rather than between
        two mails, when the server waits for the client.
        """
        self._sent.append((intent, at, message_id, meetings, destination))

    def _write_sent(self) -> None:
        records, self._sent = self._sent, []
        with self._uncommitted() as db:
            for intent, at, message_id, meetings, destination in records:
                db.execute(_UPSERT_MAIL, _mail_row(intent, "sent", at, message_id=message_id,
                                                   destination=destination))
                if intent.kind in DETAIL_KINDS and meetings:
                    self._record_details(intent.recipient, meetings, at)
                if intent.covers:
                    db.executemany(
                        "INSERT OR IGNORE INTO covered VALUES (?, ?, ?, ?, ?, ?)",
                        [(str(MailKind.HERINNERING), intent.recipient, scope,
                          str(intent.kind), intent.scope, at.isoformat())
                         for scope in intent.covers])

    def _record_details(self, recipient: str, meetings: Mapping[int, tuple[MeetingDetails, int]],
                        at: datetime) -> None:
        """Remember what one recipient was told about meetings; bump the meetings' versions."""
        stamp = at.isoformat()
        rows = [(recipient, nr, _dumped(details), sequence, stamp)
                for nr, (details, sequence) in meetings.items()]
        self._db.executemany("INSERT OR REPLACE INTO sent_details VALUES (?, ?, ?, ?, ?)", rows)
        for _, nr, details, sequence, _ in rows:
            if self._versions.get(nr) == (details, sequence):
                continue  # written by this connection already; the newest stays the newest
            self._versions[nr] = (details, sequence)
            # Keep the newest announced version; an older SEQUENCE sent late must not win.
            self._db.execute(
                """INSERT INTO meeting_versions VALUES (?, ?, ?, ?)
                   ON CONFLICT (nr) DO UPDATE SET details = excluded.details,
                       sequence = excluded.sequence, at = excluded.at
                   WHERE excluded.sequence >= meeting_versions.sequence""",
                (nr, details, sequence, stamp))

    def mark_failed(self, intent: MailIntent, at: datetime, *, permanent: bool,
                    reason: str, about: str = "") -> None:
        """Record `deferred` (retried next run) or `bounced` (not retried for this address).

        `about` is what the refusal was about (mail/replies.About): the summary words it.
        """
        status = "bounced" if permanent else "deferred"
        with self._transaction() as db:
            db.execute(_UPSERT_MAIL, _mail_row(intent, status, at, detail=reason, about=about))

    def count_full_mailbox(self, recipient: str, day: str) -> int:
        """Note a run that found `recipient`'s mailbox full; the number of such runs."""
        with self._transaction() as db:
            db.execute("""INSERT INTO mailbox_full VALUES (?, 1, ?)
                          ON CONFLICT (recipient) DO UPDATE SET runs = runs + 1, last_day = ?
                          WHERE last_day != ?""", (recipient, day, day, day))
            row = db.execute("SELECT runs FROM mailbox_full WHERE recipient = ?",
                             (recipient,)).fetchone()
        return int(row[0])

    def retry(self, recipient: str) -> int:
        """Clear every refusal and bounce recorded for `recipient`: its mails are due again.

        Returns how many mails were cleared (0: nothing was recorded against it).
        """
        with self._transaction() as db:
            cleared = db.execute("DELETE FROM mails WHERE recipient = ? AND status = 'bounced'",
                                 (recipient,)).rowcount
            db.execute("DELETE FROM mailbox_full WHERE recipient = ?", (recipient,))
        return int(cleared)

    def seen_messages(self, folder: str) -> set[tuple[int, int]]:
        """The bounce mailbox's messages already looked at: (UIDVALIDITY, UID)."""
        self.commit()
        return set(self._rows("SELECT uidvalidity, uid FROM mailbox_seen WHERE folder = ?",
                              folder))

    def record_seen(self, folder: str, messages: Iterable[tuple[int, int]]) -> None:
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO mailbox_seen VALUES (?, ?, ?)",
                           [(folder, v, u) for v, u in messages])

    def find_sent(self, message_id: str, kind: str, address: str,
                  before: datetime) -> tuple[str, str, str] | None:
        """The key of our mail a bounce returns: by Message-ID, else by kind and address.

        By kind and address, the newest such mail sent before the bounce arrived.
        """
        self.commit()
        if message_id:
            row = self._db.execute("SELECT kind, recipient, scope FROM mails WHERE "
                                   "message_id = ? AND status = 'sent'", (message_id,)).fetchone()
            if row is not None:
                return (str(row[0]), str(row[1]), str(row[2]))
        if kind:
            row = self._db.execute(
                "SELECT kind, recipient, scope FROM mails WHERE kind = ? AND address = ? "
                "COLLATE NOCASE AND status = 'sent' AND at_epoch <= ? ORDER BY at_epoch DESC "
                "LIMIT 1", (kind, address, before.timestamp())).fetchone()
            if row is not None:
                return (str(row[0]), str(row[1]), str(row[2]))
        return None

    def mark_bounced(self, key: tuple[str, str, str], at: datetime, *, permanent: bool,
                     reason: str) -> None:
        """A sent mail came back: `bounced` (address) or `deferred` (full mailbox: due again)."""
        status = "bounced" if permanent else "deferred"
        stamp, epoch = _moment(at)
        with self._transaction() as db:
            db.execute("UPDATE mails SET status = ?, detail = ?, about = 'bounce', at = ?, "
                       "at_epoch = ? WHERE kind = ? AND recipient = ? AND scope = ?",
                       (status, reason, stamp, epoch, *key))

    def report_bounce(self, address: str, kind: str, status: str, about: str,
                      diagnostic: str, arrived: datetime, *, matched: bool) -> None:
        """Keep a bounce that blames nobody, or matches none of our mails, for the summary."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO bounce_reports VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (address, kind, status, about, diagnostic, arrived.isoformat(),
                        int(matched)))

    def first_mail(self) -> datetime | None:
        """When the course's first mail was recorded (bounces are looked for since then)."""
        self.commit()
        row = self._db.execute("SELECT MIN(at_epoch) FROM mails").fetchone()
        return None if row is None or row[0] is None else datetime.fromtimestamp(row[0], UTC)

    def remember(self, name: str, value: str, at: datetime) -> None:
        """Keep a fact (e.g. the contact person's address) for when the workbook is unreadable."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO facts VALUES (?, ?, ?)",
                       (name, value, at.isoformat()))

    def fact(self, name: str) -> str | None:
        self.commit()
        row = self._db.execute("SELECT value FROM facts WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def records_since(self, since: datetime) -> list[SentRecord]:
        """Return every ledger row whose latest change is at or after `since`, oldest first."""
        self.commit()
        return _records_since(self._db, since)

    def record_run(self, at: datetime) -> None:
        """Remember that a run completed at `at`."""
        with self._transaction() as db:
            db.execute("INSERT INTO runs (at) VALUES (?)", (at.isoformat(),))

    def record_check(self, what: str, fingerprint: str, at: datetime) -> None:
        """Remember that `what` (e.g. TEMPLATES_CHECKED) passed its check as `fingerprint`."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO checks VALUES (?, ?, ?)",
                       (what, fingerprint, at.isoformat()))

    def last_run(self) -> datetime | None:
        """Return when the latest recorded run happened, None before the first."""
        self.commit()
        row = self._db.execute("SELECT at FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else datetime.fromisoformat(row[0])


def _mail_row(intent: MailIntent, status: str, at: datetime, *, attempts: int = 0,
              message_id: str = "", detail: str = "", about: str = "",
              destination: str = "") -> dict[str, object]:
    """Return the named parameters of `_UPSERT_MAIL` for one intent."""
    kind, recipient, scope = intent.key
    stamp, epoch = _moment(at)
    return {"kind": kind, "recipient": recipient, "scope": scope,
            "address": intent.address, "name": intent.name, "status": status,
            "at": stamp, "at_epoch": epoch, "attempts": attempts,
            "message_id": message_id, "detail": detail, "about": about,
            "destination": destination}


@lru_cache(maxsize=8)
def _moment(at: datetime) -> tuple[str, float]:
    # Cached: a run records all its mails at the same moment.
    return at.isoformat(), at.timestamp()


@lru_cache(maxsize=256)
def _dumped(details: MeetingDetails) -> str:
    # Cached: a batch tells hundreds of recipients the same few meetings.
    return json.dumps(list(details))


@lru_cache(maxsize=256)
def _details(stored: str) -> MeetingDetails:
    # Cached: every participant was told the same few meetings' details.
    return tuple(json.loads(stored))


def _refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise InputError(
            f"{path}: dit verzendlogboek is gemaakt door een nieuwere versie van "
            f"leergang-ops (schema {version}, deze versie kent {SCHEMA_VERSION}); "
            "werk leergang-ops bij."
        )


def _snapshot(db: sqlite3.Connection) -> LedgerState:
    """What was sent, to whom and with which meeting details, read in one transaction."""
    def rows(query: str, *params: object) -> list[Any]:
        return db.execute(query, params).fetchall()

    db.execute("BEGIN")  # one read snapshot across the queries
    try:
        confirmed_on = {recipient: datetime.fromisoformat(at).date() for recipient, at in rows(
            "SELECT recipient, at FROM mails WHERE kind = ? AND status = 'sent'",
            str(MailKind.BEVESTIGING))}
        covered = (rows("SELECT kind, recipient, scope FROM covered")
                   if _has_table(db, "covered") else [])  # an older ledger read as it is
        return LedgerState(
            sent=frozenset(rows("SELECT kind, recipient, scope FROM mails WHERE status = 'sent'")
                           + covered),
            confirmed=frozenset(confirmed_on),
            confirmed_on=confirmed_on,
            sent_details={(r, nr): (_details(d), s) for r, nr, d, s in rows(
                "SELECT recipient, nr, details, sequence FROM sent_details")},
            meeting_versions={nr: (_details(d), s) for nr, d, s in rows(
                "SELECT nr, details, sequence FROM meeting_versions")},
            bounced=dict(rows(
                "SELECT recipient, detail FROM mails WHERE status = 'bounced' "
                "ORDER BY at_epoch")),  # the newest reply wins
        )
    finally:
        db.execute("COMMIT")


def _read_only(path: Path, read: Callable[[sqlite3.Connection], T], missing: T) -> T:
    """`read` on a connection that cannot write; `missing` without a ledger or in an empty one.

    Nothing is created or migrated. The connection is opened read-write (`mode=rw`, which
    never creates a file) and made query-only: a read-only one (`mode=ro`) would leave the
    WAL's `-wal` and `-shm` files behind, where a closing read-write connection tidies them.
    An older ledger is read as it is: what is read here exists since schema 1.
    """
    if not path.exists():
        return missing
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                             isolation_level=None)
    except sqlite3.Error as err:
        raise fault(err, path) or InputError(
            f"{path}: het verzendlogboek kan niet worden geopend: {err}") from err
    with contextlib.closing(db):
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA query_only = ON")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            _refuse_newer(path, version)
            return read(db) if version else missing
        except sqlite3.Error as err:
            raise fault(err, path) or InputError(
                f"{path}: het verzendlogboek kan niet worden gelezen: {err}") from err


def ledger_health(path: Path) -> str:
    """`missing`, `empty` (no mail recorded), `ok`; a 0-byte or damaged file raises InputError.

    Read without writing. A 0-byte file is never a new ledger: it is what a restored backup
    or a sync conflict leaves, and treating it as new would mail everybody again.
    """
    if not path.exists():
        return "missing"
    if path.stat().st_size == 0:
        raise InputError(
            f"{path}: het verzendlogboek is leeg (0 bytes): het is beschadigd, bijvoorbeeld door "
            "een teruggezette back-up of een synchronisatieconflict. Er is niets verstuurd. Zet "
            "het juiste bestand terug, of verwijder dit en start na controle bewust een nieuw "
            "met `leergang-ops run WERKMAP --new-ledger`.")
    try:
        first = _read_only(path, lambda db: db.execute(
            "SELECT 1 FROM mails LIMIT 1").fetchone(), None)
    except (InputError, EnvironmentFault) as err:
        if isinstance(err, EnvironmentFault) and "beschadigd" not in str(err):
            raise  # no permission, a full disk: not a lost ledger
        raise InputError(f"{str(err).split('. ')[0]}. Er is niets verstuurd. Zet het juiste "
                         "bestand terug, of verwijder dit en start na controle bewust een "
                         "nieuw met `leergang-ops run WERKMAP --new-ledger`.") from err
    return "ok" if first is not None else "empty"


def read_ledger_state(path: Path) -> LedgerState:
    """`Ledger.state`, read without writing (for `validate`, which writes nothing)."""
    return _read_only(path, _snapshot, LedgerState())


def _records_since(db: sqlite3.Connection, since: datetime) -> list[SentRecord]:
    """The mails, then the bounces that blame nobody (`returned`) or are not ours
    (`returned-unmatched`), as records for the summary."""
    # Older ledgers, read as they are, lack the newer columns.
    about = "about" if _has_column(db, "mails", "about") else "''"
    destination = "destination" if _has_column(db, "mails", "destination") else "''"
    rows = db.execute(
        f"SELECT kind, recipient, scope, address, name, status, at, detail, {about}, "
        f"{destination} FROM mails WHERE at_epoch >= ? ORDER BY at_epoch, kind, recipient, "
        "scope", (since.timestamp(),))
    records = [SentRecord(k, r, s, a, n, st, datetime.fromisoformat(at), d, ab, dest)
               for k, r, s, a, n, st, at, d, ab, dest in rows]
    if _has_table(db, "bounce_reports"):  # an older ledger, read as it is, has none
        for address, kind, status, about, diagnostic, arrived, matched in db.execute(
                "SELECT * FROM bounce_reports ORDER BY arrived"):
            at = datetime.fromisoformat(arrived)
            if at >= since:
                records.append(SentRecord(
                    kind, address, "", address, about,
                    "returned" if matched else "returned-unmatched", at,
                    " ".join(part for part in (status, diagnostic) if part)))
    return records


def _has_column(db: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in db.execute(f"PRAGMA table_info({table})"))


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      (name,)).fetchone() is not None


def read_ledger_records(path: Path, since: datetime) -> list[SentRecord]:
    """`Ledger.records_since`, read without writing (see `_read_only`)."""
    return _read_only(path, lambda db: _records_since(db, since), [])


def passed_check(path: Path, what: str) -> str | None:
    """The fingerprint with which `what` last passed its check; None when unknown.

    Reads without writing: no ledger is created or migrated, so a run that stops on bad
    input still leaves nothing behind.
    """
    def fingerprint(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT fingerprint FROM checks WHERE what = ?", (what,)).fetchone()
        return None if row is None else str(row[0])

    try:
        return _read_only(path, fingerprint, None)
    except (InputError, EnvironmentFault):  # no such table yet, or no database at all
        return None  # (the run's own check of the ledger says what is wrong with it)
