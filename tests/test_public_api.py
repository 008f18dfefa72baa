"""The package's public names resolve, without slowing down the command's start."""

from __future__ import annotations

import subprocess
import sys

import leergang_ops


def test_every_public_name_resolves() -> None:
    for name in leergang_ops.__all__:
        assert getattr(leergang_ops, name) is not None


def test_importing_the_package_imports_no_heavy_module() -> None:
    code = ("import sys, leergang_ops, leergang_ops.cli; "
            "print(sorted(m for m in ('jinja2', 'icalendar', 'xlsxwriter', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_all_lists_exactly_the_lazy_names() -> None:
    assert leergang_ops.__all__ == ["__version__", *leergang_ops._API]
