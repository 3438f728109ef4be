"""Against a real HTTP server: a collector outage under traffic loses and duplicates nothing,
and a spool left by a stopped process is replayed by the next one."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.capture import make_ctx
from support.servers import free_port, wait_for
from support.wire import make_record

from consent_mw.capture.pipeline import Capture
from consent_mw.capture.spool import DiskSpool
from consent_mw.capture.transport import RetryPolicy
from consent_mw.config import Secret
from consent_mw.settings import Settings

pytestmark = pytest.mark.slow
TOKEN = "collector-token-0123456789"
QUICK = RetryPolicy(base=0.05, cap=1.0, probe_every=0.1)


class FakeCollector:
    """Stores events by event_id (deduplicating, like the real one); 503 while 'down'."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.batch_ids: list[str] = []
        self.answers: Counter[int] = Counter()
        self.down_until = 0.0
        self.frozen = False  # answers nothing (as a SIGSTOPped process) until thawed
        self.app = Starlette(routes=[Route("/v1/events", self.ingest, methods=["POST"]),
                                     Route("/healthz", self.healthz, methods=["GET"])])

    async def healthz(self, request: Request) -> Response:
        await self.hold()
        return JSONResponse({"ok": True})

    async def hold(self) -> None:
        while self.frozen:
            await asyncio.sleep(0.01)

    async def ingest(self, request: Request) -> Response:
        await self.hold()
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if time.monotonic() < self.down_until:
            self.answers[503] += 1
            return JSONResponse({"error": "unavailable"}, status_code=503,
                                headers={"Retry-After": "1"})
        raw = await request.body()  # plain from a web process on this host, else gzip
        gzipped = request.headers.get("content-encoding") == "gzip"
        body = json.loads(gzip.decompress(raw) if gzipped else raw)
        with self.lock:
            self.batch_ids.append(body["batch_id"])
            for event in body["events"]:
                if event["event_id"] in self.events:
                    self.duplicates += 1
                else:
                    self.events[event["event_id"]] = event
        self.answers[200] += 1
        return JSONResponse({"accepted": len(body["events"]), "rejected": []})

    def seqs(self) -> list[int]:
        with self.lock:
            return sorted(e["properties"]["seq"] for e in self.events.values())


@pytest.fixture
def collector() -> Iterator[tuple[FakeCollector, str]]:
    with serve_collector() as served:
        yield served


@contextmanager
def serve_collector(port: int = 0) -> Iterator[tuple[FakeCollector, str]]:
    fake = FakeCollector()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def emit(capture: Capture, settings: Settings, seqs: range) -> None:
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    for seq in seqs:
        capture.custom(ctx, "tick", {"seq": seq})


def test_outage_under_traffic_loses_and_duplicates_nothing(
        collector: tuple[FakeCollector, str], tmp_path: Path,
        make_settings: Callable[..., Settings]) -> None:
    fake, url = collector
    settings = make_settings(collector_url=url, collector_token=Secret(TOKEN),
                             spool_dir=tmp_path / "spool", flush_interval=0.05, batch_size=50)
    capture = Capture(settings, retry=QUICK)
    capture.start()
    fake.down_until = time.monotonic() + 3.0
    total = 3000
    try:
        # traffic before, during and after the outage
        for start in range(0, total, 100):
            emit(capture, settings, range(start, start + 100))
            time.sleep(0.1)
        deadline = time.monotonic() + 15
        while len(fake.seqs()) < total and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        capture.shutdown(10)
    assert fake.answers[503] > 0, "the outage was not exercised"
    assert capture.stats()["spool_batches"] == 0
    assert fake.seqs() == list(range(total))  # nothing lost, nothing twice
    assert fake.duplicates == 0
    stats = capture.stats()
    assert stats["sent"] == total and sum(stats["dropped"].values()) == 0


def test_a_new_process_replays_the_spool_left_by_the_last_one(
        collector: tuple[FakeCollector, str], tmp_path: Path,
        make_settings: Callable[..., Settings]) -> None:
    fake, url = collector
    spool_dir = tmp_path / "spool"
    dead_url = f"http://127.0.0.1:{free_port()}"  # nobody listens: connection refused
    first = Capture(make_settings(collector_url=dead_url, collector_token=Secret(TOKEN),
                                  spool_dir=spool_dir, batch_size=10), retry=QUICK)
    first.start()
    emit(first, first.settings, range(25))
    first.shutdown(10)
    assert first.stats()["spooled"] == 25
    spooled_batches = {json.loads(gzip.decompress(p.read_bytes()))["batch_id"]
                       for p in spool_dir.iterdir()}
    assert len(spooled_batches) == 3

    second = Capture(make_settings(collector_url=url, collector_token=Secret(TOKEN),
                                   spool_dir=spool_dir, flush_interval=0.05), retry=QUICK)
    second.start()
    try:
        deadline = time.monotonic() + 10
        while len(fake.seqs()) < 25 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        second.shutdown(10)
    assert fake.seqs() == list(range(25))
    assert set(fake.batch_ids) == spooled_batches  # replayed under their original batch ids
    assert DiskSpool(spool_dir, 1 << 20).counts() == (0, 0, 0)


