"""The summary as an .xlsx (XlsxWriter): five sheets that print on A4, texts never formulas."""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import xlsxwriter
from babel.dates import format_date
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from leergang_ops import municipalities
from leergang_ops.model import (
    Allocation,
    Course,
    Meeting,
    SentRecord,
    Status,
)
from leergang_ops.status_colours import STATUS_COLOURS
from leergang_ops.summary.attention import (
    Problem,
    grouped,
)
from leergang_ops.summary.figures import (
    KIND_LABELS,
    MUNICIPALITY_WAITING,
    RESULT_LABELS,
    SHEET_MUNICIPALITIES,
    SHEET_OVERVIEW,
    SHEET_QUESTIONS,
    SHEET_REGISTRATIONS,
    SHEET_SENT,
    Attendance,
    MunicipalityRow,
    attendance,
    in_outbox,
    local_time,
    meeting_label,
    municipality_rows,
    recent_records,
    sort_key,
)
from leergang_ops.summary.headline import (
    Headline,
    headline,
)

logger = logging.getLogger(__name__)


FONT = {"font_name": "Arial", "font_size": 10}
WORKBOOK_OPTIONS = {
    "in_memory": True,
    # Never let a cell text become a formula, a link or a number, whatever writer is used.
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
    # Arial prints the same in Excel and in LibreOffice (metric-compatible Liberation Sans).
    # With Calibri, a server without it substitutes a wider font: columns and wrapped rows
    # then differ from what the contact person sees in Excel.
    "default_format_properties": FONT,
    "default_row_height": 17,  # pixels: Arial 10's standard row
}

MARGIN = 0.4  # inches, left and right
PRINTABLE_WIDTH = 842 - 2 * 72 * MARGIN  # points across landscape A4
# Up to this many rows the Overzicht is fitted on one page (shrunk by at most ~25%).
OVERVIEW_ONE_PAGE_ROWS = 50
PRINTABLE_HEIGHT = 595 - 72 * (0.75 + 0.6)  # points down landscape A4, within the margins
LINE_HEIGHT = 12.75  # points per line of Arial 10, as Excel spaces them
PADDING = 2.25  # points above and below the text of a wrapped row

NAVY = "#1F3864"
STYLES: dict[str, dict[str, object]] = {
    "text": {"valign": "top"},
    "wrap": {"valign": "top", "text_wrap": True},
    "number": {"valign": "top", "align": "center"},
    "date": {"valign": "top", "align": "left", "num_format": "dd-mm-yyyy"},
    "datetime": {"valign": "top", "align": "left", "num_format": "dd-mm-yyyy hh:mm"},
}
# Row highlights by registration status, municipality status or mail result: the statuses
# in the organisers' workbook's colours (status_colours.py), a refused mail as invalid, a
# deferred one as waiting.
FILLS = {
    **{status.value: f"#{colours.fill}" for status, colours in STATUS_COLOURS.items()},
    "geweigerd": f"#{STATUS_COLOURS[Status.ONGELDIG].fill}",
    "uitgesteld": f"#{STATUS_COLOURS[Status.WACHTLIJST].fill}",
}
SENT_HIGHLIGHTS = {"bounced": "geweigerd", "deferred": "uitgesteld",
                   "returned": "uitgesteld", "returned-unmatched": "uitgesteld"}

# ------------------------------------------------------------------------ the workbook


