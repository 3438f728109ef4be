"""User-Agent parsing cost: user_agents' regex path vs the collector's Rust-backed parse.

Prints µs per parse: uncached (collector.enrich.device on ua-parser-rs), cached (lru hit), and
``user_agents.parse`` for reference. Run: ``.venv/bin/python bench/bench_ua.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import user_agents

from consent_mw.useragent import _parse, classify

UAS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.21.0",
]
ROUNDS = 300


def per_call_us(fn: Callable[[str], object], inputs: list[str]) -> float:
    start = time.perf_counter()
    for ua in inputs:
        fn(ua)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def main() -> None:
    # Unique strings (a numbered suffix) so nothing is served from a cache.
    fresh = [f"{ua} r{i}" for i in range(ROUNDS) for ua in UAS]
    uncached = _parse.__wrapped__
    per_ua = {ua: per_call_us(uncached, [f"{ua} u{i}" for i in range(ROUNDS)]) for ua in UAS}
    fast = per_call_us(uncached, fresh)
    _parse.cache_clear()
    for ua in UAS:
        _parse(ua)
    cached = per_call_us(_parse, UAS * ROUNDS)
    reference = per_call_us(lambda ua: classify(user_agents.parse(ua)), fresh[: len(UAS) * 20])
    print(f"uncached parse (ua-parser-rs + user_agents rules): {fast:8.1f} µs/UA")
    print(f"  per UA: median {statistics.median(per_ua.values()):.1f}, "
          f"max {max(per_ua.values()):.1f} µs")
    print(f"cached parse (lru hit):                          {cached:8.2f} µs/UA")
    print(f"user_agents.parse (regex path, reference):       {reference:8.1f} µs/UA")
    print(f"speed-up uncached vs reference:                  {reference / fast:8.1f}x")


if __name__ == "__main__":
    main()
