"""Which mails are due: a pure function of the course, its allocation, the ledger and `today`.

Every intent carries its idempotency key (see `MailIntent.key`); the ledger decides at send
time whether a key already went out, so planning twice never sends twice.

Time: the job acts as of a `moment` (naive Europe/Amsterdam time): the moment of the run,
or the start of `today` when the date was given (`--today`). A meeting has started when its
date and start time lie before that moment (contract §3): a 16:00 run reminds nobody of
today's 14:00 meeting, and nobody is welcomed to it. Planning never reads the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

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
# With a meeting still undated, the course is over this long after the last dated one began.
OVER_AFTER = timedelta(weeks=8)


@dataclass(frozen=True)
class Plan:
    intents: tuple[MailIntent, ...]
    findings: tuple[Finding, ...]
    sequences: dict[int, int]  # meeting nr → current .ics SEQUENCE
    over: date | None = None  # the course is over: the day its last dated meeting was


@dataclass(frozen=True)
class _Context:
    """What every per-registration rule needs, computed once per plan."""

    course: Course
    state: LedgerState
    today: date
    moment: datetime  # naive Amsterdam time the run acts as of; meetings before it started
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


def plan(course: Course, allocation: Allocation, state: LedgerState, today: date,
         moment: datetime | None = None) -> Plan:
    """Return the mails due as of `moment` (default: the start of `today`), in order.

    Order: by Deelnemers row, within a row bevestiging, wachtlijst, wijziging, herinnering
    (meetings in sheet order), afmelding; the weekly overzicht last. Once the course is
    over (`course_over`) nothing is due: a clock that is wrong by years mails nobody.
    """
    ctx = _context(course, state, today, moment)
    findings = _findings(ctx, allocation)
    over = course_over(course.meetings, ctx.moment)
    if over is not None:
        return Plan((), findings, ctx.sequences, over)
    decisions = allocation.by_row()
    active = _active_recipients(course, allocation)
    candidates: list[MailIntent] = []
    for registration in sorted(course.registrations, key=lambda r: r.row):
        decision = decisions.get(registration.row)
        if decision is not None and registration.email_key not in state.bounced:
            candidates.extend(_registration_intents(ctx, registration, decision, active))
    candidates.extend(_weekly_summary(course.settings, state, today))
    intents = tuple(i for i in candidates if i.key not in state.sent)
    return Plan(intents, findings, ctx.sequences)


def plan_findings(course: Course, allocation: Allocation, state: LedgerState,
                  today: date, moment: datetime | None = None) -> Plan:
    """The plan's findings and sequences without its mails: what `validate` needs, cheaply."""
    ctx = _context(course, state, today, moment)
    return Plan((), _findings(ctx, allocation), ctx.sequences,
                course_over(course.meetings, ctx.moment))


def course_over(meetings: Sequence[Meeting], moment: datetime) -> date | None:
    """The day of the last dated meeting when the course is over (contract §3), else None.

    Over: at least one meeting has a date, none of them lies ahead, and either every
    meeting has a date or the last dated one started more than `OVER_AFTER` ago. A new
    course whose meetings are all "datum volgt" is not over.
    """
    dated = [m for m in meetings if m.datum is not None]
    if not dated or not all(_has_started(m, moment) for m in dated):
        return None
    last = max(dated, key=lambda m: m.starts_at() or datetime.min)
    if len(dated) < len(meetings) and (last.starts_at() or moment) >= moment - OVER_AFTER:
        return None
    return last.datum


def _context(course: Course, state: LedgerState, today: date,
             moment: datetime | None) -> _Context:
    at = datetime.combine(today, time.min) if moment is None else moment.replace(tzinfo=None)
    return _Context(course, state, today, at, meeting_sequences(course, state),
                    frozenset(_held_back(course, at)))


def _findings(ctx: _Context, allocation: Allocation) -> tuple[Finding, ...]:
    return (*_course_over_findings(ctx), *_meeting_findings(ctx),
            *_date_removed_findings(ctx, allocation), *_contact_bounced(ctx.course.settings,
                                                                         ctx.state))