def build_summary(course: Course, allocation: Allocation, records: Sequence[SentRecord],
                  today: date) -> bytes:
    """The summary workbook (.xlsx) as bytes; the same input gives the same bytes."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, WORKBOOK_OPTIONS)
    # A fixed creation time keeps the output reproducible (XlsxWriter defaults to now).
    workbook.set_properties({"title": f"Overzicht {course.settings.leergang}",
                             "author": course.settings.organisatie or "leergang-ops",
                             "created": datetime.combine(today, datetime.min.time())})
    page = _Page(workbook, course, today)
    rows = municipality_rows(course, allocation)
    _write_overview(page, headline(course, allocation, records, today),
                    attendance(course, allocation), recent_records(records, today))
    _write_municipalities(page, rows)
    _write_registrations(page, allocation, records)
    _write_questions(page, allocation)
    _write_sent(page, recent_records(records, today))
    workbook.close()
    data = buffer.getvalue()
    logger.debug("summary built: %d bytes, %d municipalities", len(data), len(rows))
    return data


def write_summary(path: Path, data: bytes) -> None:
    """Write the summary atomically: a temporary file beside it, then a rename.

    The file is private to its owner (mode 0600): it lists names and addresses.
    """
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    logger.info("Overzicht geschreven naar %s", path)


class _Page:
    """The workbook with its formats and the page setup every sheet shares."""

    def __init__(self, workbook: Workbook, course: Course, today: date) -> None:
        self.workbook = workbook
        self.course = course
        self.today = today
        self.day_text = format_date(today, "full", locale="nl")
        self._formats: dict[tuple[str, str | None], Format] = {}
        self.title = self.add({"bold": True, "font_size": 16, "font_color": NAVY})
        self.subtitle = self.add({"font_size": 12, "italic": True})
        self.section = self.add({"bold": True, "font_size": 12, "font_color": NAVY,
                                 "bottom": 1})
        header = {"bold": True, "font_color": "#FFFFFF", "bg_color": NAVY, "text_wrap": True,
                  "valign": "top", "border": 1}
        self.header = self.add(header)
        self.header_center = self.add({**header, "align": "center"})
        self.note = self.add({"italic": True, "font_color": "#595959"})
        self.group = self.add({"bold": True, "font_color": NAVY, "valign": "top"})
        self.figure = self.add({"bold": True, "align": "center", "valign": "top"})
        self.text, self.wrap, self.number = (self.cell(s) for s in ("text", "wrap", "number"))

    def add(self, properties: dict[str, object]) -> Format:
        return self.workbook.add_format({**FONT, **properties})

    def cell(self, style: str, fill: str | None = None) -> Format:
        """The format of a table cell: a column style (see STYLES), maybe a row highlight."""
        key = (style, fill if fill in FILLS else None)
        if key not in self._formats:
            colour = {"bg_color": FILLS[fill]} if fill in FILLS else {}
            self._formats[key] = self.add({**STYLES[style], **colour})
        return self._formats[key]

    def sheet(self, name: str, *, header_rows: int = 0,
              scale_to: Sequence[float] = ()) -> Worksheet:
        """A new sheet set up to print landscape on A4, one page wide.

        Fit-to-width ignores manual page breaks, so a sheet that needs one passes its column
        widths in `scale_to` and gets a fixed scale that fits them instead.
        """
        ws = self.workbook.add_worksheet(name)
        ws.set_landscape()
        ws.set_paper(9)  # A4
        if scale_to:
            ws.set_print_scale(print_scale(scale_to))
        else:
            ws.fit_to_pages(1, 0)
        ws.set_margins(left=MARGIN, right=MARGIN, top=0.75, bottom=0.6)
        ws.center_horizontally()
        # `&` starts a control code in headers and footers: double it in the course name.
        course = self.course.settings.leergang.replace("&", "&&")
        font = '&"Arial,Regular"&8'
        ws.set_header(f"&L{font}{course}&R{font}{name}")
        ws.set_footer(f"&L{font}Overzicht per {self.day_text}&R{font}Pagina &P van &N")
        if header_rows:
            ws.repeat_rows(0, header_rows - 1)
        return ws


def print_scale(widths: Sequence[float]) -> int:
    """The print scale (%) at which columns of these widths fill one landscape A4 page."""
    table = sum(w * 7 + 5 for w in widths) * 0.75  # points, as Excel sizes columns
    # LibreOffice makes columns a few percent wider than Excel: keep room for that.
    return max(10, min(100, int(PRINTABLE_WIDTH / (table * 1.08) * 100)))


def page_lines(scale: int) -> int:
    """How many standard rows fit on a landscape A4 page at this print scale."""
    return int(PRINTABLE_HEIGHT / (LINE_HEIGHT * scale / 100))


def put(ws: Worksheet, row: int, col: int, value: object, fmt: Format | None = None) -> None:
    """Write one cell with its typed writer: text always as a string, never a formula."""
    if value is None or value == "":
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, bool):
        ws.write_string(row, col, "ja" if value else "nee", fmt)
    elif isinstance(value, int | float):
        ws.write_number(row, col, value, fmt)
    elif isinstance(value, datetime):
        ws.write_datetime(row, col, local_time(value), fmt)
    elif isinstance(value, date):
        ws.write_datetime(row, col, datetime.combine(value, datetime.min.time()), fmt)
    else:
        ws.write_string(row, col, str(value), fmt)


@dataclass(frozen=True)
class Column:
    """A table column: header text, width in characters, default cell format name."""

    header: str
    width: float
    style: str = "text"


def write_table(page: _Page, ws: Worksheet, columns: Sequence[Column],
                rows: Sequence[Sequence[object]], row_styles: Sequence[str | None] = ()) -> int:
    """A data sheet's table from A1: header, rows, widths, frozen header, autofilter.

    Returns the number of printed lines the table takes, header included.
    """
    for col, column in enumerate(columns):
        ws.set_column(col, col, column.width)
        header = page.header_center if column.style == "number" else page.header
        put(ws, 0, col, column.header, header)
    lines = fit_row(ws, 0, [(c.header, c.width) for c in columns], bold=True)
    for r, values in enumerate(rows, start=1):
        fill = row_styles[r - 1] if r - 1 < len(row_styles) else None
        for col, (column, value) in enumerate(zip(columns, values, strict=True)):
            put(ws, r, col, value, page.cell(column.style, fill))
        lines += fit_row(ws, r, [(str(v), c.width) for c, v in zip(columns, values, strict=True)
                                 if c.style == "wrap" and isinstance(v, str)])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
    return lines


# Advance widths of Helvetica/Arial (Adobe's core-font metrics, 1/1000 em) for the printable
# ASCII characters from space to tilde; other characters count as a digit's 556.
_ARIAL_WIDTHS = dict(zip(
    "".join(map(chr, range(32, 127))),
    (278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
     *([556] * 10), 278, 278, 584, 584, 584, 556, 1015,
     667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778,
     722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333,
     556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556,
     333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584),
    strict=True))


def text_points(text: str, size: float = 10) -> float:
    """Printed width of `text` in Arial at `size` points."""
    return sum(_ARIAL_WIDTHS.get(ch, 556) for ch in text) * size / 1000


def wrapped_lines(text: str, width: float, *, bold: bool = False) -> int:
    """How many lines `text` takes when wrapped in a column `width` characters wide.

    Words are laid out greedily as Excel and LibreOffice do, with a safety margin: a row one
    line too tall wastes a little paper, a row one line short hides text.
    """
    # A column of width w is 7w + 5 pixels wide; the cell keeps ~3 px free on each side.
    room = (width * 7 + 5 - 6) * 0.75 * (0.9 if bold else 0.95)
    space = text_points(" ")
    lines = 0
    for paragraph in text.split("\n"):
        lines += 1
        used = 0.0
        for word in paragraph.split():
            size = text_points(word)
            if used and used + space + size <= room:
                used += space + size
                continue
            if used:
                lines += 1
            lines += int(size // room)  # a word longer than the column breaks anywhere
            used = size % room
    return lines


def fit_row(ws: Worksheet, row: int, cells: Iterable[tuple[str, float]], *,
            bold: bool = False) -> int:
    """Make a row tall enough for its wrapped texts; return its number of lines.

    Neither Excel nor LibreOffice grows a row for wrapped text written by XlsxWriter when
    it prints, so the height is set explicitly; one-line rows keep the default.
    """
    lines = max((wrapped_lines(text, width, bold=bold) for text, width in cells), default=1)
    if lines > 1:
        ws.set_row(row, lines * LINE_HEIGHT + PADDING)
    return lines


# ---------------------------------------------------------------------------- Overzicht


OVERVIEW_WIDTHS = (62, 13, 13, 13, 38)


def _write_overview(page: _Page, head: Headline, meetings: Sequence[Attendance],
                    recent: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_OVERVIEW)
    for col, width in enumerate(OVERVIEW_WIDTHS):
        ws.set_column(col, col, width)
    settings = page.course.settings
    put(ws, 0, 0, settings.leergang, page.title)
    put(ws, 1, 0, f"Overzicht per {page.day_text}", page.subtitle)
    contact = f"Contactpersoon: {settings.contactpersoon}"
    if settings.organisatie:
        contact += f" — {settings.organisatie}"
    put(ws, 2, 0, contact, page.note)
    row = _write_figures(page, ws, head, 4)
    row = _write_attendance(page, ws, meetings, row + 1)
    row = _write_mail_counts(page, ws, recent, row + 1)
    last = _write_problems(page, ws, head.problems, row + 1)
    if last <= OVERVIEW_ONE_PAGE_ROWS:
        # A page and a line or two: shrink a little rather than print a lone line on page 2.
        ws.fit_to_pages(1, 1)
    ws.activate()


def _write_figures(page: _Page, ws: Worksheet, head: Headline, row: int) -> int:
    put(ws, row, 0, "Kerncijfers", page.section)
    per_municipality = page.course.settings.max_deelnemers_per_gemeente
    figures: list[tuple[str, int, str]] = [
        ("Gemeenten met bevestigde deelnemers", head.gemeenten,
         f"van maximaal {head.max_gemeenten}"),
        ("Bevestigde deelnemers", head.bevestigd, ""),
        (f"Op de wachtlijst (gemeente boven het maximum van {head.max_gemeenten})",
         head.wachtlijst, ""),
        (f"Overboekt (gemeente heeft al {per_municipality} deelnemers)", head.overboekt, ""),
        ("Ongeldige aanmeldingen", head.ongeldig, ""),
        ("Afgemeld", head.afgemeld, ""),
        ("Mails verzonden in de afgelopen 7 dagen", head.mails_this_week, ""),
        *([("Mails in de outbox gezet (niet verzonden)", head.mails_in_outbox,
            "geen mailserver ingesteld")] if head.mails_in_outbox else []),
        ("Punten die aandacht nodig hebben", len(head.problems), "zie hieronder"),
    ]
    for offset, (label, value, note) in enumerate(figures, start=1):
        put(ws, row + offset, 0, label, page.text)
        put(ws, row + offset, 1, value, page.figure)
        put(ws, row + offset, 2, note, page.note)
    return row + len(figures) + 1


def _write_attendance(page: _Page, ws: Worksheet, meetings: Sequence[Attendance],
                      row: int) -> int:
    put(ws, row, 0, "Verwachte opkomst per bijeenkomst", page.section)
    for col, text in enumerate(("Bijeenkomst", "Deelnemers", "Bestuurders", "Totaal",
                                "Locatie")):
        put(ws, row + 1, col, text, page.header_center if 1 <= col <= 3 else page.header)
    for offset, a in enumerate(meetings, start=2):
        put(ws, row + offset, 0, meeting_label(a.meeting), page.wrap)
        put(ws, row + offset, 1, a.deelnemers, page.number)
        put(ws, row + offset, 2, a.bestuurders, page.number)
        put(ws, row + offset, 3, a.total, page.figure)
        put(ws, row + offset, 4, _place(a.meeting), page.wrap)
        fit_row(ws, row + offset, [(meeting_label(a.meeting), OVERVIEW_WIDTHS[0]),
                                   (_place(a.meeting), OVERVIEW_WIDTHS[4])])
    if not meetings:
        put(ws, row + 2, 0, "Er staan nog geen bijeenkomsten in het werkboek.", page.note)
    return row + max(len(meetings), 1) + 2


def _place(meeting: Meeting) -> str:
    if meeting.online:
        return "online" + ("" if meeting.online_link.strip() else " (link ontbreekt nog)")
    return ", ".join(p for p in (meeting.locatie.strip(), meeting.adres.strip()) if p)


def _write_mail_counts(page: _Page, ws: Worksheet, recent: Sequence[SentRecord],
                       row: int) -> int:
    put(ws, row, 0, "Mails van de afgelopen 7 dagen", page.section)
    counts = Counter((r.kind, "outbox" if in_outbox(r) else r.status) for r in recent)
    results = [("Verzonden", "sent"), ("In outbox", "outbox"), ("Geweigerd", "bounced"),
               ("Uitgesteld", "deferred")]
    if not any(result == "outbox" for _, result in counts):
        results.remove(("In outbox", "outbox"))
    for col, text in enumerate(("Soort", *(label for label, _ in results))):
        put(ws, row + 1, col, text, page.header_center if col else page.header)
    kinds = [k for k in KIND_LABELS if any(kind == k for kind, _ in counts)]
    kinds += sorted({kind for kind, _ in counts} - set(kinds))
    for offset, kind in enumerate(kinds, start=2):
        put(ws, row + offset, 0, KIND_LABELS.get(kind, kind), page.text)
        for col, (_, result) in enumerate(results, start=1):
            put(ws, row + offset, col, counts[(kind, result)], page.number)
    if not kinds:
        put(ws, row + 2, 0, "Geen mails verstuurd in de afgelopen 7 dagen.", page.note)
    return row + max(len(kinds), 1) + 2


# The problems table spans the Overzicht's columns: what in A:C, where in D:E.
WHAT_COLUMNS = (0, 2)
WHERE_COLUMNS = (3, 4)


def _write_problems(page: _Page, ws: Worksheet, found: Sequence[Problem], row: int) -> int:
    put(ws, row, 0, "Wat aandacht nodig heeft", page.section)
    if not found:
        put(ws, row + 1, 0, "Niets: alles is in orde.", page.note)
        return row + 2
    merged_text(ws, row + 1, WHAT_COLUMNS, "Wat", page.header)
    merged_text(ws, row + 1, WHERE_COLUMNS, "Waar aanpassen (in de werkmap)", page.header)
    row += 2
    for group, points in grouped(found):
        merged_text(ws, row, WHAT_COLUMNS, f"{group} ({len(points)})", page.group)
        row += 1
        for what, where, _ in points:
            merged_text(ws, row, WHAT_COLUMNS, what, page.wrap)
            merged_text(ws, row, WHERE_COLUMNS, where, page.wrap)
            fit_row(ws, row, [(what, _span_width(WHAT_COLUMNS)),
                              (where, _span_width(WHERE_COLUMNS))])
            row += 1
    return row


def _span_width(columns: tuple[int, int]) -> float:
    first, last = columns
    # Merged cells also gain the padding between the columns they join.
    return sum(OVERVIEW_WIDTHS[first:last + 1]) + 0.7 * (last - first)


def merged_text(ws: Worksheet, row: int, columns: tuple[int, int], text: str,
                fmt: Format) -> None:
    """Text over merged columns, written as a string like every other text."""
    first, last = columns
    ws.merge_range(row, first, row, last, "", fmt)
    put(ws, row, first, text, fmt)


# ---------------------------------------------------------------------------- Gemeenten


def _write_municipalities(page: _Page, rows: Sequence[MunicipalityRow]) -> None:
    limit = page.course.settings.max_deelnemers_per_gemeente
    columns = [Column("Gemeente", 22), Column("Bevestigd", 11, "number"),
               Column("Max", 6, "number"), Column("Bestuurders", 12, "number"),
               Column("Overboekt", 11, "number"), Column("Wachtlijst", 11, "number"),
               Column("Status", 12), Column("Beleidsdomeinen", 34, "wrap"),
               Column("Waarschuwingen", 60, "wrap")]
    widths = [c.width for c in columns]
    ws = page.sheet(SHEET_MUNICIPALITIES, scale_to=widths)
    table = [(m.name, m.bevestigd, limit, m.bestuurders, m.overboekt, m.wachtlijst, m.status,
              ", ".join(m.domains), "\n".join(m.warnings)) for m in rows]
    lines = write_table(page, ws, columns, table, [_highlight(m) for m in rows])
    # Repeat the header only for a table longer than a page: else it would stand above the
    # chart on the chart's own page.
    if lines > page_lines(print_scale(widths)):
        ws.repeat_rows(0)
    counted = "tellen mee" if page.course.settings.bestuurders_tellen_mee else "tellen niet mee"
    put(ws, len(rows) + 2, 0, f"Bestuurders {counted} voor het maximum van {limit} per "
        "gemeente. Oranje: overboekt; geel: wachtlijst.", page.note)
    if rows:
        # The chart prints whole on a page of its own rather than cut across two.
        ws.set_h_pagebreaks([len(rows) + 4])
        _municipality_chart(page, ws, len(rows), len(rows) + 4, widths)


def _highlight(m: MunicipalityRow) -> str | None:
    if m.overboekt:
        return "overboekt"
    if m.status == MUNICIPALITY_WAITING:
        return "wachtlijst"
    return None


def _municipality_chart(page: _Page, ws: Worksheet, count: int, anchor_row: int,
                        widths: Sequence[float]) -> None:
    """Confirmed participants per municipality as columns, the limit as a line."""
    name = SHEET_MUNICIPALITIES
    chart = page.workbook.add_chart({"type": "column"})
    assert chart is not None
    chart.add_series({"name": "Bevestigd", "categories": [name, 1, 0, count, 0],
                      "values": [name, 1, 1, count, 1], "fill": {"color": "#4472C4"},
                      "data_labels": {"value": True, "font": {"name": "Arial", "size": 8}}})
    limit = page.workbook.add_chart({"type": "line"})
    assert limit is not None
    limit.add_series({"name": "Maximum per gemeente", "categories": [name, 1, 0, count, 0],
                      "values": [name, 1, 2, count, 2],
                      "line": {"color": "#C00000", "width": 2, "dash_type": "dash"},
                      "marker": {"type": "none"}})
    chart.combine(limit)
    chart.set_title({"name": "Bevestigde deelnemers per gemeente",
                     "name_font": {"name": "Arial", "size": 12}})
    chart.set_x_axis({"num_font": {"name": "Arial", "rotation": -45, "size": 8}})
    chart.set_y_axis({"min": 0, "major_unit": 1, "major_gridlines": {"visible": True},
                      "num_font": {"name": "Arial", "size": 8}})
    chart.set_legend({"position": "bottom", "font": {"name": "Arial", "size": 9}})
    # As wide as the table, and about two thirds of the printed page high.
    width = int(sum(w * 7 + 5 for w in widths)) - 10
    chart.set_size({"width": width, "height": int(page_lines(print_scale(widths)) * 17 * 0.65)})
    ws.insert_chart(anchor_row, 0, chart, {"x_offset": 4, "y_offset": 4})


# --------------------------------------------------------------------------- Deelnemers


def _write_registrations(page: _Page, allocation: Allocation,
                         records: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_REGISTRATIONS, header_rows=1)
    decisions = allocation.by_row()
    confirmed_on = _confirmation_days(records)
    columns = [Column("Rij", 5, "number"), Column("Aangemeld op", 13, "date"),
               Column("Voornaam", 12), Column("Achternaam", 16), Column("E-mail", 28),
               Column("Gemeente", 16), Column("Beleidsdomein", 20, "wrap"),
               Column("Rol", 10), Column("Status", 11), Column("Melding", 48, "wrap"),
               Column("Bevestiging verstuurd", 12, "date")]
    table, styles = [], []
    for reg in page.course.registrations:
        decision = decisions.get(reg.row)
        status = str(decision.status) if decision else reg.status
        sent = confirmed_on.get(reg.email_key) or reg.bevestiging_verstuurd
        table.append((reg.row, reg.aangemeld_op, reg.voornaam, reg.achternaam, reg.email,
                      reg.gemeente, reg.beleidsdomein, reg.rol, status,
                      decision.melding if decision else reg.melding, sent))
        styles.append(status)
    write_table(page, ws, columns, table, styles)


def _confirmation_days(records: Iterable[SentRecord]) -> dict[str, date]:
    """Recipient → the day their confirmation was delivered."""
    return {r.recipient: local_time(r.at).date() for r in records
            if r.kind == "bevestiging" and r.status == "sent"}


# ------------------------------------------------------------------------------- Vragen


def _write_questions(page: _Page, allocation: Allocation) -> None:
    ws = page.sheet(SHEET_QUESTIONS, header_rows=1)
    decisions = allocation.by_row()
    asked = sorted((r for r in page.course.registrations if r.opmerking.strip()),
                   key=lambda r: (sort_key(municipalities.display_name(r.gemeente)), r.row))
    columns = [Column("Gemeente", 18), Column("Naam", 22), Column("Beleidsdomein", 20, "wrap"),
               Column("Status", 11), Column("Vraag of opmerking", 90, "wrap"),
               Column("Rij", 5, "number")]
    table = [(municipalities.display_name(r.gemeente), r.naam, r.beleidsdomein,
              str(decisions[r.row].status) if r.row in decisions else r.status,
              r.opmerking.strip(), r.row) for r in asked]
    write_table(page, ws, columns, table)


# ---------------------------------------------------------------------------- Verzonden


def _write_sent(page: _Page, recent: Sequence[SentRecord]) -> None:
    ws = page.sheet(SHEET_SENT, header_rows=1)
    columns = [Column("Datum", 16, "datetime"), Column("Soort", 18), Column("Ontvanger", 30),
               Column("Naam", 22), Column("Resultaat", 22, "wrap"),
               Column("Toelichting", 60, "wrap")]
    table = [(r.at, KIND_LABELS.get(r.kind, r.kind), r.address, r.name, result_label(r),
              _explain(r)) for r in recent]
    styles = [SENT_HIGHLIGHTS.get(r.status) for r in recent]
    write_table(page, ws, columns, table, styles)


def result_label(record: SentRecord) -> str:
    """The Resultaat column: a mail written to an outbox folder is "in outbox", not sent."""
    if record.status == "sent" and in_outbox(record):
        return f"in outbox ({record.destination.removeprefix('outbox:')}), niet verzonden"
    return RESULT_LABELS.get(record.status, record.status)


def _explain(record: SentRecord) -> str:
    """What the mail was about, then what the server said."""
    about = describe_scope(record.scope)
    return " — ".join(p for p in (about, record.detail.strip()) if p)


def describe_scope(scope: str) -> str:
    """`m2-7d` → `bijeenkomst 2, 7 dagen vooraf`; `m2@3` → `bijeenkomst 2 (versie 3)`."""
    if match := re.fullmatch(r"m(\d+)-(\d+)d", scope):
        days = int(match[2])
        return f"bijeenkomst {match[1]}, {days} dag{'en' if days != 1 else ''} vooraf"
    if match := re.fullmatch(r"m(\d+)@(\d+)", scope):
        return f"bijeenkomst {match[1]} (versie {match[2]})"
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", scope):
        return f"week {int(match[2])} van {match[1]}"
    return "" if scope in ("", "-") else scope
