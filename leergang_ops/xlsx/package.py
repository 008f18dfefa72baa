"""The package: the sheet located through workbook.xml and its relationships."""

from __future__ import annotations

import contextlib
import posixpath
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lxml import etree

from leergang_ops.xlsx.errors import DamagedWorkbook, NotAWorkbook, SheetNotFound, WorkbookMissing
from leergang_ops.xlsx.names import loose_key

_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass
class _Package:
    """Where things are in this workbook's zip, found through its relationships."""

    names: dict[str, str]  # casefolded part name → zip member name
    workbook: str
    workbook_rels: str | None
    sheet: str
    sheet_name: str
    sheet_id: str
    date1904: bool
    styles: str | None
    calc_chain: str | None
    tables: list[str]


@dataclass(frozen=True)
class _Rel:
    rel_id: str
    rel_type: str
    part: str


def _parse_xml(data: bytes, part: str) -> etree._Element:
    try:
        return etree.fromstring(data, _SAFE_PARSER)
    except etree.XMLSyntaxError as err:
        raise DamagedWorkbook(
            f"Onderdeel {part} van de werkmap is geen geldige XML: {err}") from err


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _rels_name(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def _rels(zin: zipfile.ZipFile, names: dict[str, str], part: str) -> list[_Rel]:
    """The internal relationships of a part, targets resolved to part names."""
    member = names.get(_rels_name(part).casefold())
    if member is None:
        return []
    rels = []
    for el in _parse_xml(zin.read(member), member):
        if not isinstance(el.tag, str) or _local(el.tag) != "Relationship":
            continue
        if el.get("TargetMode") == "External":
            continue
        target = unquote(el.get("Target", ""))
        if target.startswith("/"):
            resolved = target.lstrip("/")
        else:
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(part), target))
        rels.append(_Rel(el.get("Id", ""), el.get("Type", ""), resolved))
    return rels


def _member(names: dict[str, str], part: str) -> str | None:
    return names.get(part.casefold())


def _locate(zin: zipfile.ZipFile, sheet_name: str) -> _Package:
    """Find the worksheet part by the sheet's name, through workbook.xml and its rels."""
    names = {name.casefold(): name for name in zin.namelist()}
    office = next((r.part for r in _rels(zin, names, "") if r.rel_type.endswith(
        "/officeDocument")), "xl/workbook.xml")
    workbook = _member(names, office)
    if workbook is None:
        raise NotAWorkbook("Dit bestand is geen Excel-werkmap (xl/workbook.xml ontbreekt).")
    root = _parse_xml(zin.read(workbook), workbook)
    sheets = [(el.get("name", ""), el.get("sheetId", ""), _rel_id(el)) for el in root.iter()
              if isinstance(el.tag, str) and _local(el.tag) == "sheet"]
    pr = next((el for el in root.iter() if isinstance(el.tag, str)
               and _local(el.tag) == "workbookPr"), None)
    date1904 = pr is not None and pr.get("date1904", "0").lower() in ("1", "true")
    name, sheet_id, rel_id = _match_sheet(sheet_name, sheets)
    wb_rels = _rels(zin, names, workbook)
    rel = next((r for r in wb_rels if r.rel_id == rel_id), None)
    if rel is None or not rel.rel_type.endswith("/worksheet"):
        raise SheetNotFound(f"Werkblad '{name}' is geen gewoon werkblad met cellen.")
    sheet = _member(names, rel.part)
    if sheet is None:
        raise SheetNotFound(f"Werkblad '{name}' ontbreekt in het bestand ({rel.part}).")
    tables = [_member(names, r.part) for r in _rels(zin, names, sheet)
              if r.rel_type.endswith("/table")]
    return _Package(
        names=names,
        workbook=workbook,
        workbook_rels=_member(names, _rels_name(workbook)),
        sheet=sheet,
        sheet_name=name,
        sheet_id=sheet_id,
        date1904=date1904,
        styles=next((_member(names, r.part) for r in wb_rels if r.rel_type.endswith("/styles")),
                    None),
        calc_chain=next((_member(names, r.part) for r in wb_rels
                         if r.rel_type.endswith("/calcChain")), None),
        tables=[t for t in tables if t is not None],
    )


def _rel_id(el: etree._Element) -> str:
    """The r:id of a <sheet> (transitional or strict relationships namespace)."""
    for key, value in el.attrib.items():
        if str(key).startswith("{") and _local(str(key)) == "id":
            return str(value)
    return ""


def _match_sheet(wanted: str, sheets: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    """The sheet with this name: exactly, else case-insensitive ignoring surrounding spaces."""
    for key in (lambda s: s, lambda s: s.strip().casefold(), loose_key):
        found = [sheet for sheet in sheets if key(sheet[0]) == key(wanted)]
        if found:
            return found[0]
    available = ", ".join(f"'{name}'" for name, _, _ in sheets)
    raise SheetNotFound(f"Werkblad '{wanted.strip()}' niet gevonden (wel: {available}).")


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@contextlib.contextmanager
def _open_package(src: Path) -> Iterator[zipfile.ZipFile]:
    """Open the workbook as a zip, with a Dutch message when it is not one."""
    try:
        zin = zipfile.ZipFile(src)
    except FileNotFoundError as err:
        raise WorkbookMissing(f"Werkmap {src} niet gevonden.") from err
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise NotAWorkbook(_not_a_workbook(src)) from err
    with zin:
        yield zin


def _not_a_workbook(src: Path) -> str:
    try:
        with open(src, "rb") as handle:
            magic = handle.read(8)
    except OSError:
        magic = b""
    if magic == _OLE_MAGIC:
        return (f"{src.name} is beveiligd met een wachtwoord of is een oud .xls-bestand; "
                f"sla het op als .xlsx zonder wachtwoord.")
    return f"{src.name} is geen geldig .xlsx-bestand (beschadigd of onvolledig)."


@contextlib.contextmanager
def _reading(src: Path) -> Iterator[None]:
    """Report a damaged workbook (bad zip member, CRC, XML) as input, with its name."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError) as err:
        raise DamagedWorkbook(f"{src.name} is beschadigd: {err}") from err
