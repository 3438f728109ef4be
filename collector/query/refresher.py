"""The thread that keeps the daily rollup fresh (``collector.query.rollup``), and what wakes it.

:class:`RollupWorker` refreshes every ``rollup_interval`` seconds and at once when kicked;
:class:`KickOnSuppression` kicks it at every suppression change, so the person's days are
rebuilt (and the others re-stamped) within moments rather than at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from collector.query.rollup import Rollup

log = logging.getLogger(__name__)


class RollupWorker:
    """Refreshes every ``interval`` seconds, and at once when :meth:`kick`-ed."""

    def __init__(self, rollup: Rollup, interval: float) -> None:
        self.rollup = rollup
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.refreshed = threading.Event()  # set after every refresh (tests, the bench)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start refreshing (again, after a :meth:`stop`): the first refresh runs at once."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="collector-rollup", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.rollup.refresh(self._stopping.is_set)
            except Exception:  # the store may be closing; dashboards scan raw meanwhile
                log.exception("rollup refresh failed")
            self.refreshed.set()
            self._wake.wait(self.interval)


class KickOnSuppression:
    """A suppression-gate listener: any suppression change wakes the rollup worker, whose
    refresh rebuilds the days of the people concerned and re-stamps the others."""

    def __init__(self, worker: RollupWorker) -> None:
        self.worker = worker

    def replace(self, hashes: Iterable[str], version: int | None = None, *,
                purged: Iterable[str] = ()) -> None:
        self.worker.kick()
