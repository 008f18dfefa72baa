"""The read-back: the patched file sound as a zip and as XML, the cells holding what was written."""

from __future__ import annotations

import math
import xml.parsers.expat
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date, time, timedelta
from pathlib import Path

from leergang_ops.xlsx.cells import CellValue, _is_empty, _Writes, clean_text, excel_serial
from leergang_ops.xlsx.errors import VerificationFailed, XlsxError
from leergang_ops.xlsx.package import _locate, _Package
from leergang_ops.xlsx.refs import column_letters
from leergang_ops.xlsx.zip import _CHUNK


def _verify(path: Path, sheet_name: str, writes: _Writes) -> None:
    """Read the patched workbook back: zip and XML sound, the written cells hold the values."""
    from python_calamine import CalamineError

    try:
        with zipfile.ZipFile(path) as zf:
            package = _locate(zf, sheet_name)
            # python-calamine releases the GIL while it reads: reading the values back in a
            # thread beside the CRC and XML checks halves the check on a large sheet.
            with ThreadPoolExecutor(max_workers=1) as pool:
                values_read = pool.submit(_verify_values, path, package, writes)
                _verify_members(zf, {package.sheet, package.styles, package.calc_chain,
                                     package.workbook_rels,
                                     package.names.get("[content_types].xml"),
                                     *package.tables} - {None})
                values_read.result()
    except (ValueError, OSError, zipfile.BadZipFile, xml.parsers.expat.ExpatError,
            XlsxError, CalamineError) as err:
        raise VerificationFailed(f"Controle van de bijgewerkte werkmap mislukt ({err}); "
                            f"de werkmap is niet gewijzigd.") from err


def _verify_members(zf: zipfile.ZipFile, xml_parts: set[str | None]) -> None:
    """Read every member to its end (zipfile then checks its CRC); parse the XML ones we touch.

    One pass a member, in large chunks: expat's ParseFile reads 2 KiB at a time, and a
    separate testzip() would decompress the large sheet a second time.
    """
    for info in zf.infolist():
        parser = xml.parsers.expat.ParserCreate() if info.filename in xml_parts else None
        with zf.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                if parser:
                    parser.Parse(chunk, False)
        if parser:
            parser.Parse(b"", True)


def _verify_values(path: Path, package: _Package, writes: _Writes) -> None:
    """Compare the written cells with what python-calamine (our reader) reads back."""
    from python_calamine import CalamineWorkbook

    wanted = dict(writes)
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(package.sheet_name)
    first_col = sheet.start[1] if sheet.start else 0
    last_row, last_col = sheet.end or (-1, -1)
    cleaned: dict[str, str] = {}  # the written texts repeat: clean each once
    count = 0
    # iter_rows() yields rows from row 1 but columns from the first used column onwards.
    for number, values in enumerate(sheet.iter_rows(), start=1):
        count += 1
        row_wanted = wanted.pop(number, None)
        if row_wanted is None:
            continue
        offset = 1 if len(values) == last_col + 1 else first_col + 1
        for col, write in row_wanted:
            expected = write.value
            at = col - offset
            got = values[at] if 0 <= at < len(values) else ""
            if expected.__class__ is str and got.__class__ is str:  # nearly every cell
                want = cleaned.get(expected)
                if want is None:
                    want = cleaned[expected] = clean_text(expected)
                if got == want:
                    continue
            _check_same(expected, got, package.date1904, (number, col))
    if sheet.start is not None and count != last_row + 1:
        raise ValueError(f"python-calamine las {count} rijen, verwacht {last_row + 1}")
    for number, row_wanted in wanted.items():  # beyond what calamine saw: must be empty
        for col, write in row_wanted:
            _check_same(write.value, "", package.date1904, (number, col))


def _check_same(expected: CellValue, got: object, date1904: bool,
                cell: tuple[int, int]) -> None:
    """Raise ValueError when what the reader got is not what was written."""
    if _is_empty(expected):
        ok = got in ("", None)
    elif isinstance(expected, str):
        ok = got == clean_text(expected)
    elif isinstance(expected, bool):
        ok = got is expected
    else:  # a number or a date: the cell's number format decides what a reader makes of it
        assert expected is not None
        ok = _same_number(expected, got, date1904)
    if not ok:
        ref = f"{column_letters(cell[1])}{cell[0]}"
        raise ValueError(f"cel {ref} bevat {got!r} in plaats van {expected!r}")


def _same_number(expected: float | date, got: object, date1904: bool) -> bool:
    want = excel_serial(expected, date1904) if isinstance(expected, date) else float(expected)
    if isinstance(got, bool) or not isinstance(got, int | float | date | time | timedelta):
        return False
    if isinstance(got, int | float) and not isinstance(expected, date):
        return math.isclose(got, want, rel_tol=1e-12)
    if isinstance(got, time):  # a time format shows only the fraction of the day
        seconds = got.hour * 3600 + got.minute * 60 + got.second + got.microsecond / 1e6
        return abs((want - seconds / 86400 + 0.5) % 1 - 0.5) < 1e-6
    if isinstance(got, timedelta):
        return abs(got.total_seconds() / 86400 - want) < 1e-6
    serial = excel_serial(got, date1904) if isinstance(got, date) else float(got)
    return abs(serial - want) < 1e-6  # readers round date-times to milliseconds
