"""The README's two commands are what a new user and CI run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shell_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_readme_opens_with_the_try_and_test_commands() -> None:
    try_it, test_it = _shell_blocks()[:2]
    assert "leergang-ops run" in try_it and "workbooks/leergang-wijkaanpak.xlsx" in try_it
    assert "pytest" in test_it and "ruff" in test_it and "mypy" in test_it


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    test_it = _shell_blocks()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_it in ci_lines


def test_example_workbook_named_in_the_readme_exists() -> None:
    assert (ROOT / "workbooks" / "leergang-wijkaanpak.xlsx").is_file()
