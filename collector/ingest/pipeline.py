"""The ingest pipeline: validate → drop replays and suppressed ids → enrich → insert by column.

Every batch goes through :meth:`Ingest.take`, whether ``POST /v1/events`` decoded it or the
in-process transport handed it over, so both behave the same. Items are independent: a bad one
is rejected with a reason, the good ones of the same batch are stored. Replays never count
twice (``collector.ingest.dedupe``). The rows of concurrent batches are merged into one insert
per table (``collector.ingest.inserter``); each caller returns only once its own rows are
stored.

The hot path is :meth:`Ingest._prepare` and what it calls (``validate.check_event``,
``rows.event_columns``): about 10 µs an event, and what limits a site's throughput when the web
process and the collector share a machine. Measure before and after changing it.
About 300 lines, most of them that path, kept in one module so it profiles as one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from collector.enrich.geo import GeoLookup
from collector.ingest.dedupe import RecentIds, warm
from collector.ingest.inserter import AfterEvents, GroupInserter, Pending, not_expected
from collector.ingest.result import IngestResult, Rejected
from collector.ingest.rows import device_of, event_columns, record_columns
from collector.ingest.validate import (
    COLLECTOR_CLOCK,
    SENT_AT,
    BatchRefused,
    Checked,
    check_batch,
    check_event,
    check_record,
)
from collector.metrics import CollectorMetrics
from collector.privacy.gate import SuppressionGate
from collector.settings import CollectorSettings
from collector.store import Store, StoreError

log = logging.getLogger(__name__)

# Validating a batch is pure Python, holding the GIL; the inserter thread needs it between the
# native phases of an insert and would wait a switch interval (5 ms) each time. Releasing it
# every 128 items (~1.5 ms of work) lets an insert go on at once: 1 000-row inserts took ~40 ms
# beside a validating thread instead of ~15 ms.
_YIELD_MASK = 127


class Ingest:
    """Validate, enrich and insert batches. Thread-safe; bound to a store by the service.

    ``gate`` is the one suppression gate (privacy changes it, ingest obeys it);
    ``after_events`` are called with the ts column of every events insert (the rollup marks
    late days dirty).
    """

    def __init__(self, settings: CollectorSettings, metrics: CollectorMetrics,
                 gate: SuppressionGate, *, after_events: Sequence[AfterEvents] = ()) -> None:
        self.settings = settings
        self.metrics = metrics
        self.gate = gate
        self.after_events = tuple(after_events)
        self.recent = RecentIds(settings.dedupe_size)
        self.store: Store | None = None
        self.geo: GeoLookup | None = None
        self.inserter: GroupInserter | None = None

    def bind(self, store: Store, geo: GeoLookup) -> None:
        """Start inserting into ``store``, remembering the ids it received lately."""
        warm(self.recent, store, self.settings.dedupe_warm_hours)
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
        moment (``insert_linger_ms``) for its rows. Pass the result to :meth:`take`, and
        call it if the batch never gets there (idempotent)."""
        inserter = self.inserter
        return inserter.expect() if inserter is not None else not_expected

    def take(self, batch: Any, *, expected: Callable[[], None] | None = None) -> IngestResult:
        """Store a wire batch (``consent_mw.wire.BATCH_SCHEMA``) and count its outcome.

        Raises :class:`BatchRefused` when the envelope is not the wire shape (nothing is
        stored; sending it again cannot help), :class:`StoreError` when the store fails (send
        it again later), and lets anything unexpected through, counted and logged.
        """
        m = self.metrics
        try:
            check_batch(batch)
        except BatchRefused as exc:
            m.rejected.labels(exc.code).inc()
            raise
        sent_at = batch.get("sent_at")
        try:
            result = self.process(
                batch.get("events", []), batch.get("consent_records", []),
                batch_id=batch.get("batch_id"),
                sent_at=None if sent_at is None else int(sent_at), expected=expected)
        except StoreError as exc:
            m.batches.labels("store_error").inc()
            log.error("store unavailable: %s", exc)
            raise
        except Exception:
            m.batches.labels("error").inc()
            log.exception("ingest failed")
            raise
        m.batches.labels("partial" if result.rejected else "ok").inc()
        return result

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
        recent = self.recent
        good_events = recent.fresh(good_events, "event", "event_id", pending, fresh, waits)
        good_records = recent.fresh(good_records, "record", "record_id", pending, fresh, waits)
        result.duplicates = result.accepted - len(good_events) - len(good_records)
        if result.duplicates:
            m.dropped.labels("duplicate").inc(result.duplicates)
        blocks = self.gate.blocks_event
        kept = [e for e in good_events if not blocks(e)]
        result.suppressed = len(good_events) - len(kept)
        if result.suppressed:
            m.dropped.labels("suppressed").inc(result.suppressed)
        kept = self._leave_out_bots(kept, pending, result)
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
        pending.rows = len(kept) + len(good_records) + len(pending.bot_hits)
        result.inserted_events, result.inserted_records = len(kept), len(good_records)
        return result

    def _leave_out_bots(self, events: list[dict[str, Any]], pending: Pending,
                        result: IngestResult) -> list[dict[str, Any]]:
        """Known bots are no people and give no consent: their events are counted per hour
        and kind into ``pending.bot_hits`` and not stored. The device type is the one
        classifier's (the parsed UA, or what the web side sent with an anonymous count);
        ``device_of`` is cached, so the rows built next reuse it."""
        people: list[dict[str, Any]] = []
        for e in events:
            if device_of(e).device_type == "bot":
                pending.bot_hits[(int(e["ts"]) // 3_600_000 * 3600, e["kind"])] += 1
            else:
                people.append(e)
        result.bots = len(events) - len(people)
        if result.bots:
            for (_, kind), n in pending.bot_hits.items():
                self.metrics.bots.labels(kind).inc(n)
        return people

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

    def _check(self, check: Callable[..., Checked], raw: Any, clock: int, clock_name: str,
               skew: int, index: int, kind: str) -> Checked:
        try:
            return check(raw, now_ms=clock, skew_ms=skew, clock=clock_name)
        except Exception:  # never let one odd item cost the batch
            log.exception("validating %s %d failed", kind, index)
            return Checked(None, "internal", "internal validation error")

    def _count(self, checked: Checked, raw: Any, index: int, kind: str, id_key: str,
               result: IngestResult) -> dict[str, Any] | None:
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
