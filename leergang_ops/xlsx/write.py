"""Lossless write-back: change cells of one worksheet inside the .xlsx and nothing else.

A general-purpose workbook model drops what it does not understand (charts, shapes, slicers,
x14 extensions, cached formula results, ...), so the workbook is treated as the zip it is:
the target worksheet part is streamed as text and patched inside <sheetData>; styles.xml
gets entries appended when a new cell style is needed; a table directly left of or above
the written cells is extended; every other member is copied through with its compressed
bytes, in the same order. See shared/notes/openpyxl-roundtrip-losses.md for what each rule
protects.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

from leergang_ops.xlsx.calcchain import _prune_calc_chain, _without_calc_chain
from leergang_ops.xlsx.cells import CellStyle, CellValue, CellWrite, _group_writes, _Writes
from leergang_ops.xlsx.errors import FileInUse, WorkbookMissing, XlsxError
from leergang_ops.xlsx.files import ensure_not_in_use, replace_atomically, temp_file_beside
from leergang_ops.xlsx.package import _locate, _open_package, _Package, _reading
from leergang_ops.xlsx.refs import column_letters
from leergang_ops.xlsx.sheet import _SheetPatcher
from leergang_ops.xlsx.styles import _Styles
from leergang_ops.xlsx.tables import (
    _extend_tables,
    _Insertion,
    _load_table,
    _plan_insertion,
    _refuse_totals_writes,
    _Table,
)
from leergang_ops.xlsx.verify import _verify
from leergang_ops.xlsx.zip import _DeflatedSpool, _write_package

__all__ = ["CellStyle", "CellValue", "CellWrite", "backup_path", "column_letters",
           "patch_workbook", "write_cells"]


def backup_path(path: Path) -> Path:
    """Where the previous version is kept: leergang.xlsx → leergang.backup.xlsx beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}.backup{path.suffix}")


def write_cells(
    path: Path,
    sheet_name: str,
    cells: Mapping[tuple[int, int], CellWrite],
    *,
    header_row: int | None = None,
    column_widths: Mapping[int, float] | None = None,
    backup: bool = True,
    insert_rows: tuple[int, int] | None = None,
) -> bool:
    """Patch the workbook in place: temp file beside it, verify, atomic replace, keep a backup.

    Returns False and leaves the file untouched (same bytes, same mtime) when nothing changes.
    A lock file beside the workbook raises FileInUse before anything is written.
    `insert_rows=(row, n)`: see `patch_workbook`.
    """
    path = Path(path)
    target = _unlocked_target(path)
    before = _fingerprint(target)
    tmp = _temp_file_beside(target)
    try:
        writes = _group_writes(cells)  # once, for the patch and for the read-back
        changed = _patch(target, tmp, sheet_name, cells, writes, header_row=header_row,
                         column_widths=column_widths, insert_rows=insert_rows)
        if not changed:
            return False
        _verify(tmp, sheet_name, writes)
        _unlocked_target(path)  # opened in Excel meanwhile?
        if _fingerprint(target) != before:
            raise FileInUse(f"{path.name} is gewijzigd terwijl het werd bijgewerkt; "
                                f"er is niets geschreven. Probeer het opnieuw.")
        try:
            replace_atomically(target, tmp, backup_path(target) if backup else None)
        except PermissionError as err:  # Windows refuses to replace a file Excel holds open
            raise FileInUse(f"{path.name} kan niet worden vervangen ({err}); is het "
                                f"geopend? Er is niets geschreven.") from err
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _unlocked_target(path: Path) -> Path:
    """The file to replace (a symlink's target), after checking no lock file is beside it."""
    ensure_not_in_use(path)
    target = path.resolve()
    if target != path.absolute():
        ensure_not_in_use(target)
    return target


def _temp_file_beside(target: Path) -> Path:
    """An empty temp file in the workbook's folder, so that os.replace is atomic."""
    try:
        return temp_file_beside(target)  # .~leergang-<name>-<random>.tmp: see files.py
    except OSError as err:
        raise XlsxError(f"Kan niet schrijven in de map van {target.name}: {err}") from err


