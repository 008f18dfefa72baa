"""calcChain.xml: formulas the write replaced taken out of the calculation chain."""

from __future__ import annotations

import re
import zipfile

from leergang_ops.xlsx.package import _Package
from leergang_ops.xlsx.tags import _parse_attrs, _set_str_attr


def _prune_calc_chain(data: bytes, sheet_id: str, refs: list[str]) -> bytes | None:
    """calcChain.xml without the cells whose formula was replaced; None when none are left."""
    text = data.decode("utf-8")
    gone = set(refs)
    entries = list(re.finditer(r"<([A-Za-z_][\w.-]*:)?c\b[^>]*/>", text))
    pieces: list[str] = []
    pos = 0
    sheet = None
    carry: str | None = None  # the sheet id a removed entry declared, for the next one
    kept = 0
    for match in entries:
        tag = match.group(0)
        attrs = dict(_parse_attrs(tag))
        declared = attrs.get("i")
        sheet = declared or sheet or "1"  # an entry without i belongs to the previous sheet
        if sheet == sheet_id and attrs.get("r") in gone:
            pieces.append(text[pos: match.start()])
            pos = match.end()
            carry = carry or declared
            continue
        if carry and declared is None:
            pieces.append(text[pos: match.start()])
            pieces.append(_set_str_attr(tag, "i", carry))
            pos = match.end()
        carry = None
        kept += 1
    if kept == 0:
        return None
    pieces.append(text[pos:])
    return "".join(pieces).encode("utf-8")


def _without_calc_chain(zin: zipfile.ZipFile, package: _Package) -> dict[str, bytes | None]:
    """Drop an emptied calcChain: the part, its relationship and its content type."""
    assert package.calc_chain is not None
    changed: dict[str, bytes | None] = {package.calc_chain: None}
    rels = package.workbook_rels
    if rels:
        text = zin.read(rels).decode("utf-8")
        text = re.sub(r"<([A-Za-z_][\w.-]*:)?Relationship\b[^>]*calcChain[^>]*/>", "", text)
        changed[rels] = text.encode("utf-8")
    types = package.names.get("[content_types].xml")
    if types:
        text = zin.read(types).decode("utf-8")
        text = re.sub(r"<([A-Za-z_][\w.-]*:)?Override\b[^>]*calcChain[^>]*/>", "", text)
        changed[types] = text.encode("utf-8")
    return changed
