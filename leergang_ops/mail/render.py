"""Render a MailIntent into a MIME message: Jinja2 templates, Dutch dates, the .ics.

Participant data only ever reaches a template as a variable, never as template source or
a file name: `{{ 7*7 }}` in a name stays text, `<script>` is escaped in the HTML part.
The templates themselves run in Jinja's sandbox, because an override folder beside the
workbook is editable by whoever can edit the workbook, not only by the operator.

The message is built from the legacy `email.message.Message` classes (compat32): they
are about ten times faster than `EmailMessage`, and a run may render thousands of mails.
`to_bytes` turns a message into what SMTP and .eml files want (CRLF line ends), and `Mail`
pairs those bytes with the envelope sender for the transports.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.resources
import json
import re
import secrets
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from email.generator import BytesGenerator
from email.message import Message
from email.mime.base import MIMEBase
from email.policy import Compat32
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from importlib.resources.abc import Traversable
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar, cast

import jinja2
from babel.dates import format_date, format_time
from jinja2.sandbox import SandboxedEnvironment

from leergang_ops import __version__
from leergang_ops.errors import InputError
from leergang_ops.mail.ics import ZONE, calendar_for, location_of
from leergang_ops.model import (
    ROLE_ADMINISTRATOR,
    Course,
    Finding,
    Level,
    MailIntent,
    MailKind,
    Meeting,
    Registration,
    Settings,
    SheetLayout,
)

T = TypeVar("T")
ICS_NAME = "uitnodiging.ics"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE_DIR_NAME = "mail_templates"
WITH_CALENDAR = frozenset({MailKind.BEVESTIGING, MailKind.WIJZIGING, MailKind.AFMELDING})
ABOUT_MEETINGS = frozenset({MailKind.HERINNERING, MailKind.WIJZIGING})

# 8bit keeps the text readable and cheap to encode; SMTP forbids lines over 998 octets,
# so a part with such a line is sent as base64 instead (as Django does with QP).
_SMTP_LINE = 990  # octets; SMTP allows 998 plus CRLF
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mimetype: str


@dataclass(frozen=True, slots=True)
class MeetingView:
    """A meeting as the templates show it: every text already in Dutch."""

    nr: int
    titel: str
    gepland: bool  # has a date
    datum: str  # "donderdag 11 november 2021", "" when not planned
    datum_kort: str  # "donderdag 11 november"
    tijd: str  # "14.00–17.00 uur", "vanaf 14.00 uur", ""
    wanneer: str  # "donderdag 11 november 2021, 14.00–17.00 uur" or "datum volgt"
    online: bool
    link: str
    href: str  # the link when it is safe to put in an <a href>: http(s) only
    locatie: str
    adres: str
    waar: str  # "Molen de Ster, Molenpark 2-1, Utrecht", "online", "locatie volgt"
    voor: str  # "deelnemers" or "deelnemers en bestuurders"
    voor_bestuurders: bool


class FastPolicy(Compat32):
    """compat32, folding ASCII headers itself instead of through `email.header.Header`.

    Same result for the reader; `Header` cost more per message than the templates.
    """

    def fold(self, name: str, value: str) -> str:
        if _plain(value):
            return _fold_ascii(name, value, self.linesep)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if _plain(value):
            return _fold_ascii(name, value, self.linesep).encode("ascii")
        return super().fold_binary(name, value)


def _plain(value: object) -> bool:
    return isinstance(value, str) and value.isascii() and "\n" not in value \
        and "\r" not in value


def _fold_ascii(name: str, value: str, linesep: str) -> str:
    """`Name: value` folded before spaces to lines of at most 78 where possible.

    Folding only puts a line break before an existing space, so unfolding gives back the
    value exactly (RFC 5322 §2.2.3).
    """
    if len(name) + len(value) <= 76:
        return f"{name}: {value}{linesep}"
    lines, current = [], f"{name}:"
    for i, word in enumerate(value.split(" ")):
        if i and len(current) + 1 + len(word) > 78:
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return linesep.join(lines) + linesep


POLICY = FastPolicy()
SMTP_POLICY = POLICY.clone(linesep="\r\n")


class _Generator(BytesGenerator):
    """BytesGenerator writing a part's lines in one go (always CRLF), not line by line."""

    def _write_lines(self, lines: str) -> None:
        if "\r" in lines:
            lines = lines.replace("\r\n", "\n").replace("\r", "\n")
        if lines:
            self.write(lines.replace("\n", SMTP_POLICY.linesep))


def to_bytes(message: Message) -> bytes:
    """The message as SMTP and .eml files want it: CRLF line ends (never a bare LF).

    The same bytes as the standard library's `BytesGenerator` (the tests compare them), made
    directly for the structures `render` builds: the generator re-parses Content-Type at
    every step and cost more than the templates. Anything else goes through the generator.
    """
    chunks: list[bytes] = []
    if _flatten_into(message, chunks):
        return b"".join(chunks)
    return generated_bytes(message)


