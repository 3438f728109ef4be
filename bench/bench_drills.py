"""Fault drills: what capture loses, duplicates and costs in latency under a collector fault.

What a real web process and a real collector lose, duplicate and cost the site's latency
when the collector stalls or crashes, the spool's disk fills, or the web process itself is
killed (issue 14).

A ``consent-mw collector`` on a fresh chDB store and uvicorn (httptools, uvloop) serving a
hello-world page app behind ``ConsentMiddleware`` (``bench/drill_app.py``), spooling to disk;
paced traffic from one thread of this process (raw keep-alive HTTP/1.1, 32 connections, the
headers Chrome sends), each page view to a path of its own so it is traced from its 200 to
its stored row. Drills (``bench/drills.py``), each at every rate:

- ``stall``: the collector frozen (SIGSTOP) for 20 s, then thawed;
- ``collector_kills``: the collector killed (-9) and restarted after 6 s, twice, the second
  kill while the web process replays its spool;
- ``disk_full``: the spool on a 256 KiB tmpfs (or, without root, a fault-injecting writer
  through ``DiskSpool(write=...)``), the collector down until the spool overflows; 1 % of
  requests are fresh visitors' consent decisions, whose records must all be stored (the
  drill's events compress to ~17 bytes each in the spool, so 256 KiB holds about what
  2 MiB holds of a real site's);
- ``web_kill``: the collector down for 10 s of traffic, the web process killed (-9); every
  page in its spool files must be stored exactly once by the next web process.

Columns: sent (pages answered 200), stored, lost (200 but no row), duplicated (more than one
row), p99 ms (the web's, for requests sent during the fault), blocked (requests that failed
or took over 1 s), and the web process's drops by reason. Then one JSON line.

    python bench/bench_drills.py [--rates 320 1250] [--only stall disk_full ...]
                                 [--stall-seconds 20] [--disk-kib 256] [--pin]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import drills

DRILLS: dict[str, Callable[..., drills.DrillResult]] = {
    "stall": drills.stall,
    "collector_kills": drills.collector_kills,
    "disk_full": drills.disk_full,
    "web_kill": drills.web_kill,
}


def _row(r: drills.DrillResult) -> str:
    drops = ", ".join(f"{k} {v}" for k, v in r.dropped.items()) or "-"
    return (f"{r.drill:<16} {r.rate:>6.0f} {r.achieved_rate:>7.0f} {r.sent:>7} {r.stored:>7} "
            f"{r.lost:>6} {r.duplicated:>5} {r.p99_ms:>7.1f} {r.blocked:>7} {r.seconds:>5.0f}"
            f"   {drops}")


def _notes(r: drills.DrillResult) -> str:
    """The drill's own checks, one line."""
    x = r.extra
    parts = [f"peak queued {x.get('peak_queued')}, peak spooled {x.get('peak_spooled')}"]
    if not r.drained:
        parts.append("NOT DRAINED")
    if "replay" in x:
        rp = x["replay"]
        parts.append("second kill during replay" if rp["during_replay"]
                     else "second kill: replay not caught")
    if "records" in x:
        rec = x["records"]
        parts.append(f"consent records {rec['stored']}/{rec['decisions']} stored, "
                     f"{rec['lost']} lost, {rec['duplicated']} duplicated")
    if "disk" in x:
        parts.append(f"{x['disk']}, overflowed after {x['overflowed_after_s']} s, "
                     f"{len(x['tmp_files'])} .tmp files left")
    if "on_disk" in x:
        parts.append(f"on disk {x['on_disk']}: stored once {x['on_disk_stored_once']}, "
                     f"lost {x['on_disk_lost']}, duplicated {x['on_disk_duplicated']}; "
                     f"lost from memory {x['lost_in_memory_only']} "
                     f"(queued at kill {x['queued_at_kill']})")
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[320, 1250])
    ap.add_argument("--only", nargs="+", choices=sorted(DRILLS), help="drills to run")
    ap.add_argument("--stall-seconds", type=float, default=20.0)
    ap.add_argument("--disk-kib", type=int, default=256, help="the disk_full drill's disk")
    ap.add_argument("--pin", action="store_true",
                    help="web on CPU 0, collector on CPU 1 (the load runs unpinned)")
    args = ap.parse_args()

    results: list[drills.DrillResult] = []
    print(f"{'drill':<16} {'rate':>6} {'req/s':>7} {'sent':>7} {'stored':>7} {'lost':>6} "
          f"{'dup':>5} {'p99 ms':>7} {'blocked':>7} {'secs':>5}   dropped by reason")
    for name in args.only or list(DRILLS):
        for rate in args.rates:
            kw: dict[str, Any] = {"pin": args.pin}
            if name == "stall":
                kw["seconds"] = args.stall_seconds
            elif name == "disk_full":
                kw["fs_bytes"] = args.disk_kib * 1024
            result = DRILLS[name](rate, **kw)
            results.append(result)
            print(_row(result), flush=True)
            print(f"{'':<16}   {_notes(result)}", flush=True)
    out = []
    for r in results:
        s = r.summary()
        s["capture"] = s.pop("stats").get("capture")
        out.append(s)
    print(json.dumps({"bench": "drills", "results": out}))


if __name__ == "__main__":
    main()
