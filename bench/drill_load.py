"""A paced load generator for the fault drills: raw keep-alive HTTP/1.1 from one thread.

Request ``n`` is due at ``start + n / rate``; ``connections`` keep-alive connections take the
next due request as they come free, so a stalled server delays what follows and the
schedule catches up afterwards (the count is kept; the rate is a target). Every page
request goes to a path of its own, ``<prefix><n>``, with a consent cookie (the ``cookies``
in turn: one per visitor), so each 200 can be traced to its row, and with the headers
Chrome sends (``browser``; else only Host, User-Agent, Accept and Cookie). Every
``decision_every``-th request is instead a consent decision from a fresh visitor
(``POST /_consent``, accept all, from an address of its own so the per-address limit never
answers), which the middleware records as one consent record.

Asyncio streams on uvloop, a hand-written request and a minimal response parser: about
0.1 ms of CPU per request, so 1,250 req/s costs ~13 % of one core beside the servers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")
#: What Chrome sends with a page navigation besides Host, User-Agent and Cookie. The capture
#: queue charges a queued page its request headers (plus 128 bytes a header), so with these
#: a page weighs ~3 KB in the queue, as a real visitor's does, against ~1.4 KB without.
BROWSER_HEADERS = (
    'sec-ch-ua: "Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"\r\n'
    "sec-ch-ua-mobile: ?0\r\n"
    'sec-ch-ua-platform: "Windows"\r\n'
    "Upgrade-Insecure-Requests: 1\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,ja;q=0.8\r\n"
)
DECISION_BODY = json.dumps({"action": "accept_all"}).encode()
BLOCKED_AFTER = 1.0  # seconds: a request slower than this (or failed) counts as blocked


@dataclass(slots=True)
class Request:
    """One request as the load generator saw it (times are ``time.monotonic()``)."""

    n: int
    path: str
    kind: Literal["page", "decision"]
    scheduled: float
    sent: float = 0.0
    latency: float | None = None  # seconds from sending to the whole response read
    status: int | None = None
    error: str | None = None
    consent_id: str | None = None  # a decision's, from its JSON answer

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400

    @property
    def blocked(self) -> bool:
        return self.error is not None or self.latency is None or self.latency > BLOCKED_AFTER


class Load:
    """``rate`` requests a second to ``url`` over ``connections`` connections, from
    :meth:`start` to :meth:`stop`; :attr:`requests` holds every request sent."""

    def __init__(self, url: str, cookies: str | Sequence[str], rate: float, *,
                 connections: int = 32, prefix: str = "/d/", decision_every: int = 0,
                 timeout: float = 10.0, first: int = 0, browser: bool = True) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.cookies = [cookies] if isinstance(cookies, str) else list(cookies)
        self.rate = rate
        self.connections = connections
        self.prefix = prefix
        #: Every n-th request is a consent decision (0: none); may be changed while running.
        self.decision_every = decision_every
        self.timeout = timeout
        self.requests: list[Request] = []
        self.started = 0.0
        self.stopped = 0.0
        self._next = first
        self._first = first
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        extra = BROWSER_HEADERS if browser else "Accept: text/html\r\n"
        self._page_heads = [(f"Host: {self.host}:{self.port}\r\nUser-Agent: {UA}\r\n{extra}"
                             f"Cookie: {cookie}\r\n\r\n").encode() for cookie in self.cookies]

    # -- control, from the caller's thread ---------------------------------------------------

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="drill-load", daemon=True)
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> list[Request]:
        """Stop sending; wait for the requests in flight (at most ``timeout``)."""
        self._stopping = True
        if self._thread is not None:
            self._thread.join(self.timeout + 10)
        self.stopped = time.monotonic()
        if self._error is not None:
            raise RuntimeError("load generator failed") from self._error
        return self.requests

    @property
    def achieved_rate(self) -> float:
        """Requests answered per second, from start to stop (or now)."""
        end = self.stopped or time.monotonic()
        done = sum(1 for r in self.requests if r.latency is not None)
        return done / max(1e-9, end - self.started)

    @property
    def next_n(self) -> int:
        """The number the next request's path will carry (for a second Load to go on from)."""
        return self._next

    # -- the loop, in its own thread -----------------------------------------------------------

    def _run(self) -> None:
        loop: asyncio.AbstractEventLoop
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # uvloop comes with uvicorn[standard]
            loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported by stop()
            self._error = exc
        finally:
            loop.close()

    async def _main(self) -> None:
        await asyncio.gather(*(self._connection() for _ in range(self.connections)))

    async def _connection(self) -> None:
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        interval = 1.0 / self.rate
        while not self._stopping:
            n = self._next
            self._next = n + 1
            due = self.started + (n - self._first) * interval
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._stopping:
                    break
            every = self.decision_every
            if every and n % every == 0:
                req = Request(n, "/_consent", "decision", due)
                raw = self._decision(n)
            else:
                path = f"{self.prefix}{n}"
                req = Request(n, path, "page", due)
                heads = self._page_heads
                raw = b"GET " + path.encode() + b" HTTP/1.1\r\n" + heads[n % len(heads)]
            self.requests.append(req)
            try:
                async with asyncio.timeout(self.timeout):
                    if streams is None:
                        streams = await asyncio.open_connection(self.host, self.port)
                    req.sent = time.monotonic()
                    keep = await self._exchange(streams, raw, req)
                req.latency = time.monotonic() - req.sent
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                req.error = type(exc).__name__
                keep = False
            if not keep and streams is not None:
                streams[1].close()
                streams = None
        if streams is not None:
            streams[1].close()

    def _decision(self, n: int) -> bytes:
        address = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        return (f"POST /_consent HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"User-Agent: {UA}\r\nOrigin: {self.url}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(DECISION_BODY)}\r\nX-Forwarded-For: {address}\r\n\r\n"
                ).encode() + DECISION_BODY

    @staticmethod
    async def _exchange(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                        raw: bytes, req: Request) -> bool:
        """Send ``raw``, read the whole answer; whether the connection stays open."""
        reader, writer = streams
        writer.write(raw)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        req.status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            end = head.index(b"\r\n", at + 2)
            body = await reader.readexactly(int(head[at + 17:end]))
        elif b"\r\ntransfer-encoding: chunked" in head:
            body = await _chunked(reader)
        else:
            body = b""
        if req.kind == "decision" and req.status == 200:
            req.consent_id = json.loads(body).get("consent_id")
        return b"\r\nconnection: close" not in head


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])