def generated_bytes(message: Message) -> bytes:
    """`to_bytes` by the standard library's generator (the reference the tests hold it to)."""
    buffer = BytesIO()
    _Generator(buffer, mangle_from_=False, policy=SMTP_POLICY).flatten(message)
    return buffer.getvalue()


_CRLF = b"\r\n"


def _flatten_into(message: Message, chunks: list[bytes]) -> bool:
    """Append the message's bytes as the generator writes them; False for what it can't do."""
    if message.preamble is not None or message.epilogue is not None:
        return False
    kind = str(message.get("Content-Type", "text/plain")).partition(";")[0].strip().lower()
    payload = message._payload  # type: ignore[attr-defined]  # raw, as the generator reads it
    fold = SMTP_POLICY.fold_binary
    head = b"".join(fold(name, value) for name, value in message.raw_items()) + _CRLF
    if isinstance(payload, list):
        boundary = (message.boundary if type(message) is _Multipart
                    else message.get_boundary())
        if kind not in ("multipart/mixed", "multipart/alternative") or not boundary:
            return False
        chunks.append(head)
        separator = f"--{boundary}".encode("ascii")
        for n, part in enumerate(payload):
            chunks.append(separator + _CRLF if n == 0 else _CRLF + separator + _CRLF)
            if not _flatten_into(part, chunks):
                return False
        chunks.append(_CRLF + separator + b"--" + _CRLF)
        return True
    if not isinstance(payload, str) or kind.startswith(("multipart/", "message/")):
        return False
    if "\r" in payload:
        payload = payload.replace("\r\n", "\n").replace("\r", "\n")
    chunks.append(head)
    # compat32 holds an 8bit body as surrogate-escaped text; this gives its bytes back.
    chunks.append(payload.replace("\n", "\r\n").encode("ascii", "surrogateescape"))
    return True


@dataclass(frozen=True, slots=True)
class Mail:
    """A rendered message as the transports deliver it: its bytes and its envelope sender."""

    data: bytes  # CRLF line ends, as `to_bytes` makes them
    sender: str  # the From address
    message_id: str

    @classmethod
    def of(cls, message: Message) -> Mail:
        return cls(to_bytes(message), _envelope_sender(str(message["From"])),
                   str(message["Message-ID"]))


@lru_cache(maxsize=16)
def _envelope_sender(from_header: str) -> str:
    # Cached: every mail of a run has the same From, and parseaddr is slow.
    return parseaddr(from_header)[1]


@dataclass(frozen=True, slots=True)
class Person:
    """A name and an address, as templates show them (`contactpersoon.naam`)."""

    naam: str
    email: str


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, with a fast path for the plain data fields of our own values.

    The sandbox checks every attribute access; for the fields of MeetingView, Person and
    Settings (plain data we built) that check is pure cost, and it was most of the
    rendering time.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute in _DATA_FIELDS.get(type(obj), ()):
            return getattr(obj, attribute)
        return super().getattr(obj, attribute)


_DATA_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls)) for cls in (MeetingView, Person, Settings)
}


class _ResourceLoader(jinja2.BaseLoader):
    """Load templates from the installed package data (a folder or inside a zip)."""

    def __init__(self, root: Traversable) -> None:
        self.root = root

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        resource = self.root.joinpath(template)
        if "/" in template or "\\" in template or not resource.is_file():
            raise jinja2.TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), str(resource), lambda: True

    def list_templates(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.name.endswith(".j2"))


