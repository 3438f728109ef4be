"""Request overhead of ConsentMiddleware in the shape sites deploy: bare app vs. wrapped.

uvicorn with httptools and uvloop (``uvicorn[standard]``), one worker pinned to CPU 0; wrk
(one thread) and, for the streaming variant, a real ``consent-mw collector`` process on CPU
1. Variants, run interleaved for several rounds (this VM drifts by several percent from
minute to minute), medians reported:

- ``bare``: the hello-world app, sent the same Cookie header as the consented runs (parsing
  a header costs the server too, so the ratio is the middleware's cost alone);
- ``bare, no cookie``: for reference;
- ``new visitor``: no cookie: the banner is injected, a ``shown`` record written, the marker
  cookie set, an anonymous count captured, on every request;
- ``consented, no capture``: a decided visitor, capture off: what consent alone costs (the
  cookie verified, the decision, ``Vary``);
- ``consented, discarding``: a decided visitor, captured in full into a transport that keeps
  only counts;
- ``consented, streaming``: the same, streaming to the collector over HTTP (plain JSON
  batches, since the collector is on this host: ``capture/http_body.py``; the collector
  validating, enriching and inserting into chDB on the other core).

Targets (issue 13): streaming >= 0.80x bare, discarding >= 0.85x, new visitor >= 0.60x,
consented p99 at most 1 ms above bare's. ``--parser h11`` gives the older, pure-Python
parser's figures for comparison.

Each variant also reports the CPU its processes used during the measured run, read from
``/proc``: the server's, per request (is its core the bound, and what does a request cost
it?), and the collector's share of the core it shares with wrk (is it starving wrk?). A second
table splits that CPU by thread, from ``/proc/<pid>/task``: the server's event loop against
capture's worker and sender; for the streaming run, the collector's Python threads against
chDB's merges and its other threads, per event. It also gives the server's garbage
collections per 100,000 requests and their pauses (``overhead_app.GcLog``): what the held
events cost the process beyond their own building; and the server's peak memory (VmHWM), the
price of what capture holds, beside its speed.

    python bench/bench_overhead.py [--duration 6] [--rounds 5] [--connections 32]
                                   [--parser httptools|h11] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.procfs import cpu_seconds, free_port, memory_mib, pinned, thread_cpu

TOKEN = "bench-collector-token-0123456789"


def wait_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def cpu_split(pid: int, before: dict[int, tuple[str, float]], requests: int,
              classify: Callable[[int, str], str]) -> dict[str, float]:
    """CPU µs per request spent since ``before`` by each class of ``pid``'s threads."""
    split: dict[str, float] = {}
    for tid, (name, seconds) in thread_cpu(pid).items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        key = classify(tid, name)
        split[key] = split.get(key, 0.0) + 1e6 * spent / max(1, requests)
    return split


def server_thread(pid: int) -> Callable[[int, str], str]:
    """The server's event loop runs in its main thread; capture's worker and sender in others."""
    return lambda tid, name: "loop_us" if tid == pid else "threads_us"


def collector_thread(_tid: int, name: str) -> str:
    """The collector's Python threads keep the interpreter's name; chDB names its own."""
    if name.startswith("python"):
        return "coll_python_us"
    return "coll_merges_us" if name.startswith("MergeMutate") else "coll_chdb_us"


def gc_figures(path: Path, requests: int) -> dict[str, float]:
    """The server's garbage collections per 100,000 requests, by generation, their pause time
    per request and the longest pause (``overhead_app.GcLog``); empty if it wrote none."""
    try:
        log = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    per = 100_000 / max(1, requests)
    return {"gc0": log["count"][0] * per, "gc1": log["count"][1] * per,
            "gc2": log["count"][2] * per,
            "gc_us": 1e6 * sum(log["seconds"]) / max(1, requests),
            "gc_longest_ms": 1e3 * log["longest"]}


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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(pinned(cmd, 1), capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "requests": total,
            "wrk_us": 1e6 * wrk_cpu / max(1, total)}


