"""Consent-layer fixtures: the host app under both frameworks, with an in-memory record sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.apps import APP_FACTORIES

from consent_mw.consent.records import MemorySink
from consent_mw.settings import Settings


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Host apps are Starlette; tests marked ``fastapi`` also run under a FastAPI app.

    The middleware sees the same ASGI either way, so a smoke set (the middleware module)
    is enough to catch a framework difference without doubling every consent test.
    """
    if "framework" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("fastapi") is not None
        metafunc.parametrize("framework", sorted(APP_FACTORIES) if both else ["starlette"])


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def make_client(
    framework: str, make_settings: Callable[..., Settings], sink: MemorySink
) -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient over the framework's app: ``make_client(**settings_overrides)``."""
    clients: list[TestClient] = []

    def build(*, base_url: str = "http://testserver", middleware_kwargs: dict[str, Any]
              | None = None, **overrides: Any) -> TestClient:
        settings = make_settings(**overrides)
        kwargs = {"record_sink": sink, **(middleware_kwargs or {})}
        app = APP_FACTORIES[framework](settings, **kwargs)
        client = TestClient(app, base_url=base_url, follow_redirects=False)
        clients.append(client)
        return client

    yield build
    for c in clients:
        c.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
