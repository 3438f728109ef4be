"""What the capture pipeline counts, for ``Capture.stats()``.

Items dropped (by reason), delivered and rejected, and failures of the worker's background
work (refreshing suppressions, replaying the spool, closing the transport). Every failure is
logged where it happens and counted here: capture never raises into the site, so these
counters are how a host (or a test) sees that something went wrong.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

log = logging.getLogger(__name__)

DROP_REASONS = ("queue_full", "too_large", "shutdown", "suppressed", "no_consent", "error",
                "spool_full")
#: Drops that are the consent or a purge working as meant, not data lost: logged at INFO.
POLICY_REASONS = frozenset({"suppressed", "no_consent"})


class Counters:
    """Thread-safe: the request path, the worker and shutdown all count."""

    def __init__(self, log_interval: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self.log_interval = log_interval
        self._unlogged: Counter[str] = Counter()  # drops since each reason's last log line
        self._logged_at: dict[str, float] = {}
        self._sent = 0
        self._records_sent = 0
        self._rejected = 0
        self._worker_errors = 0

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._dropped[reason] += n
                self._unlogged[reason] += n
            # One line per reason per interval: a flood of drops must not flood the log.
            if time.monotonic() - self._logged_at.get(reason, -1e18) >= self.log_interval:
                self.log_drops()

    def log_drops(self, force: bool = False) -> None:
        """Log the drops each reason counted since its last line, once its interval is over
        (``force``: now, as at shutdown). Called by the drops themselves and by the sender."""
        now = time.monotonic()
        lines = []
        with self._lock:
            for reason, n in list(self._unlogged.items()):
                if n and (force or now - self._logged_at.get(reason, -1e18)
                          >= self.log_interval):
                    lines.append((reason, n, self._dropped[reason]))
                    self._unlogged[reason] = 0
                    self._logged_at[reason] = now
        for reason, n, total in lines:
            log.log(logging.INFO if reason in POLICY_REASONS else logging.WARNING,
                    "consent_mw capture dropped %d items (%s) in the last %.0f s; %d since start",
                    n, reason, self.log_interval, total)

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
