"""Which mails are due: a pure function of the course, its allocation, the ledger and `today`.

Every intent carries its idempotency key (see `MailIntent.key`); the ledger decides at send
time whether a key already went out, so planning twice never sends twice.

Time: the daily job acts *as of the start of `today`*. A meeting on `today` itself has
therefore not started yet (reminders and changes for it are still planned); a meeting on an
earlier day has. Planning never reads the clock, so a run late in the day after a meeting
began still counts that meeting as ahead: schedule the run before meetings start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

from leergang_ops.model import (
    SHEET_MEETINGS,
    SHEET_SETTINGS,
    Allocation,
    Course,
    Decision,
    Finding,
    LedgerState,
    Level,
    MailIntent,
    MailKind,
    Meeting,
    Registration,
    Settings,
    Status,
    normalise_email,
)

SCOPE_ONCE = "-"  # a confirmation or waiting-list notice goes out once per recipient
# How many days before the first reminder we start asking for a missing online link.
LINK_WARNING_DAYS = 7
WAITING_STATUSES = (Status.WACHTLIJST, Status.OVERBOEKT)


@dataclass(frozen=True)
class Plan:
    intents: tuple[MailIntent, ...]
    findings: tuple[Finding, ...]
    sequences: dict[int, int]  # meeting nr → current .ics SEQUENCE


@dataclass(frozen=True)
class _Context:
    """What every per-registration rule needs, computed once per plan."""

    course: Course
    state: LedgerState
    today: date
    sequences: dict[int, int]
    held_back: frozenset[int]  # meetings whose reminders wait for an online link


def meeting_sequences(course: Course, state: LedgerState) -> dict[int, int]:
    """Map each meeting to its current SEQUENCE: the announced one, +1 once its details change."""
    sequences: dict[int, int] = {}
    for meeting in course.meetings:
        announced = state.meeting_versions.get(meeting.nr)
        if announced is None:
            sequences[meeting.nr] = 0
        else:
            details, sequence = announced
            sequences[meeting.nr] = sequence + (details != meeting.details())
    return sequences


def plan(course: Course, allocation: Allocation, state: LedgerState, today: date) -> Plan:
    """Return the mails due as of the start of `today`, in a deterministic order.

    Order: by Deelnemers row, within a row bevestiging, wachtlijst, wijziging, herinnering
    (meetings in sheet order); the weekly overzicht last.
    """
    ctx = _context(course, state, today)
    decisions = allocation.by_row()
    candidates: list[MailIntent] = []
    for registration in sorted(course.registrations, key=lambda r: r.row):
        decision = decisions.get(registration.row)
        if decision is not None and registration.email_key not in state.bounced:
            candidates.extend(_registration_intents(ctx, registration, decision))
    candidates.extend(_weekly_summary(course.settings, state, today))
    intents = tuple(i for i in candidates if i.key not in state.sent)
    return Plan(intents, _findings(ctx, allocation), ctx.sequences)


def plan_findings(course: Course, allocation: Allocation, state: LedgerState,
                  today: date) -> Plan:
    """The plan's findings and sequences without its mails: what `validate` needs, cheaply."""
    ctx = _context(course, state, today)
    return Plan((), _findings(ctx, allocation), ctx.sequences)


def _context(course: Course, state: LedgerState, today: date) -> _Context:
    return _Context(course, state, today, meeting_sequences(course, state),
                    frozenset(_held_back(course, today)))


def _findings(ctx: _Context, allocation: Allocation) -> tuple[Finding, ...]:
    return (*_meeting_findings(ctx), *_date_removed_findings(ctx, allocation),
            *_contact_bounced(ctx.course.settings, ctx.state))


def _registration_intents(
    ctx: _Context, registration: Registration, decision: Decision
) -> Iterator[MailIntent]:
    """Yield one registration's mails in kind order, sent or not (`plan` drops the sent)."""
    if decision.status == Status.BEVESTIGD:
        yield from _confirmation(ctx, registration)
        yield from _changes(ctx, registration)
        yield from _reminders(ctx, registration)
    elif decision.status in WAITING_STATUSES:
        yield from _waiting_list_notice(ctx, registration, decision)


