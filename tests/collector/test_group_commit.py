"""Group commit: concurrent batches share one insert, each answered only once its rows are in."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.wire import AUTH, batch_body, make_event, make_record

from collector.ingest.result import IngestResult
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import StoreError


def count(service: CollectorService, table: str) -> int:
    return int(service.store.scalar(f"SELECT count() FROM {table}"))


class HeldInserts:
    """Wraps ``store.insert``: the first insert waits until released (then fails if told to);
    records the rows of every insert."""

    def __init__(self, service: CollectorService, *, fail_first: bool = False) -> None:
        self.service = service
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_first = fail_first
        self.rows: list[tuple[str, int]] = []
        self._real = service.store.insert
        self._first = True

    def insert(self, table: str, data: Sequence[Sequence[Any]], *args: Any, **kw: Any) -> int:
        if self._first:
            self._first = False
            self.entered.set()
            assert self.release.wait(30)
            if self.fail_first:
                raise StoreError("disk full")
        self.rows.append((table, len(data[0])))
        return self._real(table, data, *args, **kw)


@contextmanager
def held(service: CollectorService, monkeypatch: pytest.MonkeyPatch,
         fail_first: bool = False) -> Iterator[HeldInserts]:
    h = HeldInserts(service, fail_first=fail_first)
    monkeypatch.setattr(service.store, "insert", h.insert)
    try:
        yield h
    finally:
        h.release.set()


class Call(threading.Thread):
    """``fn()`` in a thread, keeping its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> Any:
        self.join(30)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.005)