def _active_recipients(course: Course, allocation: Allocation) -> frozenset[str]:
    """Recipients with a registration that is not afgemeld or ongeldig (it still counts)."""
    live = {d.row for d in allocation.decisions
            if d.status in (Status.BEVESTIGD, *WAITING_STATUSES)}
    return frozenset(r.email_key for r in course.registrations if r.row in live)


def _registration_intents(
    ctx: _Context, registration: Registration, decision: Decision, active: frozenset[str]
) -> Iterator[MailIntent]:
    """Yield one registration's mails in kind order, sent or not (`plan` drops the sent).

    A confirmation not sent yet stands in for the reminders whose due day has come
    (`MailIntent.covers`): nobody gets both for one meeting on one day, nor the reminder later.
    """
    if decision.status == Status.BEVESTIGD:
        confirmation = tuple(_confirmation(ctx, registration))
        covered = {scope for intent in confirmation if intent.key not in ctx.state.sent
                   for scope in intent.covers}
        yield from confirmation
        yield from _changes(ctx, registration)
        yield from (r for r in _reminders(ctx, registration) if r.scope not in covered)
    elif decision.status in WAITING_STATUSES:
        yield from _waiting_list_notice(ctx, registration, decision)
    elif decision.status == Status.AFGEMELD and registration.email_key not in active:
        yield from _cancellation(ctx, registration)


def _intent(
    kind: MailKind,
    registration: Registration,
    scope: str,
    *,
    meetings: tuple[int, ...] = (),
    sequence: int = 0,
    reminder_days: int | None = None,
    extra: dict[str, str] | None = None,
    covers: tuple[str, ...] = (),
) -> MailIntent:
    """Build an intent addressed to a registration."""
    return MailIntent(kind, registration.email.strip(), registration.naam, scope,
                      row=registration.row, meetings=meetings, sequence=sequence,
                      reminder_days=reminder_days, extra=extra or {}, covers=covers)


def _ahead(ctx: _Context, registration: Registration) -> tuple[Meeting, ...]:
    """The meetings the registration attends that have not started."""
    return tuple(m for m in ctx.course.meetings_for(registration)
                 if not _has_started(m, ctx.moment))


