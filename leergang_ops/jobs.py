"""The orchestration: the only place that strings read → allocate → plan → send → write together.

Every function takes `today` (and `now` where a timestamp is recorded) from its caller; only
the CLI reads the clock. Library code raises errors from `errors.py`; the CLI maps them to
exit statuses.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import Message
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from leergang_ops.allocation import allocate
from leergang_ops.errors import InputError, LeergangError
from leergang_ops.ledger import (
    TEMPLATES_CHECKED,
    WORKBOOK_FACT,
    Ledger,
    passed_check,
    read_ledger_records,
    read_ledger_state,
)
from leergang_ops.ledger_location import adopt_legacy, ledger_path
from leergang_ops.model import (
    Allocation,
    Course,
    Finding,
    LedgerState,
    Level,
    MailIntent,
    MailKind,
    MeetingDetails,
    SentRecord,
    Settings,
    Status,
)
from leergang_ops.planning import Plan, plan, plan_findings
from leergang_ops.run_lock import run_lock
from leergang_ops.status_colours import STATUS_COLOURS
from leergang_ops.workbook.files import ensure_not_in_use
from leergang_ops.workbook.read import load_course
from leergang_ops.workbook.schema import TOOL_COLUMNS
from leergang_ops.workbook.write import CellStyle, CellWrite, write_cells

if TYPE_CHECKING:

    from leergang_ops.importer import ImportReport
    from leergang_ops.mail.bounces import ImapConfig
    from leergang_ops.mail.render import Attachment, Mail, Steps, Templates
    from leergang_ops.mail.returns import Returned
    from leergang_ops.mail.transport import DeliveryFault

log = logging.getLogger(__name__)

# The palette the summary shows too (status_colours.py).
STATUS_STYLES: dict[Status, CellStyle] = {
    status: CellStyle(fill=f"FF{colours.fill}", font_color=f"FF{colours.font}")
    for status, colours in STATUS_COLOURS.items()
}
HEADER_STYLE = CellStyle(bold=True)
DATE_STYLE = CellStyle(number_format="dd-mm-yyyy")
TOOL_COLUMN_WIDTHS = {"Status": 13.0, "Melding": 70.0, "Bevestiging verstuurd": 14.0}
# After this many deliveries in a row fail for a passing reason, the server is down: the
# rest of the batch waits for the next run instead of each retrying with backoff.
MAX_CONSECUTIVE_TEMPORARY = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Checked:
    """A course with its allocation and every finding worth reporting."""

    course: Course
    allocation: Allocation
    plan: Plan
    findings: tuple[Finding, ...]

    @property
    def has_errors(self) -> bool:
        return any(f.level == Level.ERROR for f in self.findings)

    @cached_property
    def announced(self) -> dict[int, tuple[MeetingDetails, int]]:
        """Per meeting, what a mail about it tells: its details and the .ics SEQUENCE."""
        return {m.nr: (m.details(), self.plan.sequences.get(m.nr, 0))
                for m in self.course.meetings}


@dataclass
class RunReport:
    """What a run did, for the one summary line and the exit status."""

    planned: tuple[MailIntent, ...] = ()
    sent: int = 0
    failed: int = 0  # permanently refused
    deferred: int = 0  # retried at the next run
    content_refused: int = 0  # of those, refused for their content (reported, not blamed)
    workbook_changed: bool = False
    problems: list[str] = field(default_factory=list)
    returned: Returned | None = None  # what the bounce mailbox said, when it is read
    outbox: Path | None = None  # where the mails went when they were not sent
    outbox_why: str = "geen SMTP-server ingesteld"
    over: date | None = None  # the course is over (the last meeting's day): nothing was due

    @property
    def delivery_failed(self) -> bool:
        unread = self.returned is not None and self.returned.unreachable
        return bool(self.failed or self.deferred or unread)

    def line(self) -> str:
        """The run's one line of totals; mails put in the outbox were not sent."""
        if self.over is not None and not self.sent:
            return course_over_line(self.over)
        if self.outbox is not None:
            line = (f"{mails(self.sent)} in de map {self.outbox} gezet (niet verzonden: "
                    f"{self.outbox_why})")
            return line + (f", {self.deferred} uitgesteld" if self.deferred else "")
        return (f"{mails(self.sent)} verzonden, {self.failed} geweigerd, "
                f"{self.deferred} uitgesteld")


def mails(count: int) -> str:
    """'1 mail', '3 mails': the counts people read."""
    return f"{count} mail" if count == 1 else f"{count} mails"


def course_over_line(last: date) -> str:
    """What `run` and `preview` say when the course is over (contract §3)."""
    return (f"De leergang is voorbij (de laatste bijeenkomst was op {last:%d-%m-%Y}): er gaan "
            "geen mails meer uit.")


def templates_for(workbook: Path) -> Templates:
    """The shipped templates, overridden file by file by a `mail_templates/` folder beside."""
    from leergang_ops.mail.render import Templates

    override = workbook.parent / "mail_templates"
    return Templates(override if override.is_dir() else None)


def read_state(workbook: Path, env: Mapping[str, str]) -> LedgerState:
    """The ledger's state, read without writing (validate writes nothing)."""
    return read_ledger_state(ledger_path(workbook, env))


