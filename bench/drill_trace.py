"""What a fault drill found: every page view traced from its HTTP 200 to its stored row.

A :class:`Trace` holds the requests the load generator sent, the rows per path the store
holds afterwards, and the fault window; :meth:`Trace.result` reduces them to a
:class:`DrillResult`: sent (pages answered 200), stored (of those, the ones with a row),
lost (no row), duplicated (more than one row), the web's latency before, during and after
the fault, the requests that blocked (failed, or took over a second), and what the web
process's capture counted (drops by reason).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.drill_load import Request


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class DrillResult:
    """One drill at one rate. Latencies in ms; ``dropped``: the web's non-zero drops by
    reason; ``stats``: the web's ``ConsentMiddleware.stats()`` at the end; ``extra``: what
    the drill itself checks (spool files, consent records, ...)."""

    drill: str
    rate: float
    achieved_rate: float
    sent: int
    stored: int
    lost: int
    duplicated: int
    p99_ms: float  # requests sent during the fault
    p99_before_ms: float
    p99_after_ms: float
    max_ms: float  # during the fault
    blocked: int  # whole run: failed, or slower than a second
    failed: int  # whole run: no HTTP answer (refused, reset, timed out)
    dropped: dict[str, int]
    seconds: float  # the drill's wall time, processes' start and the count included
    drained: bool  # the web's queue and spool emptied before the count
    stats: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    lost_paths: list[str] = field(default_factory=list)
    duplicated_paths: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: NaN as None, the path lists cut to a few examples."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and math.isnan(value):
                out[key] = None
        out["lost_paths"] = self.lost_paths[:5]
        out["duplicated_paths"] = self.duplicated_paths[:5]
        return out


@dataclass
class Trace:
    """The raw material of a result; ``fault``: (start, end), ``time.monotonic()``."""

    requests: list[Request]
    stored: Counter[str]
    fault: tuple[float, float]

    @property
    def pages(self) -> list[Request]:
        return [r for r in self.requests if r.kind == "page"]

    @property
    def sent_paths(self) -> set[str]:
        """Paths whose page view was answered 200: each must end as exactly one row."""
        return {r.path for r in self.pages if r.status == 200}

    @property
    def lost_paths(self) -> list[str]:
        return sorted((p for p in self.sent_paths if not self.stored[p]), key=_number)

    @property
    def duplicated_paths(self) -> list[str]:
        return sorted((p for p, n in self.stored.items() if n > 1), key=_number)

    @property
    def decisions(self) -> list[Request]:
        """Consent decisions that were answered (2xx/3xx): each wrote a consent record."""
        return [r for r in self.requests if r.kind == "decision" and r.ok]

    def eviction_order(self) -> dict[str, int]:
        """Whether the lost pages were the oldest: ``kept_inside``, pages answered between
        the first and the last lost one that were stored anyway (0 when whole batches went,
        oldest first), and ``after``, the pages answered after the last lost one (all of them
        stored when nothing newer went)."""
        lost = [_number(p) for p in self.lost_paths]
        if not lost:
            return {"kept_inside": 0, "after": 0}
        numbers = [_number(p) for p in self.sent_paths]
        return {"kept_inside": sum(1 for n in numbers if lost[0] < n < lost[-1]
                                   and self.stored[f"{_prefix(self.lost_paths[0])}{n}"]),
                "after": sum(1 for n in numbers if n > lost[-1])}

    def latencies_ms(self, start: float, end: float) -> list[float]:
        return [r.latency * 1000 for r in self.requests
                if r.latency is not None and start <= r.sent < end]

    def result(self, drill: str, rate: float, achieved_rate: float, *, stats: dict[str, Any],
               seconds: float, drained: bool, extra: dict[str, Any] | None = None
               ) -> DrillResult:
        start, end = self.fault
        during = self.latencies_ms(start, end)
        sent = self.sent_paths
        lost = self.lost_paths
        duplicated = self.duplicated_paths
        capture = stats.get("capture") or {}
        return DrillResult(
            drill=drill, rate=rate, achieved_rate=round(achieved_rate, 1),
            sent=len(sent), stored=len(sent) - len(lost), lost=len(lost),
            duplicated=len(duplicated),
            p99_ms=_ms(percentile(during, 99)),
            p99_before_ms=_ms(percentile(self.latencies_ms(-math.inf, start), 99)),
            p99_after_ms=_ms(percentile(self.latencies_ms(end, math.inf), 99)),
            max_ms=_ms(max(during, default=math.nan)),
            blocked=sum(1 for r in self.requests if r.blocked),
            failed=sum(1 for r in self.requests if r.error is not None),
            dropped={k: v for k, v in (capture.get("dropped") or {}).items() if v},
            seconds=round(seconds, 1), drained=drained, stats=stats, extra=extra or {},
            lost_paths=lost, duplicated_paths=duplicated,
        )


def _ms(value: float) -> float:
    return value if math.isnan(value) else round(value, 2)


def _prefix(path: str) -> str:
    return path.rsplit("/", 1)[0] + "/"


def _number(path: str) -> int:
    tail = path.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else -1
