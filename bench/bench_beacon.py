"""The interaction beacon's cost, in the shape sites deploy: its endpoint's throughput on one
core, and what turning it on costs a consented visitor's page.

uvicorn with httptools and uvloop, one worker pinned to CPU 0, ``wrk -t1 -c32`` on CPU 1
(``bench/overhead_app.py``: the hello-world page behind the middleware, capture into a
transport that counts and discards). Interleaved rounds, medians:

- ``page, beacon off`` / ``page, beacon on``: a consented visitor's page; on, the response
  body is rewritten to carry the script tag (the settled path is left for the full one);
- ``POST /_consent/beacon``: a consented visitor's report of two interactions (a scroll depth
  and engaged time, as a page sends when it is hidden), same-origin headers, answered 204.

    python bench/bench_beacon.py [--duration 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_overhead import consent_cookie, serve, wait_up
from bench.procfs import free_port, pinned

BODY = json.dumps({"events": [{"k": "scroll", "p": "/", "d": 75},
                              {"k": "engaged", "p": "/", "s": 42}]})


def wrk(url: str, cookie: str, duration: int, script: Path | None = None) -> float:
    cmd = ["wrk", "-t1", "-c32", f"-d{duration}s", "-H", f"Cookie: {cookie}", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    out = subprocess.run(pinned(cmd, 1), capture_output=True, text=True, check=True).stdout
    return float(next(line.split()[1] for line in out.splitlines()
                      if line.startswith("Requests/sec")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[float]] = {"page, beacon off": [], "page, beacon on": [],
                                    "POST /_consent/beacon": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for name, target in (("page, beacon off", "bench.overhead_app:wrapped"),
                                 ("page, beacon on", "bench.overhead_app:with_beacon"),
                                 ("POST /_consent/beacon", "bench.overhead_app:with_beacon")):
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                proc = serve(target, port, "httptools")
                try:
                    wait_up(base + "/")
                    cookie = consent_cookie(base)
                    script = None
                    url = base + "/"
                    if name.startswith("POST"):
                        script = Path(tmp) / "beacon.lua"
                        script.write_text(
                            'wrk.method = "POST"\n'
                            f"wrk.body = {json.dumps(BODY)}\n"
                            'wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"\n'
                            f'wrk.headers["Origin"] = "{base}"\n'
                            'wrk.headers["Sec-Fetch-Site"] = "same-origin"\n')
                        url = base + "/_consent/beacon"
                        check = subprocess.run(
                            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                             "-H", f"Cookie: {cookie}", "-H", f"Origin: {base}",
                             "-H", "Content-Type: text/plain", "--data", BODY, url],
                            capture_output=True, text=True, check=True).stdout
                        if check != "204":
                            raise SystemExit(f"the beacon answered {check}, not 204")
                    wrk(url, cookie, 1, script)  # warm-up
                    runs[name].append(wrk(url, cookie, args.duration, script))
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
    results = {name: statistics.median(values) for name, values in runs.items()}
    off = results["page, beacon off"]
    print(f"median of {args.rounds} rounds of {args.duration} s, 32 connections, one core")
    for name, value in results.items():
        extra = f"  {value / off:.2f}x beacon off" if name.startswith("page") else ""
        print(f"{name:<24} {value:>9.0f} req/s{extra}   "
              + ", ".join(f"{v:.0f}" for v in runs[name]))
    print(json.dumps({"bench": "beacon", "results": results, "rounds": runs}))


if __name__ == "__main__":
    main()
