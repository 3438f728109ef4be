"""Realistic wire events for the ingest and memory benchmarks (deterministic per seed)."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SO-51D) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Line/14.6.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
]
PATHS = ["/", "/treatments/double-eyelid", "/treatments/hyaluronic-acid", "/treatments/hair-removal",
         "/search", "/reservation", "/lp/spring", "/privacy"]
IPS = ["81.2.69.142", "89.160.20.128", "216.160.83.56", "175.16.199.1", "2001:218::1",
       "203.0.113.7", "198.51.100.23"]


def events(n: int, *, seed: int = 1, now_ms: int | None = None) -> list[dict[str, Any]]:
    """``n`` events: 70% consented page views (analytics, often location/marketing), 30% anonymous."""
    rng = random.Random(seed)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    visitors = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(1, n // 20))]
    out: list[dict[str, Any]] = []
    for _ in range(n):
        ts = now - rng.randrange(0, 3_600_000)
        path = rng.choice(PATHS)
        if rng.random() < 0.3:
            out.append({"event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "ts": ts - ts % 3_600_000, "kind": "anonymous", "name": "pageview",
                        "consent": {"necessary": True, "analytics": False},
                        "path": path, "device_type": rng.choice(["mobile", "desktop"])})
            continue
        location, marketing = rng.random() < 0.6, rng.random() < 0.4
        e: dict[str, Any] = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "ts": ts, "kind": "pageview",
            "name": "pageview",
            "consent": {"necessary": True, "analytics": True, "location": location,
                        "marketing": marketing},
            "host": "clinic.example", "path": path, "method": "GET", "status": 200,
            "referrer_host": rng.choice([None, "www.google.com", "search.yahoo.co.jp"]),
            "channel": rng.choice(["direct", "search", "social"]), "language": "ja",
            "ua": rng.choice(USER_AGENTS), "visitor_id": rng.choice(visitors),
            "session_id": uuid.UUID(int=rng.getrandbits(64)).hex[:16],
            "ip": rng.choice(IPS),
        }
        if path == "/search":
            e["search_terms"] = rng.choice(["二重", "ヒアルロン酸", "脱毛 料金"])
        if marketing:
            e.update(utm_source="google", utm_medium="cpc", utm_campaign="spring",
                     click_id_type="gclid")
        out.append(e)
    return out
