"""Privacy fixtures: Privacy on a bare store, a started collector, a live uvicorn collector."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from privacy_kit import ADMIN, COLLECT, KEY, staff_accounts

from collector.privacy.operations import Privacy

STAFF_ACCOUNTS = staff_accounts()


@pytest.fixture
def privacy(store: Any) -> Privacy:
    p = Privacy(store, KEY, cleanup_timeout=30)
    p.load()
    return p


def collector_settings(store_dsn: str, **overrides: Any) -> Any:
    from collector.settings import CollectorSettings
    from consent_mw.config import Secret

    values: dict[str, Any] = {"store": store_dsn, "admin_token": Secret(ADMIN),
                              "collector_token": Secret(COLLECT), "hash_key": Secret(KEY.decode()),
                              "staff_users": STAFF_ACCOUNTS, "purge_interval": 0}
    values.update(overrides)
    return CollectorSettings(**values)


@pytest.fixture
def service(store_dsn: str) -> Iterator[Any]:
    from collector.service import CollectorService

    svc = CollectorService(collector_settings(store_dsn))
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def client(service: Any) -> Any:
    from starlette.testclient import TestClient

    return TestClient(service.app, raise_server_exceptions=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(store_dsn: str) -> Iterator[Any]:
    """A collector served by uvicorn in this process (which owns the chDB directory)."""
    import uvicorn

    from collector.service import CollectorService

    svc = CollectorService(collector_settings(store_dsn))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(svc.app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    svc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]  # for the tests
    try:
        yield svc
    finally:
        server.should_exit = True
        thread.join(30)
