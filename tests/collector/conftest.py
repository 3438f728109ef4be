"""Collector fixtures: a started service on a fresh chDB store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from collector_testkit import GEOIP_CITY, TOKEN
from starlette.testclient import TestClient

from collector.service import CollectorService
from collector.settings import CollectorSettings
from consent_mw.config import Secret


@pytest.fixture
def collector_settings(store_dsn: str) -> Callable[..., CollectorSettings]:
    def build(**overrides: Any) -> CollectorSettings:
        values: dict[str, Any] = {"store": store_dsn, "geoip_db": GEOIP_CITY,
                                  "collector_token": Secret(TOKEN)}
        values.update(overrides)
        return CollectorSettings(**values)

    return build


@pytest.fixture
def service(collector_settings: Callable[..., CollectorSettings]) -> Iterator[CollectorService]:
    """A started collector on a fresh store, stopped (store closed) after the test."""
    svc = CollectorService(collector_settings())
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def client(service: CollectorService) -> Iterator[TestClient]:
    # No `with`: the service is already started and the fixture stops it.
    yield TestClient(service.app, raise_server_exceptions=False)
