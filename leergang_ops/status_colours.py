"""One palette for the statuses: the organisers' workbook and the summary show the same.

Excel's own cell styles where they fit — Goed (green), Neutraal (yellow), Ongeldig (red) —
so organisers recognise them; `overboekt` gets orange (Excel's Accent 2, 40%), distinct
from the waiting list's yellow: an overbooked person needs a decision by the organisers,
a waiting municipality only needs a place to free up.
"""

from __future__ import annotations

from typing import NamedTuple

from leergang_ops.model import Status


class Colours(NamedTuple):
    fill: str  # RRGGBB
    font: str  # RRGGBB


STATUS_COLOURS: dict[Status, Colours] = {
    Status.BEVESTIGD: Colours("C6EFCE", "006100"),
    Status.OVERBOEKT: Colours("F8CBAD", "843C0C"),
    Status.WACHTLIJST: Colours("FFEB9C", "9C5700"),
    Status.ONGELDIG: Colours("FFC7CE", "9C0006"),
    Status.AFGEMELD: Colours("EDEDED", "595959"),
}
