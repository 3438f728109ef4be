"""Hello-world ASGI apps for the request-overhead benchmark: bare, and wrapped by the middleware.

Run by uvicorn from bench_overhead.py: ``uvicorn bench.overhead_app:bare`` / ``:wrapped``.
The wrapped app captures into a transport that counts and discards batches, so the figure is
the middleware's own cost (consent decision, snapshot, queue, worker build), not a store's.
"""

from __future__ import annotations

from typing import Any

from consent_mw import ConsentMiddleware
from consent_mw.config import Secret
from consent_mw.settings import Settings

PAGE = (
    b"<!doctype html><html lang='en'><head><title>hello</title></head>"
    b"<body><h1>Hello, world</h1><p>A small page.</p></body></html>"
)


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
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
             batch_id: str) -> None:
        self.events += len(events)
        self.batches += 1

    def close(self) -> None:
        print(f"[overhead_app] transport received {self.events} events "
              f"in {self.batches} batches", flush=True)


settings = Settings(secret_keys=(Secret("bench-secret-key-0123456789abcdef"),),
                    policy_text="bench policy")
wrapped = ConsentMiddleware(bare, settings=settings, transport=CountingTransport())