def _confirmation(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield the bevestiging for the meetings ahead; their SEQUENCEs are in Plan.sequences.

    It covers the reminders already due for those meetings (not for an online meeting
    whose link is missing: its reminder waits for the link and then brings it).
    """
    ahead = _ahead(ctx, registration)
    if not ahead:
        return  # every meeting they attend began; nothing to welcome them to
    covers = tuple(f"m{m.nr}-{days}d" for m in ahead
                   if m.datum is not None and m.nr not in ctx.held_back
                   for days in _due_reminders((m.datum - ctx.today).days,
                                              ctx.course.settings.herinneringen))
    yield _intent(MailKind.BEVESTIGING, registration, SCOPE_ONCE,
                  meetings=tuple(m.nr for m in ahead), covers=covers)


def _due_reminders(days_left: int, herinneringen: tuple[int, ...]) -> tuple[int, ...]:
    """Every D whose due day has come with `days_left` to go (the meeting still ahead)."""
    return tuple(sorted(d for d in herinneringen if 0 <= days_left <= d))


def _waiting_list_notice(
    ctx: _Context, registration: Registration, decision: Decision
) -> Iterator[MailIntent]:
    """Yield the wachtlijst notice when the settings ask for it, unless they were confirmed.

    It carries the status and the municipality's place on the waiting list, never the
    organisers' `Melding`: the template words the reason for the participant.
    """
    if not ctx.course.settings.wachtlijstbericht or registration.email_key in ctx.state.confirmed:
        return
    extra = {"status": str(decision.status)}
    if decision.position is not None:
        extra["positie"] = str(decision.position)
    yield _intent(MailKind.WACHTLIJST, registration, SCOPE_ONCE, extra=extra)


def _cancellation(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield the afmelding for someone told of a place or the waiting list, now afgemeld.

    For someone confirmed it names the dated meetings ahead they were told of, with a
    SEQUENCE above every one they got: its .ics takes them out of their calendar.
    """
    recipient = registration.email_key
    confirmed = recipient in ctx.state.confirmed
    waiting = (str(MailKind.WACHTLIJST), recipient, SCOPE_ONCE) in ctx.state.sent
    if not confirmed and not waiting:
        return
    told = {nr: sequence for (who, nr), (details, sequence) in ctx.state.sent_details.items()
            if who == recipient and details[0]}
    meetings = tuple(m.nr for m in _ahead(ctx, registration)
                     if m.datum is not None and m.nr in told) if confirmed else ()
    sequence = 1 + max((max(told[nr], ctx.sequences[nr]) for nr in meetings), default=0)
    yield _intent(MailKind.AFMELDING, registration, SCOPE_ONCE, meetings=meetings,
                  sequence=sequence, extra={"had": "bevestigd" if confirmed else "wachtlijst"})


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
        if meeting.datum is None or _has_started(meeting, ctx.moment):
            continue
        told = ctx.state.sent_details.get((recipient, meeting.nr))
        if told is not None and told[0] == meeting.details():
            continue
        sequence = ctx.sequences[meeting.nr]
        # A meeting first dated now is news to them, not a change of what they planned.
        if told is None:
            extra = {"change": "added"}
        elif not told[0][0]:
            extra = {"change": "dated"}
        else:
            extra = {"change": "changed", "was": json.dumps(list(told[0]))}
        yield _intent(MailKind.WIJZIGING, registration, f"m{meeting.nr}@{sequence}",
                      meetings=(meeting.nr,), sequence=sequence, extra=extra)


def _reminders(ctx: _Context, registration: Registration) -> Iterator[MailIntent]:
    """Yield the most relevant due herinnering per upcoming meeting, each D at most once."""
    herinneringen = ctx.course.settings.herinneringen
    for meeting in ctx.course.meetings_for(registration):
        if meeting.datum is None or meeting.nr in ctx.held_back or _has_started(meeting,
                                                                                 ctx.moment):
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


def _has_started(meeting: Meeting, moment: datetime) -> bool:
    """Tell whether the meeting began before `moment` (naive Amsterdam time)."""
    starts_at = meeting.starts_at()
    return starts_at is not None and starts_at < moment


def _weekly_summary(settings: Settings, state: LedgerState, today: date) -> Iterator[MailIntent]:
    """Yield this ISO week's overzicht from its weekday on: `plan` keeps the first unsent one."""
    recipient = normalise_email(settings.contactpersoon_email)
    if today.weekday() < settings.overzicht_weekdag or recipient in state.bounced:
        return
    year, week, _ = today.isocalendar()
    yield MailIntent(MailKind.OVERZICHT, settings.contactpersoon_email.strip(),
                     settings.contactpersoon, f"{year}-W{week:02d}")


def _held_back(course: Course, moment: datetime) -> Iterator[int]:
    """Yield online meetings without a link whose first reminder is near: no reminders yet."""
    for meeting in course.meetings:
        if _needs_link(meeting, course.settings, moment):
            yield meeting.nr


def _needs_link(meeting: Meeting, settings: Settings, moment: datetime) -> bool:
    """Tell whether an online meeting lacks its link within a week of its first reminder."""
    if not meeting.online or meeting.online_link.strip() or meeting.datum is None:
        return False
    if _has_started(meeting, moment):
        return False
    first_reminder = max(settings.herinneringen, default=0)
    return (meeting.datum - moment.date()).days <= first_reminder + LINK_WARNING_DAYS


def _course_over_findings(ctx: _Context) -> Iterator[Finding]:
    """Yield a warning when the course is over: nothing is sent (is the date right?)."""
    last = course_over(ctx.course.meetings, ctx.moment)
    if last is not None:
        yield Finding(Level.WARNING, "course-over", SHEET_MEETINGS, None, "Datum",
                      f"De leergang is voorbij: de laatste bijeenkomst was op "
                      f"{last.strftime('%d-%m-%Y')}. Er gaan geen mails meer uit; klopt de "
                      f"datum van vandaag ({ctx.today.strftime('%d-%m-%Y')})?")


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
