"""The `leergang-ops` command: parses arguments, reads the clock, maps errors to exit statuses.

Exit statuses (contract §4): 0 done; 1 `validate` found errors or some mails could not be
delivered; 2 bad input or configuration (nothing written, nothing sent); 3 the workbook is in
use (nothing written).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from leergang_ops import __version__
from leergang_ops.errors import InputError, LeergangError
from leergang_ops.model import Finding, Level, Status

if TYPE_CHECKING:
    from leergang_ops.dutch_argparse import DutchArgumentParser
    from leergang_ops.jobs import Checked, RunReport, ToolWrites

ZONE = ZoneInfo("Europe/Amsterdam")
EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_IN_USE = 0, 1, 2, 3
log = logging.getLogger("leergang_ops")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status (without `argv`: as the program itself)."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        with _without_cycle_collector(args.command != "schedule"):
            status: int = _on_workbook(args)
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
        print("leergang-ops: onderbroken", file=sys.stderr)
        return 130
    finally:
        if argv is None:  # the process exits next
            _spare_the_collection_at_exit()


# Commands that write the workbook: on a server, their working copy goes back afterwards.
REMOTE_WRITES = frozenset({"flag", "run", "import"})


def _on_workbook(args: argparse.Namespace) -> int:
    """Run the command; a workbook on a server is fetched into its working copy first and
    put back after (remote.py), so every command works on a file as it always did."""
    if args.command == "run" and args.scheduled and not args.dry_run:
        from leergang_ops.mail.transport import require_destination

        # Before anything, a remote workbook's fetch included: no storing mail can go either.
        require_destination(os.environ)
    target = getattr(args, "path", None)
    if not isinstance(target, str) or args.command == "schedule":
        status: int = args.handler(args)
        return status
    from leergang_ops.remote import remote_workbook

    if args.command == "init":
        return _init_remote(target)
    writes = args.command in REMOTE_WRITES and not getattr(args, "dry_run", False)
    cells = _import_cells(args) if args.command == "import" else None
    with remote_workbook(target, os.environ, writes=writes, reapply=_reapply(args),
                         cells=cells) as local:
        args.url, args.path = target, local
        status = args.handler(args)
    return status


def _init_remote(target: str) -> int:
    """`init` on an address: the new workbook uploaded to a WebDAV server, never over a file."""
    import tempfile

    from leergang_ops.store.graph import is_graph_address
    from leergang_ops.store.webdav import WebDav
    from leergang_ops.workbook.template import write_template

    if is_graph_address(target, os.environ):
        raise InputError(f"{target}: 'init' maakt geen werkmap in Microsoft 365; maak hem op "
                         "schijf en zet hem in SharePoint of OneDrive, en geef dan de deellink.")
    with tempfile.TemporaryDirectory(prefix="leergang-init-") as folder:
        local = Path(folder) / WebDav.name_of(target)
        write_template(local)
        with WebDav(target, os.environ) as server:
            server.create(local.read_bytes())
    print(f"Nieuwe werkmap op de server gezet: {target}")
    return EXIT_OK


def _import_cells(args: argparse.Namespace) -> Callable[[Path], ToolWrites]:
    """For Microsoft 365: the cells `import` adds, computed on the server's version."""
    from leergang_ops import jobs
    from leergang_ops.importer import parse_mapping

    return lambda path: jobs.import_writes(path, args.export, parse_mapping(args.map))


