"""What a web process pays to encode the batches it sends: ``wire.encode_batch`` per event.

The overhead benchmark's transport discards batches, so it leaves this out; a site streaming
to a collector pays it on the capture worker, on the CPU that serves its pages. Realistic
events (``bench/workload.py``) in batches of 1,000, against the standard library's ``json``
with gzip level 5 (the encoding before orjson), in the same run; and the plain JSON that goes
to a collector on the same host (``capture/http_body.py``).

    python bench/bench_encode.py [--events 20000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import events as workload_events
from consent_mw import wire


def stdlib_batch(events: list[dict[str, Any]], batch_id: str, sent_at: int) -> bytes:
    body = {"schema": wire.SCHEMA_ID, "sent_at": sent_at, "batch_id": batch_id,
            "events": events, "consent_records": []}
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return gzip.compress(raw, compresslevel=5)


def measure(encode: Callable[[list[dict[str, Any]], str, int], bytes],
            batches: list[list[dict[str, Any]]], rounds: int) -> tuple[float, float]:
    """(best µs per event over ``rounds``, bytes per event)."""
    best = float("inf")
    size = 0
    for _ in range(rounds):
        size = 0
        started = time.perf_counter()
        for i, batch in enumerate(batches):
            size += len(encode(batch, f"batch-{i}", 1))
        best = min(best, time.perf_counter() - started)
    count = sum(len(b) for b in batches)
    return best / count * 1e6, size / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    events = workload_events(args.events)
    batches = [events[i:i + 1000] for i in range(0, len(events), 1000)]
    ours = measure(lambda b, bid, at: wire.encode_batch(b, [], batch_id=bid, sent_at=at),
                   batches, args.rounds)
    plain = measure(lambda b, bid, at: wire.encode_batch_json(b, [], batch_id=bid, sent_at=at),
                    batches, args.rounds)
    stdlib = measure(stdlib_batch, batches, args.rounds)
    print(f"{'encoding':<44} {'µs/event':>9} {'bytes/event':>12}")
    print(f"{'wire.encode_batch (orjson, gzip 1)':<44} {ours[0]:9.2f} {ours[1]:12.1f}")
    print(f"{'wire.encode_batch_json (to this host)':<44} {plain[0]:9.2f} {plain[1]:12.1f}")
    print(f"{'json + gzip 5 (before)':<44} {stdlib[0]:9.2f} {stdlib[1]:12.1f}")
    print(json.dumps({"bench": "encode", "events": len(events),
                      "encode_batch_us": round(ours[0], 3), "encode_batch_bytes": round(ours[1], 1),
                      "plain_us": round(plain[0], 3), "plain_bytes": round(plain[1], 1),
                      "stdlib_us": round(stdlib[0], 3), "stdlib_bytes": round(stdlib[1], 1)}))


if __name__ == "__main__":
    main()
