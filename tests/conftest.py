"""Fixtures shared by every test area: fresh stores, settings, the one set of collector
fixtures (``collector_settings``, ``service``, ``client``), the mailbox and the browser.

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


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store with every migration applied, built once and closed.

    Fixtures that need a fresh store copy it (``support.stores.from_template``).
    """
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store

    path = tmp_path_factory.mktemp("migrated") / "store.chdb"
    template = Store(f"chdb://{path}")
    try:
        apply_migrations(template, DdlOptions())
    finally:
        template.close()
    return path


@pytest.fixture
def store(store_dsn: str, migrated_template: Path) -> Iterator[Any]:
    """A fresh, migrated embedded store, closed after the test."""
    from support.stores import from_template

    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store

    from_template(store_dsn, migrated_template)
    s = Store(store_dsn)
    apply_migrations(s, DdlOptions())  # a copy is current already: this checks it is
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="session")
def staff_users() -> dict[str, Any]:
    """The privacy tests' staff accounts, hashed once (argon2 costs ~0.1 s an account)."""
    from support.privacy import staff_accounts

    return staff_accounts()


@pytest.fixture
def collector_settings(store_dsn: str, staff_users: dict[str, Any]) -> Callable[..., Any]:
    """``collector_settings(**overrides)``: settings of a collector on this test's store, with
    every token, the hash key and the staff accounts the tests use."""
    from support.privacy import ADMIN, KEY
    from support.wire import GEOIP_CITY, TOKEN

    from collector.settings import CollectorSettings

    def build(**overrides: Any) -> CollectorSettings:
        values: dict[str, Any] = {
            "store": store_dsn, "geoip_db": GEOIP_CITY, "collector_token": Secret(TOKEN),
            "admin_token": Secret(ADMIN), "hash_key": Secret(KEY.decode()),
            "staff_users": staff_users,
            "purge_interval": 0,  # queued purges run back to back
        }
        values.update(overrides)
        return CollectorSettings(**values)

    return build


@pytest.fixture
def service(collector_settings: Callable[..., Any], store_dsn: str,
            migrated_template: Path) -> Iterator[Any]:
    """A started collector on a fresh store, stopped (store closed) after the test."""
    from support.stores import from_template

    from collector.service import CollectorService

    from_template(store_dsn, migrated_template)
    svc = CollectorService(collector_settings())
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def client(service: Any) -> Any:
    """A test client of the collector's app (areas with another app override ``client``)."""
    from starlette.testclient import TestClient

    # No `with`: the service is already started and the fixture stops it.
    return TestClient(service.app, raise_server_exceptions=False)


@pytest.fixture
def mailbox() -> Iterator[Any]:
    """The demo's SMTP server (``clinic.mailbox.Mailbox``), started on a free port."""
    from clinic.mailbox import Mailbox

    box = Mailbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()


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
