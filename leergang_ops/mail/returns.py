"""Mails that come back later: match each bounce to our mail and apply the rules (contract §3).

`mail/bounces.py` reads the mailbox and says what each message is; this module decides what
a bounce changes, with the same rules as a live refusal (mail/replies), as if the server had
refused the message after DATA:
- an address status (5.1.x, 5.2.1): the mail is `bounced`, no more mails to that address
  until it changes or `retry` clears it;
- a full mailbox (4.2.2, 5.2.2) or a relay that gave up on a passing fault (4.x.x): the
  mail is due again (a full mailbox three runs at most, then as an address);
- policy or content (5.7.x, DMARC, spam) or our account: reported, blamed on nobody.
A bounce that matches none of our mails but names a participant is kept as "mogelijk" for
the summary and changes nothing: the mailbox is shared, and a colleague's own bounced mail
must never be blamed on us.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from leergang_ops.mail.replies import MAILBOX_FULL_RUNS, About, Reply, Step, judge
from leergang_ops.model import normalise_email

if TYPE_CHECKING:
    from leergang_ops.ledger import Ledger
    from leergang_ops.mail.bounces import Failure, ImapConfig, Report, Scan

log = logging.getLogger(__name__)


@dataclass
class Returned:
    """What reading the bounce mailbox found, for the run's output and exit status."""

    bounced: int = 0  # mails whose address is wrong for good
    again: int = 0  # mails due again (full mailbox, a relay that gave up)
    reported: int = 0  # blamed on nobody (policy, content) or not ours ("mogelijk")
    unreachable: bool = False
    problems: list[str] = field(default_factory=list)


def read_returns(config: ImapConfig, ledger: Ledger, known: Mapping[str, str],
                 today: date) -> Returned:
    """Read the bounce mailbox once (new messages only) and record what the bounces mean.

    `known` maps the participants' and contact person's addresses (normalised) to their
    names: only a bounce naming one of them is worth a "mogelijk". An unreachable mailbox is
    reported and the run goes on; a wrong login or folder raises InputError.
    """
    from leergang_ops.mail.bounces import MailboxUnreachable, check_connection, read_bounces

    returned = Returned()
    first = ledger.first_mail()
    try:
        if first is None:
            # Nothing was sent yet, so nothing can come back; but a wrong login or folder
            # must stop the run before its first mail, not after.
            check_connection(config)
            return returned
        scan = read_bounces(config, first.date(), ledger.seen_messages(config.folder))
    except MailboxUnreachable as err:
        returned.unreachable = True
        returned.problems.append(f"de postbus voor teruggekomen mail is niet bereikbaar "
                                 f"({err}); deze run leest geen bounces")
        return returned
    apply_scan(scan, ledger, known, today, returned)
    ledger.record_seen(config.folder, scan.processed)
    return returned


def apply_scan(scan: Scan, ledger: Ledger, known: Mapping[str, str], today: date,
               returned: Returned) -> None:
    """Record what each bounce of one scan means."""
    for scanned in scan.bounces:
        for failure in scanned.report.failures:
            _apply(scanned.report, failure, ledger, known, today, returned)


def bounce_verdict(failure: Failure) -> About:
    """A bounce's status judged as a refusal of the message after DATA."""
    status = failure.status or "5.0.0"
    code = {"4": 450, "5": 550}.get(status[0], 550)
    return judge(Reply(code, f"{status} {failure.diagnostic}", Step.MESSAGE)).about


def _apply(report: Report, failure: Failure, ledger: Ledger, known: Mapping[str, str],
           today: date, returned: Returned) -> None:
    address = normalise_email(failure.recipient)
    arrived = report.date or datetime.combine(today, datetime.min.time()).astimezone()
    key = ledger.find_sent(report.message_id or "", report.mail_kind or "", address, arrived)
    about = bounce_verdict(failure)
    words = _words(failure)
    if key is None:
        if address in known:
            ledger.report_bounce(address, report.mail_kind or "", failure.status, "mogelijk",
                                 failure.diagnostic, arrived, matched=False)
            returned.reported += 1
        return
    kind = key[0]
    if about is About.ADDRESS:
        reason = f"mail kwam terug op {arrived:%d-%m-%Y}: {words}"
        ledger.mark_bounced(key, arrived, permanent=True, reason=reason)
        returned.bounced += 1
        returned.problems.append(f"{kind} aan {address} kwam terug: {words}")
    elif about in (About.MAILBOX_FULL, About.MOMENT):
        _again(ledger, key, address, about, arrived, today, words, returned)
    else:  # content, policy or our account: nobody's address is to blame
        ledger.report_bounce(address, kind, failure.status, str(about), failure.diagnostic,
                             arrived, matched=True)
        returned.reported += 1
        returned.problems.append(f"{kind} aan {address} kwam terug om de inhoud of het beleid "
                                 f"van de ontvangende server ({words}); dit ligt niet aan "
                                 "het adres")


def _again(ledger: Ledger, key: tuple[str, str, str], address: str, about: About,
           arrived: datetime, today: date, words: str, returned: Returned) -> None:
    """A bounce for a passing reason: the mail is due again (a full mailbox, three times)."""
    if about is About.MAILBOX_FULL:
        runs = ledger.count_full_mailbox(key[1], today.isoformat())
        if runs >= MAILBOX_FULL_RUNS:
            ledger.mark_bounced(key, arrived, permanent=True,
                                reason=f"mail kwam terug op {arrived:%d-%m-%Y}: {words} "
                                       f"(mailbox {runs} keer vol)")
            returned.bounced += 1
            returned.problems.append(f"{key[0]} aan {address} kwam terug: mailbox vol, nu "
                                     "voor de derde keer")
            return
    ledger.mark_bounced(key, arrived, permanent=False,
                        reason=f"mail kwam terug op {arrived:%d-%m-%Y}: {words}")
    returned.again += 1
    returned.problems.append(f"{key[0]} aan {address} kwam terug ({words}); wordt opnieuw "
                             "verstuurd")


def _words(failure: Failure) -> str:
    """The status and the server's words, the status once (the words often repeat it)."""
    if failure.status and failure.status in failure.diagnostic:
        return failure.diagnostic
    return " ".join(part for part in (failure.status, failure.diagnostic) if part)


def known_addresses(names: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The addresses a "mogelijk" bounce may name: normalised address → name."""
    return {normalise_email(address): name for address, name in names if address}
