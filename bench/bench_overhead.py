"""Request overhead of ConsentMiddleware: bare app vs. wrapped, in the same run.

Starts uvicorn (one worker, pinned to CPU 0) for each variant and loads it with wrk from a
separate process (pinned to CPU 1). Variants: bare app; wrapped with no consent decision
(banner injected, anonymous count captured); wrapped with a consented visitor (full capture).
The bare app gets the same requests as the consented one (the same Cookie header), so the
ratio is the middleware's cost alone; "bare, no cookie" is shown for reference. Variants run
interleaved for several rounds and the median is reported, because this VM's throughput
drifts by several percent from minute to minute. Target: consented >= 0.85x bare.

    python bench/bench_overhead.py [--duration 5] [--rounds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def pinned(cmd: list[str], cpu: int) -> list[str]:
    return (["taskset", "-c", str(cpu)] if shutil.which("taskset") else []) + cmd


def consent_cookie(base: str) -> str:
    """Accept all through the real endpoint and return the Cookie header it results in."""
    req = urllib.request.Request(
        base + "/_consent", data=json.dumps({"action": "accept_all"}).encode(),
        headers={"Content-Type": "application/json", "Origin": base}, method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        cookies = [h.split(";", 1)[0] for h in resp.headers.get_all("Set-Cookie") or []]
    if not cookies:
        raise SystemExit("accept_all set no cookie")
    return "; ".join(cookies)


def run_wrk(url: str, duration: int, connections: int, cookie: str | None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    if cookie:
        cmd[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(pinned(cmd, 1), capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99")}


def serve(target: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
           "--no-access-log", "--log-level", "warning", "--lifespan", "on"]
    return subprocess.Popen(pinned(cmd, 0), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def accepted_cookie() -> str:
    """A real accept-all cookie, from a wrapped server started for that alone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve("bench.overhead_app:wrapped", port)
    try:
        wait_up(base + "/")
        return consent_cookie(base)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per variant and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")

    cookie = accepted_cookie()  # what the bare app is sent: the same bytes as consented
    variants = (
        ("bare", "bench.overhead_app:bare", cookie),
        ("bare, no cookie", "bench.overhead_app:bare", None),
        ("no-decision", "bench.overhead_app:wrapped", None),
        ("consented", "bench.overhead_app:wrapped", "fresh"),
    )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    for _ in range(args.rounds):
        for name, target, sent_cookie in variants:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            proc = serve(target, port)
            try:
                wait_up(base + "/")
                if sent_cookie == "fresh":
                    # Decided just now, like a browser that keeps the cookies it is sent:
                    # wrk replays one Cookie header, so an old one would make every
                    # response re-issue the (once a minute) sliding session cookie.
                    sent_cookie = consent_cookie(base)
                run_wrk(base + "/", 1, args.connections, sent_cookie)  # warm-up
                runs[name].append(run_wrk(base + "/", args.duration, args.connections,
                                          sent_cookie))
            finally:
                proc.terminate()
                proc.wait(timeout=15)

    results = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
               for name, rs in runs.items()}
    bare_rps = results["bare"]["rps"]
    print(f"{'variant':<16} {'req/s':>10} {'x bare':>7} {'p50 ms':>8} {'p99 ms':>8}   per round")
    for name, r in results.items():
        rounds = ", ".join(f"{x['rps']:.0f}" for x in runs[name])
        print(f"{name:<16} {r['rps']:>10.0f} {r['rps'] / bare_rps:>7.2f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}   {rounds}")
    print(json.dumps({"bench": "overhead", "median_of": args.rounds, "results": results,
                      "rounds": runs}))


if __name__ == "__main__":
    main()
