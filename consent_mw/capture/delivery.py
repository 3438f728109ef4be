"""One try per batch, the spool for what fails, and the collector's state: up, unreachable
(probed until it answers) or failing (left alone for a backoff).

The :class:`~consent_mw.capture.sender.Sender` calls it from its own thread, so a send may
block; a capture flushed by hand calls it in the flushing thread. When a send fails, the
batch goes to the spool and the collector is marked down:
- **unreachable** (no connection, a timeout): probed every ``probe_every`` seconds with the
  transport's health check, so the spool replay starts within a second of the collector
  answering again;
- **failing** (it answers 5xx, 429...): left alone for a backoff with full jitter, honouring
  ``Retry-After``.

Retries are spool replays, oldest first. Each batch gets its ``batch_id`` and ``sent_at``
once, here, and keeps both through replays: the collector deduplicates on its items' ids and
judges clock skew against ``sent_at``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from consent_mw.capture.counters import Counters
from consent_mw.capture.spool import Spool
from consent_mw.capture.suppression import SuppressionList
from consent_mw.capture.transport import (
    HealthCheck,
    RetryPolicy,
    SendResult,
    Transport,
    TransportError,
    batch_time,
)
from consent_mw.ids import new_event_id

log = logging.getLogger(__name__)

Items = list[dict[str, Any]]
State = Literal["up", "unreachable", "failing"]

RESCAN_SPOOL = 5.0  # seconds: how often to look for batches other processes spooled


@dataclass(slots=True)
class Outgoing:
    batch_id: str
    sent_at: int
    events: Items
    records: Items
    size: int


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
        self._probe = transport if isinstance(transport, HealthCheck) else None
        self.state: State = "up"
        self._retry_at = 0.0  # monotonic: when a down collector is tried (or probed) again
        self._fail_streak = 0
        self._next_refresh = 0.0
        self._spool_pending = True  # a spool left by an earlier process is replayed too
        self._next_rescan = 0.0
        self.last_sent_at: float | None = None  # unix seconds of the last delivered batch

    @staticmethod
    def batch(events: Items, records: Items, size: int = 0) -> Outgoing:
        """A new batch: its id and ``sent_at``, kept from now on."""
        return Outgoing(new_event_id(), batch_time(events, records), events, records, size)

    def send_now(self, batch: Outgoing) -> None:
        """Deliver or spool ``batch`` in this thread, then replay the spool if the collector
        is up (a capture without a sender thread, flushed by hand)."""
        self.recover()
        if self.state == "up":
            self.deliver(batch)
            self.replay()
        else:
            self.to_spool(batch)

    def deliver(self, batch: Outgoing) -> None:
        """One try; the spool keeps what the collector did not take."""
        try:
            result = self.transport.send(batch.events, batch.records,
                                         batch_id=batch.batch_id, sent_at=batch.sent_at)
        except TransportError as exc:
            if exc.status == 413 and len(batch.events) + len(batch.records) > 1:
                self._split(batch)
            elif not exc.retryable:
                self._refused(batch.events, batch.records, exc)
            else:
                self._went_down(exc)
                self.to_spool(batch)
            return
        except Exception:
            log.exception("transport failed; %d events dropped", len(batch.events))
            self._counters.drop("error", len(batch.events) + len(batch.records))
            return
        self._delivered(batch.events, batch.records, result)

    def _split(self, batch: Outgoing) -> None:
        # 413: the collector's body limit is lower than ours; halve until it fits. Each half
        # is a batch of its own.
        events, records = batch.events, batch.records
        half_e, half_r = len(events) // 2, len(records) // 2
        for part_e, part_r in ((events[:half_e], records[:half_r]),
                               (events[half_e:], records[half_r:])):
            if part_e or part_r:
                self.deliver(Outgoing(new_event_id(), batch.sent_at, part_e, part_r,
                                       batch.size // 2))

    def _delivered(self, events: Items, records: Items, result: SendResult) -> None:
        # A host's transport written before send() had to answer may still return None.
        rejected = result.rejected if isinstance(result, SendResult) else 0
        if rejected:
            log.warning("collector rejected %d items: %s", rejected, "; ".join(result.reasons[:5]))
        if self.state != "up":
            log.info("collector answers again; replaying the spool")
        self.state = "up"
        self._fail_streak = 0
        self.last_sent_at = time.time()
        self._counters.delivered(len(events), len(records), rejected)

    def _refused(self, events: Items, records: Items, exc: TransportError) -> None:
        log.error("collector refused a batch of %d events, %d records: %s",
                  len(events), len(records), exc)
        self._counters.refused(len(events) + len(records))

    def _went_down(self, exc: TransportError) -> None:
        unreachable = exc.status is None and self._probe is not None
        if self.state == "up":
            log.warning("collector %s (%s); batches go to the spool until it answers",
                        "unreachable" if unreachable else "failing", exc)
        self.state = "unreachable" if unreachable else "failing"
        self._fail_streak += 1
        wait = (self.retry.probe_every if unreachable
                else self.retry.delay(self._fail_streak, exc.retry_after))
        self._retry_at = time.monotonic() + wait

    def to_spool(self, batch: Outgoing) -> None:
        try:
            dropped = self.spool.put(batch.batch_id, batch.events, batch.records,
                                     sent_at=batch.sent_at)
        except Exception:
            log.exception("spooling a batch failed; %d events dropped", len(batch.events))
            self._counters.drop("error", len(batch.events) + len(batch.records))
            return
        self._spool_pending = True
        self._counters.drop("spool_full", dropped.events + dropped.records)

    # -- background work --------------------------------------------------------------------

    def tick(self, limit: int | None = None, waiting: Callable[[], bool] = lambda: False) -> None:
        """Refresh the suppression list, bring a down collector back, replay the spool (at
        most ``limit`` batches; stopping once ``waiting()`` says new batches wait), and log the
        drops of the interval. A failure of any is logged and counted (``worker_errors``)."""
        for task in (self.refresh_suppressions, self.recover, self._counters.log_drops):
            try:
                task()
            except Exception:
                log.exception("capture: %s failed", getattr(task, "__name__", task))
                self._counters.worker_failed()
        try:
            self.replay(limit, waiting)
        except Exception:
            log.exception("capture: replay failed")
            self._counters.worker_failed()

    def recover(self) -> None:
        """A down collector, once its wait is over: probed when unreachable (up again at once
        if it answers), tried through the replay when failing."""
        if self.state == "up" or time.monotonic() < self._retry_at:
            return
        if self.state == "unreachable" and self._probe is not None:
            if not self._probe.healthy():
                self._retry_at = time.monotonic() + self.retry.probe_every
                return
            log.info("collector answers its health check again")
        self.state = "up"

    def replay(self, limit: int | None = None, waiting: Callable[[], bool] = lambda: False) -> None:
        """Resend spooled batches, oldest first, until one fails, the spool is empty,
        ``waiting()`` (new batches wait), or ``limit`` batches went."""
        now = time.monotonic()
        if now >= self._next_rescan:
            self._next_rescan = now + RESCAN_SPOOL
            self._spool_pending = True
        sent = 0
        while self.state == "up" and self._spool_pending and (limit is None or sent < limit):
            if sent and waiting():
                return
            batch = self.spool.claim_oldest()
            if batch is None:
                self._spool_pending = False
                return
            sent += 1
            try:
                result = self.transport.send(batch.events, batch.records,
                                             batch_id=batch.batch_id, sent_at=batch.sent_at)
            except TransportError as exc:
                if exc.retryable:
                    self.spool.release(batch)
                    self._went_down(exc)
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
        if now < self._next_refresh or self.state != "up":
            return
        self._next_refresh = now + self._refresh_every
        try:
            answer = self.transport.fetch_suppressions(since=self._suppressions.version)
        except TransportError as exc:
            log.info("suppression refresh failed: %s", exc)
            return
        if answer is not None and not answer.unchanged:
            self._suppressions.replace(answer.hashes, answer.version, purged=answer.purged)
