"""What a refusal is about (contract §3): one test per rule, with the real servers' replies.

The replies are the servers' own words (tests/data/server_replies.md says where each comes
from: our Postfix transcripts, Microsoft's, Google's and Exim's documentation).
"""

from __future__ import annotations

import pytest

from leergang_ops.mail.replies import (
    RULES,
    About,
    ContentStreak,
    RefusalStreak,
    Reply,
    Step,
    enhanced_status,
    judge,
    signature,
)


def about(step: Step, reply: str) -> About:
    """Judge a reply line as the server sends it (`550 5.1.1 …`, `550-5.1.1 …`)."""
    return judge(Reply(int(reply[:3]), reply[4:], step)).about


# --- the address -----------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    "550 5.1.1 <jan.jansen@example.nl>: Recipient address rejected: User unknown in local "
    "recipient table",  # Postfix
    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    "550-5.1.1 The email account that you tried to reach does not exist.",  # Gmail
    "550 5.2.1 <jan.jansen@example.nl>: mailbox disabled",
])
def test_an_address_status_at_rcpt_is_about_the_address(reply: str) -> None:
    assert about(Step.RCPT, reply) is About.ADDRESS


def test_a_plain_550_naming_the_mailbox_at_rcpt_is_about_the_address() -> None:
    assert about(Step.RCPT, "550 Unrouteable address") is About.ADDRESS  # Exim


def test_an_address_status_after_the_message_is_about_the_address() -> None:
    assert about(Step.MESSAGE, "550 5.1.1 User unknown") is About.ADDRESS


# --- the sender, the account, the policy ---------------------------------------------------

@pytest.mark.parametrize(("step", "reply"), [
    (Step.RCPT, "554 5.7.1 <jan.jansen@example.nl>: Relay access denied"),  # Postfix
    (Step.RCPT, "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied"),
    (Step.RCPT, "553 5.7.1 <leergang@example.org>: Sender address rejected: not owned by "
                "user leergang"),  # Postfix, smtpd_delay_reject=yes: at RCPT
    (Step.MAIL, "553 5.7.1 <leergang@example.org>: Sender address rejected: not owned by "
                "user leergang"),
    (Step.MAIL, "530 5.7.57 Client not authenticated to send mail."),  # Microsoft 365
    (Step.MAIL, "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
    (Step.MAIL, "530-5.7.0 Authentication Required."),  # Gmail
    (Step.RCPT, "550 relay not permitted"),  # Exim
    (Step.RCPT, "454 4.7.1 <jan.jansen@example.nl>: Relay access denied"),  # Postfix default
    (Step.RCPT, "553 5.7.1 <leergang@example.org>: Sender address rejected: not logged in"),
    (Step.MAIL, "530 5.7.0 Must issue a STARTTLS command first"),  # Postfix
    (Step.AUTH, "535 5.7.8 Error: authentication failed: authentication failure"),
    (Step.EHLO, "554 5.7.1 Access denied"),
    (Step.CONNECT, "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked"),
])
def test_a_refusal_of_sender_account_or_relay_is_configuration(step: Step, reply: str) -> None:
    assert about(step, reply) is About.CONFIGURATION


def test_send_as_denied_after_the_message_is_configuration_not_content() -> None:
    """Microsoft 365 checks the "send as" right only once it has the message."""
    reply = ("554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSend"
             "AsDenied; Failed to process message due to a permanent exception")
    assert about(Step.MESSAGE, reply) is About.CONFIGURATION


def test_a_5xx_greeting_or_ehlo_is_never_about_the_recipient() -> None:
    for step in (Step.CONNECT, Step.EHLO):
        assert about(step, "550 5.1.1 whatever it says") is About.CONFIGURATION


# --- the content ---------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    "550 5.7.1 Message rejected as spam",  # Postfix header_checks
    "550-5.7.1 Our system has detected that this message is likely unsolicited mail.",  # Gmail
    "550 5.7.26 Unauthenticated email from example.org is not accepted due to domain's DMARC "
    "policy",
    "552 5.3.4 Message size exceeds fixed maximum message size",
    "554 5.6.0 Message content rejected",
])
def test_a_refusal_after_the_message_is_about_its_content(reply: str) -> None:
    assert about(Step.MESSAGE, reply) is About.CONTENT