def shipped_templates() -> Traversable:
    """The templates that ship with the package (the repo folder when not installed)."""
    try:
        root = importlib.resources.files("leergang_ops.mail_templates")
        if root.joinpath("base.txt.j2").is_file():
            return root
    except ModuleNotFoundError:
        pass
    # Running from a source checkout without `pip install -e .`.
    return Path(__file__).resolve().parents[2] / TEMPLATE_DIR_NAME


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's per-user cache of compiled templates (by default a private temp folder).

    Compiling the templates of one mail kind costs ~30 ms a run; a cached template is reused
    only while its source, the environment's options and this package's version are
    unchanged. A cache that cannot be read or written (a full or read-only disk) is passed
    over, never a reason not to mail.
    """

    def get_bucket(self, environment: jinja2.Environment, name: str, filename: str | None,
                   source: str) -> jinja2.bccache.Bucket:
        """The bucket for this template, keyed on what its compiled code depends on.

        Jinja keys a compiled template on its name and checks its source alone, but the same
        source compiles differently with autoescape off, other whitespace control or another
        release of this package: a stale entry would then run on users' machines.
        """
        key = f"{self.get_cache_key(name, filename)}-{compile_options_key(environment, name)}"
        bucket = jinja2.bccache.Bucket(environment, key, self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def compile_options_key(env: jinja2.Environment, name: str) -> str:
    """A digest of what a template's compiled code depends on besides its source."""
    autoescape = env.autoescape(name) if callable(env.autoescape) else env.autoescape
    options = (
        __version__, jinja2.__version__, type(env).__qualname__, env.undefined.__qualname__,
        autoescape, env.trim_blocks, env.lstrip_blocks, env.keep_trailing_newline,
        env.newline_sequence, env.optimized, env.is_async, sorted(env.extensions),
        env.block_start_string, env.block_end_string, env.variable_start_string,
        env.variable_end_string, env.comment_start_string, env.comment_end_string,
        env.line_statement_prefix, env.line_comment_prefix,
        getattr(env.finalize, "__qualname__", env.finalize),
    )
    return hashlib.sha256(repr(options).encode("utf-8")).hexdigest()[:16]


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The cache, or None when its folder cannot be made safely (compile as without it)."""
    try:
        return _BytecodeCache()
    except (OSError, RuntimeError):
        return None


class Templates:
    """The mail templates: shipped ones, overridden file by file by a folder of the organisers."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        self.override_dir = override_dir
        if override_dir is not None and override_dir.is_dir():
            loaders.append(jinja2.FileSystemLoader(override_dir, encoding="utf-8"))
        loaders.append(_ResourceLoader(shipped_templates()))
        self.env = _Sandbox(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,  # one run, one set of templates: skip a stat() per render
            bytecode_cache=_bytecode_cache(),
        )
        self.env.filters["opsomming"] = enumeration
        self._compiled: dict[str, jinja2.Template] = {}
        self._index: tuple[Course | None, dict[int | str, Registration]] = (None, {})

    def get(self, name: str) -> jinja2.Template:
        """The compiled template `name` (compiled once per Templates)."""
        template = self._compiled.get(name)
        if template is None:
            template = self._compiled[name] = self.env.get_template(name)
        return template

    def render_text(self, name: str, context: Mapping[str, Any]) -> str:
        """Render one template; a template that fails raises InputError with file and line."""
        try:
            return self.get(name).render(context)
        except Exception as err:  # template code is the organisers': any failure is theirs
            finding = self._finding(name, err)
            raise InputError(finding.message, findings=[finding]) from err

    def fingerprint(self) -> str:
        """A digest of every template's source and of the code that renders them.

        Equal fingerprints mean `check` finds the same: a run may skip checking templates
        that passed before (see `jobs.run`).
        """
        import jinja2 as jinja

        from leergang_ops import __version__

        digest = hashlib.sha256(f"{__version__}\x1f{jinja.__version__}".encode())
        for name in self.env.list_templates(filter_func=lambda n: n.endswith(".j2")):
            assert self.env.loader is not None
            source, filename, _ = self.env.loader.get_source(self.env, name)
            digest.update(f"\x1e{name}\x1f{filename}\x1f{source}".encode("utf-8", "replace"))
        return digest.hexdigest()

    def check(self) -> list[Finding]:
        """Compile every template and test-render every kind with a realistic sample."""
        found: dict[str, Finding] = {}
        for name in self.env.list_templates(filter_func=lambda n: n.endswith(".j2")):
            try:
                self.get(name)
            except Exception as err:
                finding = self._finding(name, err)
                found.setdefault(finding.message, finding)
        for intent, course, context in _samples():
            attachments = _SAMPLE_ATTACHMENTS if intent.kind == MailKind.OVERZICHT else ()
            try:
                render(intent, course, self, now=_SAMPLE_NOW, attachments=attachments,
                       context=context)
            except InputError as err:
                for finding in err.findings:
                    found.setdefault(finding.message, finding)
        try:
            render_storing(self, sample_course().settings, "Een voorbeeld van een storing.",
                           ["Deelnemers, rij 2, kolom E-mail"], _SAMPLE_NOW)
        except InputError as err:
            for finding in err.findings:
                found.setdefault(finding.message, finding)
        return list(found.values())

    def registration(self, course: Course, intent: MailIntent) -> Registration | None:
        """The registration a mail goes to: by its row, else by address; None for others."""
        if intent.kind == MailKind.OVERZICHT:
            return None
        if self._index[0] is not course:
            index: dict[int | str, Registration] = {}
            for reg in course.registrations:
                index[reg.row] = reg
                index.setdefault(reg.email_key, reg)  # the first row with that address
            self._index = (course, index)
        found = self._index[1].get(intent.row) if intent.row is not None else None
        return found or self._index[1].get(intent.recipient)

    def _finding(self, name: str, err: BaseException) -> Finding:
        filename, line = _template_location(name, err)
        where = f"{TEMPLATE_DIR_NAME}/{filename}" + (f":{line}" if line else "")
        return Finding(Level.ERROR, "template-error", None, line, None,
                       f"{where}: {_explain(err)}")


