"""The ingest pipeline: validate → drop replays and suppressed ids → enrich → insert by column.

Shared by ``POST /v1/events`` and the in-process transport, so both behave the same. Items are
independent: a bad one is rejected with a reason, the good ones of the same batch are stored.
Replays never count twice: ids seen recently are skipped (bounded LRU, per process), and each
insert carries a deduplication token derived from the batch id and the ids it holds, so a replay
after a restart is dropped by ClickHouse itself.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.enrich_device import device_fields
from collector.enrich_geo import NOWHERE, GeoLookup, ip_prefix
from collector.metrics import CollectorMetrics
from collector.settings import CollectorSettings
from collector.store import Store, StoreError
from collector.validate import Checked, check_event, check_record

log = logging.getLogger("consent_mw.collector.ingest")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUPPRESSIBLE = ("visitor_id", "user_id", "consent_id")

EVENT_COLUMNS = (
    "event_id", "ts", "kind", "name", "consent", "gpc", "host", "path", "method", "status",
    "search_terms", "referrer_host", "channel", "language", "network_type", "save_data",
    "browser", "browser_version", "os", "os_version", "device_type", "device_brand",
    "device_model", "visitor_id", "session_id", "consent_id", "user_id", "ip", "ip_prefix",
    "country", "region", "city", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "click_id_type", "properties", "traits",
)
RECORD_COLUMNS = (
    "record_id", "consent_id", "visitor_id", "previous_record_id", "ts", "event", "method",
    "component", "policy_version", "policy_hash", "locale", "categories", "services", "gcm",
    "gpc", "gpc_conflict", "host", "path", "ua_family", "expires_at",
)
# Wire fields copied as text ("" for null/absent).
_TEXT = (
    "host", "path", "method", "search_terms", "referrer_host", "channel", "language",
    "network_type", "visitor_id", "session_id", "consent_id", "user_id", "utm_source",
    "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id_type",
)


def ms_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _prop(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


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
    inserted_events: int = 0
    inserted_records: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "rejected": [r.as_dict() for r in self.rejected],
        }


class RecentIds:
    """A bounded, thread-safe LRU set of ids (per process: see docs/scaling.md)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(self, ids: Iterable[str]) -> set[str]:
        """Add the ids; return those already present (the replays)."""
        seen: set[str] = set()
        with self._lock:
            for i in ids:
                if i in self._ids:
                    self._ids.move_to_end(i)
                    seen.add(i)
                else:
                    self._ids[i] = None
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)
        return seen

    def forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            for i in ids:
                self._ids.pop(i, None)

    def __len__(self) -> int:
        return len(self._ids)


def _token(batch_id: str | None, table: str, ids: Sequence[str]) -> str | None:
    # The same batch id with different content (a sender that fixed rejected items) must not
    # be dropped as a replay, so the token covers the ids actually inserted.
    if not batch_id:
        return None
    digest = hashlib.sha256("\n".join(ids).encode("ascii")).hexdigest()[:32]
    return f"{batch_id}:{table}:{digest}"


