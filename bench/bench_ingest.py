"""Ingest throughput: HTTP collector → validation → enrichment → chDB, vs. a raw insert.

1. Starts ``consent-mw collector`` (its own chDB directory) and posts gzip batches of realistic
   events (bench/workload.py) from 2 client threads; events/s = events stored / wall time.
2. In this process, on another chDB directory, inserts the same rows (enriched beforehand,
   untimed) with a raw column-oriented clickhouse-connect insert of the same batch size.
Prints both and the ratio. Target: end to end >= 50% of the raw insert rate.

    python bench/bench_ingest.py [--events 200000] [--batch 1000]
    python bench/bench_ingest.py --events 100000 --block-sizes 2000,5000,20000

The second form gives chDB's CPU a row by insert size, merges included: a part costs about
the same whatever its rows, which is why the web process sends batches of 5,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import workload
from bench.procfs import free_port
from collector.ingest.rows import event_row
from consent_mw.wire import encode_batch

ROOT = Path(__file__).resolve().parent.parent
GEOIP = ROOT / "tests" / "data" / "geoip" / "GeoIP2-City-Test.mmdb"
TOKEN = "bench-collector-token"


def post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip",
        "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()


def http_run(events: list[dict[str, object]], batch: int, workdir: Path) -> tuple[float, int]:
    port = free_port()
    env = {**os.environ, "CONSENT_MW_COLLECTOR_TOKEN": TOKEN,
           "CONSENT_MW_SECRET_KEY": "bench-secret-key-0123456789abcdef",
           "CONSENT_MW_GEOIP_DB": str(GEOIP)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "consent_mw_cli", "collector", "--host", "127.0.0.1",
         "--port", str(port), "--store", f"chdb://{workdir / 'http.chdb'}",
         "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("collector did not start") from None
                time.sleep(0.2)
        bodies = [encode_batch(events[i:i + batch], batch_id=str(uuid.uuid4()),
                               sent_at=int(time.time() * 1000))
                  for i in range(0, len(events), batch)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda b: post(base + "/v1/events", b), bodies))
        elapsed = time.perf_counter() - t0
        metrics = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        inserted = sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                       if line.startswith("consent_mw_collector_inserted_total")
                       and 'table="events"' in line)
        return elapsed, inserted
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def raw_run(events: list[dict[str, object]], batch: int, workdir: Path) -> float:
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.enrich.geo import GeoLookup
    from collector.ingest.rows import EVENT_COLUMNS
    from collector.store import Store

    geo = GeoLookup(GEOIP)
    rows = [event_row(e, geo) for e in events]  # enrichment, untimed
    store = Store(f"chdb://{workdir / 'raw.chdb'}")
    apply_migrations(store, DdlOptions())
    try:
        t0 = time.perf_counter()
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            columns = [list(col) for col in zip(*chunk, strict=True)]
            store.insert("events", columns, EVENT_COLUMNS, column_oriented=True)
        return time.perf_counter() - t0
    finally:
        store.close()


def block_costs(events: list[dict[str, object]], sizes: list[int], workdir: Path,
                settle: float) -> None:
    """chDB's CPU a row by insert size: the same rows (enriched beforehand, untimed) inserted
    in blocks of each size into a fresh store, then ``settle`` seconds for the merges the
    parts set off. CPU is the whole process's (chDB's threads included), so the rest of this
    process must be idle meanwhile."""
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.enrich.geo import GeoLookup
    from collector.ingest.rows import EVENT_COLUMNS
    from collector.store import Store

    geo = GeoLookup(GEOIP)
    rows = [event_row(e, geo) for e in events]
    print(f"chDB CPU a row by insert size ({len(rows)} rows; merges: {settle:.0f} s after)")
    for size in sizes:
        store = Store(f"chdb://{workdir / f'blocks-{size}.chdb'}")
        apply_migrations(store, DdlOptions())
        blocks = [[list(col) for col in zip(*rows[i:i + size], strict=True)]
                  for i in range(0, len(rows), size)]
        try:
            cpu0 = time.process_time()
            for columns in blocks:
                store.insert("events", columns, EVENT_COLUMNS, column_oriented=True)
            inserted = time.process_time() - cpu0
            time.sleep(settle)
            total = time.process_time() - cpu0
            parts = store.query("SELECT count() FROM system.parts WHERE table = 'events' "
                                "AND active").result_rows[0][0]
        finally:
            store.close()
        print(f"  {size:>6} rows an insert: {1e6 * inserted / len(rows):5.1f} µs a row inserting,"
              f" {1e6 * total / len(rows):5.1f} with merges; {parts} parts left")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--block-sizes", help="instead: chDB's CPU a row by insert size, e.g. "
                    "2000,5000,20000 (the ingest pipeline's insert size follows the batches)")
    ap.add_argument("--settle", type=float, default=12.0,
                    help="with --block-sizes: seconds left for merges after the inserts")
    args = ap.parse_args()
    events = workload.events(args.events)
    if args.block_sizes:
        workdir = Path(tempfile.mkdtemp(prefix="cmw-bench-blocks-"))
        try:
            block_costs(events, [int(n) for n in args.block_sizes.split(",")], workdir,
                        args.settle)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    workdir = Path(tempfile.mkdtemp(prefix="cmw-bench-ingest-"))
    try:
        http_s, inserted = http_run(events, args.batch, workdir)
        raw_s = raw_run(events, args.batch, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    http_rate, raw_rate = inserted / http_s, len(events) / raw_s
    print(f"events: {len(events)}, batch: {args.batch}")
    print(f"end to end (HTTP → validate → enrich → chDB): {http_rate:,.0f} events/s "
          f"({inserted} stored in {http_s:.2f} s)")
    print(f"raw clickhouse-connect column insert:         {raw_rate:,.0f} rows/s "
          f"({raw_s:.2f} s)")
    print(f"ratio: {http_rate / raw_rate:.2f} (target >= 0.50)")
    print(json.dumps({"bench": "ingest", "events": len(events), "http_eps": http_rate,
                      "raw_rps": raw_rate, "ratio": http_rate / raw_rate,
                      "stored": inserted}))


if __name__ == "__main__":
    main()
