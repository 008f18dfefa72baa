"""The `leergang-ops` command: parses arguments, reads the clock, maps errors to exit statuses.

Exit statuses (contract §4): 0 done; 1 `validate` found errors or some mails could not be
delivered; 2 bad input or configuration (nothing written, nothing sent); 3 the workbook is in
use (nothing written).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from leergang_ops import __version__
from leergang_ops.errors import InputError, LeergangError
from leergang_ops.model import Finding, Level, MailIntent, Status

if TYPE_CHECKING:
    from leergang_ops.jobs import Checked

ZONE = ZoneInfo("Europe/Amsterdam")
EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_IN_USE = 0, 1, 2, 3
log = logging.getLogger("leergang_ops")
WORKBOOK_HELP = "the organisers' workbook (.xlsx)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status (without `argv`: as the program itself)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        with _without_cycle_collector(args.command != "schedule"):
            status: int = args.handler(args)
        return status
    except LeergangError as error:
        _report_error(error)
        return error.exit_status
    except (OSError, sqlite3.Error) as error:
        # The last resort of the one place that maps errors: a fault of the machine that an
        # edge did not name itself is still one Dutch sentence and exit 2, not a traceback.
        from leergang_ops.environment import fault

        found = fault(error)
        if found is None:
            raise
        _report_error(found)
        return found.exit_status
    except KeyboardInterrupt:
        print("leergang-ops: interrupted", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # the process exits next
            _spare_the_collection_at_exit()


def _spare_the_collection_at_exit() -> None:
    """Freeze what is alive: the interpreter's last cycle collection then skips it.

    A run ends with some 100,000 objects alive, all freed when the process exits anyway;
    the collection at exit scanned them for cycles and found nothing (~40 ms of a run).
    """
    gc.freeze()


@contextlib.contextmanager
def _without_cycle_collector(one_shot: bool) -> Iterator[None]:
    """Pause Python's cycle collector for one command.

    A command on a large workbook makes millions of small objects that all live until it
    ends; the collector rescans them again and again and frees nothing (0.6 s of a
    50,000-row `flag`). Reference counting still frees everything else. The long-running
    `schedule` keeps the collector; each run it starts pauses it only for that run.
    """
    if not one_shot or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leergang-ops",
        description="Run a course's administration from the organisers' Excel workbook.",
        epilog="Exit status: 0 done, 1 findings or undelivered mail, 2 bad input, "
               "3 workbook in use.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: what is done, -vv: debugging detail) to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser("init", help="write a new organiser workbook")
    init.add_argument("path", type=Path, help=WORKBOOK_HELP)
    init.set_defaults(handler=_init)

    validate = commands.add_parser("validate", help="report what is wrong in the workbook")
    validate.add_argument("path", type=Path, help=WORKBOOK_HELP)
    validate.add_argument("--json", action="store_true", help="print the findings as JSON")
    validate.add_argument("--connect", action="store_true",
                          help="also log in to the mail server and the bounce mailbox "
                               "(nothing is sent or written)")
    _add_today(validate)
    validate.set_defaults(handler=_validate)

    flag = commands.add_parser("flag", help="write Status and Melding into the workbook")
    flag.add_argument("path", type=Path, help=WORKBOOK_HELP)
    flag.set_defaults(handler=_flag)

    run = commands.add_parser("run", help="the daily job: flag, then send what is due")
    run.add_argument("path", type=Path, help=WORKBOOK_HELP)
    _add_today(run)
    run.add_argument("--dry-run", action="store_true",
                     help="print the mails that are due; write and send nothing")
    run.add_argument("--new-ledger", action="store_true",
                     help="start a new send ledger on purpose: what the workbook shows as "
                          "sent and every mail due before today count as sent (refused when "
                          "a ledger exists)")
    run.add_argument("--scheduled", action="store_true",
                     help="a scheduled run (cron, systemd, schedule): when it stops on "
                          "something the organisers can fix, the contact person gets one "
                          "'storing' mail a day")
    run.set_defaults(handler=_run)

    summary = commands.add_parser("summary", help="write (and mail) the summary workbook")
    summary.add_argument("path", type=Path, help=WORKBOOK_HELP)
    summary.add_argument("--out", type=Path, help="where to write it (default: beside)")
    summary.add_argument("--send", action="store_true", help="mail it to the contact person")
    _add_today(summary)
    summary.set_defaults(handler=_summary)

    preview = commands.add_parser("preview", help="render every due mail to files")
    preview.add_argument("path", type=Path, help=WORKBOOK_HELP)
    preview.add_argument("--out", type=Path, required=True, help="folder for .eml and .html")
    _add_today(preview)
    preview.set_defaults(handler=_preview)

    schedule = commands.add_parser("schedule", help="long-running: run every day at a time")
    schedule.add_argument("path", type=Path, help=WORKBOOK_HELP)
    schedule.add_argument("--at", type=_clock_time, default=time(7, 0),
                          help="local time HH:MM (default 07:00)")
    schedule.set_defaults(handler=_schedule)

    retry = commands.add_parser("retry", help="clear a refusal or bounce for an address")
    retry.add_argument("path", type=Path, help=WORKBOOK_HELP)
    retry.add_argument("email", help="the address whose mails are due again")
    retry.set_defaults(handler=_retry)

    importer = commands.add_parser("import", help="add registrations from a form export")
    importer.add_argument("path", type=Path, help=WORKBOOK_HELP)
    importer.add_argument("export", type=Path, help="the form tool's .xlsx or .csv export")
    importer.add_argument("--map", action="append", default=[], metavar="HEADER=COLUMN",
                          help='map an export column, e.g. --map "Welke gemeente?=Gemeente"')
    importer.add_argument("--dry-run", action="store_true", help="show what would be added")
    importer.set_defaults(handler=_import)
    return parser


def _add_today(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--today", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="act as of this date (default: today)")


def _clock_time(text: str) -> time:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HH:MM, got {text!r}") from None


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DutchLevels("leergang-ops: %(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # GNU Mailman's bounce recogniser tells of every detector it tries, at INFO.
    logging.getLogger("flufl.bounce").setLevel(max(level, logging.WARNING))


class _DutchLevels(logging.Formatter):
    """Log lines read `leergang-ops: waarschuwing: …`: what people read is Dutch."""

    WORDS: ClassVar[dict[str, str]] = {"DEBUG": "debug", "INFO": "info",
                                       "WARNING": "waarschuwing", "ERROR": "fout",
                                       "CRITICAL": "fout"}

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = self.WORDS.get(record.levelname, record.levelname.lower())
        return super().format(record)


def _clock(args: argparse.Namespace) -> tuple[date, datetime]:
    """Today and now in Europe/Amsterdam; `--today` moves the date, keeps the time of day."""
    now = datetime.now(ZONE)
    today: date | None = getattr(args, "today", None)
    if today is None:
        return now.date(), now
    return today, datetime.combine(today, now.timetz())


def _moment(args: argparse.Namespace, now: datetime) -> datetime | None:
    """When the job acts, for what has started: now, or the start of the `--today` day."""
    return None if getattr(args, "today", None) is not None else now.replace(tzinfo=None)


def _report_error(error: LeergangError) -> None:
    message = str(error)
    print(f"leergang-ops: {message}", file=sys.stderr)
    for finding in getattr(error, "findings", ()):
        where = finding.location()
        if where:
            print(f"  {where}: {finding.message}", file=sys.stderr)
        elif finding.message != message:  # a finding that only repeats the error adds nothing
            print(f"  {finding.message}", file=sys.stderr)


def _init(args: argparse.Namespace) -> int:
    from leergang_ops.workbook.template import write_template

    write_template(args.path)
    print(f"Nieuwe werkmap geschreven: {args.path}")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import check

    today, now = _clock(args)
    try:
        checked = check(args.path, today, os.environ, mails=False,
                        moment=_moment(args, now))
    except InputError as error:
        if not args.json:
            raise
        _print_json(error.findings or [_bare_finding(str(error))])
        return EXIT_INPUT
    if args.json:
        _print_json(checked.findings)
    else:
        print(_report(args.path, checked))
    status = EXIT_FINDINGS if checked.has_errors else EXIT_OK
    if args.connect:
        status = max(status, _check_connections())
    return status


def _check_connections() -> int:
    """Print one line per connection; the exit status the worst one calls for."""
    from leergang_ops.jobs import check_connections

    print("\nVerbindingen")
    checks = check_connections(os.environ)
    for check in checks:
        print(f"  {'✓' if check.works else '✗'} {check.line}")
    return max((c.status for c in checks), default=EXIT_OK)


def _bare_finding(message: str) -> Finding:
    return Finding(Level.ERROR, "unreadable-workbook", None, None, None, message)


def _print_json(findings: Sequence[Finding]) -> None:
    # One finding a line: readable, and json's C encoder (unlike indent=) keeps a learning
    # network's tens of thousands of findings fast.
    encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one per finding
    lines = ",\n  ".join(encode(f.as_dict()) for f in findings)
    print(f"[\n  {lines}\n]" if findings else "[]")


_LEVEL_HEADINGS = {Level.ERROR: "Fouten", Level.WARNING: "Waarschuwingen", Level.INFO: "Ter info"}


def _report(path: Path, checked: Checked) -> str:
    """The readable validate report: findings grouped by level, then an overview line."""
    lines = [f"{checked.course.settings.leergang} — {path.name}"]
    for level, heading in _LEVEL_HEADINGS.items():
        group = [f for f in checked.findings if f.level == level]
        if group:
            lines.append(f"\n{heading} ({len(group)})")
            lines.extend(f"  {f.location() or '-'}: {f.message}" for f in group)
    if not checked.findings:
        lines.append("\nGeen fouten of waarschuwingen.")
    allocation, settings = checked.allocation, checked.course.settings
    counts = ", ".join(f"{allocation.count(s)} {s}" for s in Status)
    lines.append(f"\nOverzicht: gemeenten {len(allocation.admitted)}/{settings.max_gemeenten}"
                 f" (wachtlijst {len(allocation.waiting)}); {counts}")
    return "\n".join(lines)


def _flag(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import flag

    allocation = flag(args.path, os.environ)
    counts = ", ".join(f"{allocation.count(s)} {s}" for s in Status)
    print(f"{args.path.name}: {counts}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import run

    today, now = _clock(args)
    progress = _progress_bar if sys.stderr.isatty() and not args.dry_run else None
    try:
        report = run(args.path, today, now, os.environ, dry_run=args.dry_run,
                     progress=progress, clock=lambda: datetime.now(ZONE),
                     new_ledger=args.new_ledger, moment=_moment(args, now))
    except LeergangError as error:
        if args.scheduled and not args.dry_run:
            from leergang_ops.jobs import notify_fault

            said = notify_fault(args.path, error, now, os.environ)
            if said:
                print(f"leergang-ops: {said}", file=sys.stderr)
        raise
    if args.dry_run:
        _print_plan(report.planned)
        return EXIT_OK
    if progress:
        print(file=sys.stderr)
    for problem in report.problems:
        print(f"leergang-ops: {problem}", file=sys.stderr)
    print(report.line())
    return EXIT_FINDINGS if report.delivery_failed else EXIT_OK


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
          file=sys.stderr, flush=True)


def _print_plan(intents: Sequence[MailIntent]) -> None:
    rows = [("soort", "ontvanger", "bijeenkomst")]
    for intent in intents:
        meetings = ", ".join(str(nr) for nr in intent.meetings) or intent.scope
        rows.append((str(intent.kind), intent.address, meetings))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    print(f"{len(rows) - 1} mails due; dry run: nothing written or sent.")


def _summary(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import summary

    today, now = _clock(args)
    target = summary(args.path, args.out, today, now, os.environ, send=args.send)
    print(f"Overzicht geschreven: {target}" + (" en verstuurd" if args.send else ""))
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import preview

    today, now = _clock(args)
    report = preview(args.path, args.out, today, now, os.environ, moment=_moment(args, now))
    print(report.line(args.out))
    return EXIT_OK


def _schedule(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import last_run_day
    from leergang_ops.scheduler import run_daily

    def job() -> int:
        return main(["run", str(args.path), "--scheduled"])

    return run_daily(job, args.at, last_run=lambda: last_run_day(args.path, os.environ),
                     now=lambda: datetime.now(ZONE).replace(tzinfo=None))


def _retry(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import retry

    cleared = retry(args.path, args.email, os.environ)
    print(f"Weigering voor {args.email} gewist: {cleared} mail(s) staan weer klaar voor de "
          "volgende run.")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from leergang_ops.importer import parse_mapping
    from leergang_ops.jobs import import_registrations

    report = import_registrations(args.path, args.export, parse_mapping(args.map), os.environ,
                                  dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return EXIT_OK