class Ingest:
    """Validate, enrich and insert one batch. Thread-safe; bound to a store by the service."""

    def __init__(
        self,
        settings: CollectorSettings,
        metrics: CollectorMetrics,
        suppressed: Callable[[str, str], bool],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.suppressed = suppressed
        self.recent = RecentIds(settings.dedupe_size)
        self.store: Store | None = None
        self.geo: GeoLookup | None = None

    def bind(self, store: Store, geo: GeoLookup) -> None:
        self.store, self.geo = store, geo

    def unbind(self) -> None:
        self.store, self.geo = None, None

    # -- the pipeline -------------------------------------------------------------------

    def process(
        self,
        events: Sequence[Any],
        records: Sequence[Any] = (),
        *,
        batch_id: str | None = None,
        now_ms: int | None = None,
    ) -> IngestResult:
        """Store the valid items of a batch. Raises StoreError only when the store fails."""
        store, geo = self.store, self.geo
        if store is None or geo is None:
            raise StoreError("collector is not started")
        now = int(time.time() * 1000) if now_ms is None else now_ms
        skew = self.settings.clock_skew * 1000
        m = self.metrics
        result = IngestResult()
        m.received.labels("event").inc(len(events))
        m.received.labels("record").inc(len(records))

        good_events: list[dict[str, Any]] = []
        for index, raw in enumerate(events):
            checked = self._check(check_event, raw, now, skew, index, "event", "event_id", result)
            if checked is not None:
                good_events.append(checked)
        good_records: list[dict[str, Any]] = []
        for index, raw in enumerate(records):
            checked = self._check(check_record, raw, now, skew, index, "record", "record_id",
                                  result)
            if checked is not None:
                good_records.append(checked)

        result.accepted = len(good_events) + len(good_records)
        good_events = self._fresh(good_events, "event_id", result)
        good_records = self._fresh(good_records, "record_id", result)
        kept = [e for e in good_events if not self._is_suppressed(e)]
        result.suppressed = len(good_events) - len(kept)
        if result.suppressed:
            m.dropped.labels("suppressed").inc(result.suppressed)

        start = time.perf_counter()
        try:
            if kept:
                rows = [self._event_row(e, geo) for e in kept]
                ids = [e["event_id"] for e in kept]
                result.inserted_events = store.insert(
                    "events", _columns(rows, len(EVENT_COLUMNS)), EVENT_COLUMNS,
                    column_oriented=True, dedup_token=_token(batch_id, "events", ids),
                )
                m.inserted.labels("events").inc(len(kept))
            if good_records:
                rows = [_record_row(r) for r in good_records]
                ids = [r["record_id"] for r in good_records]
                result.inserted_records = store.insert(
                    "consent_records", _columns(rows, len(RECORD_COLUMNS)), RECORD_COLUMNS,
                    column_oriented=True, dedup_token=_token(batch_id, "records", ids),
                )
                m.inserted.labels("consent_records").inc(len(good_records))
        except Exception as exc:
            # Let a retry store them: these ids were never written.
            self.recent.forget(e["event_id"] for e in good_events)
            self.recent.forget(r["record_id"] for r in good_records)
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"insert failed: {exc}") from exc
        finally:
            if kept or good_records:
                m.insert_seconds.observe(time.perf_counter() - start)
        return result

    def _check(
        self,
        check: Callable[..., Checked],
        raw: Any,
        now: int,
        skew: int,
        index: int,
        kind: str,
        id_key: str,
        result: IngestResult,
    ) -> dict[str, Any] | None:
        try:
            checked = check(raw, now_ms=now, skew_ms=skew)
        except Exception:  # never let one odd item cost the batch
            log.exception("validating %s %d failed", kind, index)
            checked = Checked(None, "internal", "internal validation error")
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
        # One spelling per id, so replays match whatever case or dashes the sender used.
        checked.item[id_key] = str(uuid.UUID(checked.item[id_key]))
        return checked.item

    def _fresh(
        self, items: list[dict[str, Any]], id_key: str, result: IngestResult
    ) -> list[dict[str, Any]]:
        if not items:
            return items
        seen = self.recent.reserve(i[id_key] for i in items)
        fresh: list[dict[str, Any]] = []
        in_batch: set[str] = set()
        for item in items:
            item_id = item[id_key]
            if item_id in seen or item_id in in_batch:
                result.duplicates += 1
                continue
            in_batch.add(item_id)
            fresh.append(item)
        dup = len(items) - len(fresh)
        if dup:
            self.metrics.dropped.labels("duplicate").inc(dup)
        return fresh

    def _is_suppressed(self, event: dict[str, Any]) -> bool:
        for id_type in SUPPRESSIBLE:
            value = event.get(id_type)
            if value and self.suppressed(id_type, value):
                return True
        return False

    # -- wire → columns -----------------------------------------------------------------

    def _event_row(self, e: dict[str, Any], geo: GeoLookup) -> list[Any]:
        try:
            device = device_fields(e.get("ua"), e.get("ch_ua_model"), e.get("ch_ua_platform"),
                                   e.get("device_type"))
        except Exception:  # a parser bug must not cost the event
            log.exception("device enrichment failed")
            device = device_fields(None, wire_device_type=e.get("device_type"))
        consent = e.get("consent") or {}
        ip = e.get("ip") or ""
        place = geo.lookup(ip) if ip and consent.get("location") is True else NOWHERE
        t = {name: _text(e.get(name)) for name in _TEXT}
        kind = e["kind"]
        return [
            e["event_id"], ms_to_datetime(e["ts"]), kind,
            _text(e.get("name")) or ("pageview" if kind in ("pageview", "anonymous") else ""),
            dict(consent), bool(e.get("gpc", False)), t["host"], t["path"], t["method"],
            int(e.get("status") or 0), t["search_terms"], t["referrer_host"], t["channel"],
            t["language"], t["network_type"], e.get("save_data"),
            device.browser, device.browser_version, device.os, device.os_version,
            device.device_type, device.device_brand, device.device_model,
            t["visitor_id"], t["session_id"], t["consent_id"], t["user_id"],
            ip, ip_prefix(ip), place.country, place.region, place.city,
            t["utm_source"], t["utm_medium"], t["utm_campaign"], t["utm_term"],
            t["utm_content"], t["click_id_type"],
            {str(k): _prop(v) for k, v in (e.get("properties") or {}).items()},
            {str(k): _text(v) for k, v in (e.get("traits") or {}).items() if v is not None},
        ]


def _record_row(r: dict[str, Any]) -> list[Any]:
    expires = r.get("expires_at")
    return [
        r["record_id"], r["consent_id"], _text(r.get("visitor_id")),
        _text(r.get("previous_record_id")), ms_to_datetime(r["ts"]), r["event"], r["method"],
        r["component"], r["policy_version"], r["policy_hash"], _text(r.get("locale")),
        dict(r["categories"]), dict(r.get("services") or {}), dict(r["gcm"]), bool(r["gpc"]),
        bool(r.get("gpc_conflict", False)), _text(r.get("host")), _text(r.get("path")),
        _text(r.get("ua_family")), ms_to_datetime(expires) if expires is not None else None,
    ]


def _columns(rows: list[list[Any]], width: int) -> list[list[Any]]:
    return [[row[i] for row in rows] for i in range(width)]
