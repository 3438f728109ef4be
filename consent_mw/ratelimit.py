"""Rate limits keyed on what a client cannot mint for free.

A visitor id costs one consent POST and a cookie jar is free, so limits that protect work
(a purge, an export) key on the client's address as well: resolved through the trusted-proxy
rule (``consent_mw.clientip``), and for IPv6 the /64 a single host is usually given, since
anyone with one address has 2**64 of them. Each key gets a token bucket of ``limit`` requests
refilled over ``window`` seconds; the table is bounded (oldest keys go first), so a flood of
keys costs at most ``max_keys`` small entries.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict


def address_key(ip: str | None) -> str:
    """What to limit an address by: the address for IPv4, its /64 for IPv6."""
    if not ip:
        return "ip:unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "ip:unknown"
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.ip_network(f"{address}/64", strict=False)
        return f"ip6:{network.network_address}"
    return f"ip:{address}"


def check_all(*limits: tuple[RateLimit, str]) -> float | None:
    """One request against several limits (each with its key): all must allow it, and a
    refusal takes no token from any. Not atomic across threads; the middleware calls it from
    its event loop, where nothing runs between the two steps."""
    waits = [w for limit, key in limits if (w := limit.peek(key)) is not None]
    if waits:
        return max(waits)
    for limit, key in limits:
        limit.check(key)
    return None


class RateLimit:
    """Token buckets per key: ``limit`` requests per ``window`` seconds, bursts included."""

    def __init__(self, limit: int, window: float, *, max_keys: int = 65_536) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._rate = limit / window  # tokens per second
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def peek(self, key: str) -> float | None:
        """Seconds until ``key`` has a token, or None when it has one now (takes nothing)."""
        with self._lock:
            level = self._level(key, time.monotonic())
        return None if level >= 1 else (1 - level) / self._rate

    def check(self, *keys: str, cost: int = 1) -> float | None:
        """Take ``cost`` tokens (one request of several reports costs one per report; never
        more than the limit, so any request can pass once the bucket is full) from every
        key's bucket: None when all allow it, else the seconds until the emptiest one would
        (and no token is taken from any)."""
        need = max(1, min(cost, self.limit))
        now = time.monotonic()
        with self._lock:
            levels = [self._level(key, now) for key in keys]
            short = [(need - level) / self._rate for level in levels if level < need]
            if short:
                return max(short)
            for key, level in zip(keys, levels, strict=True):
                self._store(key, level - need, now)
            return None

    def _level(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return float(self.limit)
        tokens, then = found
        return min(float(self.limit), tokens + (now - then) * self._rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        buckets = self._buckets
        buckets[key] = (tokens, now)
        buckets.move_to_end(key)
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)
