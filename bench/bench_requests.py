"""Privacy requests: how long each step takes, with a real SMTP server and a real store.

    python bench/bench_requests.py [--requests 40] [--evidence-store chdb:///path --days 30]

For each of ``--requests`` requests (a mix of the four kinds, each naming one visitor with
20 events): submit → acknowledgement and code received by the SMTP server → code checked →
staff complete it (export, purge or suppression) → result mail received. Then the evidence
pack of the last ``--days`` days of ``--evidence-store`` (the 10M bench store, say; it must
not be open in another process), built twice to show it is the same bytes.
Prints p50/p95 per step, in milliseconds.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from clinic.mailbox import Mailbox
from collector.privacy import evidence
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import Store
from consent_mw.config import Secret

KINDS = ("disclosure", "deletion", "suspension", "withdrawal")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> None:
    print(f"  {name:<34} p50 {statistics.median(values):8.1f} ms   p95 {pct(values, .95):8.1f} ms"
          f"   (n={len(values)})")


def steps(n: int) -> None:
    box = Mailbox()
    box.start()
    folder = tempfile.mkdtemp(prefix="bench-requests-")
    settings = CollectorSettings(
        store=f"chdb://{folder}/store.chdb", hash_key=Secret("bench-key-0123456789"),
        smtp_host=box.host, smtp_port=box.port, smtp_starttls=False, purge_interval=0,
        rollup_interval=0)
    svc = CollectorService(settings)
    svc.start()
    timings: dict[str, list[float]] = {k: [] for k in (
        "submit", "code mail received", "code checked", "complete (export)",
        "complete (purge)", "complete (suppress)", "result mail received")}
    try:
        now = datetime.now(UTC)
        for i in range(n):
            kind = KINDS[i % len(KINDS)]
            visitor = uuid.uuid4().hex
            svc.store.insert("events", [[uuid.uuid4(), now, "pageview", "pageview", "/p",
                                         visitor] for _ in range(20)],
                             ["event_id", "ts", "kind", "name", "path", "visitor_id"])
            email = f"p{i}@example.jp"
            t0 = time.perf_counter()
            ref = svc.desk.submit(kind=kind, email=email, visitor_ids=(visitor,)).ref
            timings["submit"].append((time.perf_counter() - t0) * 1000)
            mail = box.wait_for(email, "確認コード")
            timings["code mail received"].append((time.perf_counter() - t0) * 1000)
            found = re.search(r"確認コード: (\d{6})", mail.text)
            assert found
            t1 = time.perf_counter()
            verdict, _ = svc.desk.enter_code(ref, found.group(1))
            timings["code checked"].append((time.perf_counter() - t1) * 1000)
            assert verdict == "ok"
            if kind == "disclosure":
                svc.desk.set_fee(ref, "paid", "bench")
            t2 = time.perf_counter()
            done = svc.desk.act(ref, "complete", "bench", wait=True)
            op = {"export": "complete (export)", "purge": "complete (purge)"}.get(
                done.operation, "complete (suppress)")
            timings[op].append((time.perf_counter() - t2) * 1000)
            assert done.status == "completed", done.status
            box.wait_for(email, "完了")
            timings["result mail received"].append((time.perf_counter() - t2) * 1000)
    finally:
        svc.stop()
        box.stop()
    print(f"privacy requests, {n} of them (SMTP on this machine, chDB store):")
    for name, values in timings.items():
        if values:
            report(name, values)


def evidence_pack(dsn: str, days: int) -> None:
    store = Store(dsn)
    try:
        settings = CollectorSettings(store=dsn)
        end = datetime.now(UTC).date()
        start = end - timedelta(days=days - 1)
        records = store.scalar("SELECT count() FROM consent_records WHERE ts >= "
                               "{a:DateTime64(3, 'UTC')}", {"a": datetime(
                                   start.year, start.month, start.day, tzinfo=UTC)})
        packs, took = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            packs.append(evidence.build(store, settings, start.isoformat(), end.isoformat()))
            took.append(time.perf_counter() - t0)
    finally:
        store.close()
    same = hashlib.sha256(packs[0]).hexdigest() == hashlib.sha256(packs[1]).hexdigest()
    print(f"evidence pack, {days} days, {records:,} consent records: "
          f"{took[0]:.2f} s and {took[1]:.2f} s, {len(packs[0]) / 1e6:.1f} MB, "
          f"same bytes: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--evidence-store", default="")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    steps(args.requests)
    if args.evidence_store:
        evidence_pack(args.evidence_store, args.days)


if __name__ == "__main__":
    main()