def patch_workbook(
    src: Path,
    dst: Path,
    sheet_name: str,
    cells: Mapping[tuple[int, int], CellWrite],
    *,
    header_row: int | None = None,
    column_widths: Mapping[int, float] | None = None,
    insert_rows: tuple[int, int] | None = None,
) -> bool:
    """Write dst as src with these (row, col) cells (1-based) changed on sheet `sheet_name`.

    Returns False and writes nothing when the result would be byte-identical. `header_row`
    is the row holding column headers: header texts written there directly right of an
    Excel table whose header row it is extend that table (None: any table's own header
    row). Rows written directly below a table extend it downward. `column_widths` sets the
    width of columns that have no <col> entry yet. On an error dst is removed.

    A write into an Excel table's totals row is refused (Unsupported). `insert_rows=(row,
    n)` first inserts n rows above `row`, which must be a table's (first) totals row: the
    totals row moves down with its formulas unchanged, the table grows, and `cells` are
    numbered as after the insertion. Anything else at or below that row with content is
    refused (nothing written).
    """
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError("patch_workbook writes a new file; use write_cells to change in place")
    return _patch(Path(src), Path(dst), sheet_name, cells, _group_writes(cells),
                  header_row=header_row, column_widths=column_widths,
                  insert_rows=insert_rows)


def _patch(src: Path, dst: Path, sheet_name: str, cells: Mapping[tuple[int, int], CellWrite],
           writes: _Writes, *, header_row: int | None,
           column_widths: Mapping[int, float] | None,
           insert_rows: tuple[int, int] | None = None) -> bool:
    """`patch_workbook` with the writes grouped by row already."""
    widths = dict(column_widths or {})
    with _open_package(Path(src)) as zin:
        with _reading(Path(src)):
            package = _locate(zin, sheet_name)
            styles = _Styles(zin.read(package.styles)) if package.styles else None
            stored = zin.getinfo(package.sheet).compress_type == zipfile.ZIP_STORED
            tables = [_load_table(zin, part) for part in package.tables]
            insertion = _plan_insertion(zin, package, tables, insert_rows)
            _refuse_totals_writes(tables, writes, insertion)
        with _DeflatedSpool(compress=not stored) as sheet_out:
            with _reading(Path(src)):
                patcher = _SheetPatcher(writes, styles, package.date1904, widths, insertion)
                with zin.open(package.sheet) as source:
                    patcher.run(source, sheet_out)
                sheet_out.finish()
                replaced = _changed_parts(zin, package, patcher, styles, cells, header_row,
                                          tables, insertion)
            if not patcher.changed and not replaced:
                return False
            try:
                _write_package(zin, Path(src), Path(dst), package.sheet,
                               sheet_out if patcher.changed else None, replaced)
            except BaseException:
                Path(dst).unlink(missing_ok=True)
                raise
    return True


def _changed_parts(zin: zipfile.ZipFile, package: _Package, patcher: _SheetPatcher,
                   styles: _Styles | None, cells: Mapping[tuple[int, int], CellWrite],
                   header_row: int | None, tables: list[_Table],
                   insertion: _Insertion | None) -> dict[str, bytes | None]:
    """Every part other than the sheet that the write changes (None: the part is dropped)."""
    changed: dict[str, bytes | None] = {}
    if styles is not None and styles.changed and package.styles:
        changed[package.styles] = styles.render()
    changed.update(_extend_tables(tables, cells, header_row, patcher.merged, insertion))
    if patcher.removed_formulas and package.calc_chain:
        pruned = _prune_calc_chain(zin.read(package.calc_chain), package.sheet_id,
                                   patcher.removed_formulas)
        if pruned is None:
            changed.update(_without_calc_chain(zin, package))
        elif pruned != zin.read(package.calc_chain):
            changed[package.calc_chain] = pruned
    return changed


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError as err:
        raise WorkbookMissing(f"Werkmap {path} niet gevonden.") from err
    return stat.st_size, stat.st_mtime_ns
