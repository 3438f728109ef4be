"""Fixtures shared by every test area: fresh stores, settings, GeoIP data and the browser.

chDB allows one store path per process at a time, so each ``store`` is closed before the
next test opens its own fresh directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consent_mw.config import Secret
from consent_mw.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
GEOIP_DIR = ROOT / "tests" / "data" / "geoip"  # vendored: see its README
POLICY_FILE = SHARED / "design" / "clinic-privacy-policy.txt"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture
def secret_key() -> str:
    return SECRET


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Build middleware settings by keyword, with a test secret and no collector."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"secret_keys": (Secret(SECRET),), "policy_text": "policy v1"}
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def store_dsn(tmp_path: Path) -> str:
    return f"chdb://{tmp_path / 'store.chdb'}"


@pytest.fixture
def store(store_dsn: str) -> Iterator[Any]:
    """A fresh, migrated embedded store, closed after the test."""
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store

    s = Store(store_dsn)
    apply_migrations(s, DdlOptions())
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless chromium driven by Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
