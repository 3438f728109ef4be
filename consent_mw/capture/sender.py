"""The sender thread: batches leave the capture worker here, so the network never holds the
worker, and through it the queue.

The worker hands each built batch to :meth:`Sender.send` and goes back to the queue at once:
- the collector up and the outbox (a few batches, bounded in bytes) has room: the batch
  waits there for the sender thread, which delivers it (:class:`~consent_mw.capture.
  delivery.Delivery`, one try; the spool when it fails);
- otherwise (the collector down, failing, or slower than the traffic): the worker writes
  the batch to the spool itself, at disk speed.

Between new batches the thread replays the spool one batch at a time; idle, it wakes every
``IDLE_WAKE`` seconds to probe a down collector, refresh suppressions and replay.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque

from consent_mw import wire
from consent_mw.capture.delivery import Delivery, Items, Outgoing

log = logging.getLogger(__name__)

#: What may wait for the sender, in built batches and their estimated bytes; beyond it the
#: worker spools. Small: the queue in front is the real buffer, this only keeps the sender busy.
OUTBOX_BATCHES = 4
OUTBOX_BYTES = 2 * wire.MAX_BATCH_BYTES
IDLE_WAKE = 0.25  # seconds
#: Events freed between two releases of the GIL once a batch is delivered (see _release).
RELEASE_STEP = 500


def _refs_of_a_list_held_only_here() -> int:
    held: list[object] = []
    return sys.getrefcount(held)


#: What ``sys.getrefcount`` says of a list that only a local name holds, measured rather than
#: assumed: interpreters differ in what they count (None where there is no such function).
_ALONE = _refs_of_a_list_held_only_here() if hasattr(sys, "getrefcount") else None


def _release(batch: Outgoing) -> None:
    """Free a delivered batch's events a step at a time, letting the server's thread in
    between: freeing thousands of event dicts at once holds the GIL for a millisecond or
    more, which every request in flight waits out (the consented p99). Only when nothing else
    holds the list (a transport may have kept it): emptying it is then invisible to anyone."""
    events, batch.events = batch.events, []
    if _ALONE is None or sys.getrefcount(events) > _ALONE:
        return
    while events:
        del events[-RELEASE_STEP:]
        if events:
            time.sleep(0)


class Sender:
    """An outbox and the thread that empties it into ``delivery``. Before :meth:`start` (a
    capture flushed by hand), :meth:`send` delivers in the caller's thread."""

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery
        self._outbox: deque[Outgoing] = deque()
        self._outbox_bytes = 0
        self._busy = False  # the thread holds a batch taken from the outbox
        self._current: Outgoing | None = None
        self._cv = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def waiting(self) -> int:
        """Items in batches handed on and not yet delivered or spooled."""
        with self._cv:
            held = list(self._outbox) + ([self._current] if self._current else [])
        return sum(len(b.events) + len(b.records) for b in held)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def send(self, events: Items, records: Items, size: int = 0) -> None:
        """Hand on one new batch (``size``: its estimated bytes); never waits on the network."""
        batch = self.delivery.batch(events, records, size)
        if self._thread is None:
            self.delivery.send_now(batch)
            return
        with self._cv:
            if (self.delivery.state == "up" and len(self._outbox) < OUTBOX_BATCHES
                    and self._outbox_bytes + size <= OUTBOX_BYTES):
                self._outbox.append(batch)
                self._outbox_bytes += size
                self._cv.notify()
                return
        self.delivery.to_spool(batch)  # down, or slower than the traffic: the disk keeps it

    def start(self) -> None:
        with self._cv:
            if self.running:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="consent-mw-sender",
                                            daemon=True)
            self._thread.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every batch handed on so far is delivered or spooled."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._outbox or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
        return True

    def shutdown(self, timeout: float) -> None:
        """Deliver or spool what waits, then stop the thread. What is still waiting after
        ``timeout`` (the thread stuck in a send) is spooled from this thread, the batch being
        sent included: if that send succeeds after all, the collector drops the replay."""
        thread = self._thread
        if thread is None:
            return
        self.flush(timeout)
        with self._cv:
            self._stopping = True
            left = list(self._outbox)
            if self._busy and self._current is not None:
                left.append(self._current)
            self._outbox.clear()
            self._outbox_bytes = 0
            self._cv.notify_all()
        for batch in left:
            self.delivery.to_spool(batch)
        thread.join(max(0.1, timeout))
        self._thread = None

    def _waiting(self) -> bool:
        return bool(self._outbox)

    def _run(self) -> None:
        delivery = self.delivery
        while True:
            with self._cv:
                if not self._outbox and not self._stopping:
                    self._cv.wait(IDLE_WAKE)
                if self._stopping:
                    return
                batch = self._outbox.popleft() if self._outbox else None
                if batch is not None:
                    self._outbox_bytes -= batch.size
                    self._busy = True
                    self._current = batch
            try:
                if batch is not None:
                    if delivery.state == "up":
                        delivery.deliver(batch)
                    else:
                        delivery.to_spool(batch)
                    _release(batch)
                # One spooled batch between new ones, so neither starves the other.
                delivery.tick(1 if batch is not None else None, self._waiting)
            except Exception:  # the thread must survive anything a transport does
                log.exception("capture sender failed")
            finally:
                with self._cv:
                    self._busy = False
                    self._current = None
                    self._cv.notify_all()
