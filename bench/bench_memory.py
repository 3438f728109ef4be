"""Memory of a web process under load while its collector is down.

Serves the wrapped hello-world app streaming to a closed port (so every batch fails, is retried
and spools), loads it with wrk as a consented visitor, and samples the server's RSS every
second. Bounded means: RSS levels off (bounded queue, capped spool) instead of growing with the
number of requests. Also reports whether chDB or clickhouse-connect were imported (they must not
be: ~300 MiB per web process).

    python bench/bench_memory.py [--duration 60] [--spool-mb 16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_overhead import consent_cookie, wait_up
from bench.procfs import free_port, memory_mib, pinned

ROOT = Path(__file__).resolve().parent.parent


def dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--spool-mb", type=int, default=16)
    args = ap.parse_args()
    spool = Path(tempfile.mkdtemp(prefix="cmw-bench-spool-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_SPOOL_DIR": str(spool),
           "BENCH_SPOOL_MAX_BYTES": str(args.spool_mb * 2**20)}
    probe = ("import sys, uvicorn, bench.overhead_app as a; "
             "app = a.streaming_to_dead_collector(); "
             "print('chdb' in sys.modules or 'clickhouse_connect' in sys.modules)")
    heavy = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen(pinned([
        sys.executable, "-m", "uvicorn", "--factory",
        "bench.overhead_app:streaming_to_dead_collector", "--host", "127.0.0.1",
        "--port", str(port), "--no-access-log", "--log-level", "error"], 0), cwd=ROOT, env=env)
    samples: list[tuple[float, float]] = []
    try:
        wait_up(base + "/")
        cookie = consent_cookie(base)
        start_rss = memory_mib(proc.pid)
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.wait(1.0):
                samples.append((time.monotonic() - t0, memory_mib(proc.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out = subprocess.run(pinned(["wrk", "-t1", "-c16", f"-d{args.duration}s", "-H",
                                     f"Cookie: {cookie}", base + "/"], 1),
                             capture_output=True, text=True, check=True).stdout
        stop.set()
        sampler.join()
        requests = int(next(line.split()[0] for line in out.splitlines()
                            if "requests in" in line))
        spool_size = dir_mib(spool)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(spool, ignore_errors=True)

    rss = [r for _, r in samples]
    half = rss[len(rss) // 2:]
    print(f"requests served while the collector was down: {requests}")
    print(f"RSS MiB: start {start_rss:.1f}, max {max(rss):.1f}, end {rss[-1]:.1f}; "
          f"growth over the second half {half[-1] - half[0]:+.1f}")
    print(f"spool on disk at the end: {spool_size:.1f} MiB (cap {args.spool_mb} MiB)")
    print(f"chDB or clickhouse-connect imported by the web process: {heavy}")
    print(json.dumps({"bench": "memory", "requests": requests, "rss_start": start_rss,
                      "rss_max": max(rss), "rss_end": rss[-1], "spool_mib": spool_size,
                      "heavy_driver_imported": heavy == "True"}))


if __name__ == "__main__":
    main()
