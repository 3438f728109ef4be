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


#: What a web process that only streams to a collector must not need: a web framework (the
#: middleware is pure ASGI, so any framework can host it) and the collector's dependencies
#: (chDB alone costs ~300 MiB RSS).
NOT_FOR_CONSENT_MW = {
    "starlette", "fastapi", "chdb", "clickhouse_connect", "geoip2", "prometheus_client",
    "yaml", "argon2", "plotly", "ahocorasick", "jsonschema", "jinja2",
}


def test_consent_mw_needs_no_framework_and_no_collector_dependency() -> None:
    offenders = {
        file: sorted(names & NOT_FOR_CONSENT_MW)
        for file, names in imported_top_levels("consent_mw").items()
        if names & NOT_FOR_CONSENT_MW
    }
    assert offenders == {}


CLOCK_CALLS = {"now_ms", "time", "time_ns", "now", "today", "utcnow", "monotonic"}


def test_no_test_reads_the_clock_when_its_module_is_imported() -> None:
    """A time computed at import goes stale: a parameter meant to be "a minute in the future"
    is in the past when the test runs more than a minute later (it failed one run in three)."""
    offenders = []
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        at_import: list[ast.AST] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                at_import += [*node.decorator_list, *node.args.defaults]
            elif isinstance(node, ast.ClassDef):
                at_import += node.decorator_list
            else:
                at_import.append(node)
        for node in at_import:
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in CLOCK_CALLS:
                    offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert offenders == []
