"""The dependency direction: consent_mw ← collector ← dashboards ← clinic ← consent_mw_cli.

Checked on the source, by parsing: imports, and the ``"module:attribute"`` strings that name
code to import later (the command line's table), which an import check alone cannot see.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from consent_mw_cli.main import EXTRA_MODULES

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["consent_mw", "collector", "dashboards", "clinic", "consent_mw_cli"]
#: What a web process must never need: a web framework (the middleware is pure ASGI, so any
#: can host it), and everything else the [collector] extra installs (the ClickHouse driver
#: and chDB alone are ~300 MiB RSS).
NOT_FOR_CONSENT_MW = EXTRA_MODULES | {
    "starlette", "fastapi", "clickhouse_connect", "chdb", "geoip2", "prometheus_client",
    "jsonschema", "jinja2", "yaml", "argon2", "plotly"}
#: The one exception, by file: the [metrics] extra, imported inside the endpoint only when
#: metrics_path is set (tests/test_packaging.py imports every module without it).
OPTIONAL_FOR_CONSENT_MW = {"consent_mw/consent/metrics.py": {"prometheus_client"}}


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


def test_consent_mw_imports_neither_starlette_nor_the_collectors_dependencies() -> None:
    offenders = {
        file: sorted(unwanted)
        for file, names in imported_top_levels("consent_mw").items()
        if (unwanted := (names & NOT_FOR_CONSENT_MW) - OPTIONAL_FOR_CONSENT_MW.get(file, set()))
    }
    assert offenders == {}


MODULE_ATTR = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


def module_attr_strings() -> list[tuple[str, str, str, str]]:
    """(file:line, package of the file, module, attribute) for every string in the code that
    reads as ``"module:attribute"``, and for the console scripts in pyproject.toml."""
    found: list[tuple[str, str, str, str]] = []
    for package in ORDER:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                    continue
                match = MODULE_ATTR.match(node.value)
                # "ip:unknown" is a key, not a reference: a reference's module is dotted or
                # names something importable.
                if match and ("." in match[1] or match[1] in ORDER
                              or importlib.util.find_spec(match[1]) is not None):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.append((where, package, match[1], match[2]))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for name, target in pyproject["project"]["scripts"].items():
        module, attr = target.split(":")
        found.append((f"pyproject.toml [project.scripts] {name}", ORDER[-1], module, attr))
    return found


def test_module_attr_strings_name_code_that_exists() -> None:
    found = module_attr_strings()
    assert any(where.startswith("consent_mw_cli/") for where, *_ in found)  # the scan works
    missing = []
    for where, _, module, attr in found:
        try:
            if not hasattr(importlib.import_module(module), attr):
                missing.append(f"{where}: {module} has no {attr}")
        except ImportError as exc:
            missing.append(f"{where}: {module}: {exc}")
    assert missing == []


def test_module_attr_strings_respect_the_dependency_direction() -> None:
    offenders = []
    for where, package, module, _ in module_attr_strings():
        head = module.split(".")[0]
        if head in ORDER and ORDER.index(head) > ORDER.index(package):
            offenders.append(f"{where}: {package} names {module}, a package above it")
        if package == "consent_mw" and head in NOT_FOR_CONSENT_MW:
            offenders.append(f"{where}: consent_mw names {module}")
    assert offenders == []


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
