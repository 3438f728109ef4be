"""Dashboard fixtures: a seeded store, users of every role, and a logged-in test client."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from collector.accounts import demo_accounts
from dashboards.app import create_dashboards
from dashboards.backends import StoreBackend
from dashboards.settings import DashboardSettings

PASSWORD = "test-password-1"
TZ = dt.timezone(dt.timedelta(hours=9))
# Seeded data ends at a fixed instant so ranges are stable: 2026-06-30 12:00 JST.
END = int(dt.datetime(2026, 6, 30, 12, 0, tzinfo=TZ).timestamp())
RANGE = {"preset": "custom", "start": "2026-06-17", "end": "2026-06-30"}
ORIGIN = "http://testserver"


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed store holding 14 days of seeded traffic (20,000 events), built once.

    Seeding takes seconds; copying the closed directory takes milliseconds. A test module
    whose figures come from seeded traffic overrides ``store_dsn`` with :func:`seeded_dsn`,
    and each test still gets its own copy, so tests that write (purges, late events) stay
    independent.
    """
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store
    from dashboards.seed import seed

    path = tmp_path_factory.mktemp("seeded") / "store.chdb"
    store = Store(f"chdb://{path}")
    try:
        apply_migrations(store, DdlOptions())
        seed(store, 20_000, 14, rng_seed=7, end=END)
    finally:
        store.close()
    return path


def seeded_dsn(template: Path, tmp_path: Path) -> str:
    """A private copy of the seeded template, as a DSN for the ``store`` fixture."""
    copy = tmp_path / "seeded.chdb"
    # The Atomic database engine links tables into store/ with relative symlinks: keep them.
    shutil.copytree(template, copy, symlinks=True)
    return f"chdb://{copy}"


@pytest.fixture(scope="session")
def users() -> dict[str, Any]:
    return demo_accounts(PASSWORD)


@pytest.fixture
def settings(users: dict[str, Any]) -> DashboardSettings:
    return DashboardSettings(users=users, k=5)


@pytest.fixture
def app(store: Any, settings: DashboardSettings) -> Starlette:
    return Starlette(routes=[Mount("/dashboards",
                                   app=create_dashboards(settings, StoreBackend(store)))])


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.fixture
def login(client: TestClient) -> Callable[[str], TestClient]:
    def do(role: str) -> TestClient:
        r = client.post("/dashboards/login", data={"username": role, "password": PASSWORD},
                        headers={"Origin": ORIGIN})
        assert r.status_code == 303, r.text
        return client

    return do


def event(**kw: Any) -> dict[str, Any]:
    """One consented pageview row with sensible defaults; override any column."""
    row: dict[str, Any] = {
        "event_id": uuid.uuid4(), "ts": dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC),
        "kind": "pageview", "name": "pageview", "path": "/", "channel": "direct",
        "referrer_host": "", "visitor_id": "", "session_id": "", "consent_id": "",
        "user_id": "", "country": "JP", "browser": "Chrome", "os": "Windows",
        "device_type": "desktop", "search_terms": "",
    }
    row.update(kw)
    return row


def insert_events(store: Any, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    store.insert("events", [[r[c] for c in cols] for r in rows], cols)


def visitors(prefix: str, n: int, **kw: Any) -> list[dict[str, Any]]:
    """``n`` visitors with one session of one pageview each."""
    return [event(visitor_id=f"{prefix}{i:04d}".ljust(32, "0"), session_id=f"{prefix}s{i}",
                  consent_id=f"{prefix}c{i}", **kw) for i in range(n)]
