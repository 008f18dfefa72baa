"""A scheduled run that stops on something organisers can fix tells the contact person (§3).

One `storing` mail a day, to the contact person as last read from the workbook, saying what
and where to fix it — if the mail server works. A run by hand only prints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from leergang_ops.cli import main
from tests.conftest import person, write_workbook
from tests.smtp_server import Received, SmtpServer

Build = Callable[..., Path]
DAY = ["--today", "2021-10-05"]


def storing_mails(server: SmtpServer) -> list[Received]:
    return [r for r in server.messages if r.message["X-Leergang-Mail"] == "storing"]


@pytest.fixture
def broken(make_workbook: Build, smtp_env: SmtpServer) -> Path:
    """A course that ran once; then an organiser typed a word where a number belongs."""
    path = make_workbook(registrations=[person(1), person(2, "Zeist")])
    assert main(["run", str(path), *DAY]) == 0
    write_workbook(path, settings={"Max gemeenten": "twintig"},
                   registrations=[person(1), person(2, "Zeist")])
    return path


def test_a_scheduled_run_that_stops_on_the_workbook_mails_the_contact_person_once_a_day(
        broken: Path, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(broken), "--scheduled", *DAY]) == 2
    assert "storingsmail verstuurd aan contact@example.org" in capsys.readouterr().err
    [mail] = storing_mails(smtp_env)
    assert mail.rcpt_tos == ("contact@example.org",)
    body = mail.message.get_body(("plain",)).get_content()
    assert "Max gemeenten" in body and "Instellingen" in body
    assert "Traceback" not in body
    assert main(["run", str(broken), "--scheduled", *DAY]) == 2
    assert "kreeg vandaag al een storingsmail" in capsys.readouterr().err
    assert len(storing_mails(smtp_env)) == 1
    assert main(["run", str(broken), "--scheduled", "--today", "2021-10-06"]) == 2
    assert len(storing_mails(smtp_env)) == 2  # the next day, once more


def test_a_run_by_hand_only_prints(broken: Path, smtp_env: SmtpServer) -> None:
    assert main(["run", str(broken), *DAY]) == 2
    assert storing_mails(smtp_env) == []


def test_a_fault_of_the_operator_is_not_the_organisers_to_fix(
        broken: Path, smtp_env: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEERGANG_SMTP_SECURITY", "bogus")  # the operator's setting
    assert main(["run", str(broken), "--scheduled", *DAY]) == 2
    assert storing_mails(smtp_env) == []


def test_no_storing_mail_before_the_course_ever_ran(make_workbook: Build, smtp_env: SmtpServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(settings={"Max gemeenten": "twintig"}, registrations=[person(1)])
    assert main(["run", str(path), "--scheduled", *DAY]) == 2
    assert "nog geen verzendlogboek" in capsys.readouterr().err
    assert smtp_env.messages == []


def test_a_refused_sender_is_the_organisers_to_fix_but_the_server_refuses_that_mail_too(
        make_workbook: Build, smtp_env: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)])
    assert main(["run", str(path), *DAY]) == 0
    smtp_env.refuse("MAIL", "553 5.7.1 <leergang@example.org>: Sender address rejected: not "
                            "owned by user leergang")
    write_workbook(path, registrations=[person(1), person(2, "Zeist")])
    assert main(["run", str(path), "--scheduled", *DAY]) == 2
    err = capsys.readouterr().err
    assert "Afzender e-mail" in err and "geen storingsmail verstuurd" in err
    assert storing_mails(smtp_env) == []
