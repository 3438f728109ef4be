"""Group commit: the rows of concurrent batches go into the store as one insert per table.

ClickHouse pays a fixed cost per insert (a new part), so batches arriving together are merged
into one column-oriented block. Each request hands its rows over as a :class:`Pending` and
waits for it; a failed insert fails exactly the requests of that block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

from collector.ingest.rows import EVENT_COLUMNS, RECORD_COLUMNS, TS_COLUMN
from collector.metrics import CollectorMetrics
from collector.store import Store, StoreError

log = logging.getLogger(__name__)

BOT_HIT_COLUMNS = ("hour", "kind", "hits")
#: Called after every events insert with its ts column, epoch ms (the rollup's late days).
AfterEvents = Callable[[Sequence[int]], None]


class Pending:
    """One request's rows on their way into a group insert; ``done`` is set when they are
    stored or the insert failed (``error``)."""

    __slots__ = ("bot_hits", "done", "error", "event_columns", "events_stored", "queued_at",
                 "record_columns", "records_stored", "rows")

    def __init__(self) -> None:
        self.event_columns: list[list[Any]] | None = None
        self.record_columns: list[list[Any]] | None = None
        #: Known bots' events, never stored: how many per (hour, kind) (``bot_hits``).
        self.bot_hits: Counter[tuple[int, str]] = Counter()
        self.rows = 0
        self.done = threading.Event()
        self.error: StoreError | None = None
        self.events_stored = False
        self.records_stored = False
        self.queued_at = 0.0

    def stored(self, kind: str) -> bool:
        """Whether this insert's items of ``kind`` (event/record) are in the store."""
        if not self.done.is_set():
            return False
        return self.error is None or (self.events_stored if kind == "event"
                                      else self.records_stored)

    def finish(self, error: StoreError | None = None) -> None:
        self.event_columns = self.record_columns = None
        self.bot_hits = Counter()
        self.error = error
        self.done.set()


class GroupInserter:
    """One thread that inserts the rows of every concurrent batch as one block per table.

    ClickHouse pays a fixed cost per insert (a new part), so 1 000-row batches posted in
    parallel are merged — up to ``max_rows`` — into one column-oriented insert. When a batch
    is queued, the thread waits up to ``linger`` for batches that have arrived and are still
    being read or validated (:meth:`expect`), and not at all when none has. Each request waits
    for its own ``Pending``; a failed insert fails exactly the requests of that block.
    """

    def __init__(self, store: Store, metrics: CollectorMetrics, *, max_rows: int,
                 linger: float,
                 after_events: Sequence[AfterEvents] = ()) -> None:
        self.store = store
        self.after_events = tuple(after_events)
        self.metrics = metrics
        self.max_rows = max_rows
        self.linger = linger
        self._queue: deque[Pending] = deque()
        self._queued_rows = 0
        self._preparing = 0  # batches arrived but not queued yet: they may join the next block
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="collector-insert", daemon=True)
        self._thread.start()

    def expect(self) -> Callable[[], None]:
        """Count a request whose rows are on their way (a block about to be inserted may wait
        for them); returns the call that stops counting it, idempotent."""
        with self._cond:
            self._preparing += 1
        counted = True

        def arrived() -> None:
            nonlocal counted
            with self._cond:
                if counted:
                    counted = False
                    self._preparing -= 1
                    self._cond.notify_all()

        return arrived

    def submit(self, pending: Pending) -> None:
        with self._cond:
            if self._closing:
                raise StoreError("collector is stopping")
            pending.queued_at = time.monotonic()
            self._queue.append(pending)
            self._queued_rows += pending.rows
            self._cond.notify_all()

    @property
    def queued(self) -> int:
        """Batches waiting for the insert in progress to end."""
        with self._cond:
            return len(self._queue)

    def close(self) -> None:
        """Insert what is queued, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def _next_block(self) -> list[Pending] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            deadline = self._queue[0].queued_at + self.linger
            while (self._preparing and self._queued_rows < self.max_rows
                   and not self._closing):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            block = [self._queue.popleft()]
            rows = block[0].rows
            while self._queue and rows + self._queue[0].rows <= self.max_rows:
                rows += self._queue[0].rows
                block.append(self._queue.popleft())
            self._queued_rows -= rows
            return block

    def _run(self) -> None:
        while True:
            block = self._next_block()
            if block is None:
                return
            try:
                self._insert(block)
            except BaseException as exc:  # never leave a request waiting forever
                error = StoreError(f"insert failed: {exc}")
                for pending in block:
                    if not pending.done.is_set():
                        pending.finish(error)
                if not isinstance(exc, Exception):
                    raise

    def _insert(self, block: list[Pending]) -> None:
        m = self.metrics
        start = time.perf_counter()
        try:
            # Before the events: if that insert fails, a retry may count a bot twice, but no
            # event is ever stored twice nor a bot hit lost with a replay's stored events.
            bots: Counter[tuple[int, str]] = Counter()
            for p in block:
                bots.update(p.bot_hits)
            if bots:
                # Equal blocks of counts are distinct hits: never deduplicate them.
                self.store.insert("bot_hits", [[h, k, n] for (h, k), n in bots.items()],
                                  BOT_HIT_COLUMNS, settings={"insert_deduplicate": 0})
                m.inserted.labels("bot_hits").inc(len(bots))
            events = _concat([p.event_columns for p in block], len(EVENT_COLUMNS))
            if events is not None:
                self.store.insert("events", events, EVENT_COLUMNS, column_oriented=True)
                m.inserted.labels("events").inc(len(events[0]))
                for p in block:
                    p.events_stored = True
                for hook in self.after_events:
                    try:
                        hook(events[TS_COLUMN])
                    except Exception:  # the rows are stored; a refresh's count check catches up
                        log.exception("after-insert hook failed")
            records = _concat([p.record_columns for p in block], len(RECORD_COLUMNS))
            if records is not None:
                self.store.insert("consent_records", records, RECORD_COLUMNS,
                                  column_oriented=True)
                m.inserted.labels("consent_records").inc(len(records[0]))
                for p in block:
                    p.records_stored = True
        except Exception as exc:
            log.error("insert of %d batch(es) failed: %s", len(block), exc)
            # A new exception, without the traceback that would keep this block's rows alive.
            error = StoreError(str(exc) if isinstance(exc, StoreError) else f"insert failed: {exc}")
            for p in block:
                p.finish(error)
        else:
            for p in block:
                p.finish()
        finally:
            m.insert_seconds.observe(time.perf_counter() - start)


def not_expected() -> None:
    """What ``expect`` gives when no insert is being prepared: nothing to stop counting."""


def _concat(parts: list[list[list[Any]] | None], width: int) -> list[list[Any]] | None:
    present = [p for p in parts if p]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    columns: list[list[Any]] = [[] for _ in range(width)]
    for part in present:
        for column, values in zip(columns, part, strict=True):
            column.extend(values)
    return columns
