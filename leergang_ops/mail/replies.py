"""What a mail server's refusal is about: the one place that decides (contract §3).

A refusal is judged by three things together: the reply code, the enhanced status code of
RFC 3463 (`5.1.1`, when the server gives one) and the step of the SMTP dialogue it came at.
The first digit alone is not enough: `554 5.7.1 Relay access denied` at RCPT is about our
account, not about the recipient, and `550 5.7.1 Message rejected as spam` after DATA is
about the message. Bounces that come back later (mail/bounces.py) go through the same rules,
as if refused after DATA.

The rules, first match wins (`RULES` is this table; the README repeats it):

| step                      | reply                                   | about          |
|---------------------------|-----------------------------------------|----------------|
| any                       | 4.2.2 or 5.2.2 (mailbox full)           | mailbox full   |
| any                       | 4xx "Relay access denied" (Postfix)     | configuration  |
| any                       | 4xx, or no reply (connection lost)      | the moment     |
| any                       | 530/535/538, 5.7.0, 5.7.3, 5.7.8,       | configuration  |
|                           | 5.7.57, 5.7.60, 5.7.139, "SendAsDenied" |                |
| connect, EHLO, STARTTLS,  | any 5xx                                 | configuration  |
| AUTH, MAIL FROM, DATA cmd |                                         |                |
| RCPT                      | 5.1.x, 5.2.1                            | address        |
| RCPT                      | 5.7.x                                   | configuration  |
| RCPT                      | "relay" / "not permitted" in the text   | configuration  |
| RCPT                      | any other 5xx                           | address (*)    |
| after the message         | 5.1.x, 5.2.1                            | address        |
| after the message         | any other 5xx                           | content        |

(*) breaker-prone: the same refusal for three different recipients in a row is about us,
not about them (`RefusalStreak`). Address codes (5.1.x, 5.2.1) never are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    """Where in the SMTP dialogue a reply came."""

    CONNECT = "connect"  # the greeting, or the connection itself
    EHLO = "EHLO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"  # the DATA command itself, before any of the message went out
    MESSAGE = "na de inhoud"  # the reply to the message's content (or a bounce later)


class About(StrEnum):
    """What a refusal is about, which decides what happens next."""

    ADDRESS = "address"  # permanent for that address
    CONFIGURATION = "configuration"  # our account, sender or relay: stop, blame nobody
    CONTENT = "content"  # this message: report it, retry at the next run
    MAILBOX_FULL = "mailbox-full"  # temporary for three runs, then permanent
    MOMENT = "moment"  # temporary: retry with backoff, then at the next run


# Steps before the server knows any recipient: a 5xx there cannot be about one.
_BEFORE_RECIPIENT = frozenset({Step.CONNECT, Step.EHLO, Step.STARTTLS, Step.AUTH, Step.MAIL,
                               Step.DATA})
# Codes that mean "your login or sending rights", wherever a server happens to send them:
# Microsoft 365 answers a missing "send as" right only after the message (5.7.60,
# SendAsDeniedException) and Gmail asks for a login at MAIL FROM (530 5.7.0).
_ACCOUNT_CODES = frozenset({530, 535, 538})
_ACCOUNT_STATUSES = frozenset({"5.7.0", "5.7.3", "5.7.8", "5.7.57", "5.7.60", "5.7.139"})
_ACCOUNT_WORDS = ("sendasdenied", "not authenticated", "authentication required")
_RELAY_WORDS = ("relay", "not permitted")

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


@dataclass(frozen=True)
class Reply:
    """One reply as the rules read it: the code, its enhanced status code, the words."""

    code: int | None  # None: no reply at all (connection lost, timeout)
    text: str
    step: Step

    @property
    def status(self) -> str:
        """The RFC 3463 enhanced status code (`5.1.1`), or '' when the server gave none."""
        return enhanced_status(self.text, self.code)

    def __str__(self) -> str:
        return f"{self.code} {self.text}" if self.code else self.text


def enhanced_status(text: str, code: int | None = None) -> str:
    """The first `class.subject.detail` code in `text` whose class matches `code`'s digit."""
    for match in _STATUS.finditer(text):
        if code is None or str(code)[0] == match.group(1):
            return ".".join(match.groups())
    return ""


@dataclass(frozen=True)
class Rule:
    """One row of the table: a test on the reply and what a match means."""

    name: str
    applies: Callable[[Reply], bool]
    about: About


def _full(r: Reply) -> bool:
    return r.status in ("4.2.2", "5.2.2")


def _temporary(r: Reply) -> bool:
    return r.code is None or 400 <= r.code < 500


def _account(r: Reply) -> bool:
    lowered = r.text.lower()
    return (r.code in _ACCOUNT_CODES or r.status in _ACCOUNT_STATUSES
            or any(word in lowered for word in _ACCOUNT_WORDS))


def _address_status(r: Reply) -> bool:
    return is_address_status(r.status)


def is_address_status(status: str) -> bool:
    """5.1.x (the mailbox does not exist) and 5.2.1 (disabled): always about the address."""
    return status.startswith("5.1.") or status == "5.2.1"


def _policy_status(r: Reply) -> bool:
    return r.status.startswith("5.7.")


def _relay_words(r: Reply) -> bool:
    lowered = r.text.lower()
    return any(word in lowered for word in _RELAY_WORDS)


def _at(*steps: Step) -> Callable[[Reply], bool]:
    return lambda r: r.step in steps


def _both(*tests: Callable[[Reply], bool]) -> Callable[[Reply], bool]:
    return lambda r: all(test(r) for test in tests)


