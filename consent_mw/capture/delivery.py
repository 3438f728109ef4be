"""Getting built batches to the transport: retries in line, the spool when they fail, replay
once the collector answers again, and the suppression list refreshed from the transport.

Runs in the capture worker thread (or, without one, in the thread that flushes), so the
transport may block. Each batch gets its ``batch_id`` and ``sent_at`` here, once, and keeps
both through retries and spool replays: the collector deduplicates on the one and judges
clock skew against the other.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from consent_mw.capture.counters import Counters
from consent_mw.capture.spool import Spool
from consent_mw.capture.suppression import SuppressionList
from consent_mw.capture.transport import (
    RetryPolicy,
    SendResult,
    Transport,
    TransportError,
    batch_time,
)
from consent_mw.ids import new_event_id

log = logging.getLogger(__name__)

REPLAY_BUDGET = 2.0  # seconds of spool replay per worker wake-up, so new batches keep moving

Items = list[dict[str, Any]]


class Delivery:
    """Sends batches for one capture pipeline; counts what happened to them in ``counters``."""

    def __init__(self, transport: Transport, spool: Spool, counters: Counters,
                 suppressions: SuppressionList, *, retry: RetryPolicy,
                 refresh_every: float) -> None:
        self.transport = transport
        self.spool = spool
        self.retry = retry
        self._counters = counters
        self._suppressions = suppressions
        self._refresh_every = refresh_every
        #: Shutting down: one try per batch, then the spool; a stopping process must not
        #: spend its last seconds in backoff.
        self.stopping = False
        self._down_until = 0.0  # monotonic: no sends before this, batches go to the spool
        self._fail_streak = 0
        self._next_refresh = 0.0

    def send(self, events: Items, records: Items) -> None:
        """Deliver one new batch, or spool it."""
        self._dispatch(events, records, new_event_id(), batch_time(events, records))

    def _dispatch(self, events: Items, records: Items, batch_id: str, sent_at: int) -> None:
        if time.monotonic() < self._down_until:  # collector known down: don't wait on it
            self._to_spool(batch_id, sent_at, events, records)
            return
        attempts = 1 if self.stopping else max(1, self.retry.attempts)
        retry_after: float | None = None
        for attempt in range(attempts):
            try:
                result = self.transport.send(events, records, batch_id=batch_id,
                                             sent_at=sent_at)
            except TransportError as exc:
                if exc.status == 413 and len(events) + len(records) > 1:
                    self._split(events, records)
                    return
                if not exc.retryable:
                    self._refused(events, records, exc)
                    return
                retry_after = exc.retry_after
                wait = self.retry.delay(attempt, retry_after)
                if attempt + 1 >= attempts or wait > self.retry.max_inline_wait:
                    break
                log.info("collector not ready (%s); retrying in %.2fs", exc, wait)
                time.sleep(wait)
                continue
            except Exception:
                log.exception("transport failed; %d events dropped", len(events))
                self._counters.drop("error", len(events) + len(records))
                return
            self._delivered(events, records, result)
            return
        self._collector_down(retry_after)
        self._to_spool(batch_id, sent_at, events, records)

    def _split(self, events: Items, records: Items) -> None:
        # 413: the collector's body limit is lower than ours; halve until it fits. Each half
        # is a batch of its own.
        half_e, half_r = len(events) // 2, len(records) // 2
        for part_e, part_r in ((events[:half_e], records[:half_r]),
                               (events[half_e:], records[half_r:])):
            if part_e or part_r:
                self.send(part_e, part_r)

    def _delivered(self, events: Items, records: Items, result: SendResult) -> None:
        # A host's transport written before send() had to answer may still return None.
        rejected = result.rejected if isinstance(result, SendResult) else 0
        if rejected:
            log.warning("collector rejected %d items: %s", rejected, "; ".join(result.reasons[:5]))
        self._fail_streak = 0
        self._counters.delivered(len(events), len(records), rejected)

    def _refused(self, events: Items, records: Items, exc: TransportError) -> None:
        log.error("collector refused a batch of %d events, %d records: %s",
                  len(events), len(records), exc)
        self._counters.refused(len(events) + len(records))

    def _collector_down(self, retry_after: float | None) -> None:
        self._fail_streak += 1
        self._down_until = time.monotonic() + self.retry.delay(self._fail_streak, retry_after)

    def _to_spool(self, batch_id: str, sent_at: int, events: Items, records: Items) -> None:
        try:
            dropped = self.spool.put(batch_id, events, records, sent_at=sent_at)
        except Exception:
            log.exception("spooling a batch failed; %d events dropped", len(events))
            self._counters.drop("error", len(events) + len(records))
            return
        self._counters.drop("spool_full", dropped.events + dropped.records)

    # -- background work, after each worker wake-up -------------------------------------------

    def tick(self) -> None:
        """Refresh the suppression list, then replay the spool. A failure of either is
        logged and counted (``worker_errors``); the worker carries on."""
        for task in (self.refresh_suppressions, self.replay):
            try:
                task()
            except Exception:
                log.exception("capture: %s failed", task.__name__)
                self._counters.worker_failed()

    def replay(self) -> None:
        """Resend spooled batches, oldest first, until one fails or the budget is spent."""
        if time.monotonic() < self._down_until:
            return
        started = time.monotonic()
        while time.monotonic() - started < REPLAY_BUDGET:
            batch = self.spool.claim_oldest()
            if batch is None:
                return
            try:
                result = self.transport.send(batch.events, batch.records,
                                             batch_id=batch.batch_id, sent_at=batch.sent_at)
            except TransportError as exc:
                if exc.retryable:
                    self.spool.release(batch)
                    self._collector_down(exc.retry_after)
                    return
                self.spool.done(batch)
                self._refused(batch.events, batch.records, exc)
                continue
            except Exception:
                log.exception("transport failed on a spooled batch; dropped")
                self.spool.done(batch)
                self._counters.drop("error", len(batch.events) + len(batch.records))
                continue
            self.spool.done(batch)
            self._delivered(batch.events, batch.records, result)

    def refresh_suppressions(self) -> None:
        """Replace the suppression list with the transport's, every ``refresh_every``
        seconds while the collector is up; a transport that keeps none (None) leaves the
        local list alone."""
        now = time.monotonic()
        if now < self._next_refresh or now < self._down_until:
            return
        self._next_refresh = now + self._refresh_every
        try:
            answer = self.transport.fetch_suppressions(since=self._suppressions.version)
        except TransportError as exc:
            log.info("suppression refresh failed: %s", exc)
            return
        if answer is not None and not answer.unchanged:
            self._suppressions.replace(answer.hashes, answer.version, purged=answer.purged)
