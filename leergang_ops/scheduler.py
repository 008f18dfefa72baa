"""The long-running daily loop behind `leergang-ops schedule`, on the `schedule` library."""

from __future__ import annotations

import logging
import signal
import threading
import time as systime
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from types import FrameType

import schedule

logger = logging.getLogger(__name__)

MAX_NAP = 1.0  # seconds: how long a signal or stop event may wait to be noticed
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


Job = Callable[[], "int | tuple[int, str]"]  # the exit status, and what the run said


def run_daily(job: Job, at: time, *, last_run: Callable[[], date | None],
              now: Callable[[], datetime] = datetime.now,
              sleep: Callable[[float], None] = systime.sleep,
              stop: threading.Event | None = None, label: str = "de taak",
              zone: str = "") -> int:
    """Do `job` every day at `at` until stopped; return 0 once stopped cleanly.

    Intended behaviour:

    - One line (logged at INFO, in Dutch: the operator reads it) when the loop starts —
      `label`, the time and `zone` — one for every run, with what the run said when the job
      returns it beside its status, and one when it stops.

    - `at` is wall-clock time as `now()` tells it (an aware `now()` counts in its own zone).
    - A run that raises or returns a non-zero status is logged in one line and the loop goes
      on: the next run is the next day's. Every run logs exactly one line, with its status
      and duration.
    - A run missed because the process was down is made up at start, but only on the same
      day: when `at` has passed today and `last_run()` is not today. An earlier day is not
      made up; the next run catches up on whatever it is due to do.
    - After a suspend, or a clock jump forward, across one or more `at`s the job runs once
      on waking, not once per missed day (like `schedule`'s own `run_pending()`).
    - SIGTERM and SIGINT (from the main thread), or setting `stop`, end the loop between
      runs, noticed within a second; a run in progress is finished first, never cut off.
      Only a second SIGINT (Ctrl-C twice) interrupts a run, as KeyboardInterrupt.
      Previous signal handlers are restored on return.
    """
    stop = stop or threading.Event()
    scheduler = schedule.Scheduler()  # our own: the module-level default is shared state
    daily = _ClockedJob(scheduler, now).day.at(at.strftime("%H:%M:%S"))
    daily.do(_run_logged, job, now, "gepland")
    with _stopping_on_signals(stop) as received:
        where = f" ({zone})" if zone else ""
        next_run = daily.next_run.strftime("%d-%m-%Y %H:%M") if daily.next_run else "?"
        logger.info("Gestart: %s elke dag om %s%s; volgende run %s.", label,
                    at.strftime("%H:%M"), where, next_run)
        if _missed_today(at, last_run(), _wall(now())):
            _run_logged(job, now, "vandaag gemist, nu ingehaald")
        while not stop.is_set():
            scheduler.run_pending()
            _nap(daily, now, sleep, stop)
    reason = signal.Signals(received[0]).name if received else "stopverzoek"
    logger.info("Gestopt (%s).", reason)
    return 0


class _ClockedJob(schedule.Job):
    """A daily `schedule` job that reads the injected clock.

    `schedule` calls `datetime.now()` inside; reading `now` here instead lets tests (and
    callers with their own zone) drive the loop without patching the global clock.
    """

    def __init__(self, scheduler: schedule.Scheduler, now: Callable[[], datetime]) -> None:
        super().__init__(1, scheduler)
        self._now = now

    @property
    def should_run(self) -> bool:
        return self.next_run is not None and _wall(self._now()) >= self.next_run

    def run(self) -> object:
        assert self.job_func is not None, "do() sets the job before the scheduler runs it"
        result = self.job_func()
        self.last_run = _wall(self._now())
        self._schedule_next_run()
        return result

    def _schedule_next_run(self) -> None:
        """The first `at` after now: later today, or tomorrow when it has passed."""
        assert self.at_time is not None, "a daily job has a time"
        current = _wall(self._now())
        upcoming = datetime.combine(current.date(), self.at_time)
        while upcoming <= current:
            upcoming += timedelta(days=self.interval)
        self.next_run = upcoming


def _wall(moment: datetime) -> datetime:
    """Naive wall-clock time; an aware datetime keeps the wall clock of its own zone."""
    return moment.replace(tzinfo=None)


def _missed_today(at: time, last: date | None, current: datetime) -> bool:
    # `>=`: at exactly `at` the schedule has already moved on to tomorrow.
    return current.time() >= at and last != current.date()


RUN_LINE = "Run van"  # how every run's one line starts


def _run_logged(job: Job, now: Callable[[], datetime], why: str) -> None:
    """Run the job once and log one line about it; never let a failure escape."""
    started, clock = _wall(now()), systime.monotonic()
    said = ""
    try:
        result = job()
    except Exception as err:  # the loop must survive any failure of one run
        logger.error("%s %s (%s) mislukt na %s: %s", RUN_LINE,
                     started.strftime("%d-%m-%Y %H:%M"), why,
                     _seconds(systime.monotonic() - clock), _one_line(err))
        return
    except SystemExit as exit_:  # a job that wraps the CLI may exit with its status
        result = exit_.code if isinstance(exit_.code, int) else 1
    status, said = (result, "") if isinstance(result, int) else result
    level = logging.ERROR if status else logging.INFO
    logger.log(level, "%s %s (%s) klaar met exitstatus %s na %s%s", RUN_LINE,
               started.strftime("%d-%m-%Y %H:%M"), why, status or 0,
               _seconds(systime.monotonic() - clock), f": {said}" if said else ".")


def _seconds(seconds: float) -> str:
    """'1,2 s': a Dutch decimal comma."""
    return f"{seconds:.1f} s".replace(".", ",")


def _one_line(err: BaseException) -> str:
    """`ValueError: bad row (jobs.py:88)`: type, message and where it was raised."""
    message = " ".join(str(err).split()) or "(geen melding)"
    frames = traceback.extract_tb(err.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {message}{where}"


def _nap(daily: schedule.Job, now: Callable[[], datetime], sleep: Callable[[float], None],
         stop: threading.Event) -> None:
    """Sleep until the next run, at most MAX_NAP, so a stop is noticed promptly."""
    if stop.is_set() or daily.next_run is None:
        return
    idle = (daily.next_run - _wall(now())).total_seconds()
    sleep(min(MAX_NAP, max(idle, 0.0)))


@contextmanager
def _stopping_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """Let SIGTERM/SIGINT set `stop`; yields the signals received, restores handlers after.

    Python runs signal handlers in the main thread only, so elsewhere nothing is installed
    and `stop` is the only way to end the loop. The handler only records and sets the
    event: logging from inside a handler could re-enter a handler that is mid-write.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and signal.SIGINT in received:
            raise KeyboardInterrupt  # Ctrl-C twice: the person at the terminal means now
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