def _relay_deferred(r: Reply) -> bool:
    return r.code is not None and 400 <= r.code < 500 and "relay access denied" in r.text.lower()


RULES: tuple[Rule, ...] = (
    Rule("mailbox full (4.2.2, 5.2.2)", _full, About.MAILBOX_FULL),
    # Postfix's default `defer_unauth_destination` answers a relay it refuses with a 4xx,
    # so that a mistake in its own configuration loses no mail; for us it is no less final.
    Rule("relay refused, as a 4xx (Postfix's default 454 4.7.1)", _relay_deferred,
         About.CONFIGURATION),
    Rule("4xx or no reply", _temporary, About.MOMENT),
    Rule("login or sending rights (530, 535, 5.7.57, 5.7.60, …)", _account,
         About.CONFIGURATION),
    Rule("5xx before any recipient", lambda r: r.step in _BEFORE_RECIPIENT,
         About.CONFIGURATION),
    Rule("address status at RCPT (5.1.x, 5.2.1)", _both(_at(Step.RCPT), _address_status),
         About.ADDRESS),
    Rule("policy at RCPT (5.7.x)", _both(_at(Step.RCPT), _policy_status), About.CONFIGURATION),
    Rule("relay refused at RCPT", _both(_at(Step.RCPT), _relay_words), About.CONFIGURATION),
    Rule("other 5xx at RCPT", _at(Step.RCPT), About.ADDRESS),
    Rule("address status after the message", _address_status, About.ADDRESS),
    Rule("other 5xx after the message", lambda r: True, About.CONTENT),
)


@dataclass(frozen=True)
class Verdict:
    """A reply and what it is about, with the rule that decided."""

    reply: Reply
    about: About
    rule: str

    @property
    def breaker_prone(self) -> bool:
        """May a streak of these turn out to be about us (not an address code)?"""
        return (self.about is About.ADDRESS and self.reply.step is Step.RCPT
                and not is_address_status(self.reply.status))


def judge(reply: Reply) -> Verdict:
    """Apply the rules to one reply; the last rule matches anything."""
    for rule in RULES:
        if rule.applies(reply):
            return Verdict(reply, rule.about, rule.name)
    raise AssertionError("the last rule matches every reply")  # pragma: no cover


def signature(reply: Reply, address: str) -> tuple[int | None, str]:
    """The reply with the recipient left out: what three recipients in a row must share."""
    text = reply.text
    if address:
        text = re.sub(re.escape(address), "<>", text, flags=re.IGNORECASE)
    text = re.sub(r"<[^<>@\s]*@[^<>\s]*>", "<>", text)  # another spelling of an address
    return reply.code, " ".join(text.split()).lower()


class RefusalStreak:
    """The breaker: the same refusal for three different recipients in a row is about us.

    Feed it every outcome of a batch in order. A breaker-prone refusal is held back
    (`hold`) until the streak is decided: a delivered mail or another reply ends it and the
    held refusals stand as address refusals; the third alike turns them all into one
    configuration problem.
    """

    LIMIT = 3

    def __init__(self) -> None:
        self._signature: tuple[int | None, str] | None = None
        self._recipients: list[str] = []

    def refused(self, verdict: Verdict, recipient: str, address: str) -> bool:
        """Note a breaker-prone refusal; True when it completes a streak of LIMIT."""
        key = signature(verdict.reply, address)
        if key != self._signature:
            self._signature, self._recipients = key, []
        if recipient not in self._recipients:
            self._recipients.append(recipient)
        return len(self._recipients) >= self.LIMIT

    def broken(self) -> None:
        """Another outcome (a delivery, another reply): the streak ends."""
        self._signature, self._recipients = None, []


class ContentStreak:
    """Content refused three times in a row for one kind of mail: that kind waits."""

    LIMIT = 3

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def refused(self, kind: str) -> bool:
        """Note a content refusal of `kind`; True when that kind should wait for the next run."""
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return self._counts[kind] >= self.LIMIT

    def delivered(self, kind: str) -> None:
        self._counts.pop(kind, None)


SENDER_HINT_START = "controleer of het account mag verzenden als het adres bij"
MAILBOX_FULL_RUNS = 3  # a full mailbox becomes permanent on the third run that finds it full


def configuration_hint(verdict: Verdict) -> str:
    """What the operator should check, in Dutch, for a configuration refusal."""
    reply, lowered = verdict.reply, verdict.reply.text.lower()
    if reply.step is Step.AUTH or reply.code in (535, 538) or reply.status in (
            "5.7.3", "5.7.8", "5.7.139"):
        return ("controleer het account en het wachtwoord (of app-wachtwoord) in "
                "LEERGANG_SMTP_USER en LEERGANG_SMTP_PASSWORD")
    if "sendas" in lowered or "not owned" in lowered or "sender" in lowered \
            or reply.status == "5.7.60" or reply.step is Step.MAIL:
        return (f"{SENDER_HINT_START} 'Afzender e-mail' op het werkblad Instellingen (bij "
                "Microsoft 365: het recht 'Verzenden als')")
    if "relay" in lowered or reply.code == 530 or "not authenticated" in lowered \
            or "client host" in lowered:
        return ("de server laat deze machine niet doorsturen: stel een login in "
                "(LEERGANG_SMTP_USER en LEERGANG_SMTP_PASSWORD) of vraag de beheerder van de "
                "mailserver om relay-toestemming")
    return ("controleer de instellingen van de mailserver (LEERGANG_SMTP_*) en het adres bij "
            "'Afzender e-mail'")
