"""The ingest pipeline: validate → drop replays and suppressed ids → enrich → insert by column.

Shared by ``POST /v1/events`` and the in-process transport, so both behave the same. Items are
independent: a bad one is rejected with a reason, the good ones of the same batch are stored.
Replays never count twice: ids seen recently are skipped (a bounded LRU per process, filled at
start with the ids the store received in the last ``dedupe_warm_hours``, so a replay after a
restart is dropped too). The rows of concurrent batches are merged into one insert per table
(``GroupInserter``); each caller returns only once its own rows are stored.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.enrich.geo import GeoLookup
from collector.ingest.rows import (
    EVENT_COLUMNS,
    RECORD_COLUMNS,
    TS_COLUMN,
    event_columns,
    record_columns,
)
from collector.ingest.validate import COLLECTOR_CLOCK, SENT_AT, Checked, check_event, check_record
from collector.metrics import CollectorMetrics
from collector.privacy.gate import SuppressionGate
from collector.settings import CollectorSettings
from collector.store import Store, StoreError

log = logging.getLogger("consent_mw.collector.ingest")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Validating a batch is pure Python, holding the GIL; the inserter thread needs it between the
# native phases of an insert and would wait a switch interval (5 ms) each time. Releasing it
# every 128 items (~1.5 ms of work) lets an insert go on at once: 1 000-row inserts took ~40 ms
# beside a validating thread instead of ~15 ms.
_YIELD_MASK = 127

def ms_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(slots=True)
class Rejected:
    index: int
    type: str  # "event" or "record"
    id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        key = "event_id" if self.type == "event" else "record_id"
        return {"index": self.index, "type": self.type, key: self.id, "reason": self.reason}


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # valid items, stored now or already stored (replays)
    duplicates: int = 0
    suppressed: int = 0
    anonymised: int = 0  # consent records of suppressed people, stored without their ids
    inserted_events: int = 0
    inserted_records: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "anonymised": self.anonymised,
            "rejected": [r.as_dict() for r in self.rejected],
        }


class RecentIds:
    """A bounded, thread-safe LRU of ids (per process: see docs/scaling.md).

    Each id maps to the :class:`Pending` insert that carries it, or None once known stored
    (ids warmed from the store at start), so a replay that arrives while the first copy is
    still being inserted can wait for that insert instead of being answered too early.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, Pending | None] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(
        self, ids: Iterable[str], owner: Pending | None = None
    ) -> dict[str, Pending | None]:
        """Add the ids (carried by ``owner``); return those already present with their owner."""
        seen: dict[str, Pending | None] = {}
        known = self._ids
        with self._lock:
            for i in ids:
                if i in known:
                    known.move_to_end(i)
                    seen[i] = known[i]
                else:
                    known[i] = owner
            while len(known) > self.size:
                known.popitem(last=False)
        return seen

    def remember(self, ids: Iterable[str]) -> None:
        """Add ids known to be stored, oldest first (the newest stay longest)."""
        with self._lock:
            for i in ids:
                self._ids[i] = None
                self._ids.move_to_end(i)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)

    def forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            for i in ids:
                self._ids.pop(i, None)

    def __len__(self) -> int:
        return len(self._ids)


class Pending:
    """One request's rows on their way into a group insert; ``done`` is set when they are
    stored or the insert failed (``error``)."""

    __slots__ = ("done", "error", "event_columns", "events_stored", "queued_at",
                 "record_columns", "records_stored", "rows")

    def __init__(self) -> None:
        self.event_columns: list[list[Any]] | None = None
        self.record_columns: list[list[Any]] | None = None
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
                 after_events: Sequence[Callable[[Sequence[int]], None]] = ()) -> None:
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


def _nothing() -> None:
    pass


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


