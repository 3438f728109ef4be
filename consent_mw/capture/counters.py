"""What the capture pipeline counts, for ``Capture.stats()``.

Items dropped (by reason), delivered and rejected, and failures of the worker's background
work (refreshing suppressions, replaying the spool, closing the transport). Every failure is
logged where it happens and counted here: capture never raises into the site, so these
counters are how a host (or a test) sees that something went wrong.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

DROP_REASONS = ("queue_full", "too_large", "shutdown", "suppressed", "no_consent", "error",
                "spool_full")


class Counters:
    """Thread-safe: the request path, the worker and shutdown all count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._sent = 0
        self._records_sent = 0
        self._rejected = 0
        self._worker_errors = 0

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._dropped[reason] += n

    def delivered(self, events: int, records: int, rejected: int) -> None:
        with self._lock:
            self._rejected += rejected
            self._sent += max(0, events - rejected)
            self._records_sent += records

    def refused(self, items: int) -> None:
        with self._lock:
            self._rejected += items

    def worker_failed(self) -> None:
        with self._lock:
            self._worker_errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": self._sent,
                "records_sent": self._records_sent,
                "rejected": self._rejected,
                "dropped": {r: self._dropped.get(r, 0) for r in DROP_REASONS},
                "worker_errors": self._worker_errors,
            }