def check(workbook: Path, today: date, env: Mapping[str, str],
          state: LedgerState | None = None, *, course: Course | None = None,
          mails: bool = True, templates: bool = True, moment: datetime | None = None) -> Checked:
    """Read, allocate and plan; collect the findings of every step, templates included.

    `moment` is when the run acts (meetings before it have started); default the start of
    `today`, as with `--today`. `course` is the workbook when the caller read it already.
    `mails=False` plans no mails (only their findings); `templates=False` skips checking
    the mail templates: `flag` needs neither, and both cost time on a large workbook.
    """
    course = load_course(workbook) if course is None else course
    state = read_state(workbook, env) if state is None else state
    allocation = allocate(course, state.confirmed)
    planned = (plan if mails else plan_findings)(course, allocation, state, today, moment)
    template_findings = templates_for(workbook).check() if templates else []
    findings = (*course.findings, *allocation.findings, *planned.findings, *template_findings)
    return Checked(course, allocation, planned, _unique(findings))


def _unique(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Reading and planning may both notice a meeting without a link: report it once."""
    seen: set[tuple[object, ...]] = set()
    kept = []
    for f in findings:
        key = (f.code, f.sheet, f.row, f.column)
        if key not in seen:
            seen.add(key)
            kept.append(f)
    return tuple(kept)


def tool_cells(course: Course, allocation: Allocation,
               state: LedgerState) -> tuple[dict[tuple[int, int], CellWrite], dict[int, float]]:
    """The cells of the three tool columns that differ from what the workbook holds now."""
    layout = course.layout
    columns, widths = dict(layout.columns), {}
    cells: dict[tuple[int, int], CellWrite] = {}
    next_free = layout.last_column + 1
    for name in TOOL_COLUMNS:
        if name not in columns:
            columns[name] = next_free
            widths[next_free] = TOOL_COLUMN_WIDTHS[name]
            cells[(layout.header_row, next_free)] = CellWrite(name, HEADER_STYLE)
            next_free += 1
    status_col, melding_col = columns["Status"], columns["Melding"]
    sent_col = columns["Bevestiging verstuurd"]
    # A few statuses and notices repeat over thousands of rows: one (immutable) write each.
    status_writes = {status: CellWrite(status.value, style)
                     for status, style in STATUS_STYLES.items()}
    melding_writes: dict[str, CellWrite] = {}
    # Decisions come in sheet row order, one per registration, like the registrations.
    for reg, decision in zip(course.registrations, allocation.decisions, strict=True):
        assert reg.row == decision.row
        melding = _melding(decision.melding, state.bounced.get(reg.email_key))
        # The date goes on the row that was confirmed, not on a duplicate of its address.
        confirmed_on = (None if decision.status is Status.ONGELDIG
                        else state.confirmed_on.get(reg.email_key))
        if decision.status != reg.status:
            cells[(reg.row, status_col)] = status_writes[decision.status]
        if melding != reg.melding:
            write = melding_writes.get(melding)
            if write is None:
                write = melding_writes[melding] = CellWrite(melding)
            cells[(reg.row, melding_col)] = write
        if (confirmed_on or reg.bevestiging_verstuurd) and (
                confirmed_on != _parse_date(reg.bevestiging_verstuurd)):
            cells[(reg.row, sent_col)] = CellWrite(confirmed_on, DATE_STYLE)
    return cells, widths


def _melding(text: str, bounce: str | None) -> str:
    if bounce:
        if bounce.startswith("mail kwam terug"):
            notice = f"M{bounce[1:]}; controleer het adres"
        else:
            notice = f"E-mailadres geweigerd door de mailserver ({bounce}); controleer het adres"
        text = f"{text}; {notice}" if text else notice
    return fit_melding(text)


MELDING_LIMIT = 32_767  # Excel's longest cell text
_CUT = " … (ingekort) … "


def fit_melding(text: str, limit: int = MELDING_LIMIT) -> str:
    """A `Melding` Excel can hold, cut in the middle: its end says what to do.

    A notice is "what; …; what to do"; a plain cut at the limit (as the write-back would
    make) drops the suggestion, the part organisers act on.
    """
    if len(text) <= limit:
        return text
    head, _, tail = text.rpartition("; ")
    tail = "; " + tail if head else text[-(limit // 4):]
    tail = tail[-(limit // 2):]  # a last part that is itself huge keeps its own end
    return text[:limit - len(_CUT) - len(tail)] + _CUT + tail


def _parse_date(text: str) -> date | None:
    """The date the workbook shows in `Bevestiging verstuurd`, however it was stored."""
    text = text.strip()
    if not text:  # the common case, by far: skip strptime's slow failures
        return None
    for fmt in ("%d-%m-%Y", "%d-%m-%Y %H:%M", "%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def write_tool_columns(workbook: Path, course: Course, allocation: Allocation,
                       state: LedgerState) -> bool:
    """Write Status, Melding and Bevestiging verstuurd losslessly; False when nothing changed."""
    cells, widths = tool_cells(course, allocation, state)
    if not cells:
        return False
    return write_cells(workbook, course.layout.sheet_name, cells,
                       header_row=course.layout.header_row, column_widths=widths)


@dataclass(frozen=True)
class ToolWrites:
    """The tool cells a workbook needs, with what identifies the row each one is for."""

    sheet: str
    cells: dict[tuple[int, int], CellWrite]
    email_column: int
    emails: dict[int, str]  # row → the E-mail the row held when the cells were computed


def tool_writes(workbook: Path, env: Mapping[str, str]) -> ToolWrites:
    """The tool columns' cells for `workbook` as the ledger has them, without writing
    (the Microsoft 365 edge writes them through Excel's service instead)."""
    course = load_course(workbook)
    state = read_state(workbook, env)
    cells, _ = tool_cells(course, allocate(course, state.confirmed), state)
    return ToolWrites(course.layout.sheet_name, cells, course.layout.columns["E-mail"],
                      {r.row: r.email for r in course.registrations})


def import_writes(workbook: Path, export: Path, mapping: Mapping[str, str]) -> ToolWrites:
    """The cells an import adds to `workbook`, each row expected empty until written."""
    from leergang_ops.importer import import_cells

    layout, cells, rows = import_cells(workbook, export, mapping)
    return ToolWrites(layout.sheet_name, cells, layout.columns["E-mail"], rows)


def flag(workbook: Path, env: Mapping[str, str]) -> Allocation:
    """`flag`: write the statuses into the workbook (contract §4); needs no date."""
    ensure_not_in_use(workbook)
    course = load_course(workbook)  # bad input stops here: not even a ledger is created
    with _locked(workbook, env) as ledger:
        state = ledger.state()
        allocation = allocate(course, state.confirmed)
        write_tool_columns(workbook, course, allocation, state)
        return allocation


@contextmanager
def _locked(workbook: Path, env: Mapping[str, str]) -> Iterator[Ledger]:
    path = adopt_legacy(workbook, env)
    with run_lock(path), Ledger(path) as ledger:
        _clean_up(workbook, time.time())
        ledger.remember(WORKBOOK_FACT, workbook.resolve().name, _EPOCH)
        yield ledger


def _clean_up(workbook: Path, locked_at: float) -> None:
    """After a killed run: its temp files beside the workbook go (they hold its data, and a
    synced folder would spread them to every organiser)."""
    from leergang_ops.workbook.cleanup import remove_stale_temp_files

    for removed in remove_stale_temp_files(workbook, locked_at):
        log.info("Opgeruimd: %s", removed.name)


def _checked_templates(workbook: Path, env: Mapping[str, str] | None = None,
                       ) -> tuple[Templates, str | None]:
    """The templates for this workbook; refused before anything is sent when one is broken.

    With `env`, templates that passed the check before (same fingerprint in the ledger) are
    not checked again: the check test-renders every kind, a noticeable part of a daily
    run. Also returns the fingerprint for the ledger to remember (None: nothing new).
    """
    templates = templates_for(workbook)
    fingerprint = None
    if env is not None:
        fingerprint = templates.fingerprint()
        if fingerprint == passed_check(ledger_path(workbook, env), TEMPLATES_CHECKED):
            return templates, None
    broken = [f for f in templates.check() if f.level == Level.ERROR]
    if broken:
        raise InputError("Een mailsjabloon is niet in orde; er is niets verstuurd.", broken)
    return templates, fingerprint


def run(workbook: Path, today: date, now: datetime, env: Mapping[str, str], *,
        dry_run: bool = False, progress: Callable[[int, int], None] | None = None,
        clock: Callable[[], datetime] | None = None, new_ledger: bool = False,
        moment: datetime | None = None) -> RunReport:
    """`run`: flag, then send every mail that is due, then mirror the ledger into the workbook.

    `now` stamps the ledger; `moment` is when the job acts, for what has started (default:
    the start of `today`, as with `--today`); `clock` reads the real time for
    each mail's `Date` header (default: `now`). `new_ledger` starts a send ledger on purpose
    (contract §4): see `_seed`.
    """
    from leergang_ops.mail.bounces import ImapConfig
    from leergang_ops.mail.transport import SmtpConfig, outbox_folder, outbox_reason

    ensure_not_in_use(workbook)
    # Every configuration and input error before anything is written, the ledger included.
    SmtpConfig.from_env(env)
    imap = ImapConfig.from_env(env)
    with _organisers_to_fix():
        course = load_course(workbook)
        templates, fingerprint = _checked_templates(workbook, env)
    _ledger_belongs(workbook, course, env, new_ledger=new_ledger)
    if dry_run:
        checked = check(workbook, today, env, course=course, templates=False, moment=moment)
        return RunReport(planned=checked.plan.intents, over=checked.plan.over)
    with _locked(workbook, env) as ledger:
        if new_ledger:
            _seed(ledger, course, today, now)
        ledger.remember(SETTINGS_FACT, _settings_fact(course.settings), now)
        returned = _read_returns(imap, ledger, course, today)
        checked = check(workbook, today, env, ledger.state(), course=course, templates=False,
                        moment=moment)
        report = RunReport(planned=checked.plan.intents, returned=returned,
                           outbox=outbox_folder(env, workbook.parent / "outbox"),
                           outbox_why=outbox_reason(env),
                           over=checked.plan.over)
        report.problems.extend(returned.problems if returned else ())
        if fingerprint:
            ledger.record_check(TEMPLATES_CHECKED, fingerprint, now)
        _can_write_back(workbook, ledger, len(checked.plan.intents))
        _deliver(workbook, checked, templates, ledger, today, now, env, report, progress,
                 clock)
        report.workbook_changed = write_tool_columns(
            workbook, checked.course, checked.allocation, ledger.state())
        ledger.record_run(now)
    return report


def _ledger_belongs(workbook: Path, course: Course, env: Mapping[str, str], *,
                    new_ledger: bool) -> None:
    """The safety net that does not depend on how the ledger is found (contract §4).

    A missing or empty ledger beside a workbook that shows mails as sent would mail
    everybody again: refuse, and say where the ledger was expected and what to do.
    """
    from leergang_ops.ledger import ledger_health

    path = ledger_path(workbook, env)
    if new_ledger:
        if path.exists():
            raise InputError(f"Er is al een verzendlogboek ({path}); --new-ledger begint er "
                             "alleen een als er geen is. Er is niets verstuurd.")
        return
    if ledger_health(path) != "ok":
        shown = [r for r in course.registrations if r.bevestiging_verstuurd.strip()]
        if shown:
            column = "Bevestiging verstuurd"
            rows = ", ".join(str(r.row) for r in shown[:5]) + (" …" if len(shown) > 5 else "")
            raise InputError(
                f"Het verzendlogboek ontbreekt of is leeg ({path}), maar de werkmap toont "
                f"verstuurde bevestigingen ({course.layout.sheet_name}, kolom {column}, rij "
                f"{rows}). Er is niets verstuurd: anders kreeg iedereen zijn mails opnieuw. Zet "
                "het verzendlogboek terug (het hoort bij de werkmap, bijvoorbeeld uit een "
                "back-up), of start na controle bewust een nieuw met `leergang-ops run "
                f"{workbook} --new-ledger`: dat noteert alles wat al verstuurd is of had "
                "moeten zijn als verstuurd.")


def _seed(ledger: Ledger, course: Course, today: date, now: datetime) -> None:
    """A new ledger on purpose: record as sent what may have been sent (contract §4).

    What the workbook shows as sent (`Bevestiging verstuurd`), and every mail that was due
    before today — confirmations, waiting-list notices, reminders, change notices, weekly
    overviews, with the meeting details as they are now — so nobody is mailed again; what
    becomes due from today on goes out as usual.
    """
    from datetime import timedelta

    from leergang_ops.mail.render import message_id

    settings = course.settings
    state = LedgerState()
    allocation = allocate(course, state.confirmed)
    yesterday = plan(course, allocation, state, today - timedelta(days=1))
    checked = Checked(course, allocation, yesterday, ())
    intents = {intent.key: intent for intent in yesterday.intents}
    shown_on: dict[tuple[str, str, str], date] = {}
    for reg in course.registrations:
        shown = _parse_date(reg.bevestiging_verstuurd)
        if shown is not None:
            intent = MailIntent(MailKind.BEVESTIGING, reg.email, reg.naam, "-", row=reg.row)
            intents.setdefault(intent.key, intent)
            shown_on[intent.key] = shown
    for key, intent in intents.items():
        # A confirmation keeps the date the workbook shows: the column mirrors the ledger.
        at = datetime.combine(shown_on[key], now.timetz()) if key in shown_on else now
        ledger.mark_sent(intent, at, message_id(intent, settings), _announced(checked, intent))
    ledger.commit()
    log.info("Nieuw verzendlogboek: %d mails als al verstuurd vastgelegd", len(intents))


@contextmanager
def _organisers_to_fix() -> Iterator[None]:
    """Errors in the block are the organisers' to fix: the workbook, their templates."""
    try:
        yield
    except InputError as error:
        error.for_organisers = True
        raise


SETTINGS_FACT = "instellingen"  # the settings as last read, for a `storing` mail


def _settings_fact(settings: Settings) -> str:
    import json

    return json.dumps({name: getattr(settings, name) for name in _REMEMBERED})


_REMEMBERED = ("leergang", "contactpersoon", "contactpersoon_email", "afzender_naam",
               "afzender_email", "organisatie")


def notify_fault(workbook: Path, error: LeergangError, now: datetime,
                 env: Mapping[str, str]) -> str:
    """A scheduled run stopped on `error`: tell the contact person, once a day (contract §3).

    Uses the settings as last read (the workbook may be what broke). Returns one Dutch line
    on what was done; it never raises: the run's own error is what the operator must see.
    """
    import json

    from leergang_ops.mail.render import Mail, render_storing, storing_intent
    from leergang_ops.mail.transport import open_transport

    path = ledger_path(workbook, env)
    if not error.for_organisers:
        return ""
    if not path.exists():
        return ("geen storingsmail: er is nog geen verzendlogboek met het adres van de "
                "contactpersoon")
    try:
        with run_lock(path), Ledger(path) as ledger:
            remembered = ledger.fact(SETTINGS_FACT)
            if remembered is None:
                return "geen storingsmail: het adres van de contactpersoon is nog niet bekend"
            settings = Settings(**json.loads(remembered))
            intent = storing_intent(settings, now.date())
            if intent.key in ledger.state().sent:
                return "de contactpersoon kreeg vandaag al een storingsmail"
            what, where = _fault_text(error)
            mail = Mail.of(render_storing(templates_for(workbook), settings, what, where, now,
                                          datetime.now(now.tzinfo)))
            if not ledger.begin(intent, now):
                return "de contactpersoon kreeg vandaag al een storingsmail"
            with open_transport(env, workbook.parent / "outbox") as transport:
                transport.send(mail, intent)
            ledger.mark_sent(intent, now, mail.message_id, {}, transport.destination)
    except LeergangError as err:  # the mail server may not work at all
        return f"geen storingsmail verstuurd: {err}"
    return f"storingsmail verstuurd aan {settings.contactpersoon_email}"


def _fault_text(error: LeergangError) -> tuple[str, list[str]]:
    """What stopped the run, and where each problem is (sheet, row, column)."""
    findings = getattr(error, "findings", ())
    where = [f"{f.location()}: {f.message}" if f.location() else f.message for f in findings]
    return str(error), where


def _can_write_back(workbook: Path, ledger: Ledger, mails: int) -> None:
    """Before the first mail: can this run write its results? (contract §4)

    Room for the new workbook beside the old one and its backup, and for the batch's ledger
    rows; a read-only workbook or folder stops the run here, not after every mail went out.
    """
    from leergang_ops.environment import writable

    room = 2 * workbook.stat().st_size + LEDGER_ROOM_PER_MAIL * mails + 256 * 1024
    writable(workbook, ledger.path, room)


LEDGER_ROOM_PER_MAIL = 4096  # bytes a mail's ledger rows may take, with its WAL frames


def _read_returns(imap: ImapConfig | None, ledger: Ledger, course: Course,
                  today: date) -> Returned | None:
    """Bounces first (contract §3): what came back decides what is due now."""
    if imap is None:
        return None
    from leergang_ops.mail.returns import known_addresses, read_returns

    settings = course.settings
    known = known_addresses([(r.email, r.naam)
                             for r in course.registrations]
                            + [(settings.contactpersoon_email, settings.contactpersoon)])
    return read_returns(imap, ledger, known, today)


def _deliver(workbook: Path, checked: Checked, templates: Templates, ledger: Ledger,
             today: date, now: datetime, env: Mapping[str, str], report: RunReport,
             progress: Callable[[int, int], None] | None,
             clock: Callable[[], datetime] | None = None) -> None:
    from leergang_ops.mail.transport import DeliveryFault, open_transport

    intents = checked.plan.intents
    if not intents:
        return
    records = _all_records(ledger)
    ahead = _RenderedAhead(lambda intent: composing(intent, checked, templates, records, today,
                                                    now, sent_at=clock() if clock else None))
    batch = _Batch(ledger, today, now, report)

    def start(intent: MailIntent) -> None:
        """Record `sending` and make it durable, with the previous mail's `sent`.

        The transport calls this in the transaction's first pause, while the server answers
        MAIL FROM and before anything goes out that it could accept: the statements and the
        disk's sync take no time of their own, and the write lock is kept for the next mail.
        """
        if not ledger.begin(intent, now, defer_commit=True):
            raise _SentAlready  # the transport resets the transaction; nothing is sent
        ledger.commit(hold=True)

    with open_transport(env, workbook.parent / "outbox") as transport:
        for done, intent in enumerate(intents, start=1):
            if batch.consecutive_temporary >= MAX_CONSECUTIVE_TEMPORARY:
                report.deferred += len(intents) - done + 1
                report.problems.append("de mailserver is niet bereikbaar; de overige mails "
                                       "wachten op de volgende run")
                break
            if intent.recipient in batch.refused or intent.kind in batch.waiting_kinds:
                batch.skipped(intent)
                continue
            following = intents[done] if done < len(intents) else None
            try:
                mail = ahead.take(intent)
                transport.send(mail, intent, durable=functools.partial(start, intent),
                               meanwhile=ahead.prepare(following))
            except _SentAlready:
                continue
            except InputError:
                batch.stop(intent)  # the server refuses us: nothing stays against anyone
                raise
            except DeliveryFault as fault:
                batch.failed(intent, fault)
                continue
            batch.delivered(intent)
            ledger.mark_sent(intent, now, mail.message_id, _announced(checked, intent),
                             transport.destination)
            report.sent += 1
            if progress:
                progress(done, len(intents))
        batch.settle()


class _Batch:
    """What one batch's refusals mean together (contract §3, mail/replies has the rules).

    A refusal that may turn out to be about us (the same words for three recipients in a
    row) is held back until the next outcome decides: it stands as an address refusal, or
    the streak turns it and its likes into one configuration problem that blames nobody.
    """

    def __init__(self, ledger: Ledger, today: date, now: datetime, report: RunReport) -> None:
        from leergang_ops.mail.replies import ContentStreak, RefusalStreak

        self.ledger, self.today, self.now, self.report = ledger, today, now, report
        self.consecutive_temporary = 0
        self.refused: set[str] = set()  # recipients not to try again in this run
        self.waiting_kinds: set[str] = set()  # kinds whose content keeps being refused
        self.streak = RefusalStreak()
        self.content = ContentStreak()
        self.held: list[tuple[MailIntent, DeliveryFault]] = []

    def delivered(self, intent: MailIntent) -> None:
        self.consecutive_temporary = 0
        self.settle()
        self.content.delivered(intent.kind)

    def skipped(self, intent: MailIntent) -> None:
        """A mail not tried this run: its recipient was refused, or its kind waits."""
        if intent.kind in self.waiting_kinds:
            self.report.deferred += 1

    def failed(self, intent: MailIntent, fault: DeliveryFault) -> None:
        from leergang_ops.mail.replies import About

        if fault.verdict.breaker_prone:
            self.refused.add(intent.recipient)
            self.held.append((intent, fault))
            if self.streak.refused(fault.verdict, intent.recipient, intent.address):
                self._streak_is_about_us(fault)
            return
        self.settle()
        if fault.about is About.ADDRESS:
            self._refused_for_good(intent, fault, "address")
        elif fault.about is About.MAILBOX_FULL:
            self._mailbox_full(intent, fault)
        elif fault.about is About.CONTENT:
            self._content_refused(intent, fault)
        else:
            self._not_now(intent, fault)

    def settle(self) -> None:
        """The held refusals stand: each is about its address."""
        held, self.held = self.held, []
        self.streak.broken()
        for intent, fault in held:
            self._refused_for_good(intent, fault, "address")

    def stop(self, intent: MailIntent) -> None:
        """The run stops on a configuration problem: take back what this batch begun."""
        for held, _ in self.held:
            self.ledger.undo_begin(held)
        self.held = []
        self.ledger.undo_begin(intent)

    def _streak_is_about_us(self, fault: DeliveryFault) -> None:
        from leergang_ops.mail.replies import configuration_hint

        last, _ = self.held[-1]
        self.stop(last)
        reply = fault.verdict.reply
        raise InputError(
            f"De mailserver weigerde drie verschillende adressen na elkaar met dezelfde "
            f"melding bij {reply.step}: \"{reply}\". Dat ligt niet aan de adressen: "
            f"{configuration_hint(fault.verdict)}. Er is niets bij een deelnemer genoteerd; "
            "alle mails blijven klaarstaan voor de volgende run.") from fault

    def _refused_for_good(self, intent: MailIntent, fault: DeliveryFault, about: str) -> None:
        reason = _reason(fault)
        self.ledger.mark_failed(intent, self.now, permanent=True, reason=reason, about=about)
        self.refused.add(intent.recipient)
        self.consecutive_temporary = 0
        self.report.failed += 1
        self.report.problems.append(f"{intent.kind} aan {intent.address} geweigerd: {reason}")

    def _mailbox_full(self, intent: MailIntent, fault: DeliveryFault) -> None:
        from leergang_ops.mail.replies import MAILBOX_FULL_RUNS

        runs = self.ledger.count_full_mailbox(intent.recipient, self.today.isoformat())
        self.refused.add(intent.recipient)  # the next mail to it would find it full too
        if runs >= MAILBOX_FULL_RUNS:
            self._refused_for_good(intent, fault, "mailbox-full")
            return
        reason = f"{_reason(fault)} (mailbox vol, run {runs} van {MAILBOX_FULL_RUNS})"
        self.ledger.mark_failed(intent, self.now, permanent=False, reason=reason,
                                about="mailbox-full")
        self.report.deferred += 1
        self.report.problems.append(f"{intent.kind} aan {intent.address}: {reason}; wordt bij "
                                    "de volgende run opnieuw geprobeerd")

    def _content_refused(self, intent: MailIntent, fault: DeliveryFault) -> None:
        reason = _reason(fault)
        self.ledger.mark_failed(intent, self.now, permanent=False, reason=reason,
                                about="content")
        self.consecutive_temporary = 0
        self.report.deferred += 1
        self.report.content_refused += 1
        self.report.problems.append(
            f"{intent.kind} aan {intent.address}: inhoud geweigerd door de mailserver "
            f"({reason}); dit ligt niet aan het adres, de mail wordt bij de volgende run "
            "opnieuw geprobeerd")
        if self.content.refused(intent.kind):
            self.waiting_kinds.add(intent.kind)
            self.report.problems.append(
                f"{intent.kind}: drie keer na elkaar inhoud geweigerd; de overige mails van "
                "deze soort wachten op de volgende run")

    def _not_now(self, intent: MailIntent, fault: DeliveryFault) -> None:
        if not fault.data_sent:
            self.ledger.mark_failed(intent, self.now, permanent=False, reason=_reason(fault),
                                    about="moment")
        # else: left `sending`, since it may have arrived; the next run says so and resends
        self.consecutive_temporary += 1
        self.report.deferred += 1
        self.report.problems.append(f"{intent.kind} aan {intent.address} nu niet afgeleverd "
                                    f"({_reason(fault)}); volgende run opnieuw")


def _reason(fault: DeliveryFault) -> str:
    return f"{fault.code} {fault.reason}" if fault.code else fault.reason


class _SentAlready(Exception):
    """The ledger has this mail as sent already (a safety net: the plan leaves those out)."""


class _RenderedAhead:
    """The next mail, rendered in the pauses while the mail server answers about this one.

    Rendering is CPU work and an SMTP transaction is mostly waiting: done in those waits,
    rendering costs the batch no time. The weekly overview is never rendered ahead, since
    its summary lists the mails sent before it in this very run. A render that fails fails
    when its mail's turn comes, exactly as without rendering ahead.
    """

    def __init__(self, composing: Callable[[MailIntent], Steps[Message]]) -> None:
        self._composing = composing
        self._ready: tuple[MailIntent, Mail | Exception] | None = None

    def prepare(self, intent: MailIntent | None) -> Iterator[None] | None:
        """The steps that render `intent`; None when there is nothing to render ahead."""
        if intent is None or intent.kind == MailKind.OVERZICHT:
            return None
        return self._steps(intent)

    def _steps(self, intent: MailIntent) -> Iterator[None]:
        from leergang_ops.mail.render import Mail

        try:
            message = yield from self._composing(intent)
            yield
            self._ready = (intent, Mail.of(message))
        except Exception as err:  # raised again at its turn, by take()
            self._ready = (intent, err)

    def take(self, intent: MailIntent) -> Mail:
        """The message for `intent`: the one rendered ahead, else rendered now."""
        from leergang_ops.mail.render import Mail, finish

        ready, self._ready = self._ready, None
        if ready is None or ready[0] is not intent:
            return Mail.of(finish(self._composing(intent)))
        if isinstance(ready[1], Exception):
            raise ready[1]
        return ready[1]


def _announced(checked: Checked, intent: MailIntent) -> dict[int, tuple[MeetingDetails, int]]:
    """The meeting details (and .ics sequence) this mail tells its recipient about."""
    if intent.kind not in (MailKind.BEVESTIGING, MailKind.HERINNERING, MailKind.WIJZIGING):
        return {}
    announced = checked.announced
    return {nr: announced[nr] for nr in intent.meetings if nr in announced}


# The ledger's rows, read when a weekly overview is composed (after the mails before it).
# All of them, not just the week's: an address refused a month ago and never corrected is
# still a problem; the summary itself picks the past week for `Verzonden`.
Records = Callable[[], Sequence[SentRecord]]


def _all_records(ledger: Ledger) -> Records:
    return lambda: ledger.records_since(_EPOCH)


def compose(intent: MailIntent, checked: Checked, templates: Templates, records: Records,
            today: date, now: datetime) -> Message:
    """Render one mail; the weekly overview gets the summary workbook attached."""
    from leergang_ops.mail.render import finish

    return finish(composing(intent, checked, templates, records, today, now))


def composing(intent: MailIntent, checked: Checked, templates: Templates, records: Records,
              today: date, now: datetime, *, sent_at: datetime | None = None) -> Steps[Message]:
    """`compose` in steps (see `render.rendering`)."""
    from leergang_ops.mail.render import rendering

    attachments: list[Attachment] = []
    context: dict[str, object] = {}
    if intent.kind == MailKind.OVERZICHT:
        attachment, context = summary_attachment(checked, records(), today)
        attachments.append(attachment)
    return (yield from rendering(intent, checked.course, templates, now=now,
                                 sequences=checked.plan.sequences, attachments=attachments,
                                 context=context, sent_at=sent_at))


def summary_attachment(checked: Checked, records: Sequence[SentRecord],
                       today: date) -> tuple[Attachment, dict[str, object]]:
    """The summary workbook as an attachment, with its headline for the mail body."""
    from dataclasses import asdict

    from leergang_ops.mail.render import Attachment
    from leergang_ops.summary import build_summary, headline

    data = build_summary(checked.course, checked.allocation, records, today)
    name = f"overzicht-{today.isoformat()}.xlsx"
    mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    figures = headline(checked.course, checked.allocation, records, today)
    return Attachment(name, data, mime), {"headline": figures, **asdict(figures)}


@dataclass(frozen=True)
class PreviewReport:
    """What `preview` wrote, and why nothing when the course is over."""

    files: list[Path]
    over: date | None = None

    def line(self, out: Path) -> str:
        if self.over is not None:
            return f"Niets te versturen. {course_over_line(self.over)}"
        return (f"{mails(len(self.files) // 2)} in {out} gezet (als .eml en .html); er is "
                "niets verstuurd.")


def preview(workbook: Path, out: Path, today: date, now: datetime,
            env: Mapping[str, str], moment: datetime | None = None) -> PreviewReport:
    """`preview`: render every mail that is due now as .eml and .html; send nothing."""
    checked = check(workbook, today, env, templates=False, moment=moment)
    templates, _ = _checked_templates(workbook)
    path = ledger_path(workbook, env)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for n, intent in enumerate(checked.plan.intents, start=1):
        message = compose(intent, checked, templates,
                          lambda: read_ledger_records(path, _EPOCH), today, now)
        stem = out / f"{n:03d}-{intent.kind}-{_slug(intent.recipient)}"
        written.append(_write(stem.with_suffix(".eml"), message.as_bytes()))
        written.append(_write(stem.with_suffix(".html"), _html_part(message)))
    return PreviewReport(written, checked.plan.over)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)[:60]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _html_part(message: Message) -> bytes:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    return b""


def summary(workbook: Path, out: Path | None, today: date, now: datetime,
            env: Mapping[str, str], *, send: bool = False) -> Path:
    """`summary`: write the summary workbook (and mail it to the contact person now).

    Without `--send` it only reads the ledger. With it, it holds the run lock like `run`: a
    run's batch keeps the ledger's write lock between its mails, so the two must not meet.
    """
    if not send:
        checked = check(workbook, today, env)
        records = read_ledger_records(ledger_path(workbook, env), _EPOCH)
        return _write_summary(workbook, out, checked, records, today)
    from leergang_ops.mail.transport import SmtpConfig

    SmtpConfig.from_env(env)  # every input error before anything is written
    course = load_course(workbook)
    with _locked(workbook, env) as ledger:
        checked = check(workbook, today, env, ledger.state(), course=course)
        target = _write_summary(workbook, out, checked, ledger.records_since(_EPOCH), today)
        _send_summary_now(workbook, checked, ledger, today, now, env)
    return target


def _write_summary(workbook: Path, out: Path | None, checked: Checked,
                   records: Sequence[SentRecord], today: date) -> Path:
    from leergang_ops.environment import translated
    from leergang_ops.summary import write_summary

    attachment, _ = summary_attachment(checked, records, today)
    target = out or workbook.with_name(attachment.filename)
    with translated(target):
        write_summary(target, attachment.content)
    return target


def _send_summary_now(workbook: Path, checked: Checked, ledger: Ledger, today: date,
                      now: datetime, env: Mapping[str, str]) -> None:
    """An explicit `summary --send`: its own key, so it never stands in for the weekly one."""
    from leergang_ops.errors import DeliveryError
    from leergang_ops.mail.render import Mail
    from leergang_ops.mail.transport import DeliveryFault, open_transport

    settings = checked.course.settings
    intent = MailIntent(MailKind.OVERZICHT, settings.contactpersoon_email,
                        settings.contactpersoon, f"op-verzoek-{now:%Y%m%dT%H%M%S}")
    ledger.begin(intent, now)
    mail = Mail.of(compose(intent, checked, templates_for(workbook), _all_records(ledger),
                           today, now))
    try:
        with open_transport(env, workbook.parent / "outbox") as transport:
            transport.send(mail, intent)
    except DeliveryFault as fault:
        ledger.mark_failed(intent, now, permanent=False, reason=fault.reason)
        raise DeliveryError(f"Het overzicht is niet verstuurd: {fault.reason}") from fault
    ledger.mark_sent(intent, now, mail.message_id, {}, transport.destination)


def last_run_day(workbook: Path, env: Mapping[str, str]) -> date | None:
    """The day of the last completed run, for the scheduler's make-up run."""
    path = ledger_path(workbook, env)
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        last = ledger.last_run()
    return last.date() if last else None



def retry(workbook: Path, email: str, env: Mapping[str, str]) -> int:
    """`retry`: clear the refusals and bounces recorded for `email`; the number cleared."""
    from leergang_ops.model import normalise_email

    path = adopt_legacy(workbook, env)
    recipient = normalise_email(email)
    if not path.exists():
        raise InputError(f"Er is geen verzendlogboek ({path}): voor {email} is niets "
                         "genoteerd.")
    with run_lock(path), Ledger(path) as ledger:
        cleared = ledger.retry(recipient)
    if not cleared:
        raise InputError(f"Voor {email} is geen weigering of teruggekomen mail genoteerd; "
                         "er is niets veranderd. (Een adres dat in de werkmap is verbeterd, "
                         "krijgt zijn mails vanzelf.)")
    return cleared


@dataclass(frozen=True)
class ConnectionCheck:
    """One line of `validate --connect`: a connection and whether it works."""

    line: str
    works: bool
    status: int = 0  # the exit status it calls for: 2 configuration, 1 unreachable


def check_connections(env: Mapping[str, str],
                      workbook_url: str | None = None) -> list[ConnectionCheck]:
    """`validate --connect`: log in to the mail server, the bounce mailbox and the workbook's
    server; send and write nothing."""
    from leergang_ops.mail.transport import SmtpConfig, SmtpTransport

    checks = [] if workbook_url is None else [_store_check(workbook_url, env)]
    config = SmtpConfig.from_env(env)
    if config is None:
        checks.append(ConnectionCheck("SMTP: geen server ingesteld (LEERGANG_SMTP_HOST); "
                                      "mails gaan naar de outbox-map", True))
    else:
        checks.append(_connection(lambda: SmtpTransport(config).check(), f"SMTP {config.where}"))
    checks.append(_imap_check(env))
    return checks


def _store_check(url: str, env: Mapping[str, str]) -> ConnectionCheck:
    """The workbook's server: WebDAV, or Microsoft 365 through Graph."""
    from leergang_ops.store.graph import is_graph_address

    return _graph_check(url, env) if is_graph_address(url, env) else _webdav_check(url, env)


def _graph_check(url: str, env: Mapping[str, str]) -> ConnectionCheck:
    """Sign in, find the item, open and close a workbook session (the right to write)."""
    from leergang_ops.store.graph import Graph

    def attempt() -> str:
        server = Graph(url, env)
        try:
            item = server.item()
            server.open_session(item)
            server.close_session(item)
        finally:
            server.close()
        return (f"Microsoft 365 {url}: aangemeld, bestand {item.name} gevonden, mag schrijven "
                "(werkmapsessie geopend en gesloten)")

    return _connection(attempt, f"Microsoft 365 {url}")


def _webdav_check(url: str, env: Mapping[str, str]) -> ConnectionCheck:
    """The workbook's server: login, the file, its locks and whether we may write it."""
    from leergang_ops.store.webdav import WebDav

    def attempt() -> str:
        with WebDav(url, env) as server:
            props = server.props()
            rights = {True: "mag schrijven", False: "mag NIET schrijven",
                      None: "schrijfrechten blijken bij het terugzetten"}[props.may_write]
            lock = (f"; vergrendeld door {props.locked_by or 'iemand'}"
                    if props.locked_by is not None else "")
            return f"WebDAV {url}: ingelogd als {server.user}, bestand gevonden, {rights}{lock}"

    return _connection(attempt, f"WebDAV {url}")


def _imap_check(env: Mapping[str, str]) -> ConnectionCheck:
    from leergang_ops.mail import bounces

    config = bounces.ImapConfig.from_env(env)
    if config is None:
        return ConnectionCheck("IMAP: geen postbus ingesteld (LEERGANG_IMAP_HOST); "
                               "teruggekomen mail wordt niet gelezen", True)
    return _connection(lambda: bounces.check_connection(config),
                       f"IMAP {config.host}:{config.port}")


def _connection(attempt: Callable[[], str], what: str) -> ConnectionCheck:
    from leergang_ops.errors import DeliveryError

    try:
        return ConnectionCheck(attempt(), True)
    except InputError as err:
        return ConnectionCheck(f"{what}: werkt niet — {err}", False, 2)
    except DeliveryError as err:
        return ConnectionCheck(f"{what}: niet bereikbaar — {err}", False, 1)


def import_registrations(workbook: Path, export: Path, mapping: Mapping[str, str],
                         env: Mapping[str, str], *, dry_run: bool = False) -> ImportReport:
    """`import`: append a form export's new registrations, holding the run lock meanwhile."""
    from leergang_ops.importer import import_export

    if dry_run:
        return import_export(workbook, export, mapping, dry_run=True)
    ensure_not_in_use(workbook)
    with run_lock(adopt_legacy(workbook, env)):
        _clean_up(workbook, time.time())
        return import_export(workbook, export, mapping)