class Ingest:
    """Validate, enrich and insert one batch. Thread-safe; bound to a store by the service."""

    def __init__(
        self,
        settings: CollectorSettings,
        metrics: CollectorMetrics,
        gate: SuppressionGate,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.gate = gate
        self.recent = RecentIds(settings.dedupe_size)
        self.store: Store | None = None
        self.geo: GeoLookup | None = None
        self.inserter: GroupInserter | None = None
        # Called after every events insert with its ts column, epoch ms (the rollup: late days).
        self.after_events: list[Callable[[Sequence[int]], None]] = []

    def bind(self, store: Store, geo: GeoLookup) -> None:
        """Start inserting into ``store``, remembering the ids it received lately."""
        self.warm(store)
        self.inserter = GroupInserter(
            store, self.metrics, max_rows=self.settings.insert_max_rows,
            linger=self.settings.insert_linger_ms / 1000, after_events=self.after_events)
        self.store, self.geo = store, geo

    def unbind(self) -> None:
        """Insert what is queued, then stop."""
        inserter, self.inserter = self.inserter, None
        self.store, self.geo = None, None
        if inserter is not None:
            inserter.close()

    def expect(self) -> Callable[[], None]:
        """Call when a batch arrives, before reading it: the insert in preparation may wait a
        moment (``insert_linger_ms``) for its rows. Pass the result to :meth:`process`, and
        call it if the batch never gets there (idempotent)."""
        inserter = self.inserter
        return inserter.expect() if inserter is not None else _nothing

    def warm(self, store: Store) -> int:
        """Remember the ids stored in the last ``dedupe_warm_hours``, so a batch replayed
        after a restart (the sender never saw the answer) is still dropped."""
        hours = self.settings.dedupe_warm_hours
        if not hours:
            return 0
        total = 0
        for table, column in (("consent_records", "record_id"), ("events", "event_id")):
            try:
                rows = store.rows(
                    f"SELECT toString({column}) FROM {table} "
                    "WHERE received_at > now64(3) - INTERVAL {h:UInt32} HOUR "
                    "ORDER BY received_at DESC LIMIT {n:UInt64}",
                    {"h": hours, "n": self.recent.size})
            except Exception as exc:  # a slow or odd store must not stop the collector
                log.warning("could not load recent %s ids (replays may be stored twice): %s",
                            table, exc)
                continue
            self.recent.remember(r[0] for r in reversed(rows))
            total += len(rows)
        if total:
            log.info("remembered %d ids received in the last %d h", total, hours)
        return total

    # -- the pipeline -------------------------------------------------------------------

    def process(
        self,
        events: Sequence[Any],
        records: Sequence[Any] = (),
        *,
        batch_id: str | None = None,
        sent_at: int | None = None,
        now_ms: int | None = None,
        expected: Callable[[], None] | None = None,
    ) -> IngestResult:
        """Store the valid items of a batch; return once they are in the store.

        Raises StoreError when the store fails; the ids of this batch are then forgotten, so
        a retry stores them. Replays are recognised by their event and record ids;
        ``batch_id`` only names the batch in logs. ``sent_at`` (ms) is when the sender first
        built the batch, kept across its spool's replays: items' ``ts`` are checked against
        it, so a batch that waited a day for the collector is still taken. ``expected`` is
        what :meth:`expect` returned when the request arrived.
        """
        with self.gate.in_flight():  # a purge waits for calls that passed its check
            return self._process(events, records, batch_id, sent_at, now_ms, expected)

    def _process(self, events: Sequence[Any], records: Sequence[Any], batch_id: str | None,
                 sent_at: int | None, now_ms: int | None,
                 expected: Callable[[], None] | None) -> IngestResult:
        inserter, geo = self.inserter, self.geo
        if inserter is None or geo is None:
            raise StoreError("collector is not started")
        arrived = expected or inserter.expect()
        pending = Pending()
        fresh: list[tuple[str, str]] = []  # (kind, id) this request reserved
        waits: list[tuple[str, Pending]] = []  # replays of items still being inserted
        try:
            result = self._prepare(events, records, geo, sent_at, now_ms, pending, fresh, waits)
            if pending.rows:
                inserter.submit(pending)
            else:
                pending.finish()
        except BaseException as exc:
            if not pending.done.is_set():
                pending.finish(StoreError(str(exc) if isinstance(exc, StoreError)
                                          else f"ingest failed: {exc}"))
            self.recent.forget(i for _, i in fresh)
            raise
        finally:
            arrived()
        pending.done.wait()
        if pending.error is not None:
            # Let a retry store them: these ids were never written.
            self.recent.forget(i for kind, i in fresh if not pending.stored(kind))
            log.warning("batch %s not stored: %s", batch_id, pending.error)
            raise StoreError(str(pending.error))  # the shared one stays traceback-free
        for kind, other in waits:
            # Answer a replay only once the first copy is in the store.
            other.done.wait()
            if not other.stored(kind):
                raise StoreError("an earlier copy of these items failed to store; retry")
        return result

    def _prepare(
        self,
        events: Sequence[Any],
        records: Sequence[Any],
        geo: GeoLookup,
        sent_at: int | None,
        now_ms: int | None,
        pending: Pending,
        fresh: list[tuple[str, str]],
        waits: list[tuple[str, Pending]],
    ) -> IngestResult:
        """Validate, drop replays and suppressed ids, and build ``pending``'s columns."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        skew = self.settings.clock_skew * 1000
        m = self.metrics
        result = IngestResult()
        m.received.labels("event").inc(len(events))
        m.received.labels("record").inc(len(records))

        # ts is checked against the batch's sent_at: a spool replays old batches late.
        clock, clock_name = now, COLLECTOR_CLOCK
        too_late = {"event": "", "record": ""}
        if sent_at is not None:
            clock, clock_name = sent_at, SENT_AT
            if sent_at > now + skew:
                reason = (f"sent_at: {sent_at} is more than {skew // 1000}s ahead of the "
                          "collector's clock")
                too_late = {"event": reason, "record": reason}
            for kind, ttl, table in (("event", self.settings.events_ttl, "events"),
                                     ("record", self.settings.records_ttl, "consent records")):
                if sent_at < now - ttl * 1000:
                    too_late[kind] = f"sent_at: {sent_at} is older than the {table} TTL"
        good_events = self._check_all(check_event, events, clock, clock_name, skew, "event",
                                      "event_id", too_late["event"], result)
        good_records = self._check_all(check_record, records, clock, clock_name, skew,
                                       "record", "record_id", too_late["record"], result)

        result.accepted = len(good_events) + len(good_records)
        good_events = self._fresh(good_events, "event", "event_id", pending, fresh, waits,
                                  result)
        good_records = self._fresh(good_records, "record", "record_id", pending, fresh, waits,
                                   result)
        blocks = self.gate.blocks_event
        kept = [e for e in good_events if not blocks(e)]
        result.suppressed = len(good_events) - len(kept)
        if result.suppressed:
            m.dropped.labels("suppressed").inc(result.suppressed)
        admit = self.gate.admit_record
        result.anonymised = sum(admit(r) for r in good_records)
        if result.anonymised:
            m.fields.labels("record_anonymised").inc(result.anonymised)
        if kept:
            # In parts, releasing the GIL between them (see _YIELD_MASK).
            step = _YIELD_MASK + 1
            pending.event_columns = event_columns(kept[:step], geo)
            for start in range(step, len(kept), step):
                time.sleep(0)
                for column, part in zip(pending.event_columns,
                                        event_columns(kept[start:start + step], geo),
                                        strict=True):
                    column.extend(part)
        if good_records:
            pending.record_columns = record_columns(good_records)
        pending.rows = len(kept) + len(good_records)
        result.inserted_events, result.inserted_records = len(kept), len(good_records)
        return result

    def _check_all(
        self,
        check: Callable[..., Checked],
        items: Sequence[Any],
        clock: int,
        clock_name: str,
        skew: int,
        kind: str,
        id_key: str,
        batch_reason: str,
        result: IngestResult,
    ) -> list[dict[str, Any]]:
        good: list[dict[str, Any]] = []
        for index, raw in enumerate(items):
            if index & _YIELD_MASK == _YIELD_MASK:
                time.sleep(0)  # see _YIELD_MASK
            if batch_reason:  # the whole batch is out of time
                checked = Checked(None, "clock_skew", batch_reason)
            else:
                checked = self._check(check, raw, clock, clock_name, skew, index, kind)
            item = self._count(checked, raw, index, kind, id_key, result)
            if item is not None:
                good.append(item)
        return good

    def _check(
        self,
        check: Callable[..., Checked],
        raw: Any,
        clock: int,
        clock_name: str,
        skew: int,
        index: int,
        kind: str,
    ) -> Checked:
        try:
            return check(raw, now_ms=clock, skew_ms=skew, clock=clock_name)
        except Exception:  # never let one odd item cost the batch
            log.exception("validating %s %d failed", kind, index)
            return Checked(None, "internal", "internal validation error")

    def _count(
        self,
        checked: Checked,
        raw: Any,
        index: int,
        kind: str,
        id_key: str,
        result: IngestResult,
    ) -> dict[str, Any] | None:
        if checked.truncated:
            self.metrics.fields.labels("truncated").inc(checked.truncated)
        for note in checked.notes:
            self.metrics.fields.labels(note).inc()
        if checked.item is None:
            item_id = raw.get(id_key) if isinstance(raw, dict) else None
            result.rejected.append(Rejected(
                index, kind, item_id if isinstance(item_id, str) else None, checked.reason))
            self.metrics.rejected.labels(checked.code).inc()
            return None
        # One spelling per id, so replays match whatever case or dashes the sender used. The
        # pattern passed: 36 characters means dashes in place, so only the case can differ.
        item_id = checked.item[id_key]
        if len(item_id) != 36 or item_id != item_id.lower():
            checked.item[id_key] = str(uuid.UUID(item_id))
        return checked.item

    def _fresh(
        self,
        items: list[dict[str, Any]],
        kind: str,
        id_key: str,
        pending: Pending,
        reserved: list[tuple[str, str]],
        waits: list[tuple[str, Pending]],
        result: IngestResult,
    ) -> list[dict[str, Any]]:
        """The items not seen before; reserves their ids for ``pending``."""
        if not items:
            return items
        seen = self.recent.reserve((i[id_key] for i in items), pending)
        fresh: list[dict[str, Any]] = []
        in_batch: set[str] = set()
        for item in items:
            item_id = item[id_key]
            if item_id in seen or item_id in in_batch:
                result.duplicates += 1
                owner = seen.get(item_id)
                if owner is not None and owner is not pending and all(
                        o is not owner for _, o in waits):
                    waits.append((kind, owner))
                continue
            in_batch.add(item_id)
            reserved.append((kind, item_id))
            fresh.append(item)
        dup = len(items) - len(fresh)
        if dup:
            self.metrics.dropped.labels("duplicate").inc(dup)
        return fresh