def render(
    intent: MailIntent,
    course: Course,
    templates: Templates,
    *,
    now: datetime,
    sequences: Mapping[int, int] | None = None,
    attachments: Sequence[Attachment] = (),
    context: Mapping[str, object] | None = None,
) -> Message:
    """Build the mail for `intent`: text + HTML, the .ics for bevestiging/wijziging, headers."""
    return finish(rendering(intent, course, templates, now=now, sequences=sequences,
                            attachments=attachments, context=context))


Steps = Generator[None, None, T]  # work done in steps: each `yield` is a pause


def finish(steps: Steps[T]) -> T:
    """Run stepwise work to its end without pausing; return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


def rendering(
    intent: MailIntent,
    course: Course,
    templates: Templates,
    *,
    now: datetime,
    sequences: Mapping[int, int] | None = None,
    attachments: Sequence[Attachment] = (),
    context: Mapping[str, object] | None = None,
    sent_at: datetime | None = None,
) -> Steps[Message]:
    """`render` in a few steps of a fraction of a millisecond each.

    A batch sends each mail while it renders the next, in the pauses where the mail server
    is busy answering (see `SmtpTransport.send`); `finish` runs it in one go. `now` is the
    moment the job acts as of (what is "in 6 days"); `sent_at`, the real moment of sending,
    goes into the `Date` header (a date in the past costs spam points): default `now`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    registration = templates.registration(course, intent)
    meetings = meetings_of(intent, course, registration)
    ics = _calendar(intent, meetings, course, now, sequences)
    values = _context(intent, course, registration, meetings, now)
    values["agenda"] = ICS_NAME if ics else ""
    values["agenda_aantal"] = sum(1 for m in meetings if m.datum is not None) if ics else 0
    values["bijlagen"] = ([ICS_NAME] if ics else []) + [a.filename for a in attachments]
    if context:
        values.update(_normalise(context))
    kind = str(intent.kind)
    subject = _one_line(templates.render_text(f"{kind}.subject.j2", values))
    values["onderwerp"] = subject
    text = templates.render_text(f"{kind}.txt.j2", values)
    yield
    html = templates.render_text(f"{kind}.html.j2", values)
    yield
    body = _alternative(text, html)
    parts = ([_ics_part(ics)] if ics else []) + [_attachment_part(a) for a in attachments]
    message: Message = body
    if parts:
        del body["MIME-Version"]
        message = _Multipart("mixed", [body, *parts])
    _set_headers(message, intent, course.settings, subject, sent_at or now)
    return message


def meetings_of(
    intent: MailIntent, course: Course, registration: Registration | None
) -> tuple[Meeting, ...]:
    """The meetings a mail is about, never more than the recipient attends.

    `intent.meetings` chooses (in meeting order); without it a participant's mail is about
    every meeting they attend. Bestuurders only ever see meetings `Voor` bestuurders.
    """
    attending = course.meetings_for(registration) if registration else course.meetings
    if not intent.meetings:
        # An afmelding names the meetings it takes out of a calendar; none for the waiting list.
        return () if intent.kind == MailKind.AFMELDING else attending
    known = {m.nr for m in course.meetings}
    missing = sorted(set(intent.meetings) - known)
    if missing:
        raise ValueError(f"intent {intent.key} names unknown meeting(s) {missing}")
    chosen = tuple(m for m in attending if m.nr in intent.meetings)
    if not chosen and intent.kind in ABOUT_MEETINGS:
        raise ValueError(f"intent {intent.key} is about no meeting its recipient attends")
    return chosen


def storing_intent(settings: Settings, day: date) -> MailIntent:
    """The `storing` mail of one day to the contact person: its key makes it once a day."""
    return MailIntent(MailKind.STORING, settings.contactpersoon_email, settings.contactpersoon,
                      f"storing-{day.isoformat()}")


def render_storing(templates: Templates, settings: Settings, what: str, where: Sequence[str],
                   now: datetime, sent_at: datetime | None = None) -> Message:
    """The `storing` mail: what stopped the run and where to fix it (contract §3).

    It needs no workbook, only its settings as last read: the workbook may be what broke.
    """
    intent = storing_intent(settings, now.astimezone(ZONE).date())
    values: dict[str, Any] = {
        **_course_values(intent, settings),
        "wat": what,
        "waar": list(where),
        "datum": format_date(now.astimezone(ZONE).date(), "EEEE d MMMM y", locale="nl"),
    }
    subject = _one_line(templates.render_text("storing.subject.j2", values))
    values["onderwerp"] = subject
    message = _alternative(templates.render_text("storing.txt.j2", values),
                           templates.render_text("storing.html.j2", values))
    _set_headers(message, intent, settings, subject, sent_at or now)
    return message


