"""Hello-world ASGI apps for the request-overhead benchmark: bare, and wrapped by the middleware.

Run by uvicorn from bench_overhead.py: ``uvicorn bench.overhead_app:bare`` / ``:wrapped``.
The wrapped app captures into a transport that counts and discards batches, so the figure is
the middleware's own cost (consent decision, snapshot, queue, worker build), not a store's.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from typing import Any

from consent_mw import ConsentMiddleware
from consent_mw.capture.transport import SendResult, Suppressions
from consent_mw.config import Secret
from consent_mw.settings import Settings
from consent_mw.types import Receive, Scope, Send


class GcLog:
    """The garbage collector's work in this process, for ``bench_overhead.py``: collections and
    pause time per generation, written as JSON to ``path`` at shutdown. A callback that runs
    only when the collector does, so it costs the requests nothing."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest = max(self.longest, took)

    def write(self) -> None:
        with open(self.path, "w", encoding="utf-8") as out:
            json.dump({"count": self.count, "seconds": self.seconds,
                       "longest": self.longest}, out)


GC_LOG = GcLog(os.environ["BENCH_GC_LOG"]) if os.environ.get("BENCH_GC_LOG") else None

PAGE = (
    b"<!doctype html><html lang='en'><head><title>hello</title></head>"
    b"<body><h1>Hello, world</h1><p>A small page.</p></body></html>"
)


async def bare(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if GC_LOG is not None:
                    GC_LOG.write()
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(PAGE)).encode())],
    })
    await send({"type": "http.response.body", "body": PAGE})


class CountingTransport:
    """Accepts every batch and keeps only counts."""

    def __init__(self) -> None:
        self.events = 0
        self.batches = 0

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        self.events += len(events)
        self.batches += 1
        return SendResult()

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        return None

    def close(self) -> None:
        print(f"[overhead_app] transport received {self.events} events "
              f"in {self.batches} batches", flush=True)


settings = Settings(secret_keys=(Secret("bench-secret-key-0123456789abcdef"),),
                    policy_text="bench policy")
wrapped = ConsentMiddleware(bare, settings=settings, transport=CountingTransport())
#: The same without capture (no transport, no collector): what consent alone costs a page,
#: the cookie read and verified, the decision, ``Vary`` added. ``bench_overhead.py`` runs it
#: beside the discarding variant, to split consent's cost from capture's.
consent_only = ConsentMiddleware(bare, settings=settings)


#: The same, with the interaction beacon on: a consented visitor's page gets the script tag,
#: and ``POST /_consent/beacon`` takes reports (``bench/bench_beacon.py``).
with_beacon = ConsentMiddleware(bare, settings=dataclasses.replace(settings, beacon=True),
                                transport=CountingTransport())


def streaming() -> ConsentMiddleware:
    """The wrapped app streaming to a real collector over HTTP, as a deployed web process
    does: ``uvicorn --factory bench.overhead_app:streaming`` with BENCH_COLLECTOR_URL,
    BENCH_COLLECTOR_TOKEN and BENCH_SPOOL_DIR."""
    import os
    from pathlib import Path

    live = Settings(
        secret_keys=settings.secret_keys, policy_text=settings.policy_text,
        collector_url=os.environ["BENCH_COLLECTOR_URL"],
        collector_token=Secret(os.environ["BENCH_COLLECTOR_TOKEN"]),
        spool_dir=Path(os.environ["BENCH_SPOOL_DIR"]),
    )
    return ConsentMiddleware(bare, settings=live)


def streaming_to_dead_collector() -> ConsentMiddleware:
    """The wrapped app streaming to a collector that is down (a closed port), with a spool.

    ``uvicorn --factory bench.overhead_app:streaming_to_dead_collector``; the spool directory
    and its cap come from BENCH_SPOOL_DIR / BENCH_SPOOL_MAX_BYTES.
    """
    import os
    from pathlib import Path

    down = Settings(
        secret_keys=settings.secret_keys, policy_text=settings.policy_text,
        collector_url=os.environ.get("BENCH_COLLECTOR_URL", "http://127.0.0.1:9"),
        collector_token=Secret("bench-token"),
        spool_dir=Path(os.environ["BENCH_SPOOL_DIR"]),
        spool_max_bytes=int(os.environ.get("BENCH_SPOOL_MAX_BYTES", str(16 * 1024 * 1024))),
    )
    return ConsentMiddleware(bare, settings=down)


class FloorMiddleware:
    """The floor to compare with: a pure-ASGI middleware that does only what any capture must.

    It reads the Cookie and User-Agent, looks the cookie up in a dict, and at the response's
    start queues a tuple; a worker thread turns each into a dict and encodes the batch with
    orjson, once per 1,000. No consent, no signature, no scrubbing, no bounds: not a design,
    a measure of what the interpreter charges for the least a page view can cost
    (``bench_instructions.py``; ``uvicorn --factory bench.overhead_app:floor``).
    """

    def __init__(self, app: Any) -> None:
        import threading
        from collections import deque

        self.app = app
        self.queue: deque[tuple[Any, ...]] = deque()
        self.ids: dict[bytes, str] = {}
        self.queued = self.encoded = 0  # items, for flush()
        self.wake = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        import orjson

        while True:
            with self.wake:
                self.wake.wait(1.0)
            items = [self.queue.popleft() for _ in range(len(self.queue))]
            orjson.dumps([{"ts": ts, "path": path, "query": query.decode("latin-1"),
                           "status": status, "visitor_id": vid, "ua": ua.decode("latin-1")}
                          for ts, path, query, status, vid, ua in items])
            self.encoded += len(items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = ua = b""
        for key, value in scope["headers"]:
            if key == b"cookie":
                cookie = value
            elif key == b"user-agent":
                ua = value
        vid = self.ids.get(cookie)
        if vid is None:
            vid = self.ids[cookie] = cookie[:16].decode("latin-1")

        def queued(message: Any) -> Any:
            if message["type"] == "http.response.start":
                self.queue.append((time.time_ns() // 1_000_000, scope["path"],
                                   scope["query_string"], message["status"], vid, ua))
                self.queued += 1
                if len(self.queue) % 1000 == 0:
                    with self.wake:
                        self.wake.notify()
            return send(message)

        await self.app(scope, receive, queued)

    def flush(self) -> None:
        """Encode everything queued now (the bench counts the worker's share)."""
        while self.encoded < self.queued:
            with self.wake:
                self.wake.notify()
            time.sleep(0.001)


def floor() -> FloorMiddleware:
    return FloorMiddleware(bare)
