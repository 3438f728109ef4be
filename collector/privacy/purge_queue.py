"""The purge queue: requests wait here for the next batch, and one thread runs the batches.

Asking is cheap and immediate (:meth:`PurgeQueue.submit` suppresses the person before it
returns); the physical work waits for the next batch (``collector.privacy.purge``), at least
``interval`` seconds after the previous one started, so a flood of requests costs at most one
pass per interval. A batch that fails is retried; its jobs are never stranded.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from collector.errors import CollectorError
from collector.privacy.purge import ProgressFn, PurgeJob, Purger, no_progress
from collector.privacy.subjects import Subject, plain

if TYPE_CHECKING:
    from collector.metrics import CollectorMetrics

log = logging.getLogger(__name__)

#: Ids one batch may carry: each adds ~90 characters to the mutations' text, and ClickHouse
#: parses at most 256 KiB of it by default.
MAX_BATCH_IDS = 1_500
MAX_ATTEMPTS = 3  # batches a purge is tried in before it is left to the next start


class PurgeQueueFull(CollectorError, RuntimeError):
    """More purges are waiting than the queue holds; answered 503 with Retry-After."""


class PurgeQueue:
    """Purges waiting for the next batch, and the thread that runs them.

    Bounded: at most ``max_waiting`` requests wait (beyond, :class:`PurgeQueueFull`), and a
    batch takes at most ``max_batch`` of them and :data:`MAX_BATCH_IDS` ids. The outcome of the
    last ``keep`` requests stays in memory for status pages; older ones are read back from the
    audit trail and the receipts.
    """

    def __init__(self, purger: Purger, *, max_waiting: int = 1_000, max_batch: int = 200,
                 linger: float = 0.5, interval: float = 30.0, keep: int = 10_000,
                 metrics: CollectorMetrics | None = None) -> None:
        self.purger = purger
        self.max_waiting = max_waiting
        self.max_batch = max_batch
        self.linger = linger
        #: At least this long between the starts of two batches: each rewrites and scans the
        #: whole store, so a flood of requests costs at most one pass per interval.
        self.interval = interval
        self._reserved = 0  # submits past the size check, not yet queued
        self.keep = keep
        self.metrics = metrics
        self._waiting: deque[PurgeJob] = deque()
        self._jobs: OrderedDict[str, PurgeJob] = OrderedDict()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __len__(self) -> int:
        return len(self._waiting)

    def waiting(self) -> list[PurgeJob]:
        with self._cond:
            return list(self._waiting)

    def submit(self, root: Subject, reason: str, requested_by: str) -> PurgeJob:
        """Ask for a purge; the person is suppressed before this returns."""
        with self._cond:
            if len(self._waiting) + self._reserved >= self.max_waiting:
                if self.metrics is not None:
                    self.metrics.purges.labels("rejected_queue_full").inc()
                raise PurgeQueueFull(f"{len(self._waiting)} purges are waiting; try later")
            self._reserved += 1  # concurrent submits cannot overshoot the bound
        try:
            job = self.purger.open(root, reason, requested_by)
        finally:
            with self._cond:
                self._reserved -= 1
        with self._cond:
            self._waiting.append(job)
            self._remember(job)
            self._gauge()
            self._cond.notify_all()
        if self.metrics is not None:
            self.metrics.purges.labels("queued").inc()
        return job

    def _remember(self, job: PurgeJob) -> None:
        self._jobs[job.request_id] = job
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.purge_queue.set(len(self._waiting))

    def wait(self, job: PurgeJob, timeout: float | None = None) -> PurgeJob:
        """Block until ``job`` has run; without a running worker, run the queue here."""
        if not self.running:
            self.run_waiting()
        job.done.wait(timeout)
        return job

    def run_waiting(self, progress: ProgressFn = no_progress) -> int:
        """Run everything waiting, batch after batch, in the calling thread."""
        done = 0
        while batch := self._take():
            self._run(batch, progress)
            done += len(batch)
        return done

    def _take(self) -> list[PurgeJob]:
        with self._cond:
            batch: list[PurgeJob] = []
            ids = 0
            while self._waiting and len(batch) < self.max_batch:
                job = self._waiting[0]
                cost = job.ids
                if batch and ids + cost > MAX_BATCH_IDS:
                    break
                batch.append(self._waiting.popleft())
                ids += cost
            self._gauge()
            return batch

    def _run(self, batch: list[PurgeJob], progress: ProgressFn = no_progress) -> None:
        started = time.perf_counter()
        for job in batch:
            job.attempts += 1
        try:
            self.purger.run(batch, progress)
        except Exception:
            # One bad moment (the store busy, a file vanishing) must not strand everyone in
            # the batch: their jobs wait for the next one, up to MAX_ATTEMPTS; after that they
            # stay in the audit trail and the next start resumes them.
            again = [job for job in batch if job.attempts < MAX_ATTEMPTS]
            for job in again:
                job.status, job.error = "queued", None
                job.done.clear()
            with self._cond:
                self._waiting.extendleft(reversed(again))
                self._gauge()
            raise
        finally:
            self.batches += 1
            m = self.metrics
            if m is not None:
                m.purge_batch_seconds.observe(time.perf_counter() - started)
                m.purge_batch_size.observe(len(batch))
                for job in batch:
                    m.purges.labels(job.status).inc()

    def status(self, request_id: str) -> dict[str, Any] | None:
        """Where a purge is: queued, running, completed (with its receipt) or failed."""
        job = self._jobs.get(request_id)
        if job is not None:
            return job.summary()
        return self._stored_status(request_id)

    def _stored_status(self, request_id: str) -> dict[str, Any] | None:
        try:
            uuid.UUID(request_id)
        except ValueError:
            return None
        store = self.purger.store
        rows = store.rows("SELECT outcome, toString(ts) FROM privacy_requests WHERE "
                          "operation = 'purge' AND request_id = {r:UUID} ORDER BY seq",
                          {"r": request_id})
        if not rows:
            return None
        outcome = str(rows[-1][0])
        receipt = None
        if outcome in ("completed", "incomplete"):
            found = store.dicts(
                "SELECT * FROM purge_receipts WHERE JSONExtractString(details, 'request_id') "
                "= {r:String} ORDER BY verified_at DESC LIMIT 1", {"r": request_id})
            receipt = {k: plain(v) for k, v in found[0].items()} if found else None
        status = outcome if outcome in ("completed", "incomplete") else "queued"
        return {"request_id": request_id, "status": status, "requested_at": rows[0][1],
                "receipt": receipt, "error": None}

    # -- the worker -------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self.running:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="collector-purge",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the batch in progress; requests still waiting stay in the audit trail and
        are resumed at the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        last_start = float("-inf")
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                # Let requests arriving together share the batch, and let the previous
                # batch's interval pass.
                ready = max(time.monotonic() + self.linger, last_start + self.interval)
                while not self._stopping and (remaining := ready - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                if self._stopping:
                    return
            last_start = time.monotonic()
            batch = self._take()
            if not batch:
                continue
            try:
                self._run(batch)
            except Exception:  # the jobs carry the error; the next start resumes them
                log.exception("purge batch of %d failed", len(batch))
