"""Benchmarks: `python bench/run.py` (add `--quick` for the 1,000-row size only).

Every figure is a ratio against a baseline measured in the same run on the same machine, as
whole processes (interpreter start and imports included), with the peak memory (max RSS) of
each process. Ours and the baseline run in seven pairs, back to back; the ratio is the median
of the seven pairs' ratios (best against best beside it). The times shown are the bests:

- validate ÷ a bare `pandas.read_excel(engine="calamine")` of the same sheet (target ≤ 1.5 at
  50,000 registrations);
- flag ÷ a plain openpyxl `load_workbook` + `save` of the same file (target ≤ 0.25 at 50,000),
  also on the shape Excel saves (shared strings, `Deelnemers` as an Excel table; the first
  flag adds the tool columns to the table);
- 1,000 confirmations end to end (plan, render, .ics, SMTP to a local aiosmtpd, ledger) ÷ a
  bare smtplib loop sending as many pre-built messages of the same size over one connection
  (target ≤ 1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.generate import make_workbook  # noqa: E402

SIZES = (1_000, 10_000, 50_000)
RUNS = 7  # pairs of runs; an odd number, so the median is one pair's ratio


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MiB) of one whole process."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed:\n{error}")
    return elapsed, usage.ru_maxrss / 1024


Measured = tuple[float, float, list[float]]  # best wall time (s), peak RSS (MiB), all times


def measure_pair(ours: list[str], base: list[str], env: dict[str, str] | None = None,
                 prepare: Callable[[], object] | None = None) -> tuple[Measured, Measured]:
    """Times and peak memory of ours and of the baseline, in RUNS pairs of back-to-back runs.

    This machine's speed drifts by tens of percent within a minute, so the two runs of a pair
    come right after each other, and the order alternates from pair to pair (ours first,
    then the baseline first, …) so that neither always gets the later moment.
    `prepare` runs before each of ours (e.g. a fresh copy of the workbook).
    """
    times: tuple[list[float], list[float]] = ([], [])
    peak = [0.0, 0.0]
    for pair in range(RUNS):
        for n in (0, 1) if pair % 2 == 0 else (1, 0):
            if n == 0 and prepare:
                prepare()
            elapsed, rss = run_once(ours if n == 0 else base, env if n == 0 else None)
            times[n].append(elapsed)
            peak[n] = max(peak[n], rss)
    return (min(times[0]), peak[0], times[0]), (min(times[1]), peak[1], times[1])


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def leergang(*args: str) -> list[str]:
    return [sys.executable, "-m", "leergang_ops", *args]


def row(label: str, ours: Measured, base: Measured, target: float | None) -> str:
    """One result line; `target` None where the issue sets no target for this size.

    The ratio (and the verdict) is the median of the pairs' ratios: each compares two runs
    made at the same moment. Best against best is printed beside it; the two bests may come
    from moments minutes apart, so on this machine that figure moves by a third between
    runs of the same code.
    """
    paired = statistics.median(o / b for o, b in zip(ours[2], base[2], strict=True))
    verdict = "" if target is None else (
        f"(target ≤ {target}) " + ("ok" if paired <= target else "OVER TARGET"))
    return (f"{label:<28} {ours[0]:8.2f} s {ours[1]:7.0f} MiB | baseline {base[0]:7.2f} s "
            f"{base[1]:6.0f} MiB | ratio {paired:5.2f} (best/best {ours[0] / base[0]:4.2f}) "
            f"{verdict}").rstrip()


def bench_workbook(size: int, folder: Path) -> list[str]:
    source = make_workbook(folder / f"bench-{size}.xlsx", size)
    read = python(f"import pandas; pandas.read_excel({str(source)!r}, "
                  f"sheet_name='Deelnemers', engine='calamine')")
    at_target_size = size == SIZES[-1]  # the targets are set for 50,000 registrations
    validate = leergang("validate", "--json", "--today", "2021-10-01", str(source))
    results = [row(f"validate {size:>6,}", *measure_pair(validate, read),
                   1.5 if at_target_size else None)]
    copy = folder / f"flag-{size}.xlsx"
    saved = folder / f"openpyxl-{size}.xlsx"
    plain = python(f"import openpyxl; openpyxl.load_workbook({str(source)!r})"
                   f".save({str(saved)!r})")
    env = {**os.environ, "LEERGANG_STATE": str(folder / f"state-{size}.sqlite")}
    # Each flag run starts from the unflagged copy, so every run writes the three columns.
    ours, base = measure_pair(leergang("flag", str(copy)), plain, env,
                              prepare=lambda: shutil.copy(source, copy))
    results.append(row(f"flag     {size:>6,}", ours, base, 0.25 if at_target_size else None))
    if at_target_size:
        results.append(bench_flag_table(size, folder))
    return results


def bench_flag_table(size: int, folder: Path) -> str:
    """flag on the shape Excel saves: shared strings, `Deelnemers` as an Excel table."""
    source = make_workbook(folder / f"bench-table-{size}.xlsx", size, table=True)
    copy = folder / f"flag-table-{size}.xlsx"
    saved = folder / f"openpyxl-table-{size}.xlsx"
    plain = python(f"import openpyxl; openpyxl.load_workbook({str(source)!r})"
                   f".save({str(saved)!r})")
    env = {**os.environ, "LEERGANG_STATE": str(folder / f"state-table-{size}.sqlite")}
    ours, base = measure_pair(leergang("flag", str(copy)), plain, env,
                              prepare=lambda: shutil.copy(source, copy))
    return row(f"flag     {size:>6,} (table)", ours, base, 0.25)


def _compile_package() -> None:
    """Byte-compile the package as `pip install` would, so imports are measured, not parsing.

    An editable install (and PYTHONDONTWRITEBYTECODE) leaves no .pyc files behind, while the
    baselines' libraries were compiled when they were installed.
    """
    import compileall

    compileall.compile_dir(str(HERE.parent / "leergang_ops"), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1,000-row size")
    parser.add_argument("--skip-mail", action="store_true", help="workbook benchmarks only")
    args = parser.parse_args()
    _compile_package()
    with tempfile.TemporaryDirectory(prefix="leergang-bench-") as tmp:
        folder = Path(tmp)
        for size in SIZES[:1] if args.quick else SIZES:
            for line in bench_workbook(size, folder):
                print(line, flush=True)
        if not args.skip_mail:
            from bench.mail import bench_mail

            for line in bench_mail(folder):
                print(line, flush=True)


if __name__ == "__main__":
    main()
