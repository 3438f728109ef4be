"""Dashboard fixtures: a seeded store, users of every role, and a logged-in test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from support.dashboards import END, ORIGIN, PASSWORD

from collector.accounts import demo_accounts
from dashboards.app import create_dashboards
from dashboards.backends import StoreBackend
from dashboards.settings import DashboardSettings


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
