"""Everything the tool prints for people is Dutch, said once, counted right (contract §4).

Help, usage and argparse's own errors, the `--today`/`--at` errors, the error count, the
dry run, the outbox line, and the refusal of a scheduled run that has nowhere to send.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from leergang_ops.cli import _parser, main
from leergang_ops.dutch_argparse import FOR_DEVELOPERS, PLURALS, WORDS
from tests.conftest import person

Build = Callable[..., Path]
COMMANDS = ("init", "validate", "flag", "run", "summary", "preview", "schedule", "retry",
            "import")
# Words that give an English text away; none of them is Dutch.
ENGLISH = re.compile(r"\b(the|and|of the|write|send|print|show|default|usage|options|"
                     r"error|invalid|required|expected|argument[s]?)\b", re.IGNORECASE)


def argparse_messages() -> list[str]:
    """Every literal message argparse passes through gettext, in this Python's argparse."""
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(argparse))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("_", "ngettext") and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.append(node.args[0].value)
    return found


def test_every_argparse_message_a_user_can_meet_has_a_dutch_text() -> None:
    messages = argparse_messages()
    assert len(messages) > 20  # the scan found argparse's messages at all
    untranslated = [m for m in messages
                    if m not in WORDS and m not in PLURALS and m not in FOR_DEVELOPERS]
    assert untranslated == []


def help_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_the_help_of_every_command_is_dutch(command: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, command)
    assert text.startswith(f"gebruik: leergang-ops {command}")
    assert "opties:" in text and "WERKMAP" in text
    # Identifiers stay English (command and option names, environment variables): look
    # only at the words around them.
    words = re.sub(r"(--?[\w-]+|LEERGANG_\w+|leergang-ops \w+)", "", text)
    assert ENGLISH.findall(words) == []


def test_the_programs_help_lists_every_command_in_dutch(
        capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    assert text.startswith("gebruik: leergang-ops")
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s+\S", text, re.MULTILINE), command
    assert "Exitstatus" in text
    assert ENGLISH.findall(re.sub(r"(--?[\w-]+)", "", text)) == []


def test_every_subcommand_parser_is_dutch_too() -> None:
    subcommands = next(a for a in _parser()._actions
                       if isinstance(a, argparse._SubParsersAction))
    assert sorted(subcommands.choices) == sorted(COMMANDS)
    for name, parser in subcommands.choices.items():
        assert parser._optionals.title == "opties", name


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(list(args))
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_a_date_in_the_wrong_form_is_explained_in_plain_dutch(
        capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "run", "leergang.xlsx", "--today", "04-11-2021")
    assert "--today: '04-11-2021' is geen datum; gebruik JJJJ-MM-DD" in err
    assert "fromisoformat" not in err and "invalid" not in err
    assert err.startswith("gebruik: leergang-ops run")


def test_a_time_in_the_wrong_form_is_explained_in_plain_dutch(
        capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "schedule", "leergang.xlsx", "--at", "7 uur")
    assert "--at: '7 uur' is geen tijd; gebruik UU:MM" in err


@pytest.mark.parametrize(("args", "said"), [
    ((), "dit ontbreekt nog: OPDRACHT"),
    (("versturen",), "'versturen' bestaat niet (kies uit 'init', 'validate'"),
    (("run",), "dit ontbreekt nog: WERKMAP"),
    (("run", "a.xlsx", "--morgen"), "onbekend: --morgen"),
    (("run", "a.xlsx", "--today"), "--today: hier hoort één waarde achter"),
])
def test_argparse_errors_are_dutch(args: tuple[str, ...], said: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, *args)
    assert said in err
    assert "leergang-ops" in err and ": fout: " in err
    assert ENGLISH.findall(re.sub(r"(--?[\w-]+)", "", err)) == []


def test_the_default_time_of_schedule_is_the_readmes() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    args = _parser().parse_args(["schedule", "leergang.xlsx"])
    assert f"{args.at:%H:%M}" == "07:15"
    assert "07:15" in readme


# --- errors: one count, each once ------------------------------------------------------

def test_several_errors_are_counted_once_and_each_listed_once(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)],
                         settings={"Leergang": None, "Contactpersoon e-mail": None})
    assert main(["run", str(path), "--today", "2021-10-05"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"leergang-ops: {path.name}: 2 fouten; er is niets geschreven of verstuurd."
    listed = err[1:]
    assert len(listed) == 2 and len(set(listed)) == 2
    assert any("'Leergang'" in line for line in listed)
    assert any("'Contactpersoon e-mail'" in line for line in listed)
    assert not any("fout(en)" in line or "en nog" in line for line in err)
    assert not (path.parent / "outbox").exists()


def test_a_single_error_is_said_once_with_where_it_is(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)], settings={"Leergang": None})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"leergang-ops: {path.name}: Instellingen, ")
    assert "'Leergang'" in err[0]


