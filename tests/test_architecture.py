"""The dependency direction of ARCHITECTURE.md: cli -> core, connectors; connectors -> core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"core": {"connectors", "cli"}, "connectors": {"cli"}}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_follow_the_dependency_direction(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found under {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package])
        for path in files
        if imported_packages(path) & FORBIDDEN[package]
    }
    assert offenders == {}


# core/http.py is named by ARCHITECTURE.md; inside the package it is only ever `core.http`.
NAMED_BY_ARCHITECTURE = {"core/http.py"}


def test_no_module_shadows_the_standard_library() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    shadows = [
        str(p.relative_to(ROOT))
        for pkg in ("core", "connectors", "cli")
        for p in (ROOT / pkg).rglob("*.py")
        if p.stem in stdlib and str(p.relative_to(ROOT)) not in NAMED_BY_ARCHITECTURE
    ]
    assert shadows == []
