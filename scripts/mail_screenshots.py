"""Render every mail kind of the example workbook and photograph it as a reader sees it.

    .venv/bin/python scripts/mail_screenshots.py OUT_DIR

Plays a short course on a copy of `workbooks/leergang-wijkaanpak.xlsx` (confirmations and
waiting-list notices, a cancellation, a meeting that moves, the reminders, the weekly
overview), writes each first mail of a kind as `<kind>.html` and `<kind>.txt`, its .ics as
`<kind>.ics`, and — when Chromium is installed — `<kind>.png` (headless, 700 px wide), plus
`overzicht-werkmap.png`: the first page of the summary workbook as LibreOffice prints it.
For template authors: look before you ship a reworded mail.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from leergang_ops.cli import main
from leergang_ops.workbook.read import load_course

EXAMPLE = Path(__file__).resolve().parents[1] / "workbooks" / "leergang-wijkaanpak.xlsx"


def play_course(folder: Path) -> Path:
    """The example course over a few runs; the mails land in `folder/outbox`.

    28 Oct: confirmations and waiting-list notices; 29 Oct: meeting 1 moves (wijziging);
    4 Nov: the 7-day reminders; 5 Nov: a confirmed participant cancels (afmelding), which
    frees a place for an overbooked colleague, whose late confirmation stands in for the
    reminder of meeting 1, six days ahead.
    """
    path = folder / EXAMPLE.name
    shutil.copy(EXAMPLE, path)
    main(["run", str(path), "--today", "2021-10-28"])
    wb = load_workbook(path)
    wb["Bijeenkomsten"]["D2"] = time(13, 30)
    wb.save(path)
    for day in ("2021-10-29", "2021-11-04"):
        main(["run", str(path), "--today", day])
    course = load_course(path)
    rows_of = Counter(r.email_key for r in course.registrations)
    waiting = {r.gemeente for r in course.registrations if r.status == "overboekt"}
    leaving = next(r for r in course.registrations if r.bevestiging_verstuurd
                   and rows_of[r.email_key] == 1 and r.gemeente in waiting)
    wb = load_workbook(path)
    column = get_column_letter(course.layout.columns["Afgemeld"])
    wb[course.layout.sheet_name][f"{column}{leaving.row}"] = "ja"
    wb.save(path)
    main(["run", str(path), "--today", "2021-11-05"])
    main(["summary", str(path), "--out", str(folder / "overzicht.xlsx"), "--today", "2021-11-05"])
    return path


def first_of_each_kind(outbox: Path) -> dict[str, EmailMessage]:
    """The first mail of each kind and subject (`wachtlijst`, `wachtlijst-2`, …)."""
    found: dict[str, EmailMessage] = {}
    subjects: set[tuple[str, str]] = set()
    for eml in sorted(outbox.glob("*.eml"), key=lambda f: f.stat().st_mtime_ns):
        message = cast(EmailMessage, email.message_from_bytes(eml.read_bytes(),
                                                              policy=policy.default))
        kind = str(message["X-Leergang-Mail"])
        variant = (kind, _shape(message))
        if variant in subjects:
            continue
        subjects.add(variant)
        n = sum(1 for k, _ in subjects if k == kind)
        found[kind if n == 1 else f"{kind}-{n}"] = message
    return found


def _shape(message: EmailMessage) -> str:
    """What makes two mails of a kind look different: the subject, less names and numbers."""
    text = cast(EmailMessage, message.get_body(("plain",))).get_content()
    return str(message["Subject"]).split(":")[-1 if message["X-Leergang-Mail"] == "wachtlijst"
                                            else 0] + ("binnenkort" if "al over" in text else "")


def write_parts(kind: str, message: EmailMessage, out: Path) -> Path:
    """`<kind>.html`, `.txt` and `.ics`; returns the HTML file."""
    html = cast(EmailMessage, message.get_body(("html",))).get_content()
    text = cast(EmailMessage, message.get_body(("plain",))).get_content()
    (out / f"{kind}.txt").write_text(f"Onderwerp: {message['Subject']}\n\n{text}")
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            (out / f"{kind}.ics").write_bytes(payload)
    target = out / f"{kind}.html"
    target.write_text(html)
    return target


def photograph(html: Path, png: Path) -> None:
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={png}", "--window-size=700,1400",
                    html.as_uri()], check=True, capture_output=True, timeout=120)


def summary_page(workbook: Path, png: Path) -> None:
    """The summary workbook's first page: LibreOffice prints it, pdftoppm makes the PNG."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", tmp,
                        str(workbook)], check=True, capture_output=True, timeout=180)
        pdf = Path(tmp) / (workbook.stem + ".pdf")
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                        str(pdf), str(png.with_suffix(""))], check=True, timeout=60)


def main_script(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = play_course(Path(tmp))
        mails = first_of_each_kind(path.parent / "outbox")
        for kind, message in sorted(mails.items()):
            html = write_parts(kind, message, out)
            if shutil.which("chromium"):
                photograph(html, out / f"{kind}.png")
            print(f"{kind}: {message['Subject']}")
        if shutil.which("soffice") and shutil.which("pdftoppm"):
            summary_page(Path(tmp) / "overzicht.xlsx", out / "overzicht-werkmap.png")
    return 0


if __name__ == "__main__":
    sys.exit(main_script(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("screenshots")))