def serve(target: str, port: int, parser: str, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    factory = target.endswith((":streaming", ":floor"))
    cmd = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
           "--no-access-log", "--log-level", "warning", "--lifespan", "on", "--http", parser,
           "--loop", "uvloop" if parser == "httptools" else "asyncio",
           *(["--factory"] if factory else [])]
    return subprocess.Popen(pinned(cmd, 0), cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@contextmanager
def collector(tmp: Path) -> Iterator[tuple[str, int]]:
    """A real collector process on CPU 1 (with wrk), on a fresh embedded store."""
    port = free_port()
    cmd = [sys.executable, "-m", "consent_mw_cli", "collector", "--port", str(port),
           "--store", f"chdb://{tmp / 'store'}", "--log-level", "warning"]
    proc = subprocess.Popen(pinned(cmd, 1), cwd=ROOT, env={
        **os.environ, "CONSENT_MW_COLLECTOR_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)})
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=6, help="seconds per variant and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--parser", choices=("httptools", "h11"), default="httptools")
    ap.add_argument("--only", nargs="*", help="variant names to run (bare always runs)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")

    with tempfile.TemporaryDirectory() as tmp, collector(Path(tmp)) as (collector_url,
                                                                       collector_pid):
        stream_env = {"BENCH_COLLECTOR_URL": collector_url, "BENCH_COLLECTOR_TOKEN": TOKEN,
                      "BENCH_SPOOL_DIR": str(Path(tmp) / "spool")}
        # What the bare app is sent: the same bytes as a consented visitor's request.
        port = free_port()
        proc = serve("bench.overhead_app:wrapped", port, args.parser)
        try:
            wait_up(f"http://127.0.0.1:{port}/")
            cookie = consent_cookie(f"http://127.0.0.1:{port}")
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        variants = [
            ("bare", "bench.overhead_app:bare", cookie, None),
            ("bare, no cookie", "bench.overhead_app:bare", None, None),
            ("new visitor", "bench.overhead_app:wrapped", None, None),
            ("consented, no capture", "bench.overhead_app:consent_only", "fresh", None),
            ("consented, discarding", "bench.overhead_app:wrapped", "fresh", None),
            ("consented, streaming", "bench.overhead_app:streaming", "fresh", stream_env),
            # The least any capture costs (overhead_app.FloorMiddleware): the anchor.
            ("floor", "bench.overhead_app:floor", cookie, None),
        ]
        if args.only:
            variants = [v for v in variants if v[0] == "bare" or v[0] in args.only]
        runs: dict[str, list[dict[str, float]]] = {v[0]: [] for v in variants}
        for round_no in range(args.rounds):
            for name, target, sent_cookie, env in variants:
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                gc_log = Path(tmp) / f"gc-{round_no}-{name.replace(' ', '_')}.json"
                proc = serve(target, port, args.parser, {**(env or {}),
                                                         "BENCH_GC_LOG": str(gc_log)})
                try:
                    wait_up(base + "/")
                    if sent_cookie == "fresh":
                        # Decided just now, like a browser that keeps the cookies it is sent:
                        # wrk replays one Cookie header, so an old one would make every
                        # response re-issue the (once a minute) sliding session cookie.
                        sent_cookie = consent_cookie(base)
                    warm = run_wrk(base + "/", 1, args.connections, sent_cookie)
                    # taskset execs the server and the collector: their pids are theirs.
                    s0, c0, t0 = cpu_seconds(proc.pid), cpu_seconds(collector_pid), time.time()
                    threads0, coll0 = thread_cpu(proc.pid), thread_cpu(collector_pid)
                    run = run_wrk(base + "/", args.duration, args.connections, sent_cookie)
                    elapsed = time.time() - t0
                    server = cpu_seconds(proc.pid) - s0
                    run["server_cpu_pct"] = 100 * server / elapsed
                    run["server_us_per_req"] = 1e6 * server / max(1.0, run["rps"] * elapsed)
                    run["collector_cpu_pct"] = 100 * (cpu_seconds(collector_pid) - c0) / elapsed
                    served = int(run["requests"])
                    run |= cpu_split(proc.pid, threads0, served, server_thread(proc.pid))
                    run["peak_mib"] = memory_mib(proc.pid, "VmHWM")
                    if name == "consented, streaming":  # the collector's work is this run's
                        run |= cpu_split(collector_pid, coll0, served, collector_thread)
                        run["coll_peak_mib"] = memory_mib(collector_pid, "VmHWM")
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                run |= gc_figures(gc_log, served + int(warm["requests"]))
                runs[name].append(run)

    results = {name: {key: statistics.median(r[key] for r in rs)
                      for key in rs[0] if all(key in r for r in rs)}
               for name, rs in runs.items()}
    bare = results["bare"]
    print(f"uvicorn --http {args.parser}; median of {args.rounds} rounds of "
          f"{args.duration} s, {args.connections} connections")
    print(f"{'variant':<24} {'req/s':>9} {'x bare':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99 - bare':>10} {'server':>7} {'us/req':>7} {'collector':>9}   per round")
    for name, r in results.items():
        rounds = ", ".join(f"{x['rps']:.0f}" for x in runs[name])
        print(f"{name:<24} {r['rps']:>9.0f} {r['rps'] / bare['rps']:>7.2f} "
              f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['p99_ms'] - bare['p99_ms']:>+10.2f}"
              f" {r['server_cpu_pct']:>6.0f}% {r['server_us_per_req']:>7.1f}"
              f" {r['collector_cpu_pct']:>8.0f}%   {rounds}")
    print()
    print("where the CPU went, µs per request (median): the server's event loop and capture's")
    print("threads; the garbage collector's collections per 100,000 requests (young, middle, full),")
    print("its pauses per request and its longest; wrk's own CPU (it shares CPU 1 with the")
    print("collector); the collector's Python threads, chDB's merges and its other threads")
    print("(streaming only: one event per request); the server's peak RSS and, streaming, the")
    print("collector's since it started, in MiB")
    print(f"{'variant':<24} {'loop':>6} {'threads':>7} {'gc 0/1/2':>15} {'gc µs':>6} "
          f"{'longest':>8} {'wrk':>6} {'py':>6} {'merges':>6} {'chdb':>6} {'peak':>6} "
          f"{'coll.':>6}")
    for name, r in results.items():
        gcs = (f"{r['gc0']:.0f}/{r['gc1']:.0f}/{r['gc2']:.1f}" if "gc0" in r else "-")
        longest = f"{r['gc_longest_ms']:.1f} ms" if "gc_longest_ms" in r else "-"
        coll = " ".join(f"{r[k]:>6.1f}" if k in r else f"{'-':>6}"
                        for k in ("coll_python_us", "coll_merges_us", "coll_chdb_us",
                                  "peak_mib", "coll_peak_mib"))
        print(f"{name:<24} {r.get('loop_us', 0):>6.1f} {r.get('threads_us', 0):>7.1f} "
              f"{gcs:>15} {r.get('gc_us', 0):>6.2f} {longest:>8} {r['wrk_us']:>6.1f} {coll}")
    print(json.dumps({"bench": "overhead", "parser": args.parser, "median_of": args.rounds,
                      "results": results, "rounds": runs}))


if __name__ == "__main__":
    main()
