"""The package's own rules: one exception root, loggers named after their modules, the
environment read by Settings.from_env only, no web framework and no collector dependency,
and modules small enough to read."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import consent_mw
from consent_mw.errors import ConsentMWError

PACKAGE = Path(consent_mw.__file__).resolve().parent
FILES = sorted(PACKAGE.rglob("*.py"))
#: What a web process that only streams to a collector must not need.
FORBIDDEN = {"starlette", "fastapi", "clickhouse_connect", "chdb", "geoip2", "prometheus_client",
             "jsonschema", "jinja2", "yaml", "argon2", "plotly", "collector", "dashboards",
             "clinic"}
MAX_LINES = 300


def test_every_exception_derives_from_the_root() -> None:
    strays = []
    for info in pkgutil.walk_packages(consent_mw.__path__, "consent_mw."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                    and not issubclass(obj, ConsentMWError)):
                strays.append(f"{info.name}.{name}")
    assert strays == []


def test_no_framework_or_collector_dependency_is_imported() -> None:
    offenders = {}
    for path in FILES:
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & FORBIDDEN:
            offenders[path.name] = sorted(names & FORBIDDEN)
    assert offenders == {}


def test_loggers_are_named_after_their_modules() -> None:
    for path in FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "getLogger(" in line:
                assert "getLogger(__name__)" in line, f"{path.name}: {line.strip()}"


def test_the_environment_is_read_by_settings_from_env_only() -> None:
    # Source.load is the loader from_env reads through (the collector's settings share it).
    allowed = {("settings.py", "from_env"), ("config.py", "load")}
    readers = set()
    for path in FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"}:
                    readers.add((path.name, func.name))
        module_level = [n for n in tree.body if not isinstance(
            n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        for node in module_level:
            assert not any(isinstance(a, ast.Attribute) and a.attr in {"environ", "getenv"}
                           for a in ast.walk(node)), path.name
    assert readers <= allowed and ("settings.py", "from_env") in readers


def test_modules_stay_small_unless_they_say_why() -> None:
    long = [f"{path.relative_to(PACKAGE)}: {n}" for path in FILES
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert long == []


def test_the_public_api_is_declared_and_typed() -> None:
    assert set(consent_mw.__all__) == {"ConsentMiddleware", "Settings", "identify", "track"}
    assert all(hasattr(consent_mw, name) for name in consent_mw.__all__)
    assert (PACKAGE / "py.typed").is_file()
