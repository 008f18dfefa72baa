"""A hand-made mutation run over allocation, planning, render and the xlsx package.

`python scripts/mutation_run.py [ID ...]` applies each mutant to the source in turn, runs the
test modules that cover that module (stopping at the first failure), and restores the file.
A mutant is killed when a test fails. Run it on a clean work tree; it restores every file,
also when interrupted. The set and its results are listed in the README (Design → Testing).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
ALLOCATION = ("tests/test_allocation.py", "tests/test_cli.py", "tests/test_read.py",
              "tests/test_timeline.py")
PLANNING = ("tests/test_planning.py", "tests/test_timeline.py", "tests/test_cli.py")
RENDER = ("tests/test_render.py", "tests/test_delivery.py", "tests/test_transport.py")
XLSX = ("tests/test_writeback.py", "tests/test_writeback_corpus.py", "tests/test_cli.py")


class Mutant(NamedTuple):
    id: str
    path: str  # under leergang_ops/
    old: str  # must occur exactly once
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant("A1", "allocation.py",
           'key=lambda r: (r.aangemeld_op is None, r.aangemeld_op or dat'
           'etime.min, r.row))',
           'key=lambda r: (r.aangemeld_op is None, r.row))', ALLOCATION),
    Mutant("A2", "allocation.py",
           'key=lambda r: (r.aangemeld_op is None, r.aangemeld_op',
           'key=lambda r: (r.aangemeld_op is not None, r.aangemeld_op', ALLOCATION),
    Mutant("A3", "allocation.py",
           'if key not in admitted and len(admitted) < limit:',
           'if key not in admitted and len(admitted) <= limit:', ALLOCATION),
    Mutant("A4", "allocation.py",
           'admitted = {k: v for k, v in in_order.items() if k in holdin'
           'g}',
           'admitted = {}', ALLOCATION),
    Mutant("A5", "allocation.py",
           '        if rank[key] <= limit:',
           '        if rank[key] < limit:', ALLOCATION),
    Mutant("A6", "allocation.py",
           'enumerate(waiting.items(), start=1)',
           'enumerate(waiting.items(), start=0)', ALLOCATION),
    Mutant("A7", "allocation.py",
           '            work.decide(reg, Status.AFGEMELD)',
           '            work.decide(reg, Status.ONGELDIG)', ALLOCATION),
    Mutant("A8", "allocation.py",
           '        elif reg.email_key in first_row_of:',
           '        elif False:', ALLOCATION),
    Mutant("A9", "allocation.py",
           '        elif taken[key] < limit:',
           '        elif taken[key] <= limit:', ALLOCATION),
    Mutant("A10", "allocation.py",
           '        if reg.row in kept or not counts:',
           '        if reg.row in kept:', ALLOCATION),
    Mutant("A11", "allocation.py",
           '            if ahead < limit:',
           '            if ahead <= limit:', ALLOCATION),
    Mutant("A12", "allocation.py",
           '    for reg in active:\n        key = municipalities.identity'
           '(reg.gemeente)\n        if key not in in_order:',
           '    for reg in sorted(active, key=lambda r: r.row):\n        '
           'key = municipalities.identity(reg.gemeente)\n        if key n'
           'ot in in_order:', ALLOCATION),
    Mutant("A13", "allocation.py",
           '            if domain in first:',
           '            if domain in first and False:', ALLOCATION),
    Mutant("A14", "allocation.py",
           '    if any(m.voor_bestuurders for m in work.course.meetings)'
           ':\n        return',
           '    if any(m.voor_bestuurders for m in work.course.meetings)'
           ':\n        pass', ALLOCATION),
    Mutant("A15", "allocation.py",
           '        if not reg.gemeente or municipalities.lookup(reg.gem'
           'eente):',
           '        if not reg.gemeente or municipalities.lookup(reg.gem'
           'eente) or True:', ALLOCATION),
    Mutant("P1", "planning.py",
           'return starts_at is not None and starts_at < datetime.combin'
           'e(today, time.min)',
           'return starts_at is not None and starts_at <= datetime.combi'
           'ne(today, time.min)', PLANNING),
    Mutant("P2", "planning.py",
           'starts_at < datetime.combine(today, time.min)',
           'starts_at < datetime.combine(today, time.max)', PLANNING),
    Mutant("P3", "planning.py",
           'if 0 <= days_left <= d), default=None)',
           'if 0 < days_left <= d), default=None)', PLANNING),
    Mutant("P4", "planning.py",
           'return min((d for d in herinneringen',
           'return max((d for d in herinneringen', PLANNING),
    Mutant("P5", "planning.py",
           'if today.weekday() < settings.overzicht_weekdag',
           'if today.weekday() <= settings.overzicht_weekdag', PLANNING),
    Mutant("P6", "planning.py",
           'change = "added" if told is None or not told[0][0] else "cha'
           'nged"',
           'change = "added" if told is None else "changed"', PLANNING),
    Mutant("P7", "planning.py",
           'if told is not None and told[0] == meeting.details():',
           'if told is not None:', PLANNING),
    Mutant("P8", "planning.py",
           '<= first_reminder + LINK_WARNING_DAYS',
           '< first_reminder + LINK_WARNING_DAYS', PLANNING),
    Mutant("P9", "planning.py",
           '    if recipient not in ctx.state.confirmed:\n        return\n'
           '    for meeting in ctx.course.meetings_for(registration):\n  '
           '      if meeting.datum is None or _has_started',
           '    for meeting in ctx.course.meetings_for(registration):\n  '
           '      if meeting.datum is None or _has_started', PLANNING),
    Mutant("P10", "planning.py",
           'if meeting.datum is None or meeting.nr in ctx.held_back:',
           'if meeting.datum is None:', PLANNING),
    Mutant("P11", "planning.py",
           'f"m{meeting.nr}-{days}d"',
           'f"m{meeting.nr}-d"', PLANNING),
    Mutant("P12", "planning.py",
           'f"m{meeting.nr}@{sequence}"',
           'f"m{meeting.nr}@0"', PLANNING),
    Mutant("R1", "mail/render.py",
           '"\\x1f".join(intent.key)',
           '"\\x1f".join(intent.key[:2])', RENDER),
    Mutant("R2", "mail/render.py",
           'enabled_extensions=("html.j2",)',
           'enabled_extensions=("htm.j2",)', RENDER),
    Mutant("R3", "mail/render.py",
           'undefined=jinja2.StrictUndefined,',
           'undefined=jinja2.Undefined,', RENDER),
    Mutant("R4", "mail/render.py",
           'message["Auto-Submitted"] = "auto-generated"',
           'message["Auto-Submitted"] = "no"', RENDER),
    Mutant("R5", "mail/render.py",
           'return address.rpartition("@")[2].strip().lower() or "localh'
           'ost"',
           'return "localhost"', RENDER),
    Mutant("R6", "mail/render.py",
           'method="PUBLISH"',
           'method="REQUEST"', RENDER),
    Mutant("R7", "mail/render.py",
           'sequences = {m.nr: intent.sequence for m in dated}',
           'sequences = {m.nr: 0 for m in dated}', RENDER),
    Mutant("X1", "xlsx/refs.py",
           'return min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)',
           'return r1, c1, r2, c2', XLSX),
    Mutant("X2", "xlsx/refs.py",
           'return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b['
           '1] <= a[3]',
           'return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] '
           '< a[3]', XLSX),
    Mutant("X3", "xlsx/cells.py",
           'text = text.replace("&", "&amp;").replace(">", "&gt;").repla'
           'ce("<", "&lt;")',
           'text = text.replace(">", "&gt;").replace("<", "&lt;").replac'
           'e("&", "&amp;")', XLSX),
    Mutant("X4", "xlsx/cells.py",
           '    if len(text) > MAX_TEXT:',
           '    if len(text) > MAX_TEXT + 1:', XLSX),
    Mutant("X5", "xlsx/cells.py",
           'moment < _FAKE_LEAP_DAY_END else 0)',
           'moment <= _FAKE_LEAP_DAY_END else 0)', XLSX),
    Mutant("X6", "xlsx/cells.py",
           'text = _OOXML_ESCAPE.sub(r"_x005F_\\1", clean_text(text))',
           'text = clean_text(text)', XLSX),
    Mutant("X7", "xlsx/styles.py",
           '        if key not in self.xf_keys:',
           '        if True:', XLSX),
    Mutant("X8", "xlsx/tables.py",
           '    col = c2 + 1\n',
           '    col = c2 + 2\n', XLSX),
    Mutant("X9", "xlsx/tables.py",
           '    return r1, c1, row - 1, c2\n',
           '    return r1, c1, r2, c2\n', XLSX),
    Mutant("X10", "xlsx/tables.py",
           'if name is None or name.casefold() in taken or any(',
           'if name is None or any(', XLSX),
    Mutant("X11", "xlsx/calcchain.py",
           '    if kept == 0:\n        return None',
           '    if kept == -1:\n        return None', XLSX),
    Mutant("X12", "xlsx/package.py",
           'pr.get("date1904", "0").lower() in ("1", "true")',
           'pr.get("date1904", "0").lower() in ("1",)', XLSX),
    Mutant("X13", "xlsx/write.py",
           '        if _fingerprint(target) != before:',
           '        if False:', XLSX),
    Mutant("X14", "xlsx/write.py",
           'replace_atomically(target, tmp, backup_path(target) if backu'
           'p else None)',
           'replace_atomically(target, tmp, None)', XLSX),
    Mutant("X15", "xlsx/verify.py",
           '        ok = got is expected',
           '        ok = got == expected', XLSX),
    Mutant("X16", "xlsx/verify.py",
           '        return math.isclose(got, want, rel_tol=1e-12)',
           '        return math.isclose(got, want, rel_tol=1e-3)', XLSX),
    Mutant("X17", "xlsx/package.py",
           'for key in (lambda s: s, lambda s: s.strip().casefold(), loo'
           'se_key):',
           'for key in (lambda s: s,):', XLSX),
    Mutant("X18", "xlsx/files.py",
           '        path.with_name(f".~lock.{path.name}#"),  # LibreOffi'
           'ce\n',
           "", XLSX),
    Mutant("X20", "xlsx/sheet.py",
           'head = self._widen_dimension(head)',
           'head = head', XLSX),
    Mutant("X21", "xlsx/verify.py",
           'if sheet.start is not None and count != last_row + 1:',
           'if False:', XLSX),
    Mutant("R8", "mail/render.py",
           'message["X-Leergang-Mail"] = str(intent.kind)',
           'message["X-Leergang-Mail"] = "mail"', RENDER),
    Mutant("P13", "planning.py",
           'or recipient in state.bounced:',
           ':', PLANNING),
)


def run(mutant: Mutant) -> str:
    """Apply one mutant, run its tests, restore the file; 'killed', 'SURVIVED' or 'bad'."""
    source = ROOT / "leergang_ops" / mutant.path
    original = source.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        return "bad"  # the code moved on: the mutant no longer applies
    source.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
    try:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-n", "2", "-p", "no:cacheprovider",
             *mutant.tests], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        return "killed" if result.returncode != 0 else "SURVIVED"
    finally:
        source.write_text(original, encoding="utf-8")


def main(ids: list[str]) -> int:
    chosen = [m for m in MUTANTS if not ids or m.id in ids]
    outcomes = []
    for mutant in chosen:
        start = time.perf_counter()
        outcome = run(mutant)
        outcomes.append(outcome)
        print(f"{mutant.id:<4} {outcome:<8} {time.perf_counter() - start:5.1f} s", flush=True)
    killed = outcomes.count("killed")
    print(f"{killed} of {len(chosen)} killed")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
