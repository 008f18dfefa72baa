"""The headline figures of the Overzicht sheet and of the weekly mail's body, pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from leergang_ops.model import (
    Allocation,
    Course,
    SentRecord,
    Status,
)
from leergang_ops.summary.attention import (
    Problem,
    problems,
)
from leergang_ops.summary.figures import (
    attendance,
    in_outbox,
    meeting_label,
    municipality_rows,
    recent_records,
)


@dataclass(frozen=True)
class Headline:
    """The figures of the Overzicht sheet and of the weekly mail's body."""

    gemeenten: int  # municipalities with at least one confirmed participant
    max_gemeenten: int
    bevestigd: int
    wachtlijst: int
    overboekt: int
    ongeldig: int
    afgemeld: int
    per_meeting: tuple[tuple[str, int], ...]  # (meeting label, expected attendance)
    mails_this_week: int  # delivered (status `sent`) in the 7 days up to and including today
    problems: tuple[Problem, ...]  # grouped as GROUPS, each with where to fix it
    mails_in_outbox: int = 0  # of the past 7 days, written to an outbox folder: not sent

def headline(course: Course, allocation: Allocation, records: Sequence[SentRecord],
             today: date) -> Headline:
    """The summary's figures as of `today`."""
    return Headline(
        gemeenten=sum(1 for m in municipality_rows(course, allocation) if m.bevestigd
                      or m.bestuurders),
        max_gemeenten=course.settings.max_gemeenten,
        bevestigd=allocation.count(Status.BEVESTIGD),
        wachtlijst=allocation.count(Status.WACHTLIJST),
        overboekt=allocation.count(Status.OVERBOEKT),
        ongeldig=allocation.count(Status.ONGELDIG),
        afgemeld=allocation.count(Status.AFGEMELD),
        per_meeting=tuple((meeting_label(a.meeting), a.total)
                          for a in attendance(course, allocation)),
        mails_this_week=sum(1 for r in recent_records(records, today)
                            if r.status == "sent" and not in_outbox(r)),
        problems=tuple(problems(course, allocation, records, today)),
        mails_in_outbox=sum(1 for r in recent_records(records, today)
                            if r.status == "sent" and in_outbox(r)),
    )