def message_id(intent: MailIntent, settings: Settings) -> str:
    """A Message-ID derived from the idempotency key: a resend carries the same id."""
    digest = hashlib.sha256("\x1f".join(intent.key).encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.{intent.kind}@{_domain(settings.afzender_email)}>"


def meeting_view(meeting: Meeting) -> MeetingView:
    """The Dutch texts for one meeting (cached: meetings are frozen values)."""
    return _meeting_view(meeting)


# --- the template variables ---------------------------------------------------------


def _course_values(intent: MailIntent, settings: Settings) -> dict[str, Any]:
    """The variables of every mail, the `storing` one included: the kind and the course."""
    return {
        "soort": str(intent.kind),
        "leergang": settings.leergang,
        "organisatie": settings.organisatie,
        "instellingen": settings,
        "contactpersoon": Person(settings.contactpersoon, settings.contactpersoon_email),
        "afzender": Person(settings.afzender_naam, settings.afzender_email),
    }


def _context(
    intent: MailIntent,
    course: Course,
    registration: Registration | None,
    meetings: Sequence[Meeting],
    now: datetime,
) -> dict[str, Any]:
    """The variables every template may use (listed in mail_templates/base.txt.j2)."""
    settings = course.settings
    views = [meeting_view(m) for m in meetings]
    today = now.astimezone(ZONE).date()
    first = meetings[0] if meetings else None
    return {
        **_course_values(intent, settings),
        "naam": intent.name,
        "voornaam": _first_name(intent, registration),
        "email": intent.address,
        "gemeente": registration.gemeente if registration else "",
        "is_bestuurder": bool(registration and registration.is_bestuurder),
        "bijeenkomsten": views,
        "bijeenkomst": views[0] if views else None,
        "dagen": intent.reminder_days,
        "dagen_tot": (first.datum - today).days if first and first.datum else None,
        "status": intent.extra.get("status", "wachtlijst"),
        "positie": int(intent.extra["positie"]) if "positie" in intent.extra else None,
        # wijziging: a meeting the recipient had not heard of yet (added, or first dated)
        "nieuw": intent.extra.get("change") in ("added", "dated"),
        "soort_wijziging": intent.extra.get("change", ""),
        "wijzigingen": _changes(meetings, intent.extra.get("was")),
        # bevestiging: the meetings so near that it stands in for their reminder
        "binnenkort": _soon(intent, meetings, today),
        # afmelding: whether they had a place (else they were on the waiting list)
        "was_bevestigd": intent.extra.get("had") == "bevestigd",
        "agenda": "",
        "agenda_aantal": 0,
        "datum_volgt": any(m.datum is None for m in meetings),
        "bijlagen": [],
        "vandaag": _long_date(today),
        "week": _week(intent.scope) if intent.kind == MailKind.OVERZICHT else "",
        "cijfers": [],
        "opkomst": [],
        "aandachtspunten": [],
        "aandachtsgroepen": [],
    }


@dataclass(frozen=True, slots=True)
class Change:
    """One field of a meeting that changed, as the wijziging shows it."""

    veld: str  # "Begintijd"
    was: str  # "14.00 uur", or "niet ingevuld"
    wordt: str


@dataclass(frozen=True, slots=True)
class Soon:
    """A meeting in a confirmation that is so near the confirmation is its reminder."""

    bijeenkomst: MeetingView
    dagen: int  # days to go: 0 today, 1 tomorrow


_FIELDS = ("Datum", "Begintijd", "Eindtijd", "Locatie", "Adres", "Online link")


def _changes(meetings: Sequence[Meeting], was: str | None) -> list[Change]:
    """Field by field, what a changed meeting was and becomes (`was`: its old details)."""
    if not was or not meetings:
        return []
    old = tuple(json.loads(was))
    new = meetings[0].details()
    return [Change(name, _detail_text(name, before), _detail_text(name, after))
            for name, before, after in zip(_FIELDS, old, new, strict=False)
            if before != after]


def _detail_text(name: str, value: str) -> str:
    """A stored detail (`2021-11-11`, `14:00`) in the words of the mails."""
    if not value:
        return "niet ingevuld"
    if name == "Datum":
        return _long_date(date.fromisoformat(value))
    if name in ("Begintijd", "Eindtijd"):
        return f"{format_time(time.fromisoformat(value), 'H.mm', locale='nl')} uur"
    return value


def _soon(intent: MailIntent, meetings: Sequence[Meeting], today: date) -> list[Soon]:
    """The meetings whose reminders a confirmation covers, with the days to go."""
    covered = {int(scope[1:].split("-")[0]) for scope in intent.covers}
    return [Soon(meeting_view(m), (m.datum - today).days) for m in meetings
            if m.nr in covered and m.datum is not None]


def _normalise(context: Mapping[str, object]) -> dict[str, object]:
    """Extra variables; a `headline` (summary.Headline) becomes cijfers/opkomst/aandachtspunten."""
    values = dict(context)
    headline = values.get("headline")
    if headline is not None:
        for key, value in _from_headline(headline).items():
            values.setdefault(key, value)
    cijfers = values.get("cijfers")
    if isinstance(cijfers, Mapping):
        # A mapping of figures reads naturally in Python; the template loops over pairs.
        values["cijfers"] = list(cijfers.items())
    return values


_HEADLINE_FIGURES = (
    ("gemeenten", "Deelnemende gemeenten"),
    ("bevestigd", "Bevestigde deelnemers"),
    ("wachtlijst", "Op de wachtlijst"),
    ("overboekt", "Overboekt"),
    ("ongeldig", "Ongeldige aanmeldingen"),
    ("afgemeld", "Afgemeld"),
    ("mails_this_week", "E-mails verstuurd (afgelopen 7 dagen)"),
    ("mails_in_outbox", "In de outbox gezet, niet verstuurd (afgelopen 7 dagen)"),
)


def _from_headline(headline: object) -> dict[str, object]:
    """The weekly mail's figures from the summary's headline (any object with its fields)."""
    figures: list[tuple[str, object]] = []
    for name, label in _HEADLINE_FIGURES:
        value = getattr(headline, name, None)
        limit = getattr(headline, "max_gemeenten", None)
        if name == "gemeenten" and limit:
            value = f"{value} van {limit}"
        if name == "mails_in_outbox" and not value:
            continue  # said only when it happened: mail that was not sent
        if value is not None:
            figures.append((label, value))
    found = list(getattr(headline, "problems", ()))
    groups: dict[str, list[str]] = {}
    for problem in found:
        what, where = problem[0], problem[1]
        point = f"{what} ({where})" if where else str(what)
        groups.setdefault(getattr(problem, "group", "") or "Aandachtspunten", []).append(point)
    return {"cijfers": figures, "opkomst": list(getattr(headline, "per_meeting", ())),
            "aandachtspunten": [p for points in groups.values() for p in points],
            "aandachtsgroepen": list(groups.items())}


def enumeration(items: Iterable[object]) -> str:
    """Dutch enumeration: `1, 2 en 4` (the template filter `opsomming`)."""
    words = [str(item) for item in items]
    return " en ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def _first_name(intent: MailIntent, registration: Registration | None) -> str:
    if registration and registration.voornaam.strip():
        return registration.voornaam.strip()
    words = _one_line(intent.name).split()
    return words[0] if words else "deelnemer"


@lru_cache(maxsize=64)
def _long_date(day: date) -> str:
    """`donderdag 11 november 2021`."""
    return format_date(day, "EEEE d MMMM y", locale="nl")


@lru_cache(maxsize=1024)
def _meeting_view(meeting: Meeting) -> MeetingView:
    datum = _long_date(meeting.datum) if meeting.datum else ""
    tijd = _times(meeting.begintijd, meeting.eindtijd)
    wanneer = ", ".join(p for p in (datum, tijd) if p) if datum else "datum volgt"
    link = meeting.online_link.strip()
    return MeetingView(
        nr=meeting.nr,
        titel=meeting.titel.strip(),
        gepland=meeting.datum is not None,
        datum=datum,
        datum_kort=format_date(meeting.datum, "EEEE d MMMM", locale="nl") if meeting.datum
        else "",
        tijd=tijd,
        wanneer=wanneer,
        online=meeting.online,
        link=link,
        href=_href(link),
        locatie=meeting.locatie.strip(),
        adres=meeting.adres.strip(),
        waar=("online" if meeting.online else location_of(meeting) or "locatie volgt"),
        voor="deelnemers en bestuurders" if meeting.voor_bestuurders else "deelnemers",
        voor_bestuurders=meeting.voor_bestuurders,
    )


def _href(link: str) -> str:
    """`link` as an http(s) URL, or `` (a `javascript:` link from a cell is never a link)."""
    if re.match(r"https?://", link, re.IGNORECASE):
        return link
    if link and re.match(r"[\w.-]+\.[a-z]{2,}(/|$)", link, re.IGNORECASE):
        return f"https://{link}"
    return ""


def _week(scope: str) -> str:
    """`2021-W45` → `week 45 van 2021`; anything else as it is."""
    match = re.fullmatch(r"(\d{4})-W(\d{1,2})", scope.strip())
    return f"week {int(match[2])} van {match[1]}" if match else scope


def _times(start: time | None, end: time | None) -> str:
    """Dutch time range: `14.00–17.00 uur`, `vanaf 14.00 uur`, `tot 17.00 uur` or ``."""
    def fmt(t: time) -> str:
        return format_time(t, "H.mm", locale="nl")

    if start and end:
        return f"{fmt(start)}–{fmt(end)} uur"
    if start:
        return f"vanaf {fmt(start)} uur"
    return f"tot {fmt(end)} uur" if end else ""


# --- building the MIME message -------------------------------------------------------


def _alternative(text: str, html: str) -> Message:
    return _Multipart("alternative", [_text_part(text, "plain"), _text_part(html, "html")])


class _Multipart(Message):
    """What `MIMEMultipart(subtype, _subparts=parts, boundary=…)` makes, header for header.

    Built by hand and remembering its boundary: MIMEMultipart parses its Content-Type again
    to set the boundary, and `get_boundary` once more to write it, each costing more than a
    text part.
    """

    def __init__(self, subtype: str, parts: list[Message]) -> None:
        super().__init__(POLICY)
        self.boundary = _boundary()
        self["Content-Type"] = f'multipart/{subtype}; boundary="{self.boundary}"'
        self["MIME-Version"] = "1.0"
        payload: list[Message | str] = list(parts)
        self.set_payload(payload)

    def set_boundary(self, boundary: str) -> None:
        super().set_boundary(boundary)
        self.boundary = boundary


def _boundary() -> str:
    # Random, so no text can contain it; set here, so the generator needs no regex search.
    return f"=_{secrets.token_hex(12)}"


def _text_part(body: str, subtype: str) -> Message:
    """A UTF-8 text part: 8bit (readable, cheap), base64 when a line is too long for SMTP."""
    # Built by hand: MIMEText's charset machinery costs more than the templates.
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    data = body.encode("utf-8")
    if max(map(len, data.splitlines()), default=0) > _SMTP_LINE:
        part["Content-Transfer-Encoding"] = "base64"
        part.set_payload(_base64(data))
    else:
        part["Content-Transfer-Encoding"] = "8bit"
        part.set_payload(data.decode("ascii", "surrogateescape"))  # how compat32 holds 8bit
    return part


def _calendar(
    intent: MailIntent,
    meetings: Sequence[Meeting],
    course: Course,
    now: datetime,
    sequences: Mapping[int, int] | None,
) -> bytes:
    """The .ics for a bevestiging or wijziging with at least one dated meeting, else b``."""
    dated = [m for m in meetings if m.datum is not None]
    if intent.kind not in WITH_CALENDAR or not dated:
        return b""
    cancelled = intent.kind == MailKind.AFMELDING
    if sequences is None or cancelled:  # a cancellation outranks every copy they hold
        sequences = {m.nr: intent.sequence for m in dated}
    return calendar_for(dated, course, sequences, stamp=now, cancelled=cancelled)


def _ics_part(ics: bytes) -> MIMEBase:
    part = MIMEBase("text", "calendar", method="PUBLISH", charset="utf-8", name=ICS_NAME)
    del part["MIME-Version"]
    part.set_payload(_base64(ics))
    part["Content-Transfer-Encoding"] = "base64"
    part.add_header("Content-Disposition", "attachment", filename=ICS_NAME)
    return part


def _attachment_part(attachment: Attachment) -> MIMEBase:
    maintype, _, subtype = attachment.mimetype.partition("/")
    part = MIMEBase(maintype or "application", subtype or "octet-stream")
    del part["MIME-Version"]
    part.set_payload(_base64(attachment.content))
    part["Content-Transfer-Encoding"] = "base64"
    name = _one_line(attachment.filename)
    filename: str | tuple[str, str, str] = name if name.isascii() else ("utf-8", "", name)
    part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


@lru_cache(maxsize=64)
def _base64(content: bytes) -> str:
    # Cached: the same .ics goes to every participant of a run.
    return base64.encodebytes(content).decode("ascii")


def _set_headers(
    message: Message, intent: MailIntent, settings: Settings, subject: str, now: datetime
) -> None:
    message["From"] = _address(settings.afzender_naam, settings.afzender_email)
    message["To"] = _address(intent.name, intent.address)
    message["Reply-To"] = _address(settings.contactpersoon, settings.contactpersoon_email)
    message["Subject"] = subject  # compat32 encodes a non-ASCII value as UTF-8 words
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(intent, settings)
    message["Content-Language"] = "nl"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Leergang-Mail"] = str(intent.kind)


def _address(name: str, address: str) -> str:
    """`Name <address>`, the name encoded when needed and never able to start a header."""
    address = address.strip()
    if not address or _CONTROL.search(address) or " " in address:
        raise InputError(f"ongeldig e-mailadres voor verzending: {address!r}")
    return formataddr((_one_line(name), address), charset="utf-8")


def _one_line(text: str) -> str:
    """Collapse CR, LF and other control characters: a value must stay on its line."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


# --- template errors -----------------------------------------------------------------


def _template_location(name: str, err: BaseException) -> tuple[str, int | None]:
    """The template file and line an error points at (innermost template frame)."""
    if isinstance(err, jinja2.TemplateSyntaxError):
        return Path(err.filename or err.name or name).name, err.lineno
    found: tuple[str, int | None] = (name, None)
    for frame, line in traceback.walk_tb(err.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (Path(filename).name, line)
    return found


def _explain(err: BaseException) -> str:
    """The Dutch explanation of a template failure."""
    if isinstance(err, jinja2.TemplateSyntaxError):
        return f"syntaxfout in het sjabloon: {err.message}"
    if isinstance(err, jinja2.UndefinedError):
        return f"onbekende variabele: {err.message}"
    if isinstance(err, jinja2.TemplateNotFound):
        return f"sjabloon niet gevonden: {err.name}"
    if isinstance(err, jinja2.exceptions.SecurityError):
        return f"niet toegestaan in een sjabloon: {err}"
    return f"sjabloon kan niet worden opgemaakt: {type(err).__name__}: {err}"


# --- the sample that check() renders -------------------------------------------------

_SAMPLE_NOW = datetime(2021, 11, 4, 9, 0, tzinfo=ZONE)
_SAMPLE_ATTACHMENTS = (Attachment("overzicht.xlsx", b"PK", XLSX),)


def sample_course() -> Course:
    """An invented course like the announced one: on site, online, for bestuurders, undated."""
    settings = Settings(
        leergang="Leergang slagvaardige wijkaanpak",
        organisatie="Platform31 en Verwey-Jonker Instituut",
        contactpersoon="Annemiek van Tol",
        contactpersoon_email="contact@example.org",
        afzender_naam="Leergang wijkaanpak",
        afzender_email="leergang@example.org",
    )
    place, address = "Molen de Ster", "Molenpark 2-1, Utrecht"
    meetings = (
        Meeting(1, "Waarom een wijkaanpak?", date(2021, 11, 11), time(14), time(17),
                place, address),
        Meeting(2, "Wat is een wijkaanpak en wat is er nodig?", date(2021, 12, 2), time(14),
                time(17), "online", online_link="https://meet.example.org/wijkaanpak-2"),
        Meeting(3, "Hoe ga je aan de slag met een wijkaanpak?", date(2022, 1, 20), time(14),
                time(17), place, address, voor_bestuurders=True),
        Meeting(4, "Terugblik en vervolg", None, None, None),
    )
    registrations = (
        Registration(2, None, "Sanne", "de Vries", "sanne.devries@example.nl", "Utrecht",
                     "veiligheid"),
        Registration(3, None, "Joris", "Bakker", "j.bakker@example.nl", "Utrecht",
                     rol=ROLE_ADMINISTRATOR),
    )
    layout = SheetLayout("Deelnemers", 1, {}, 10, 3)
    return Course(settings, meetings, registrations, layout)


def _samples() -> Iterator[tuple[MailIntent, Course, Mapping[str, object]]]:
    """One realistic intent per kind and branch: online/on site, wachtlijst/overboekt."""
    course = sample_course()
    participant, administrator = course.registrations

    def intent(kind: MailKind, reg: Registration | None, **kw: Any) -> MailIntent:
        address = reg.email if reg else course.settings.contactpersoon_email
        name = reg.naam if reg else course.settings.contactpersoon
        return MailIntent(kind, address, name, kw.pop("scope", "-"),
                          row=reg.row if reg else None, **kw)

    figures: Mapping[str, object] = {
        "cijfers": [("Bevestigde deelnemers", 42), ("Op de wachtlijst", 3)],
        "opkomst": [("1. Waarom een wijkaanpak? — do 11-11-2021", 40)],
        "aandachtspunten": ["1 e-mail kon niet worden bezorgd (Deelnemers, rij 7)"],
        "aandachtsgroepen": [("Bezorging van mail",
                              ["1 e-mail kon niet worden bezorgd (Deelnemers, rij 7)"])],
    }
    yield intent(MailKind.BEVESTIGING, participant), course, {}
    yield intent(MailKind.BEVESTIGING, participant, meetings=(1, 2, 3, 4),
                 covers=("m1-7d",)), course, {}
    yield intent(MailKind.BEVESTIGING, administrator), course, {}
    yield intent(MailKind.WACHTLIJST, participant,
                 extra={"status": "wachtlijst", "positie": "2"}), course, {}
    yield intent(MailKind.WACHTLIJST, participant, extra={"status": "overboekt"}), course, {}
    yield intent(MailKind.AFMELDING, participant, meetings=(1, 2, 3), sequence=2,
                 extra={"had": "bevestigd"}), course, {}
    yield intent(MailKind.AFMELDING, participant, extra={"had": "wachtlijst"}), course, {}
    was = json.dumps(["2021-11-11", "13:30", "16:30", "Molen de Ster", "Molenpark 2-1, Utrecht",
                      ""])
    yield intent(MailKind.WIJZIGING, participant, scope="m1@2", meetings=(1,), sequence=2,
                 extra={"change": "changed", "was": was}), course, {}
    yield intent(MailKind.WIJZIGING, participant, scope="m1@3", meetings=(1,), sequence=3,
                 extra={"change": "added"}), course, {}
    for nr, days in ((1, 7), (2, 1)):
        yield intent(MailKind.HERINNERING, participant, scope=f"m{nr}-{days}d", meetings=(nr,),
                     reminder_days=days), course, {}
    yield intent(MailKind.WIJZIGING, participant, scope="m1@1", meetings=(1, 2, 4),
                 sequence=1), course, {}
    yield intent(MailKind.OVERZICHT, None, scope="2021-W44"), course, figures
    yield intent(MailKind.OVERZICHT, None, scope="2021-W44"), course, {}