def duplicates(service: CollectorService) -> float:
    for line in service.metrics.render().decode().splitlines():
        if line.startswith('consent_mw_collector_dropped_total{reason="duplicate"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def queued(service: CollectorService) -> int:
    assert service.ingest.inserter is not None
    return service.ingest.inserter.queued


def test_batches_arriving_during_an_insert_are_merged_into_the_next_one(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = [[make_event() for _ in range(3)] for _ in range(3)]
    with held(service, monkeypatch) as h:
        first = Call(lambda: service.ingest.process(batches[0]))
        assert h.entered.wait(30)
        others = [Call(lambda b=b: service.ingest.process(b, [make_record()]))  # type: ignore[misc]
                  for b in batches[1:]]
        wait_until(lambda: queued(service) == 2)
        assert all(c.is_alive() for c in (first, *others))
        h.release.set()
        results: list[IngestResult] = [c.outcome() for c in (first, *others)]
    assert [r.inserted_events for r in results] == [3, 3, 3]
    assert h.rows == [("events", 3), ("events", 6), ("consent_records", 2)]
    assert count(service, "events") == 9
    assert count(service, "consent_records") == 2


def test_a_block_never_exceeds_insert_max_rows(
    collector_settings: Callable[..., CollectorSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = CollectorService(collector_settings(insert_max_rows=5))
    svc.start()
    try:
        with held(svc, monkeypatch) as h:
            first = Call(lambda: svc.ingest.process([make_event()]))
            assert h.entered.wait(30)
            others = [Call(lambda: svc.ingest.process([make_event() for _ in range(3)]))
                      for _ in range(3)]
            wait_until(lambda: queued(svc) == 3)
            h.release.set()
            for c in (first, *others):
                c.outcome()
        assert [n for _, n in h.rows] == [1, 3, 3, 3]  # 3 + 3 > 5: one batch per insert
        assert count(svc, "events") == 10
    finally:
        svc.stop()


def test_a_failed_insert_fails_only_its_own_batches_and_they_can_be_retried(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = [make_event(), make_event()]
    later = [make_event(), make_event()]
    with held(service, monkeypatch, fail_first=True) as h:
        first = Call(lambda: service.ingest.process(doomed))
        assert h.entered.wait(30)
        second = Call(lambda: service.ingest.process(later))
        wait_until(lambda: queued(service) == 1)
        h.release.set()
        with pytest.raises(StoreError):
            first.outcome()
        assert second.outcome().inserted_events == 2
    assert count(service, "events") == 2
    retried = service.ingest.process(doomed)  # its ids were forgotten: the retry stores them
    assert (retried.inserted_events, retried.duplicates) == (2, 0)
    assert count(service, "events") == 4


def test_when_only_the_records_insert_fails_the_retry_stores_the_records_alone(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, records = [make_event(), make_event()], [make_record()]
    real = service.store.insert

    def records_fail(table: str, *args: Any, **kw: Any) -> int:
        if table == "consent_records":
            raise StoreError("disk full")
        return real(table, *args, **kw)

    monkeypatch.setattr(service.store, "insert", records_fail)
    with pytest.raises(StoreError):
        service.ingest.process(events, records)
    monkeypatch.setattr(service.store, "insert", real)
    retried = service.ingest.process(events, records)  # what the sender does after a 503
    assert (retried.duplicates, retried.inserted_records) == (2, 1)
    assert count(service, "events") == 2 and count(service, "consent_records") == 1


def test_a_replay_of_items_still_being_inserted_waits_and_fails_with_them(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sender that timed out and resent must not get 200 for rows that then fail to store.
    events = [make_event(), make_event()]
    with held(service, monkeypatch, fail_first=True) as h:
        first = Call(lambda: service.ingest.process(events))
        assert h.entered.wait(30)
        replay = Call(lambda: service.ingest.process(events))
        wait_until(lambda: duplicates(service) == 2)
        h.release.set()
        with pytest.raises(StoreError):
            first.outcome()
        with pytest.raises(StoreError):
            replay.outcome()
    assert count(service, "events") == 0
    assert service.ingest.process(events).inserted_events == 2


def test_a_replay_of_items_still_being_inserted_is_answered_once_they_are_stored(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [make_event(), make_event()]
    with held(service, monkeypatch) as h:
        first = Call(lambda: service.ingest.process(events))
        assert h.entered.wait(30)
        replay = Call(lambda: service.ingest.process(events))
        wait_until(lambda: duplicates(service) == 2)
        replay.join(0.5)
        assert replay.is_alive()  # still waiting for the first copy
        h.release.set()
        assert first.outcome().inserted_events == 2
        assert replay.outcome().duplicates == 2
    assert count(service, "events") == 2


def test_insert_failure_is_a_retryable_503_over_http(
    client: TestClient, service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = batch_body([make_event(), make_event()], [make_record()])
    real = service.store.insert

    def broken(*args: Any, **kw: Any) -> int:
        raise StoreError("disk full")

    monkeypatch.setattr(service.store, "insert", broken)
    r = client.post("/v1/events", content=body, headers=AUTH)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["error"] == "store_unavailable"
    monkeypatch.setattr(service.store, "insert", real)
    r = client.post("/v1/events", content=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["duplicates"] == 0
    assert count(service, "events") == 2 and count(service, "consent_records") == 1


def test_a_batch_replayed_after_a_restart_is_stored_once(
    collector_settings: Callable[..., CollectorSettings],
) -> None:
    # The sender never saw the first answer; the collector restarted (empty memory) meanwhile.
    body = batch_body([make_event(), make_event()], [make_record()],
                      batch_id=str(uuid.uuid4()))
    settings = collector_settings()
    answers = []
    for _ in range(2):
        svc = CollectorService(settings)
        svc.start()
        try:
            r = TestClient(svc.app).post("/v1/events", content=body, headers=AUTH)
            answers.append((r.status_code, r.json()["duplicates"]))
            stored = (count(svc, "events"), count(svc, "consent_records"))
        finally:
            svc.stop()
    assert answers == [(200, 0), (200, 3)]
    assert stored == (2, 1)


def test_an_insert_waits_for_a_batch_that_arrived_and_is_still_being_read(
    collector_settings: Callable[..., CollectorSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = CollectorService(collector_settings(insert_linger_ms=60_000))
    svc.start()
    try:
        h = HeldInserts(svc)
        h.release.set()
        monkeypatch.setattr(svc.store, "insert", h.insert)
        arrived = svc.ingest.expect()  # what POST /v1/events does before reading the body
        first = Call(lambda: svc.ingest.process([make_event()]))
        wait_until(lambda: queued(svc) == 1)
        svc.ingest.process([make_event(), make_event()], expected=arrived)
        assert first.outcome().inserted_events == 1
        assert h.rows == [("events", 3)]
    finally:
        svc.stop()


def test_a_batch_that_never_comes_does_not_hold_the_insert(
    collector_settings: Callable[..., CollectorSettings],
) -> None:
    svc = CollectorService(collector_settings(insert_linger_ms=60_000))
    svc.start()
    try:
        arrived = svc.ingest.expect()
        first = Call(lambda: svc.ingest.process([make_event()]))
        wait_until(lambda: queued(svc) == 1)
        arrived()  # e.g. the body was too large: nothing will come
        arrived()  # idempotent
        assert first.outcome().inserted_events == 1
        assert count(svc, "events") == 1
    finally:
        svc.stop()


@pytest.mark.parametrize(("warm_hours", "stored"), [(24, 3), (0, 5)])
def test_ids_stored_before_a_restart_are_remembered_unless_warming_is_off(
    collector_settings: Callable[..., CollectorSettings], warm_hours: int, stored: int
) -> None:
    # The replay shares its insert with a new event, so ClickHouse's own block-hash
    # deduplication cannot be what drops it: only the remembered ids can.
    first, again = [make_event(), make_event()], [make_event()]
    settings = collector_settings(dedupe_warm_hours=warm_hours)
    for batch in (first, first + again):
        svc = CollectorService(settings)
        svc.start()
        try:
            svc.ingest.process(batch)
            total = count(svc, "events")
        finally:
            svc.stop()
    assert total == stored


def test_batches_queued_when_the_collector_stops_are_stored_first(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    with held(service, monkeypatch) as h:
        first = Call(lambda: service.ingest.process([make_event()]))
        assert h.entered.wait(30)
        second = Call(lambda: service.ingest.process([make_event()]))
        wait_until(lambda: queued(service) == 1)
        stopping = Call(service.stop)
        h.release.set()
        stopping.outcome()
        assert first.outcome().inserted_events == second.outcome().inserted_events == 1
    assert [n for _, n in h.rows] == [1, 1]
    with pytest.raises(StoreError):
        service.ingest.process([make_event()])