# --- full mailboxes and the moment ------------------------------------------------------

@pytest.mark.parametrize("reply", ["552 5.2.2 Mailbox full",
                                   "452 4.2.2 The email account that you tried to reach is "
                                   "over quota", "552-5.2.2 The recipient's inbox is out of "
                                   "storage space."])
def test_a_full_mailbox_is_its_own_case(reply: str) -> None:
    assert about(Step.RCPT, reply) is About.MAILBOX_FULL
    assert about(Step.MESSAGE, reply) is About.MAILBOX_FULL


@pytest.mark.parametrize(("step", "reply"), [
    (Step.CONNECT, "421 4.3.2 Service not available"),
    (Step.MESSAGE, "451 4.7.500 Server busy. Please try again later from [127.0.0.1]."),
    (Step.MESSAGE, "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
    (Step.MAIL, "421-4.7.0 Try again later, closing connection."),
    (Step.AUTH, "454 4.7.0 Temporary authentication failure"),
])
def test_a_4xx_is_the_moment(step: Step, reply: str) -> None:
    assert about(step, reply) is About.MOMENT


def test_no_reply_at_all_is_the_moment() -> None:
    assert judge(Reply(None, "SMTPServerDisconnected", Step.MESSAGE)).about is About.MOMENT


# --- reading the reply -----------------------------------------------------------------

def test_the_enhanced_status_code_is_read_from_the_text_and_must_fit_the_code() -> None:
    assert enhanced_status("5.1.1 <a@example.nl>: User unknown", 550) == "5.1.1"
    assert enhanced_status("4.2.2 over quota", 550) == ""
    assert enhanced_status("Relay access denied (see 1.2.3.4)", 554) == ""
    assert enhanced_status("-5.1.1 The email account", 550) == "5.1.1"


def test_the_last_rule_matches_every_reply() -> None:
    assert RULES[-1].applies(Reply(599, "anything", Step.MESSAGE))


# --- the breakers --------------------------------------------------------------------------

def test_the_same_refusal_for_three_recipients_in_a_row_is_about_us() -> None:
    streak = RefusalStreak()
    verdicts = [judge(Reply(550, f"<d{n}@example.nl>: Recipient address rejected: Access "
                                 "denied", Step.RCPT)) for n in range(3)]
    assert all(v.breaker_prone for v in verdicts)
    results = [streak.refused(v, f"d{n}@example.nl", f"d{n}@example.nl")
               for n, v in enumerate(verdicts)]
    assert results == [False, False, True]


def test_a_delivery_in_between_breaks_the_streak() -> None:
    streak = RefusalStreak()
    verdict = judge(Reply(550, "Access denied", Step.RCPT))
    streak.refused(verdict, "a", "a")
    streak.refused(verdict, "b", "b")
    streak.broken()
    assert not streak.refused(verdict, "c", "c")


def test_the_same_recipient_twice_is_not_three_recipients() -> None:
    streak = RefusalStreak()
    verdict = judge(Reply(550, "Access denied", Step.RCPT))
    assert [streak.refused(verdict, r, r) for r in ("a", "a", "b")] == [False, False, False]


def test_address_codes_are_never_taken_for_a_streak() -> None:
    verdict = judge(Reply(550, "5.1.1 <a@example.nl>: User unknown", Step.RCPT))
    assert verdict.about is About.ADDRESS and not verdict.breaker_prone


def test_a_signature_leaves_the_address_out() -> None:
    one = signature(Reply(550, "<a@example.nl>: rejected", Step.RCPT), "a@example.nl")
    two = signature(Reply(550, "<B@example.nl>: rejected", Step.RCPT), "b@example.nl")
    assert one == two


def test_three_content_refusals_of_one_kind_make_that_kind_wait() -> None:
    streak = ContentStreak()
    assert [streak.refused("herinnering") for _ in range(3)] == [False, False, True]
    assert not streak.refused("bevestiging")
