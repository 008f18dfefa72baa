"""1,000 confirmations end to end against a bare smtplib loop, both to a local aiosmtpd."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench.generate import make_workbook
from bench.run import leergang, measure_pair, python, row
from leergang_ops.ledger_location import ledger_path

CONFIRMATIONS = 1_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's own command with its Sink handler: accepts and discards every message."""
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                               f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("aiosmtpd did not start")


def _baseline(messages: Path, port: int) -> list[str]:
    """A process that sends the pre-built messages over one smtplib connection."""
    return python(
        "import pathlib, smtplib\n"
        f"files = sorted(pathlib.Path({str(messages)!r}).glob('*.eml'))\n"
        "data = [f.read_bytes() for f in files]\n"
        f"with smtplib.SMTP('127.0.0.1', {port}) as smtp:\n"
        "    for i, msg in enumerate(data):\n"
        "        smtp.sendmail('leergang@example.org', [f'p{i}@example.nl'], msg)\n")


def bench_mail(folder: Path) -> list[str]:
    """Measure both, side by side in this run; returns the report lines."""
    source = make_workbook(folder / "mail.xlsx", CONFIRMATIONS, max_per_municipality=10_000,
                           max_municipalities=10_000, cancel_every=0, summary_day="zondag")
    # Pre-build the baseline's messages with the tool itself, so the sizes are the same.
    outbox_wb = folder / "outbox-run" / "mail.xlsx"
    outbox_wb.parent.mkdir()
    outbox_wb.write_bytes(source.read_bytes())
    subprocess.run(leergang("run", "--today", "2021-10-01", str(outbox_wb)), check=True,
                   stdout=subprocess.DEVNULL)
    messages = outbox_wb.parent / "outbox"
    count = len(list(messages.glob("*.eml")))
    port = _free_port()
    server = _start_server(port)
    try:
        target = folder / "smtp-run" / "mail.xlsx"
        target.parent.mkdir()
        env = {**os.environ, "LEERGANG_SMTP_HOST": "127.0.0.1",
               "LEERGANG_SMTP_PORT": str(port), "LEERGANG_SMTP_SECURITY": "none"}

        # A course that runs daily has a ledger from earlier runs (here: the outbox run's,
        # emptied of its mails): its templates were checked before, none of the 1,000
        # confirmations was sent yet.
        seed = folder / "seed.sqlite"
        with contextlib.closing(sqlite3.connect(ledger_path(outbox_wb, {}))) as db:
            db.execute("VACUUM INTO ?", (str(seed),))
        with contextlib.closing(sqlite3.connect(seed)) as db, db:
            for table in ("mails", "sent_details", "meeting_versions"):
                db.execute(f"DELETE FROM {table}")

        def fresh_start() -> None:
            # Every measured run sends all confirmations: a fresh workbook and ledger.
            target.write_bytes(source.read_bytes())
            ledger = ledger_path(target, {})
            for stale in target.parent.glob(ledger.name + "*"):
                stale.unlink()
            shutil.copy(seed, ledger)

        ours, base = measure_pair(leergang("run", "--today", "2021-10-01", str(target)),
                                  _baseline(messages, port), env, fresh_start)
    finally:
        server.terminate()
        server.wait()
    return [row(f"run: {count:,} confirmations", ours, base, 1.5),
            f"{'':<28} {1000 * ours[0] / count:8.2f} ms/mail, baseline "
            f"{1000 * base[0] / count:.2f} ms/mail"]