def test_a_frozen_collector_never_holds_the_queue(
        collector: tuple[FakeCollector, str], tmp_path: Path,
        make_settings: Callable[..., Settings]) -> None:
    """A collector that accepts connections and answers nothing (SIGSTOP) for longer than the
    queue can hold: the worker keeps draining into the spool, and nothing is lost."""
    fake, url = collector
    settings = make_settings(collector_url=url, collector_token=Secret(TOKEN),
                             spool_dir=tmp_path / "spool", flush_interval=0.05, batch_size=50,
                             queue_size=200, collector_read_timeout=0.3,
                             collector_connect_timeout=0.3)
    capture = Capture(settings, retry=QUICK)
    capture.start()
    total = 2000
    try:
        emit(capture, settings, range(0, 100))
        wait_for(lambda: len(fake.seqs()) == 100, 10, "the first events")
        fake.frozen = True
        for start in range(100, total, 100):  # 1,900 events over ~3 s: ten queues' worth
            emit(capture, settings, range(start, start + 100))
            time.sleep(0.15)
        assert capture.stats()["spooled"] > 0, "the stall was not exercised"
        assert capture.stats()["collector"] != "up"
        fake.frozen = False
        wait_for(lambda: len(fake.seqs()) == total, 20, "everything, after the thaw")
    finally:
        capture.shutdown(10)
    stats = capture.stats()
    assert stats["dropped"]["queue_full"] == 0 and sum(stats["dropped"].values()) == 0
    assert fake.seqs() == list(range(total))
    assert stats["spooled"] == 0 and stats["collector"] == "up"
    assert stats["last_sent_at"] is not None and time.time() - stats["last_sent_at"] < 30


def test_replay_starts_within_a_second_of_the_collector_answering_again(
        tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    port = free_port()  # nobody listens yet: connection refused
    settings = make_settings(collector_url=f"http://127.0.0.1:{port}",
                             collector_token=Secret(TOKEN), spool_dir=tmp_path / "spool",
                             flush_interval=0.05)
    # The backoff alone would wait up to a minute: only the health check can be this quick.
    capture = Capture(settings, retry=RetryPolicy(base=60.0, cap=60.0, probe_every=0.5))
    capture.start()
    try:
        emit(capture, settings, range(30))
        wait_for(lambda: capture.stats()["spooled"] == 30, 10, "the batch spooled")
        assert capture.stats()["collector"] == "unreachable"
        with serve_collector(port) as (fake, _):
            up = time.monotonic()
            wait_for(lambda: len(fake.seqs()) == 30, 10, "the replay")
            took = time.monotonic() - up
            assert fake.seqs() == list(range(30))
    finally:
        capture.shutdown(5)
    assert took < 1.5, f"replay started {took:.2f} s after the collector came back"


def test_a_collector_that_answers_but_fails_is_left_alone_for_its_retry_after(
        collector: tuple[FakeCollector, str], tmp_path: Path,
        make_settings: Callable[..., Settings]) -> None:
    fake, url = collector
    settings = make_settings(collector_url=url, collector_token=Secret(TOKEN),
                             spool_dir=tmp_path / "spool", flush_interval=0.05)
    fake.down_until = time.monotonic() + 60
    capture = Capture(settings, retry=QUICK)
    capture.start()
    try:
        emit(capture, settings, range(10))
        wait_for(lambda: fake.answers[503] >= 1, 10, "a 503")
        assert capture.stats()["collector"] == "failing"
        time.sleep(0.6)  # Retry-After: 1; probing a failing collector would send again
        assert fake.answers[503] == 1
        fake.down_until = 0.0
        wait_for(lambda: len(fake.seqs()) == 10, 10, "the replay after Retry-After")
    finally:
        capture.shutdown(5)


def test_drops_are_logged_once_per_reason_per_interval_with_their_counts(
        transport: Any, make_settings: Callable[..., Settings],
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(queue_size=10, drop_log_interval=0.5)
    capture = Capture(settings, transport=transport)  # not started: the queue only fills
    caplog.set_level(logging.INFO, logger="consent_mw.capture.counters")
    emit(capture, settings, range(500))
    lines = [r for r in caplog.records if "queue_full" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING  # the first drop, at once
    assert "dropped 1 items (queue_full)" in lines[0].getMessage()
    time.sleep(0.6)
    capture._counters.log_drops()  # what the sender does on each wake-up
    lines = [r.getMessage() for r in caplog.records if "queue_full" in r.getMessage()]
    assert len(lines) == 2 and "dropped 489 items (queue_full)" in lines[1]
    assert "490 since start" in lines[1]
    assert capture.stats()["dropped"]["queue_full"] == 490


def test_a_consent_record_is_queued_when_page_views_no_longer_are(
        transport: Any, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(queue_size=20)
    capture = Capture(settings, transport=transport)
    emit(capture, settings, range(30))
    assert capture.stats()["dropped"]["queue_full"] == 10
    capture.record(make_record())
    assert capture.stats()["dropped"]["queue_full"] == 10  # the record took the reserve
    capture.force_flush()
    assert len(transport.records) == 1 and len(transport.events) == 20
