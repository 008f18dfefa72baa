"""The import graph holds the design: xlsx knows nothing of courses; the core imports no edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import leergang_ops

PACKAGE = Path(leergang_ops.__file__).parent
CORE = ("model", "allocation", "planning", "municipalities", "addresses")
EDGES = ("leergang_ops.workbook", "leergang_ops.xlsx", "leergang_ops.mail",
         "leergang_ops.ledger", "leergang_ops.ledger_location", "leergang_ops.run_lock",
         "leergang_ops.jobs", "leergang_ops.store", "leergang_ops.remote")


def module_name(path: Path) -> str:
    """leergang_ops/xlsx/sheet.py → leergang_ops.xlsx.sheet (a package is its __init__)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module the source imports anywhere: top level, functions, TYPE_CHECKING blocks.

    `from a import b` counts as both `a` and `a.b` (b may be a module); relative imports are
    resolved against `module`; importlib.import_module("…") with a literal counts too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value))
    return found


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def imports_of(path: Path) -> set[str]:
    return imports(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_the_scan_sees_imports_in_functions_type_checking_blocks_and_relative_ones() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from leergang_ops.ledger import Ledger\n"
        "def f():\n    import leergang_ops.jobs\n    from ..errors import InputError\n"
        "    from . import cells\n"
        "def g():\n    importlib.import_module('leergang_ops.mail.render')\n"
    )
    found = imports(source, "leergang_ops.xlsx.sheet")
    assert {"leergang_ops.ledger", "leergang_ops.jobs", "leergang_ops.errors",
            "leergang_ops.errors.InputError", "leergang_ops.xlsx.cells",
            "leergang_ops.mail.render"} <= found


def test_a_relative_import_in_a_package_init_resolves_against_the_package_itself() -> None:
    assert "leergang_ops.xlsx.write" in imports("from .write import write_cells\n",
                                                "leergang_ops.xlsx", is_package=True)


XLSX_MODULES = sorted((PACKAGE / "xlsx").glob("*.py"))


def test_the_xlsx_package_has_its_parts() -> None:
    names = {path.stem for path in XLSX_MODULES}
    assert {"write", "package", "zip", "cells", "sheet", "styles", "tables", "calcchain",
            "verify", "errors"} <= names


@pytest.mark.parametrize("path", XLSX_MODULES, ids=lambda path: path.name)
def test_xlsx_imports_nothing_of_the_course(path: Path) -> None:
    outside = sorted(name for name in imports_of(path)
                     if within(name, "leergang_ops") and not within(name, "leergang_ops.xlsx"))
    assert outside == []


@pytest.mark.parametrize("name", CORE)
def test_the_core_imports_no_edge(name: str) -> None:
    path = PACKAGE / f"{name}.py"
    assert path.exists(), f"core module {name} moved: update CORE"
    edges = sorted(found for found in imports_of(path)
                   if any(within(found, edge) for edge in EDGES))
    assert edges == []
