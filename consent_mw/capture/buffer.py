"""A bounded queue drained by one background thread, in the style of OpenTelemetry's
BatchProcessor: ``emit`` never waits on I/O, the worker exports by size or by interval.

Bounded twice: at most ``max_queue`` items and ``max_bytes`` bytes (as the emitter counts
them). An item can hold what a request sent (its headers: uvicorn with httptools accepts a
10 MB header), so a count alone bounds nothing.

The buffer knows nothing about events: ``export`` gets lists of items, ``tick`` runs after each
wake-up (the capture uses it to replay the spool and refresh suppressions), ``drop`` is told
about everything it had to throw away, with a reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class BatchBuffer(Generic[T]):
    """Bounded queue + worker thread; every failure is counted through ``drop``, never raised."""

    def __init__(
        self,
        export: Callable[[list[T]], None],
        *,
        max_queue: int = 10_000,
        batch_size: int = 1_000,
        interval: float = 1.0,
        max_bytes: int = 32 * 1024 * 1024,
        drop: Callable[[str, int], None] = lambda reason, n: None,
        tick: Callable[[], None] | None = None,
        flush: Callable[[], None] | None = None,
        wake_every: int | None = None,
        name: str = "consent-mw-capture",
    ) -> None:
        self._export = export
        self._flush = flush
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.wake_every = min(batch_size, wake_every or batch_size)
        self.interval = interval
        self.max_bytes = max_bytes
        self._bytes = 0  # of the queued items, as emitted; approximate under thread races
        self._reserve_items = max(1, max_queue // 10)
        self._reserve_bytes = max(64 * 1024, max_bytes // 10)
        self._drop = drop
        self._tick = tick
        self._name = name
        self._queue: deque[tuple[T, int]] = deque()
        self._exporting = 0
        self._cv = threading.Condition(threading.Lock())
        self._export_lock = threading.Lock()  # worker and inline flushes never export at once
        self._flush_requests: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def bytes(self) -> int:
        return self._bytes

    def emit(self, item: T, nbytes: int = 0, *, priority: bool = False) -> bool:
        """Queue ``item`` (``nbytes`` large) without waiting; False (and counted as
        ``queue_full``) when either bound is reached, ``shutdown`` once shut down.
        A ``priority`` item (a consent record) may also use a reserve of a tenth beyond
        both bounds, so a queue full of page views still takes it.

        No lock on this path (it runs for every response): ``deque.append`` and ``popleft``
        are atomic, so the bounds can be overshot only by threads emitting at the same instant.
        """
        if self._closed:
            self._drop("shutdown", 1)
            return False
        queue = self._queue
        size = len(queue)
        full = size >= self.max_queue or self._bytes + nbytes > self.max_bytes
        if full and (not priority or size >= self.max_queue + self._reserve_items
                     or self._bytes + nbytes > self.max_bytes + self._reserve_bytes):
            self._drop("queue_full", 1)
            return False
        self._bytes += nbytes
        queue.append((item, nbytes))
        if (size + 1) % self.wake_every == 0:  # wake the worker once per step, not per item
            self._wake()
        return True

    def _wake(self) -> None:
        """Notify the worker, never waiting for its lock. The worker holds it only between
        waking and deciding, or deciding and waiting, and it holds it while waiting for the
        GIL, which the caller (the server's thread) has: waiting here blocked the server until
        the worker had built a step. Skipping is safe: a worker holding the lock is about to
        read the queue, or to wait at most an interval, and the next step notifies again."""
        cv = self._cv
        if cv.acquire(blocking=False):
            try:
                cv.notify()
            finally:
                cv.release()

    def start(self) -> None:
        with self._cv:
            if self.running or self._closed:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _take_all(self) -> list[T]:
        # popleft, not list()+clear(): an item appended in between would be lost.
        queue = self._queue
        taken = [queue.popleft() for _ in range(len(queue))]
        released = sum(nbytes for _, nbytes in taken)
        # Re-anchored when empty, so lost updates between threads never accumulate.
        self._bytes = 0 if not queue else max(0, self._bytes - released)
        return [item for item, _ in taken]

    @property
    def exporting(self) -> int:
        """Items taken from the queue and not yet handed on by ``export``."""
        return self._exporting

    def _export_all(self, items: list[T]) -> None:
        with self._export_lock:
            self._exporting = len(items)
            for start in range(0, len(items), self.batch_size):
                part = items[start:start + self.batch_size]
                try:
                    self._export(part)
                except Exception:  # the worker must survive anything an exporter does
                    log.exception("capture export failed; %d items dropped", len(part))
                    self._drop("error", len(part))
                self._exporting -= len(part)

    def _flush_export(self) -> None:
        if self._flush is None:
            return
        with self._export_lock:
            try:
                self._flush()
            except Exception:  # the worker must survive anything an exporter does
                log.exception("capture export flush failed")

    def _run_tick(self) -> None:
        if self._tick is None:
            return
        try:
            self._tick()
        except Exception:
            log.exception("capture background task failed")

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            with self._cv:
                remaining = self.interval - (time.monotonic() - last)
                if (remaining > 0 and len(self._queue) < self.wake_every
                        and not self._flush_requests and not self._stopping):
                    self._cv.wait(remaining)
                requests = self._flush_requests
                self._flush_requests = []
                stopping = self._stopping
                # Every step's items are handed to the exporter; what it holds goes out
                # once per interval (or sooner, by its own batch size), and on demand.
                due = time.monotonic() - last >= self.interval or requests or stopping
                step = len(self._queue) >= self.wake_every
            if due or step:
                self._export_all(self._take_all())
            if due:
                last = time.monotonic()
                self._flush_export()
            self._run_tick()
            for event in requests:
                event.set()
            if stopping:
                return

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export everything queued now; True if done within ``timeout``."""
        if not self.running:  # not started (or stopped): flush in the caller's thread
            self._export_all(self._take_all())
            self._flush_export()
            self._run_tick()
            return True
        done = threading.Event()
        with self._cv:
            self._flush_requests.append(done)
            self._cv.notify()
        return done.wait(timeout)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush, then stop the worker; later ``emit`` calls are dropped as ``shutdown``."""
        if self._closed:
            return True
        self._closed = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            self._export_all(self._take_all())
            self._flush_export()
            return True
        with self._cv:
            self._stopping = True
            self._cv.notify()
        thread.join(timeout)
        if thread.is_alive():
            left = len(self._queue)
            log.warning("capture worker still busy after %.1fs; %d items queued", timeout, left)
            return False
        # An emit that raced with shutdown may have queued after the worker's last drain.
        self._export_all(self._take_all())
        self._flush_export()
        return True