def _intent(
    kind: MailKind,
    registration: Registration,
    scope: str,
    *,
    meetings: tuple[int, ...] = (),
    sequence: int = 0,
    reminder_days: int | None = None,
    extra: dict[str, str] | None = None,
) -> MailIntent:
    """Build an intent addressed to a registration."""
    return MailIntent(kind, registration.email.strip(), registration.naam, scope,
                      row=registration.row, meetings=meetings, sequence=sequence,
                      reminder_days=reminder_days, extra=extra or {})


def _confirmation(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield the bevestiging; its meetings' SEQUENCEs are in Plan.sequences."""
    meetings = tuple(m.nr for m in ctx.course.meetings_for(registration))
    yield _intent(MailKind.BEVESTIGING, registration, SCOPE_ONCE, meetings=meetings)


def _waiting_list_notice(
    ctx: _Context, registration: Registration, decision: Decision
) -> Iterator[MailIntent]:
    """Yield the wachtlijst notice when the settings ask for it, unless they were confirmed."""
    if not ctx.course.settings.wachtlijstbericht or registration.email_key in ctx.state.confirmed:
        return
    extra = {"status": str(decision.status), "melding": decision.melding}
    yield _intent(MailKind.WACHTLIJST, registration, SCOPE_ONCE, extra=extra)


def _changes(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield a wijziging per upcoming meeting whose details differ from what was sent.

    A meeting the recipient attends but never heard about (added to the sheet after the
    confirmation, or the recipient stopped being a bestuurder) is announced the same way, so
    it reaches their calendar now rather than with the first reminder; `extra["change"]` is
    `added` then (also when it had no date before), else `changed`. A meeting without a
    date waits: there is nothing to put in a calendar (see `meeting-date-removed`).
    """
    recipient = registration.email_key
    if recipient not in ctx.state.confirmed:
        return
    for meeting in ctx.course.meetings_for(registration):
        if meeting.datum is None or _has_started(meeting, ctx.today):
            continue
        told = ctx.state.sent_details.get((recipient, meeting.nr))
        if told is not None and told[0] == meeting.details():
            continue
        sequence = ctx.sequences[meeting.nr]
        # A meeting first dated now is news to them, not a change of what they planned.
        change = "added" if told is None or not told[0][0] else "changed"
        yield _intent(MailKind.WIJZIGING, registration, f"m{meeting.nr}@{sequence}",
                      meetings=(meeting.nr,), sequence=sequence, extra={"change": change})


def _reminders(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield the most relevant due herinnering per upcoming meeting, each D at most once."""
    herinneringen = ctx.course.settings.herinneringen
    for meeting in ctx.course.meetings_for(registration):
        if meeting.datum is None or meeting.nr in ctx.held_back:
            continue
        days_left = (meeting.datum - ctx.today).days
        days = reminder_due(days_left, herinneringen)
        if days is not None:
            yield _intent(MailKind.HERINNERING, registration, f"m{meeting.nr}-{days}d",
                          meetings=(meeting.nr,), sequence=ctx.sequences[meeting.nr],
                          reminder_days=days, extra={"days_left": str(days_left)})


def reminder_due(days_left: int, herinneringen: tuple[int, ...]) -> int | None:
    """Return the D of the reminder due with `days_left` to go: the smallest D ≥ days_left.

    A run that missed the 7-day moment but is still before the 1-day one sends the 7-day
    reminder; one that missed both sends only the 1-day reminder. None once the meeting day
    has passed (`days_left` < 0): never a reminder after the start; on the day itself the
    job still counts as before it.
    """
    return min((d for d in herinneringen if 0 <= days_left <= d), default=None)


def _has_started(meeting: Meeting, today: date) -> bool:
    """Tell whether the meeting began before the start of `today` (the job's moment)."""
    starts_at = meeting.starts_at()
    return starts_at is not None and starts_at < datetime.combine(today, time.min)


def _weekly_summary(settings: Settings, state: LedgerState, today: date) -> Iterator[MailIntent]:
    """Yield this ISO week's overzicht from its weekday on: `plan` keeps the first unsent one."""
    recipient = normalise_email(settings.contactpersoon_email)
    if today.weekday() < settings.overzicht_weekdag or recipient in state.bounced:
        return
    year, week, _ = today.isocalendar()
    yield MailIntent(MailKind.OVERZICHT, settings.contactpersoon_email.strip(),
                     settings.contactpersoon, f"{year}-W{week:02d}")


def _held_back(course: Course, today: date) -> Iterator[int]:
    """Yield online meetings without a link whose first reminder is near: no reminders yet."""
    for meeting in course.meetings:
        if _needs_link(meeting, course.settings, today):
            yield meeting.nr


def _needs_link(meeting: Meeting, settings: Settings, today: date) -> bool:
    """Tell whether an online meeting lacks its link within a week of its first reminder."""
    if not meeting.online or meeting.online_link.strip() or meeting.datum is None:
        return False
    if _has_started(meeting, today):
        return False
    first_reminder = max(settings.herinneringen, default=0)
    return (meeting.datum - today).days <= first_reminder + LINK_WARNING_DAYS


def _meeting_findings(ctx: _Context) -> Iterator[Finding]:
    """Yield one finding per meeting without a date or without its needed online link."""
    for meeting in ctx.course.meetings:
        if meeting.datum is None:
            yield Finding(Level.WARNING, "meeting-no-date", SHEET_MEETINGS, meeting.row, "Datum",
                          f"Bijeenkomst {meeting.nr} heeft nog geen datum; er gaan geen "
                          "herinneringen voor uit tot de datum is ingevuld.")
        elif meeting.nr in ctx.held_back:
            yield Finding(Level.ERROR, "meeting-online-no-link", SHEET_MEETINGS, meeting.row,
                          "Online link",
                          f"Bijeenkomst {meeting.nr} is online maar heeft nog geen link; de "
                          "herinneringen worden tegengehouden tot de link is ingevuld.")


def _date_removed_findings(ctx: _Context, allocation: Allocation) -> Iterator[Finding]:
    """Yield a finding per undated meeting whose earlier date confirmed participants hold."""
    confirmed = _confirmed_recipients(ctx.course, allocation)
    for meeting in ctx.course.meetings:
        if meeting.datum is not None:
            continue
        told = sum(1 for (recipient, nr), (details, _) in ctx.state.sent_details.items()
                   if nr == meeting.nr and details[0] and recipient in confirmed)
        if told:
            yield Finding(Level.WARNING, "meeting-date-removed", SHEET_MEETINGS, meeting.row,
                          "Datum",
                          f"Bijeenkomst {meeting.nr} heeft geen datum meer, maar {told} "
                          "deelnemer(s) kregen eerder wel een datum; zij krijgen pas bericht "
                          "als er een nieuwe datum is ingevuld.")


def _confirmed_recipients(course: Course, allocation: Allocation) -> frozenset[str]:
    """Return the recipients whose registration is bevestigd now."""
    bevestigd = {d.row for d in allocation.decisions if d.status == Status.BEVESTIGD}
    return frozenset(r.email_key for r in course.registrations if r.row in bevestigd)


def _contact_bounced(settings: Settings, state: LedgerState) -> Iterator[Finding]:
    """Yield an error when the contact person's address bounced: no summaries reach them."""
    reply = state.bounced.get(normalise_email(settings.contactpersoon_email))
    if reply is not None:
        yield Finding(Level.ERROR, "contact-bounced", SHEET_SETTINGS, None, "Waarde",
                      f"Het adres van de contactpersoon ({settings.contactpersoon_email}) "
                      f"weigert mail ({reply}); het wekelijks overzicht wordt niet verstuurd "
                      "tot er een ander adres is ingevuld.")
