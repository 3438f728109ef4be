"""What a web process gets from ``pip install consent-mw`` without the ``[collector]`` extra.

The missing extra is simulated in a subprocess by an import hook that refuses every module the
extra installs, so these run in seconds instead of building a fresh virtualenv. (The real
check, a fresh venv with ``pip install <checkout>``, is what the hook stands in for.)
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from click.testing import CliRunner

from consent_mw_cli.main import COMMANDS, EXTRA_MODULES, INSTALL_EXTRA, main

ROOT = Path(__file__).resolve().parent.parent
WEB_VERBS = sorted(name for name, verb in COMMANDS.items() if not verb.needs_extra)

WITHOUT_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = frozenset(sys.argv[1].split(","))


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""

RUN_CLI = WITHOUT_EXTRA + """
from consent_mw_cli.main import main

main(args=sys.argv[2:], prog_name="consent-mw")
"""

IMPORT_CONSENT_MW = WITHOUT_EXTRA + """
import importlib
import pkgutil

import consent_mw

for module in pkgutil.walk_packages(consent_mw.__path__, "consent_mw."):
    importlib.import_module(module.name)
print("imported", len(sys.modules))
"""


def without_extra(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(sorted(EXTRA_MODULES)), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "CONSENT_MW_STAFF_TOKEN": "t"})


def test_every_consent_mw_module_imports_without_the_extra() -> None:
    result = without_extra(IMPORT_CONSENT_MW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("imported")


def test_help_without_the_extra_lists_what_the_install_can_run() -> None:
    result = without_extra(RUN_CLI, "--help")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^  (\w+)\s", result.stdout.split("Commands:")[1], re.MULTILINE)
    assert listed == WEB_VERBS
    assert INSTALL_EXTRA in " ".join(result.stdout.split())


def test_a_collector_verb_without_the_extra_says_what_to_install_in_one_line() -> None:
    for args in (["collector", "--port", "8100"], ["demo"], ["dashboards", "--help"],
                 ["audit", "verify", "--store", "chdb:///nonexistent/store"]):
        result = without_extra(RUN_CLI, *args)
        assert result.returncode != 0, args
        assert result.stdout == "", args
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and INSTALL_EXTRA in lines[0], (args, result.stderr)


def test_a_web_verb_runs_without_the_extra() -> None:
    result = without_extra(RUN_CLI, "suppress", "--visitor-id", "a" * 32, "--reason", "test",
                           "--requested-by", "tester", "--url", "http://127.0.0.1:9")
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert len(lines) == 1 and "cannot reach the collector" in lines[0], result.stderr


def test_with_the_extra_every_verb_is_listed() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = re.findall(r"^  (\w+)\s", result.output.split("Commands:")[1], re.MULTILINE)
    assert listed == sorted(COMMANDS)
    assert INSTALL_EXTRA not in result.output


def test_extra_modules_are_the_collector_extra_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def dist(requirement: str) -> str:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        return re.sub(r"[-_.]+", "-", name).lower()

    modules: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for name in dists:
            modules.setdefault(dist(name), set()).add(module)
    extra = {dist(r) for r in project["optional-dependencies"]["collector"]}
    base = {dist(r) for r in project["dependencies"]}
    assert {d for d in extra if not modules.get(d, set()) & EXTRA_MODULES} == set()
    assert set().union(*(modules.get(d, set()) for d in extra)) >= EXTRA_MODULES
    assert {d for d in base if modules.get(d, set()) & EXTRA_MODULES} == set()
