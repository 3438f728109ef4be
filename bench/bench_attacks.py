"""Memory under the trust-boundary attacks: each server in its own process (uvicorn with
httptools), its peak RSS (VmHWM) read from /proc before and after.

    python bench/bench_attacks.py [--python PATH]

``--python`` runs the servers with another interpreter (another checkout's venv), for
before/after figures; the attacks are the same. tests/security/test_memory.py asserts the
bounds; this prints the numbers for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.procfs import free_port, memory_mib


async def many(url: str, count: int, concurrency: int,
               vary: Callable[[int], dict[str, str]] | None = None,
               **kw: object) -> dict[int, int]:
    """``count`` requests, ``concurrency`` at a time; ``vary(n)`` adds headers per request."""
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(n: int) -> None:
            # A list of pairs, not a dict: some attacks repeat a header thousands of times.
            headers = [*httpx.Headers(kw.get("headers")).multi_items(),  # type: ignore[arg-type]
                       *(vary(n) if vary else {}).items()]
            args = {k: v for k, v in kw.items() if k != "headers"}
            async with sem:
                try:
                    code = (await client.request(url=url, headers=headers,
                                                 **args)).status_code  # type: ignore[arg-type]
                except httpx.HTTPError:
                    code = 0
                statuses[code] = statuses.get(code, 0) + 1

        await asyncio.gather(*(one(n) for n in range(count)))
    return statuses


async def raw_many(port: int, head: bytes, count: int, concurrency: int) -> dict[int, int]:
    """``count`` GETs of the raw request head ``head`` over plain sockets: building tens of
    thousands of headers per request in an HTTP client would time the client, not the
    server."""
    statuses: dict[int, int] = {}
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head)
                await writer.drain()
                line = await reader.readline()
                code = int(line.split()[1]) if line.startswith(b"HTTP/") else 0
            finally:
                writer.close()
            statuses[code] = statuses.get(code, 0) + 1

    await asyncio.gather(*(one() for _ in range(count)))
    return statuses


def request_head(cookie: str, lines: list[str]) -> bytes:
    return ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "")
            + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode("latin-1")


def consented_cookie(base: str) -> str:
    """The cookies of a visitor who accepted analytics: their pages are captured in full."""
    r = httpx.post(base.rstrip("/") + "/_consent", json={"action": "accept_all"},
                   headers={"Origin": base.rstrip("/")})
    r.raise_for_status()
    return "; ".join(f"{k}={v}" for k, v in r.cookies.items())


def run(name: str, command: list[str], ready: Callable[[subprocess.Popen[str]], None],
        attack: Callable[[], dict[int, int]], env: dict[str, str] | None = None) -> None:
    proc = subprocess.Popen(command, cwd=HERE.parent, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        ready(proc)
        time.sleep(0.5)
        before = memory_mib(proc.pid, "VmHWM")
        started = time.perf_counter()
        statuses = attack()
        seconds = time.perf_counter() - started
        after = memory_mib(proc.pid, "VmHWM")
        print(f"{name:58s} peak {before:7.0f} -> {after:7.0f} MiB  (+{after - before:6.0f})"
              f"  {seconds:5.1f} s  statuses {dict(sorted(statuses.items()))}", flush=True)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    py = args.python

    def line_ready(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        if "ready" not in proc.stdout.readline():
            raise RuntimeError("server did not start")

    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    gpc = "1" * (256 * 1024 - 8)
    run("1,024 requests, distinct 256 KB Sec-GPC values (web)",
        [py, str(HERE / "attack_servers.py"), "web", str(port)], line_ready,
        lambda: asyncio.run(many(web, 1024, 16, method="GET",
                                 vary=lambda n: {"sec-gpc": f"{gpc}{n:08d}"})))
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    run("400 consented requests, 1 MB header, collector stalled (web)",
        [py, str(HERE / "attack_servers.py"), "web", str(port)], line_ready,
        lambda: asyncio.run(many(web, 400, 8, method="GET", headers={
            "x-padding": "p" * 1024 * 1024, "cookie": consented_cookie(web)})))
    port = free_port()
    names = [f"x-{n:04d}-{'n' * 90}:" for n in range(2000)]
    run("1,000 consented requests of 2,000 empty 100-byte-name headers, stalled (web)",
        [py, str(HERE / "attack_servers.py"), "web", str(port)], line_ready,
        lambda: asyncio.run(raw_many(port, request_head(
            consented_cookie(f"http://127.0.0.1:{port}"), names), 1000, 8)))
    port = free_port()
    run("300 consented requests of 20,000 empty Referer headers, flowing (web)",
        [py, str(HERE / "attack_servers.py"), "web-flowing", str(port)], line_ready,
        lambda: asyncio.run(raw_many(port, request_head(
            consented_cookie(f"http://127.0.0.1:{port}"), ["Referer:"] * 20_000), 300, 4)))
    port = free_port()
    run("one request of 70,000 Sec-GPC headers, timed (web)",
        [py, str(HERE / "attack_servers.py"), "web", str(port)], line_ready,
        lambda: asyncio.run(raw_many(port, request_head("", ["Sec-GPC: 1"] * 70_000), 1, 1)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    run("40 concurrent wrong logins (dashboards)",
        [py, str(HERE / "attack_servers.py"), "dashboards", str(port)], line_ready,
        lambda: asyncio.run(many(base + "/dashboards/login", 40, 40, method="POST",
                                 data={"username": "marketing", "password": "wrong"},
                                 headers={"Origin": base})))
    raw = b'{"schema":"consent-mw/1","events":[' + b"{}," * 2_700_000 + b"{}]}"
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = comp.compress(raw) + comp.flush()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"

        def collector_ready(proc: subprocess.Popen[str]) -> None:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    time.sleep(0.2)
            raise RuntimeError("collector did not start")

        run(f"4 concurrent {len(bomb) // 1024} KB gzip bodies of 2.7M objects (collector)",
            # The console script, not a module path: --python may be an older checkout's.
            [str(Path(py).parent / "consent-mw"), "collector", "--port", str(port), "--store",
             f"chdb://{tmp}/store", "--log-level", "warning"], collector_ready,
            lambda: asyncio.run(many(base + "/v1/events", 8, 4, method="POST", content=bomb,
                                     headers={"Authorization": "Bearer bench-token-0123456789",
                                              "Content-Encoding": "gzip",
                                              "Content-Type": "application/json"})),
            env={"CONSENT_MW_COLLECTOR_TOKEN": "bench-token-0123456789"})


if __name__ == "__main__":
    main()