def test_an_empty_workbook_is_said_once(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "leeg.xlsx"
    openpyxl.Workbook().save(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("De werkmap is leeg") == 1


# --- what a run says ---------------------------------------------------------------------

def test_a_dry_run_lists_the_mails_in_dutch(make_workbook: Build,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1), person(2, "Zeist")])
    assert main(["run", str(path), "--today", "2021-10-05", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["soort", "ontvanger", "bijeenkomst"]
    assert out[-1] == ("3 mails klaar om te versturen; proefrun: er is niets geschreven of "
                       "verstuurd.")


def test_a_dry_run_after_the_course_says_it_is_over(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)])
    assert main(["run", str(path), "--today", "2026-12-07", "--dry-run"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("De leergang is voorbij (de laatste bijeenkomst was op ")
    assert "proefrun" in out.lower() and "due" not in out


def test_one_mail_is_one_mail(make_workbook: Build,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)])
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0  # confirmation and overview
    assert capsys.readouterr().out.startswith("2 mails in de map ")
    assert main(["run", str(path), "--today", "2021-11-08"]) == 0  # reminder, week's overview
    capsys.readouterr()
    assert main(["run", str(path), "--today", "2021-11-10"]) == 0  # the 1-day reminder only
    out = capsys.readouterr().out
    assert re.match(r"1 mail in de map .* gezet", out), out


def test_the_outbox_line_says_why_nothing_was_sent_when_outbox_is_chosen(
        make_workbook: Build, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_workbook(registrations=[person(1)])
    monkeypatch.setenv("LEERGANG_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("LEERGANG_OUTBOX", str(tmp_path / "proef"))
    assert main(["run", str(path), "--today", "2021-10-05"]) == 0
    out = capsys.readouterr().out
    assert "(niet verzonden: LEERGANG_OUTBOX is ingesteld)" in out
    assert "geen SMTP-server" not in out


# --- a scheduled run with nowhere to send -----------------------------------------------

def test_a_scheduled_run_without_mail_server_or_outbox_refuses_with_exit_2(
        make_workbook: Build, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_workbook(registrations=[person(1)])
    before = path.read_bytes()
    assert main(["run", str(path), "--scheduled", "--today", "2021-10-05"]) == 2
    err = capsys.readouterr().err
    assert "LEERGANG_SMTP_HOST" in err and "LEERGANG_OUTBOX" in err
    assert not (path.parent / "outbox").exists()
    assert path.read_bytes() == before
    assert not list(path.parent.glob("*.sqlite"))  # not even a ledger


def test_a_scheduled_run_with_an_outbox_chosen_on_purpose_runs(
        make_workbook: Build, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_workbook(registrations=[person(1)])
    monkeypatch.setenv("LEERGANG_OUTBOX", str(tmp_path / "uit"))
    assert main(["run", str(path), "--scheduled", "--today", "2021-10-05"]) == 0
    assert len(list((tmp_path / "uit").glob("*.eml"))) == 2


def test_a_scheduled_dry_run_needs_no_mail_server(make_workbook: Build) -> None:
    path = make_workbook(registrations=[person(1)])
    assert main(["run", str(path), "--scheduled", "--dry-run", "--today", "2021-10-05"]) == 0
