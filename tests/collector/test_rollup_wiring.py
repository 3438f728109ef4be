"""A started collector keeps the dashboards' daily rollup current by itself."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient
from support.wire import AUTH, batch_body, make_event

from collector.service import CollectorService
from collector.settings import CollectorSettings

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


def refreshed(service: Any, until: Callable[[], bool]) -> None:
    """Kick the rollup worker until ``until()`` holds. One kick is not enough to wait on: a
    refresh already running when the test posted ends after the kick and signals too."""
    worker = service.rollup_worker
    deadline = time.monotonic() + 30
    while not until():
        assert time.monotonic() < deadline, "the rollup worker never caught up"
        worker.refreshed.clear()
        worker.kick()
        worker.refreshed.wait(5)


def post_late(client: TestClient, ts_ms: int, visitors: list[str]) -> None:
    events = [make_event(ts=ts_ms, visitor_id=v, session_id=f"s-{v}") for v in visitors]
    r = client.post("/v1/events", content=batch_body(events, sent_at=ts_ms), headers=AUTH)
    assert r.status_code == 200, r.text


def test_the_collector_builds_late_days_marks_them_dirty_and_restamps_on_suppression(
        collector_settings: Callable[..., CollectorSettings]) -> None:
    service = CollectorService(collector_settings(rollup_interval=3600))
    service.start()
    try:
        client = TestClient(service.app, raise_server_exceptions=False)
        ts = int((time.time() - 2 * 86400) * 1000)  # a closed day: a spool replayed late
        day = dt.datetime.fromtimestamp(ts / 1000, TOKYO).date()
        post_late(client, ts, [f"{i:032x}" for i in range(6)])

        def built_with(n: int) -> bool:
            state = service.rollup.state().get(day)
            return state is not None and bool(state.build) and state.events == n

        refreshed(service, until=lambda: built_with(6))
        post_late(client, ts + 1000, ["f" * 32])
        assert service.rollup.state()[day].build == 0  # dirty: dashboards scan it raw
        refreshed(service, until=lambda: built_with(7))
        service.privacy.suppress(visitor_id="0" * 32)  # the listener kicks the worker
        deadline = time.monotonic() + 30
        stamp = int(service.store.scalar("SELECT max(version) FROM suppressions"))
        while service.rollup.state()[day].stamp != stamp and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service.rollup.state()[day].stamp == stamp
    finally:
        service.stop()


def test_rollup_interval_zero_leaves_the_rollup_off(
        collector_settings: Callable[..., CollectorSettings]) -> None:
    service = CollectorService(collector_settings(rollup_interval=0))
    service.start()
    try:
        assert getattr(service, "rollup", None) is None
        assert service.ingest.after_events == ()
    finally:
        service.stop()
