"""Names as people type them: the loose comparison that finds a sheet by its name."""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'",
                              "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "_": " "})


def loose_key(text: object) -> str:
    """Compare names case-insensitively, ignoring surrounding and doubled spaces."""
    value = unicodedata.normalize("NFKC", str(text or "")).translate(_APOSTROPHES)
    return re.sub(r"\s+", " ", value).strip().casefold()