def _reapply(args: argparse.Namespace) -> Callable[[Path], None]:
    """What to do again on an organiser's newer version before it goes back (remote.py)."""
    from leergang_ops import jobs
    from leergang_ops.importer import parse_mapping

    def import_again(path: Path) -> None:
        jobs.import_registrations(path, args.export, parse_mapping(args.map), os.environ)

    def flag_again(path: Path) -> None:
        jobs.flag(path, os.environ)

    return import_again if args.command == "import" else flag_again


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
    from leergang_ops.dutch_argparse import DutchArgumentParser

    parser = DutchArgumentParser(
        prog="leergang-ops",
        description="De administratie van een leergang, vanuit de Excel-werkmap van de "
                    "organisatoren.",
        epilog="Exitstatus: 0 klaar, 1 fouten gevonden of mail niet afgeleverd, "
               "2 fout in invoer, instellingen of omgeving, 3 werkmap in gebruik.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="toon het versienummer en stop")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="vertel meer op stderr (-v: wat er gebeurt, -vv: details voor "
                             "ontwikkelaars)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="OPDRACHT")

    init = _command(commands, "init", "schrijf een nieuwe, lege werkmap")
    init.set_defaults(handler=_init)

    validate = _command(commands, "validate", "meld wat er niet klopt in de werkmap")
    validate.add_argument("--json", action="store_true", help="de bevindingen als JSON")
    validate.add_argument("--connect", action="store_true",
                          help="log ook in op de mailserver en de bouncemailbox (er wordt "
                               "niets verstuurd of geschreven)")
    _add_today(validate)
    validate.set_defaults(handler=_validate)

    flag = _command(commands, "flag", "schrijf Status en Melding in de werkmap")
    flag.set_defaults(handler=_flag)

    run = _command(commands, "run", "de dagelijkse taak: markeren, dan versturen wat klaarstaat")
    _add_today(run)
    run.add_argument("--dry-run", action="store_true",
                     help="toon de mails die klaarstaan; schrijf en verstuur niets")
    run.add_argument("--new-ledger", action="store_true",
                     help="begin bewust een nieuw verzendlogboek: wat de werkmap als "
                          "verstuurd toont en elke mail die vóór vandaag klaarstond, telt als "
                          "verstuurd (geweigerd als er al een logboek is)")
    run.add_argument("--scheduled", action="store_true",
                     help="een geplande run (cron, systemd, schedule): stopt die op iets wat "
                          "de organisatoren kunnen verhelpen, dan krijgt de contactpersoon "
                          "één storingsmail per dag; zonder mailserver en zonder "
                          "LEERGANG_OUTBOX weigert hij")
    run.set_defaults(handler=_run)

    summary = _command(commands, "summary", "schrijf het overzicht (en mail het)")
    summary.add_argument("--out", type=Path, metavar="BESTAND",
                         help="waar het overzicht komt (standaard: naast de werkmap)")
    summary.add_argument("--send", action="store_true", help="mail het naar de contactpersoon")
    _add_today(summary)
    summary.set_defaults(handler=_summary)

    preview = _command(commands, "preview", "zet elke mail die klaarstaat als bestand neer")
    preview.add_argument("--out", type=Path, required=True, metavar="MAP",
                         help="map voor de .eml- en .html-bestanden")
    _add_today(preview)
    preview.set_defaults(handler=_preview)

    schedule = _command(commands, "schedule", "blijft draaien: elke dag een run op een vaste tijd")
    schedule.add_argument("--at", type=_clock_time, default=DEFAULT_RUN_TIME, metavar="UU:MM",
                          help=f"tijd van de dagelijkse run, Nederlandse tijd (standaard "
                               f"{DEFAULT_RUN_TIME:%H:%M})")
    schedule.set_defaults(handler=_schedule)

    retry = _command(commands, "retry", "wis een weigering of bounce voor een adres")
    retry.add_argument("email", metavar="ADRES",
                       help="het adres waarvan de mails weer klaar moeten staan")
    retry.set_defaults(handler=_retry)

    importer = _command(commands, "import", "voeg aanmeldingen toe uit een formulierexport")
    importer.add_argument("export", type=Path, metavar="EXPORT",
                          help="de .xlsx- of .csv-export van het formulier")
    importer.add_argument("--map", action="append", default=[], metavar="KOP=KOLOM",
                          help='koppel een kolom van de export, bijv. '
                               '--map "Welke gemeente?=Gemeente"')
    importer.add_argument("--dry-run", action="store_true",
                          help="toon wat er zou worden toegevoegd; schrijf niets")
    importer.set_defaults(handler=_import)
    return parser


DEFAULT_RUN_TIME = time(7, 15)  # the README's time: after the night, before the office


def _command(commands: argparse._SubParsersAction[DutchArgumentParser], name: str,
             summary: str) -> argparse.ArgumentParser:
    """A subcommand taking the workbook as its first argument."""
    command = commands.add_parser(name, help=summary, description=summary[0].upper()
                                  + summary[1:] + ".")
    command.add_argument("path", type=_workbook_target, metavar="WERKMAP",
                         help="de werkmap van de organisatoren: een .xlsx-bestand, of het "
                              "https-adres van het bestand op een WebDAV-server (Nextcloud, "
                              "SURFdrive)")
    return command


def _workbook_target(text: str) -> Path | str:
    """A file (Path) or a web address (str: Path would fold its `//`)."""
    from leergang_ops.store import is_remote

    return text if is_remote(text) else Path(text)


def _add_today(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--today", type=_date, metavar="JJJJ-MM-DD",
                        help="doe alsof het deze dag is (standaard: vandaag)")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is geen datum; gebruik JJJJ-MM-DD, bijvoorbeeld 2021-11-04") from None


def _clock_time(text: str) -> time:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is geen tijd; gebruik UU:MM, bijvoorbeeld 07:15") from None


def _configure_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DutchLevels("leergang-ops: %(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # GNU Mailman's bounce recogniser tells of every detector it tries, at INFO.
    logging.getLogger("flufl.bounce").setLevel(max(level, logging.WARNING))
    # httpx logs every request at INFO, in English; our own lines say what happened
    # (-vv, the developers' detail, shows them).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)


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
    """The error's one line, then each finding where it is, unless the line said it all."""
    message = str(error)
    print(f"leergang-ops: {message}", file=sys.stderr)
    for finding in getattr(error, "findings", ()):
        where = finding.location()
        line = f"{where}: {finding.message}" if where else finding.message
        if line not in message:  # a finding that only repeats the error adds nothing
            print(f"  {line}", file=sys.stderr)


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
        status = max(status, _check_connections(getattr(args, "url", None)))
    return status


def _check_connections(workbook_url: str | None = None) -> int:
    """Print one line per connection; the exit status the worst one calls for."""
    from leergang_ops.jobs import check_connections

    print("\nVerbindingen")
    checks = check_connections(os.environ, workbook_url)
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
        _print_plan(report)
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


def _print_plan(report: RunReport) -> None:
    """`run --dry-run`: one row per mail that is due, or why none is."""
    from leergang_ops.jobs import course_over_line, mails

    if report.over is not None:
        print(course_over_line(report.over) + " Proefrun: er is niets geschreven of verstuurd.")
        return
    rows = [("soort", "ontvanger", "bijeenkomst")]
    for intent in report.planned:
        meetings = ", ".join(str(nr) for nr in intent.meetings) or intent.scope
        rows.append((str(intent.kind), intent.address, meetings))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    print(f"{mails(len(rows) - 1)} klaar om te versturen; proefrun: er is niets geschreven of "
          "verstuurd.")


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
    from leergang_ops.mail.transport import require_destination
    from leergang_ops.scheduler import run_daily

    require_destination(os.environ)  # refused now, not quietly every morning
    _say_schedule_lines()

    def job() -> tuple[int, str]:
        """One scheduled run; its totals line goes into the scheduler's line for the run."""
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            status = main(["run", str(args.path), "--scheduled"])
        return status, " ".join(said.getvalue().split())

    def last_run() -> date | None:
        if isinstance(args.path, str):  # on a server: the working copy's ledger
            from leergang_ops.remote import working_copy

            local = working_copy(args.path, os.environ)
            return last_run_day(local, os.environ) if local.exists() else None
        return last_run_day(args.path, os.environ)

    return run_daily(job, args.at, last_run=last_run,
                     now=lambda: datetime.now(ZONE).replace(tzinfo=None),
                     label=str(args.path), zone=f"tijdzone {ZONE.key}")


def _say_schedule_lines() -> None:
    """The scheduler's own lines (start, each run, stop) on stdout, whatever `-v` says."""
    lines = logging.getLogger("leergang_ops.scheduler")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("leergang-ops: %(message)s"))
    lines.addHandler(handler)
    lines.setLevel(min(lines.getEffectiveLevel(), logging.INFO))
    lines.propagate = False  # not a second time through the -v handler on stderr


def _retry(args: argparse.Namespace) -> int:
    from leergang_ops.jobs import mails, retry

    cleared = retry(args.path, args.email, os.environ)
    due = "staat" if cleared == 1 else "staan"
    print(f"Weigering voor {args.email} gewist: {mails(cleared)} {due} weer klaar voor de "
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
