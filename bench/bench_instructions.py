"""The middleware's cost per request in CPU instructions: a figure that does not move with the
machine's load.

    python bench/bench_instructions.py [--requests 5000]

Needs valgrind (``apt-get install valgrind``). Each variant runs in its own process under
callgrind with counting switched on only around its requests (``callgrind_control``): the
hello-world app of ``bench/overhead_app.py`` called straight through ASGI, no server, for
``--requests`` requests, then the capture worker drained, so what it builds is counted too
(callgrind counts every thread). Variants: ``bare``; ``settled``, a consented visitor with
capture off; ``consented``, captured into the discarding transport; ``new visitor``, no
cookie: the banner; and ``floor``, ``overhead_app.FloorMiddleware``: the least any capture
costs (read the cookie, queue a tuple, a worker encodes it). Printed: instructions per
request, and over bare.

Wall-clock benchmarks (``bench_overhead.py``) swing by 10–30 % between runs on a shared VM;
an instruction count repeats to within a fraction of a percent, so a change of a few hundred
instructions a request shows. It leaves out what a count cannot see (cache misses, the
server's own work), so it complements the req/s figures rather than replaces them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("bare", "floor", "settled", "consented", "new visitor")


def _child(variant: str, requests: int) -> None:
    """Run ``requests`` requests of ``variant``, counted (this process is under callgrind)."""
    sys.path.insert(0, str(ROOT))
    from starlette.testclient import TestClient

    from bench.overhead_app import CountingTransport, bare, floor, settings
    from consent_mw import ConsentMiddleware

    capturing = ConsentMiddleware(bare, settings=settings, transport=CountingTransport())
    app: Any = {"bare": bare, "floor": floor() if variant == "floor" else None,
                "settled": ConsentMiddleware(bare, settings=settings),
                "consented": capturing, "new visitor": capturing}[variant]
    r = TestClient(capturing).post("/_consent", json={"action": "accept_all"},
                                   headers={"Origin": "http://testserver"})
    cookie = "; ".join(f"{k}={v}" for k, v in r.cookies.items())
    if not cookie:
        raise SystemExit("accept_all set no cookie")
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk")]
    if variant != "new visitor":
        headers.append((b"cookie", cookie.encode()))

    async def main() -> None:
        capture = getattr(app, "capture", None)
        if capture is not None:
            capture.start()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        def scope() -> dict[str, Any]:
            # A fresh list and dict per request, as a server makes them.
            return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                    "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000),
                    "scheme": "http", "method": "GET", "root_path": "", "path": "/",
                    "raw_path": b"/", "query_string": b"", "headers": list(headers)}

        for _ in range(1000):  # warm every cache the middleware keeps
            await app(scope(), receive, send)
        if capture is not None:
            capture.force_flush()
        _switch("on")
        for _ in range(requests):
            await app(scope(), receive, send)
        if capture is not None:
            capture.force_flush()  # the worker's share: built events, batched
        if variant == "floor":
            app.flush()
        _switch("off")
        if capture is not None:
            capture.shutdown()

    asyncio.run(main())


def _switch(state: str) -> None:
    """Counting on or off for this process. callgrind_control exits 0 whatever happened, so
    a switch that failed shows as a count of nothing, which :func:`_count` refuses."""
    subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=False,
                   capture_output=True, timeout=60)


def _count(variant: str, requests: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--child", variant,
             "--requests", str(requests)],
            check=False, capture_output=True, text=True, cwd=ROOT, timeout=1800)
        if done.returncode:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise SystemExit(f"{variant}: the run failed ({done.returncode}): {tail}")
        totals = [int(line.split()[1]) for line in out.read_text().splitlines()
                  if line.startswith("totals:")]
    # Counting was switched on for the requests: at least what bare costs, ~10,000 each.
    if not totals or totals[-1] < 1000 * requests:
        raise SystemExit(f"{variant}: callgrind counted {totals[-1] if totals else 0} "
                         "instructions; was counting switched on (callgrind_control)?")
    return totals[-1] / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Well below the capture queue's 20,000 items, so no event is dropped uncounted.
    parser.add_argument("--requests", type=int, default=5000, choices=range(100, 9001),
                        metavar="100..9000")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.requests)
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench_instructions: needs valgrind (apt-get install valgrind)")
    counts = {v: _count(v, args.requests) for v in VARIANTS}
    print(f"instructions per request, {args.requests} requests each, called through ASGI:")
    for variant, n in counts.items():
        extra = "" if variant == "bare" else f"  (+{n - counts['bare']:,.0f} over bare)"
        print(f"  {variant:12} {n:9,.0f}{extra}")


if __name__ == "__main__":
    main()
