"""The dependency direction: consent_mw ← collector ← dashboards ← clinic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["consent_mw", "collector", "dashboards", "clinic"]


def imported_top_levels(package: str) -> dict[str, set[str]]:
    """Every top-level module each file of ``package`` imports, found by parsing, not running."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", ORDER)
def test_packages_import_only_packages_below_them(package: str) -> None:
    forbidden = set(ORDER[ORDER.index(package) + 1 :])
    offenders = {
        file: sorted(names & forbidden)
        for file, names in imported_top_levels(package).items()
        if names & forbidden
    }
    assert offenders == {}


def test_consent_mw_never_imports_the_clickhouse_driver() -> None:
    # A web process streaming to a collector must not pay for chDB (~300 MiB RSS).
    offenders = {
        file: sorted(names & {"chdb", "clickhouse_connect"})
        for file, names in imported_top_levels("consent_mw").items()
        if names & {"chdb", "clickhouse_connect"}
    }
    assert offenders == {}
