"""The official list of Dutch municipalities and matching the names people type.

The list (leergang_ops/data/gemeenten.csv) carries its source and reference date in its
header. People write `Den Haag` for `'s-Gravenhage` and `Bergen` for `Bergen (NH.)`; those
are matched, not flagged. A name that matches nothing gets the closest official name as a
suggestion.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources

_PUNCTUATION = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'",
                              "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-"})

# Spellings in common use that the CBS list writes differently.
_VARIANTS = {
    "den haag": "'s-Gravenhage",
    "the hague": "'s-Gravenhage",
    "s-gravenhage": "'s-Gravenhage",
    "den bosch": "'s-Hertogenbosch",
    "s-hertogenbosch": "'s-Hertogenbosch",
    "hertogenbosch": "'s-Hertogenbosch",
}


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    province: str


def normalise(name: str) -> str:
    """Compare names after trimming, case-folding and normalising apostrophes and hyphens."""
    text = unicodedata.normalize("NFKC", name).translate(_PUNCTUATION).casefold()
    text = re.sub(r"\s*-\s*", "-", text)
    return re.sub(r"\s+", " ", text).strip()


def _lookup_key(name: str) -> str:
    """A looser key for the official list: no `gemeente` prefix, dots or brackets."""
    text = normalise(name)
    text = re.sub(r"^gemeente\s+", "", text)
    text = re.sub(r"[().]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@functools.cache
def official() -> tuple[Municipality, ...]:
    """The municipalities in force on the list's reference date."""
    source = resources.files("leergang_ops").joinpath("data/gemeenten.csv")
    with source.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return tuple(
        Municipality(row["gemeentecode"], row["gemeentenaam"], row["provincienaam"])
        for row in csv.DictReader(lines, delimiter=";")
    )


def _base_name(name: str) -> str:
    return re.sub(r"\s*\(.*\)$", "", name)


@functools.cache
def _ambiguous() -> frozenset[str]:
    """Base names shared by several municipalities: `Bergen` is in Noord-Holland and Limburg."""
    keys = [_lookup_key(_base_name(m.name)) for m in official() if "(" in m.name]
    return frozenset(k for k in keys if keys.count(k) > 1)


@functools.cache
def _index() -> dict[str, Municipality]:
    by_name = {m.name: m for m in official()}
    index: dict[str, Municipality] = {}
    for m in official():
        index[_lookup_key(m.name)] = m
        # `Hengelo (O.)` is plain `Hengelo` to everybody; for an ambiguous base name the
        # first listed is returned, which is fine for "is this a municipality?".
        index.setdefault(_lookup_key(_base_name(m.name)), m)
    for variant, name in _VARIANTS.items():
        index[_lookup_key(variant)] = by_name[name]
    return index


@functools.lru_cache(maxsize=8192)
def lookup(name: str) -> Municipality | None:
    """The official municipality a name means, if any."""
    return _index().get(_lookup_key(name))


def display_name(name: str) -> str:
    """The official spelling when the name is a municipality, else the name as typed."""
    found = lookup(name)
    return found.name if found else name.strip()


@functools.lru_cache(maxsize=4096)
def suggest(name: str) -> str | None:
    """The official name closest to a misspelt one (`Utreht` → `Utrecht`)."""
    index = _index()
    close = difflib.get_close_matches(_lookup_key(name), list(index), n=1, cutoff=0.75)
    return index[close[0]].name if close else None


@functools.lru_cache(maxsize=8192)
def identity(name: str) -> str:
    """What makes two registrations the same municipality: its CBS code, else its name."""
    found = lookup(name)
    if found is None or _lookup_key(name) in _ambiguous():
        return normalise(name)
    return f"gm{found.code}"
