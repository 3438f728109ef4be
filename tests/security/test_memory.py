"""Findings 3, 4 and 5: no anonymous request makes a server hold unbounded memory. Each server
runs in its own process under uvicorn with httptools, and its peak RSS (VmHWM) is read from
/proc before and after the attack.

Stated bounds, with what the same attacks cost before the fixes:

==============================================  ==========  ============================
attack                                          bound       before
==============================================  ==========  ============================
1,024 requests, distinct 256 KB ``Sec-GPC``     +64 MiB     +263 MiB, held for a minute
400 consented requests with a 1 MB header,      +128 MiB    +407 MiB: every header list
collector stalled (capture's queue holds them)              held in the capture queue
1,000 consented requests of 2,000 empty headers +128 MiB    +420 MiB: names and per-header
with 100-byte names, collector stalled                      objects were not charged
300 consented requests of 20,000 empty Referer  +128 MiB    +410 MiB: the worker's template
headers, collector flowing                                  cache keyed on every header
40 concurrent wrong logins                      +400 MiB    +1.5 GiB (2.7 GiB reported)
8 gzip bodies of 2.7M empty objects, 4 at once  +160 MiB    +706 MiB (2.8 GiB reported)
==============================================  ==========  ============================
"""

from __future__ import annotations

import asyncio
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.servers import free_port, memory_mib, process, run_async, server_command

PASSWORD = "security-test-password-1"  # bench/attack_servers.py's accounts

pytestmark = pytest.mark.slow


def _grown(pid: int, before: float) -> float:
    return memory_mib(pid)[1] - before


async def _many(url: str, count: int, concurrency: int, *, method: str,
                headers: dict[str, str] | None = None,
                vary: Callable[[int], dict[str, str]] | None = None,
                **kw: Any) -> list[int]:
    """``count`` requests, ``concurrency`` at a time; ``vary(n)`` adds headers per request."""
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(n: int) -> int:
            async with sem:
                response = await client.request(method, url, headers={
                    **(headers or {}), **(vary(n) if vary else {})}, **kw)
                return response.status_code

        return list(await asyncio.gather(*(one(n) for n in range(count))))


def _consented(base: str) -> str:
    r = httpx.post(base + "/_consent", json={"action": "accept_all"}, headers={"Origin": base})
    r.raise_for_status()
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def test_oversized_sec_gpc_headers_leave_the_web_process_flat() -> None:
    port = free_port()
    with process(server_command("web", port)) as proc:
        url = f"http://127.0.0.1:{port}/"
        httpx.get(url)
        before = memory_mib(proc.pid)[1]
        gpc = "1" * (256 * 1024 - 8)
        statuses = run_async(_many(url, 1024, 16, method="GET",
                                     vary=lambda n: {"sec-gpc": f"{gpc}{n:08d}"}))
        assert set(statuses) == {200}
        grown = _grown(proc.pid, before)
        assert grown < 64, f"web process grew {grown:.0f} MiB"


def test_huge_headers_queued_for_a_stalled_collector_are_bounded_in_bytes() -> None:
    port = free_port()
    with process(server_command("web", port)) as proc:
        base = f"http://127.0.0.1:{port}"
        cookie = _consented(base)  # a consented visitor's pages are queued in full
        before = memory_mib(proc.pid)[1]
        statuses = run_async(_many(base + "/", 400, 8, method="GET", headers={
            "x-padding": "p" * (1024 * 1024), "cookie": cookie}))
        assert set(statuses) == {200}  # analytics never breaks the page
        grown = _grown(proc.pid, before)
        assert grown < 128, f"web process grew {grown:.0f} MiB"


async def _raw(port: int, head: bytes, count: int, concurrency: int) -> list[int]:
    """GETs sent over plain sockets: an HTTP client building thousands of headers per request
    would spend the time, not the server."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head)
                await writer.drain()
                return int((await reader.readline()).split()[1])
            finally:
                writer.close()

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _head(cookie: str, lines: list[str]) -> bytes:
    return ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Cookie: {cookie}\r\n" + "".join(f"{line}\r\n" for line in lines)
            + "\r\n").encode("latin-1")


@pytest.mark.parametrize("kind, lines, count", [
    ("web", [f"x-{n:04d}-{'n' * 90}:" for n in range(2000)], 1000),  # names, not values
    ("web-flowing", ["Referer:"] * 20_000, 300),  # repeats of a header the worker reads
])
def test_thousands_of_empty_headers_are_charged_for_what_they_hold(
        kind: str, lines: list[str], count: int) -> None:
    port = free_port()
    with process(server_command(kind, port)) as proc:
        cookie = _consented(f"http://127.0.0.1:{port}")
        before = memory_mib(proc.pid)[1]
        statuses = run_async(_raw(port, _head(cookie, lines), count, 8))
        assert set(statuses) == {200}
        grown = _grown(proc.pid, before)
        assert grown < 128, f"web process grew {grown:.0f} MiB"


def test_forty_concurrent_wrong_logins_stay_within_the_memory_bound() -> None:
    port = free_port()
    with process(server_command("dashboards", port)) as proc:
        base = f"http://127.0.0.1:{port}"
        httpx.get(base + "/dashboards/login")
        before = memory_mib(proc.pid)[1]
        statuses = run_async(_many(
            base + "/dashboards/login", 40, 40, method="POST",
            data={"username": "marketing", "password": "wrong"}, headers={"Origin": base}))
        grown = _grown(proc.pid, before)
        assert grown < 400, f"dashboards grew {grown:.0f} MiB"
        assert set(statuses) <= {401, 429, 503}
        # The account is locked now: even the right password waits, with no argon2 work.
        locked = httpx.post(base + "/dashboards/login", headers={"Origin": base},
                            data={"username": "marketing", "password": PASSWORD})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1


def test_gzip_bodies_of_millions_of_objects_leave_the_collector_flat(tmp_path: Path) -> None:
    port = free_port()
    token = "memory-test-collector-token-0123"
    raw = b'{"schema":"consent-mw/1","events":[' + b"{}," * 2_700_000 + b"{}]}"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = comp.compress(raw) + comp.flush()
    assert len(bomb) < 40_000
    command = [sys.executable, "-m", "consent_mw_cli", "collector", "--port", str(port),
               "--store", f"chdb://{tmp_path / 'store'}", "--log-level", "warning"]

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    with process(command, env={"CONSENT_MW_COLLECTOR_TOKEN": token}, ready=up) as proc:
        before = memory_mib(proc.pid)[1]
        statuses = run_async(_many(
            f"http://127.0.0.1:{port}/v1/events", 8, 4, method="POST", content=bomb,
            headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip",
                     "Content-Type": "application/json"}))
        assert set(statuses) == {413}
        grown = _grown(proc.pid, before)
        assert grown < 160, f"collector grew {grown:.0f} MiB"
