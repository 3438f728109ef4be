"""Privacy fixtures: Privacy on a bare store, and a collector served by uvicorn (the started
collector and its client are the shared fixtures of tests/conftest.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.privacy import KEY
from support.servers import free_port

from collector.privacy.operations import Privacy


@pytest.fixture
def privacy(store: Any) -> Privacy:
    p = Privacy(store, KEY, cleanup_timeout=30)
    p.load()
    return p


@pytest.fixture
def live(collector_settings: Callable[..., Any]) -> Iterator[Any]:
    """A collector served by uvicorn in this process (which owns the chDB directory)."""
    import uvicorn

    from collector.service import CollectorService

    svc = CollectorService(collector_settings())
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
