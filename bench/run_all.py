"""Run every benchmark with the sizes docs/benchmarks.md quotes, one after another.

    python bench/run_all.py [--quick]

--quick uses small sizes (a smoke run, minutes); without it the 10M-event store benchmarks
take a while and need several GiB of disk. Each script prints its own figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent

FULL = [
    ["bench_ua.py"],
    ["bench_overhead.py", "--duration", "10"],
    ["bench_encode.py"],
    ["bench_ingest.py", "--events", "200000"],
    ["bench_memory.py", "--duration", "60"],
    ["bench_drills.py"],
    ["bench_privacy.py", "--events", "10000000"],
    ["bench_dashboards.py", "--events", "10000000"],
]
QUICK = [
    ["bench_ua.py"],
    ["bench_overhead.py", "--duration", "3"],
    ["bench_encode.py", "--events", "5000"],
    ["bench_ingest.py", "--events", "20000"],
    ["bench_memory.py", "--duration", "10"],
    ["bench_drills.py", "--rates", "320", "--only", "stall", "--stall-seconds", "5"],
    ["bench_privacy.py", "--events", "200000"],
    ["bench_dashboards.py", "--events", "200000"],
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    failed = []
    for argv in QUICK if args.quick else FULL:
        script = BENCH / argv[0]
        if not script.exists():
            print(f"== {argv[0]}: missing, skipped", flush=True)
            continue
        print(f"== {' '.join(argv)}", flush=True)
        if subprocess.run([sys.executable, str(script), *argv[1:]], check=False).returncode:
            failed.append(argv[0])
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
