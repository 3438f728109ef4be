"""Against a real HTTP server: a collector outage under traffic loses and duplicates nothing,
and a spool left by a stopped process is replayed by the next one."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.capture import make_ctx
from support.servers import free_port

from consent_mw.capture.pipeline import Capture
from consent_mw.capture.spool import DiskSpool
from consent_mw.capture.transport import RetryPolicy
from consent_mw.config import Secret
from consent_mw.settings import Settings

pytestmark = pytest.mark.slow
TOKEN = "collector-token-0123456789"
QUICK = RetryPolicy(attempts=2, base=0.05, cap=1.0, max_inline_wait=0.5)


class FakeCollector:
    """Stores events by event_id (deduplicating, like the real one); 503 while 'down'."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self.batch_ids: list[str] = []
        self.answers: Counter[int] = Counter()
        self.down_until = 0.0
        self.app = Starlette(routes=[Route("/v1/events", self.ingest, methods=["POST"])])

    async def ingest(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if time.monotonic() < self.down_until:
            self.answers[503] += 1
            return JSONResponse({"error": "unavailable"}, status_code=503,
                                headers={"Retry-After": "1"})
        body = json.loads(gzip.decompress(await request.body()))
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
    fake = FakeCollector()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
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
