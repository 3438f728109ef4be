"""docs/configuration.md names every CONSENT_MW_* variable the code reads, and no other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from collector.settings import CollectorSettings
from consent_mw.config import ENV_PREFIX, Source
from consent_mw.settings import Settings
from dashboards.settings import DashboardSettings

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["consent_mw", "collector", "dashboards", "clinic", "consent_mw_cli"]
# A full name, not a prefix the code completes (``CONSENT_MW_DASHBOARD_`` + field).
LITERAL = re.compile(r"\bCONSENT_MW_[A-Z0-9_]*[A-Z0-9]\b")
ROW = re.compile(r"^\| `(CONSENT_MW_[A-Z0-9_]+)` \|", re.MULTILINE)


def documented() -> list[str]:
    return ROW.findall((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"))


def read_through_sources(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every variable the three settings objects look up while being built."""
    seen: set[str] = set()
    raw = Source.raw

    def recording(self: Source, field: str) -> Any:
        seen.add(ENV_PREFIX + field.upper())
        return raw(self, field)

    monkeypatch.setattr(Source, "raw", recording)
    env = {"CONSENT_MW_SECRET_KEY": "k" * 40}
    for cls in (Settings, CollectorSettings, DashboardSettings):
        cls.from_env(env=env)
    return seen


def named_in_code() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= set(LITERAL.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_variable_the_code_reads_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    read = read_through_sources(monkeypatch) | named_in_code()
    assert len(read) > 50  # the recording saw the settings being built
    assert sorted(read - set(documented())) == []


def test_the_table_documents_nothing_the_code_does_not_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    read = read_through_sources(monkeypatch) | named_in_code()
    assert sorted(set(documented()) - read) == []


def test_each_variable_has_one_row() -> None:
    rows = documented()
    assert len(rows) == len(set(rows))
