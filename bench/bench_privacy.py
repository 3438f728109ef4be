"""Purge and export timings on an embedded store of N events where one visitor has ~100.

    python bench/bench_privacy.py --events 10000000

Prints: time to generate, export time, purge-to-hidden (lightweight delete done), purge to
physically gone (parts rewritten, outdated parts removed) and to verified (queries + byte scan
of the store directory), and the receipt's file-scan figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions
from collector.privacy.operations import Privacy
from collector.store import INSERT_SETTINGS, PRIVATE_SETTINGS, Store

TARGET = "feedc0ffee0ddba11deadbeefcafe000"


def generate(store: Store, n: int, per_target: int) -> None:
    step = max(1, n // per_target)
    # 20 events per synthetic visitor, spread over ~3 months (3-4 monthly partitions).
    store.command(
        "INSERT INTO events (event_id, ts, kind, name, host, path, status, browser, os, "
        "device_type, visitor_id, session_id, country) "
        "SELECT generateUUIDv4(), now64(3) - toIntervalSecond(number % 7776000), 'pageview', "
        "'pageview', 'clinic.test', concat('/t/', toString(number % 500)), 200, "
        "['Chrome', 'Safari', 'Firefox'][number % 3 + 1], ['iOS', 'Android', 'Windows'][number % 3 + 1], "
        "'mobile', if(number % {step:UInt64} = 7, {t:String}, "
        "lower(hex(MD5(toString(intDiv(number, 20)))))), lower(hex(intDiv(number, 5))), 'JP' "
        "FROM numbers({n:UInt64})",
        {"n": n, "step": step, "t": TARGET},
        settings={**INSERT_SETTINGS, **PRIVATE_SETTINGS, "max_insert_threads": 2})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--per-target", type=int, default=100)
    ap.add_argument("--dir", type=Path, default=None, help="store directory (default: tmp)")
    ap.add_argument("--no-settle", action="store_true",
                    help="purge at once, while the bulk load's merges still run")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="cmw-bench-privacy-"))
    path = root / "store.chdb"
    shutil.rmtree(path, ignore_errors=True)
    store = Store(f"chdb://{path}")
    try:
        apply_migrations(store, DdlOptions())
        t = time.perf_counter()
        generate(store, args.events, args.per_target)
        gen_s = time.perf_counter() - t
        settle_s = 0.0
        if not args.no_settle:
            # Measure a store at rest: a mutation queues behind merges of a fresh bulk load.
            t = time.perf_counter()
            while store.scalar("SELECT count() FROM system.merges WHERE table = 'events'"):
                time.sleep(0.5)
            settle_s = time.perf_counter() - t
        parts = store.scalar("SELECT count() FROM system.parts WHERE table = 'events' "
                             "AND active")
        target_rows = store.scalar("SELECT count() FROM events WHERE visitor_id = {t:String}",
                                   {"t": TARGET}, settings=PRIVATE_SETTINGS)
        privacy = Privacy(store, b"bench-hash-key-0123456789abcdef")
        privacy.load()

        t = time.perf_counter()
        exported = privacy.export(visitor_id=TARGET)
        export_s = time.perf_counter() - t

        steps: list[tuple[str, float]] = []
        start = time.perf_counter()
        receipt = privacy.purge(visitor_id=TARGET, reason="bench", requested_by="bench",
                                progress=lambda s: steps.append((s, time.perf_counter() - start)))
        total_s = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        print(json.dumps({
            "events": args.events, "target_rows": int(target_rows or 0),
            "store_bytes": disk, "generate_s": round(gen_s, 2),
            "settle_s": round(settle_s, 2), "active_parts": int(parts or 0),
            "export_s": round(export_s, 3), "export_events": len(exported["events"]),
            "purge_hidden_s": receipt["timings"]["hidden_s"],
            "purge_physical_s": receipt["timings"]["physical_s"],
            "purge_verified_s": receipt["timings"]["verified_s"],
            "purge_total_s": round(total_s, 2),
            "steps": [(name, round(at, 2)) for name, at in steps],
            "rows_deleted": receipt["rows_deleted"], "remaining": receipt["remaining"],
            "file_scan": {k: v for k, v in (receipt["file_scan"] or {}).items()
                          if k != "opaque_files"},
        }, indent=2))
    finally:
        store.close()
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
