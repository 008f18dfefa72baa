"""argparse in Dutch: help, usage and the errors it prints itself (contract §4).

argparse takes its words from gettext (`argparse._`, `argparse.ngettext`), which would
need a compiled catalogue and a process-wide language; instead the parser swaps in a
dictionary while it builds itself, formats help and parses. Messages argparse raises only
for a wrongly defined parser (never for what a user types) stay English on purpose: they
are for the developer. `tests/test_cli_dutch.py` fails when a Python release adds a
message that is in neither table.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

WORDS: dict[str, str] = {
    "usage: ": "gebruik: ",
    "positional arguments": "argumenten",
    "options": "opties",
    "optional arguments": "opties",  # Python before 3.10
    "show this help message and exit": "toon deze hulp en stop",
    "%(prog)s: error: %(message)s\n": "%(prog)s: fout: %(message)s\n",
    "argument %(argument_name)s: %(message)s": "%(argument_name)s: %(message)s",
    "the following arguments are required: %s": "dit ontbreekt nog: %s",
    "unrecognized arguments: %s": "onbekend: %s",
    "ambiguous option: %(option)s could match %(matches)s":
        "%(option)s is niet eenduidig: bedoelt u %(matches)s?",
    "invalid choice: %(value)r (choose from %(choices)s)":
        "%(value)r bestaat niet (kies uit %(choices)s)",
    "invalid %(type)s value: %(value)r": "%(value)r is geen geldige waarde",
    "expected one argument": "hier hoort één waarde achter",
    "expected at most one argument": "hier hoort hoogstens één waarde achter",
    "expected at least one argument": "hier hoort minstens één waarde achter",
    "one of the arguments %s is required": "een van deze is nodig: %s",
    "not allowed with argument %s": "mag niet samen met %s",
    "ignored explicit argument %r": "%r hoort hier niet bij",
    "unexpected option string: %s": "onverwachte optie: %s",
    "can't open '%(filename)s': %(error)s": "kan '%(filename)s' niet openen: %(error)s",
    "unknown parser %(parser_name)r (choices: %(choices)s)":
        "%(parser_name)r bestaat niet (kies uit %(choices)s)",
}

PLURALS: dict[str, tuple[str, str]] = {
    "expected %s argument": ("hier hoort %s waarde achter", "hier horen %s waarden achter"),
}

# Raised only while a parser is defined wrongly: for the developer, in English.
FOR_DEVELOPERS = frozenset({
    ".__call__() not defined",
    "'required' is an invalid argument for positionals",
    "mutually exclusive arguments must be optional",
    "%r is not callable",
    "cannot merge actions - two groups are named %r",
    "invalid option string %(option)r: must start with a character %(prefix_chars)r",
    "dest= is required for options like %r",
    "invalid conflict_resolution value: %r",
    "cannot have multiple subparser arguments",
    "conflicting subparser: %s",
    "conflicting subparser alias: %s",
    "argument \"-\" with mode %r",
    "conflicting option string: %s",
})


def _gettext(message: str) -> str:
    return WORDS.get(message, message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    if singular in PLURALS:
        one, many = PLURALS[singular]
        return one if n == 1 else many
    return singular if n == 1 else plural


@contextlib.contextmanager
def in_dutch() -> Iterator[None]:
    """argparse's own words in Dutch for the duration of the block."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = _gettext, _ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]


class DutchArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose help, usage and errors are Dutch; subcommands inherit it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with in_dutch():
            super().__init__(*args, **kwargs)

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        with in_dutch():  # "unrecognized arguments" is worded here, not in parse_known_args
            return super().parse_args(args, namespace)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        with in_dutch():
            return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        with in_dutch():
            return super().format_usage()

    def format_help(self) -> str:
        with in_dutch():
            return super().format_help()

    def error(self, message: str) -> NoReturn:
        with in_dutch():
            super().error(message)
