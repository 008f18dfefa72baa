"""Cell references and ranges: A1 ↔ (row, column)."""

from __future__ import annotations

import functools
import re


@functools.cache
def column_letters(col: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@functools.cache
def _column_number(letters: bytes) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + char - 64
    return number


def _parse_ref(ref: str) -> tuple[int, int]:
    """'K7' → (7, 11)."""
    match = re.fullmatch(r"\$?([A-Za-z]{1,3})\$?(\d+)", ref.strip())
    if not match:
        raise ValueError(f"not a cell reference: {ref!r}")
    return int(match.group(2)), _column_number(match.group(1).encode())


def _parse_range(ref: str) -> tuple[int, int, int, int]:
    """'A1:C5' → (1, 1, 5, 3); a single cell is a one-cell range."""
    first, _, last = ref.partition(":")
    r1, c1 = _parse_ref(first)
    r2, c2 = _parse_ref(last) if last else (r1, c1)
    return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)


def _range_text(box: tuple[int, int, int, int]) -> str:
    r1, c1, r2, c2 = box
    return f"{column_letters(c1)}{r1}:{column_letters(c2)}{r2}"


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
