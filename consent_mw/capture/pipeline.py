"""Capture pipeline: consent-gated snapshots → bounded queue → worker → events → collector.

The request path (``page``, ``custom``, ``identify``, ``record``) only copies what the visitor's
consent allows into a :class:`~consent_mw.capture.events.Snapshot` and queues it; it never
blocks and never raises. The worker thread builds and scrubs events
(``consent_mw.capture.events``), batches them with consent records, and hands them to the
transport; what cannot be delivered goes to the spool and is replayed when the collector
answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

from consent_mw import wire
from consent_mw.bounded import HEADER_OVERHEAD
from consent_mw.capture.buffer import BatchBuffer
from consent_mw.capture.events import (
    HitBuilder,
    PageHit,
    Snapshot,
    analytics_headers,
    build_event_sized,
    json_size,
)
from consent_mw.capture.spool import DiskSpool, Dropped, MemorySpool, Spool
from consent_mw.capture.suppression import SuppressionList
from consent_mw.capture.transport import (
    HttpTransport,
    RetryPolicy,
    SendResult,
    Transport,
    TransportError,
)
from consent_mw.consent.decision import analytics_gate, marketing_gate
from consent_mw.ids import hash_user_id, new_event_id, new_event_ids
from consent_mw.settings import PathExclusions, Settings
from consent_mw.state import RequestContext

log = logging.getLogger(__name__)

DROP_REASONS = ("queue_full", "too_large", "shutdown", "suppressed", "no_consent", "error",
                "spool_full")
#: What a queued item costs beyond the request data it holds (the tuple, its references).
ITEM_OVERHEAD = 256
RECORD_BYTES = 2048  # a consent record, built by the middleware: a fixed, small shape


def headers_size(headers: Sequence[tuple[bytes, bytes]]) -> int:
    """What a request's header list holds: names, values and the objects around them (2,000
    headers of empty values still weigh a quarter of a megabyte). C-level iteration: this is
    on every captured request's path."""
    return sum(map(len, chain.from_iterable(headers))) + HEADER_OVERHEAD * len(headers)


_time_ns = time.time_ns

#: Pageviews built between two releases of the GIL by the worker.
BUILD_STEP = 512

# Room for the batch envelope under the collector's decompressed-size cap.
BATCH_BYTES = wire.MAX_BATCH_BYTES - 64 * 1024
REPLAY_BUDGET = 2.0  # seconds of spool replay per worker wake-up, so new batches keep moving


class _Batches:
    """Items grouped into batches under the wire's caps; events over the per-event limit are
    dropped as ``too_large``."""

    def __init__(self, max_event_bytes: int, count_drop: Callable[[str, int], None]) -> None:
        self.max_event_bytes = max_event_bytes
        self.count_drop = count_drop
        self.batches: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = [([], [])]
        self.bytes = 0
        self.items = 0

    def add_events(self, events: list[dict[str, Any]], sizes: list[int]) -> None:
        """Events with upper bounds of their sizes."""
        total = sum(sizes)
        if (not self.items and events and max(sizes) <= self.max_event_bytes
                and total <= BATCH_BYTES and len(events) <= wire.MAX_BATCH_ITEMS):
            self.batches[-1] = (events, self.batches[-1][1])  # the usual case: one batch
            self.bytes, self.items = total, len(events)
            return
        for event, size in zip(events, sizes, strict=True):
            self.add(event, size, True)

    def add(self, built: dict[str, Any], size: int, is_event: bool) -> None:
        if size > self.max_event_bytes:
            size = json_size(built)  # the bound may be loose: decide on the real size
            if size > self.max_event_bytes:
                self.count_drop("too_large", 1)
                return
        if self.bytes + size > BATCH_BYTES or self.items >= wire.MAX_BATCH_ITEMS:
            self.batches.append(([], []))
            self.bytes = self.items = 0
        self.batches[-1][0 if is_event else 1].append(built)
        self.bytes += size
        self.items += 1

    def done(self) -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
        return [(events, records) for events, records in self.batches if events or records]


def _props_size(values: Mapping[str, Any] | None) -> int:
    """What the site's properties or traits weigh in the queue (the build keeps 32 of them,
    each capped, but the queue holds them as given)."""
    if not values:
        return 0
    return sum(len(str(k)) + (len(v) if isinstance(v, str) else 16) for k, v in values.items())


class Capture:
    """Consent-gated events into a bounded queue, flushed off the request path."""

    def __init__(self, settings: Settings, *, transport: Any = None,
                 retry: RetryPolicy | None = None, spool: Spool | None = None) -> None:
        self.settings = settings
        self._owns_transport = False
        if transport is None and settings.capture and settings.collector_url:
            transport = HttpTransport(settings.collector_url, settings.collector_token.value)
            self._owns_transport = True
        self.transport: Transport | None = transport
        self.enabled = bool(settings.capture and transport is not None)
        self.suppressions = SuppressionList(settings.hash_key)
        self.retry = retry or RetryPolicy()
        self.spool: Spool = spool or self._make_spool()
        self._lock = threading.Lock()
        self._dropped: Counter[str] = Counter()
        self._sent = 0
        self._records_sent = 0
        self._rejected = 0
        self._down_until = 0.0  # monotonic: no sends before this, batches go to the spool
        self._fail_streak = 0
        self._next_suppression_refresh = 0.0
        self._stopping = False
        self._excluded = PathExclusions(settings.exclude_paths)
        self._analytics = analytics_gate(settings)
        self._marketing = marketing_gate(settings)
        self._buffer: BatchBuffer[PageHit | Snapshot | dict[str, Any]] = BatchBuffer(
            self._export,
            max_queue=settings.queue_size,
            max_bytes=settings.queue_max_bytes,
            batch_size=settings.batch_size,
            interval=settings.flush_interval,
            drop=self._count_drop,
            tick=self._tick,
        )
        # Bound once: every page queues through it.
        self._emit = self._buffer.emit
        self._build_hit = HitBuilder(
            marketing=self._marketing, search_params=settings.search_params,
            click_id_params=settings.click_id_params, trusted_proxies=settings.trusted_proxies,
            forwarded_header=settings.forwarded_header)

    def _make_spool(self) -> Spool:
        if self.settings.spool_dir is not None:
            try:
                return DiskSpool(self.settings.spool_dir, self.settings.spool_max_bytes)
            except OSError as exc:  # a bad spool dir must not take the site down
                log.error("spool dir %s unusable (%r); spooling in memory",
                          self.settings.spool_dir, exc)
        return MemorySpool(self.settings.spool_max_bytes)

    # -- counters ---------------------------------------------------------------------------

    def _count_drop(self, reason: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._dropped[reason] += n

    def stats(self) -> dict[str, Any]:
        batches, events, records = self.spool.counts()
        with self._lock:
            return {
                "queued": len(self._buffer),
                "queued_bytes": self._buffer.bytes,
                "sent": self._sent,
                "records_sent": self._records_sent,
                "rejected": self._rejected,
                "spooled": events + records,
                "spool_batches": batches,
                "dropped": {r: self._dropped.get(r, 0) for r in DROP_REASONS},
            }

    # -- request path -----------------------------------------------------------------------

    def page(self, ctx: RequestContext, scope: Mapping[str, Any], status: int) -> None:
        """Snapshot one response for capture; never raises, never blocks.

        This runs on every response, so it only copies and queues: suppression, parsing,
        scrubbing and everything else happen in the worker.
        """
        if not self.enabled:
            return
        try:
            path = scope.get("path") or "/"
            if path in self._excluded:  # the public API's guarantee, also for other callers
                return
            state = ctx.state
            headers = scope.get("headers") or ()
            if not state.granted_any(self._analytics):
                # Anonymous counts are page counts: a redirect, an error or a form post would
                # count a page twice or count junk paths, and there is no status to filter on.
                if scope.get("method") != "GET" or not 200 <= status < 300:
                    return
                ua = next((v for k, v in headers if k == b"user-agent"), None)
                agent = ua[:wire.MAX_UA].decode("latin-1") if ua is not None else None
                self._emit(Snapshot(
                    kind="page", ts=time.time_ns() // 1_000_000, consent=state.categories,
                    analytics=False, marketing=False, path=path, ua=agent),
                    ITEM_OVERHEAD + len(path) + len(agent or ""))
                return
            if ctx.client_ip is not None:  # the site resolved the IP itself
                snap = self._page_snapshot(ctx, scope, status, path, headers)
                self._emit(snap, ITEM_OVERHEAD + len(path) + len(snap.query)
                           + headers_size(snap.raw_headers))
                return
        except Exception:
            log.exception("capture.page failed")
            self._count_drop("error")
            return
        self.hit(ctx, scope, status)

    def hit(self, ctx: RequestContext, scope: Mapping[str, Any], status: int,
            header_bytes: int = -1) -> None:
        """:meth:`page` for a caller that has checked that analytics is granted and the path
        is not excluded (the middleware's settled visitors, and page() itself): the page is
        queued as a :class:`PageHit`. ``header_bytes``: :func:`headers_size` of the request's
        headers, when the caller has it already."""
        try:
            if ctx.client_ip is not None or not self.enabled:
                self.page(ctx, scope, status)  # it handles these itself, without hit()
                return
            # The header list itself, not a copy: the server made it for this request and
            # the worker only reads it (the analytics headers) before it is dropped. Queued, it
            # is charged its size: a server may accept megabytes of headers.
            headers = scope.get("headers") or ()
            path = scope.get("path") or "/"
            query = scope.get("query_string") or b""
            if header_bytes < 0:
                header_bytes = headers_size(headers)
            self._emit((
                _time_ns() // 1_000_000, ctx.state, path, scope.get("method"), status,
                query, headers, ctx.visitor_id, ctx.session_id, scope.get("client"),
            ), ITEM_OVERHEAD + len(path) + len(query) + header_bytes)
        except Exception:
            log.exception("capture.hit failed")
            self._count_drop("error")

    def _page_snapshot(self, ctx: RequestContext, scope: Mapping[str, Any], status: int,
                       path: str, headers: Any) -> Snapshot:
        state = ctx.state
        return Snapshot(
            kind="page", ts=time.time_ns() // 1_000_000, consent=state.categories,
            analytics=True, marketing=state.granted_any(self._marketing), gpc=state.gpc,
            path=path, method=scope.get("method"), status=status,
            query=(scope.get("query_string") or b"").decode("utf-8", "replace"),
            raw_headers=analytics_headers(headers),
            visitor_id=ctx.visitor_id, session_id=ctx.session_id,
            consent_id=state.consent_id, ip=ctx.client_ip,
        )

    def _where(self, scope: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
        if not scope:
            return None, None
        host = next((v.decode("latin-1") for k, v in scope.get("headers") or ()
                     if k == b"host"), None)
        return host, scope.get("path")

    def custom(self, ctx: RequestContext, name: str, properties: Mapping[str, Any], *,
               conversion: bool = False, scope: Mapping[str, Any] | None = None) -> None:
        """A custom event from the site's code (``track``); a conversion also needs marketing."""
        if not self.enabled:
            return
        try:
            state = ctx.state
            marketing = state.granted_any(self._marketing)
            if not state.granted_any(self._analytics) or (conversion and not marketing):
                self._count_drop("no_consent")
                return
            if self.suppressions.is_suppressed(visitor_id=ctx.visitor_id,
                                               consent_id=state.consent_id):
                self._count_drop("suppressed")
                return
            host, path = self._where(scope)
            self._emit(Snapshot(
                kind="custom", ts=time.time_ns() // 1_000_000,
                consent=state.categories,
                analytics=True, marketing=marketing, gpc=state.gpc,
                path=path or "", host=host, name=str(name),
                properties=dict(properties or {}), conversion=conversion,
                visitor_id=ctx.visitor_id, session_id=ctx.session_id,
                consent_id=state.consent_id,
            ), ITEM_OVERHEAD + len(path or "") + len(str(name)) + _props_size(properties))
        except Exception:
            log.exception("capture.custom failed")
            self._count_drop("error")

    def identify(self, ctx: RequestContext, user_id: str, traits: Mapping[str, Any], *,
                 scope: Mapping[str, Any] | None = None) -> None:
        """Link the visitor to an account (``identify``): the id leaves only as a keyed hash."""
        if not self.enabled:
            return
        try:
            state = ctx.state
            if not state.granted_any(self._analytics):
                self._count_drop("no_consent")
                return
            if user_id is None or str(user_id) == "":
                return
            user_hash = hash_user_id(self.settings.hash_key, str(user_id))
            if self.suppressions.is_suppressed(visitor_id=ctx.visitor_id,
                                               user_id_hash=user_hash,
                                               consent_id=state.consent_id):
                self._count_drop("suppressed")
                return
            self._emit(Snapshot(
                kind="identify", ts=time.time_ns() // 1_000_000,
                consent=state.categories,
                analytics=True, marketing=state.granted_any(self._marketing),
                gpc=state.gpc, user_id=user_hash, traits=dict(traits or {}),
                visitor_id=ctx.visitor_id, session_id=ctx.session_id,
                consent_id=state.consent_id,
            ), ITEM_OVERHEAD + _props_size(traits))
        except Exception:
            log.exception("capture.identify failed")
            self._count_drop("error")

    def record(self, record: Mapping[str, Any]) -> None:
        """A consent record (wire RECORD_SCHEMA), through the same pipeline as events.

        Records are proof of consent, so suppression never drops them.
        """
        if not self.enabled:
            return
        try:
            self._emit(dict(record), RECORD_BYTES)
        except Exception:
            log.exception("capture.record failed")
            self._count_drop("error")

    def write(self, record: Mapping[str, Any]) -> None:
        """Record-sink protocol: the pipeline is a consent-record sink."""
        self.record(record)

    # -- worker -----------------------------------------------------------------------------

    def _export(self, items: list[PageHit | Snapshot | dict[str, Any]]) -> None:
        """Build, size-check and batch ``items``; runs in the worker thread.

        Pageviews (nearly every item) are built in one call, the rest one by one.
        """
        hits: list[PageHit] = [item for item in items if isinstance(item, tuple)]
        others = ([item for item in items if not isinstance(item, tuple)]
                  if len(hits) < len(items) else [])
        if hits and len(self.suppressions):  # checked here, not per request
            suppressed = self.suppressions.is_suppressed
            kept = [hit for hit in hits  # [7] is the visitor id, [1] the state
                    if not suppressed(visitor_id=hit[7], consent_id=hit[1].consent_id)]
            self._count_drop("suppressed", len(hits) - len(kept))
            hits = kept
        events: list[dict[str, Any]] = []
        sizes: list[int] = []
        for start in range(0, len(hits), BUILD_STEP):
            if start:
                # The worker holds the GIL while it builds; the server's event loop would
                # wait a whole switch interval (5 ms) for it. Yielding between parts keeps
                # the added latency to a part's build time (~1 ms).
                time.sleep(0)
            part = hits[start:start + BUILD_STEP]
            part_events, part_sizes = self._build_hit.build_all(
                part, new_event_ids(len(part)), self._build_failed)
            events += part_events
            sizes += part_sizes
        batches = _Batches(self.settings.max_event_bytes, self._count_drop)
        batches.add_events(events, sizes)
        for item in others:
            try:
                built, size, is_event = self._build_other(item)
            except Exception:
                self._build_failed()
                continue
            if built is not None:
                batches.add(built, size, is_event)
        for events, records in batches.done():
            self._dispatch(events, records, new_event_id())

    def _build_failed(self) -> None:
        log.exception("building a capture event failed")
        self._count_drop("error")

    def _build_other(self, item: Snapshot | dict[str, Any]
                     ) -> tuple[dict[str, Any] | None, int, bool]:
        """A custom or identify event, a non-consented pageview, or a consent record."""
        if isinstance(item, Snapshot):
            if item.analytics and self.suppressions.is_suppressed(
                    visitor_id=item.visitor_id, user_id_hash=item.user_id,
                    consent_id=item.consent_id):
                self._count_drop("suppressed")  # suppressed after it was queued: honoured
                return None, 0, True
            settings = self.settings
            built, size = build_event_sized(
                item, new_event_id(), search_params=settings.search_params,
                click_id_params=settings.click_id_params,
                trusted_proxies=settings.trusted_proxies,
                forwarded_header=settings.forwarded_header)
            if built is None:
                self._count_drop("no_consent")
            return built, size, True
        return item, json_size(item), False

    def _dispatch(self, events: list[dict[str, Any]], records: list[dict[str, Any]],
                  batch_id: str) -> None:
        """Send with in-line retries; park the batch in the spool when that does not work."""
        if self.transport is None:
            return
        if time.monotonic() < self._down_until:  # collector known down: don't wait on it
            self._to_spool(batch_id, events, records)
            return
        attempts = 1 if self._stopping else max(1, self.retry.attempts)
        retry_after: float | None = None
        for attempt in range(attempts):
            try:
                result = self.transport.send(events, records, batch_id=batch_id)
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
                self._count_drop("error", len(events) + len(records))
                return
            self._delivered(events, records, result)
            return
        self._collector_down(retry_after)
        self._to_spool(batch_id, events, records)

    def _split(self, events: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
        # 413: the collector's body limit is lower than ours; halve until it fits.
        half_e, half_r = len(events) // 2, len(records) // 2
        for part_e, part_r in ((events[:half_e], records[:half_r]),
                               (events[half_e:], records[half_r:])):
            if part_e or part_r:
                self._dispatch(part_e, part_r, new_event_id())

    def _delivered(self, events: list[dict[str, Any]], records: list[dict[str, Any]],
                   result: SendResult | None) -> None:
        rejected = result.rejected if isinstance(result, SendResult) else 0
        if rejected:
            log.warning("collector rejected %d items: %s", rejected,
                        "; ".join(result.reasons[:5]) if result else "")
        with self._lock:
            self._fail_streak = 0
            self._rejected += rejected
            self._sent += max(0, len(events) - rejected)
            self._records_sent += len(records)

    def _refused(self, events: list[dict[str, Any]], records: list[dict[str, Any]],
                 exc: TransportError) -> None:
        log.error("collector refused a batch of %d events, %d records: %s",
                  len(events), len(records), exc)
        with self._lock:
            self._rejected += len(events) + len(records)

    def _collector_down(self, retry_after: float | None) -> None:
        self._fail_streak += 1
        self._down_until = time.monotonic() + self.retry.delay(self._fail_streak, retry_after)

    def _to_spool(self, batch_id: str, events: list[dict[str, Any]],
                  records: list[dict[str, Any]]) -> None:
        try:
            dropped: Dropped = self.spool.put(batch_id, events, records)
        except Exception:
            log.exception("spooling a batch failed; %d events dropped", len(events))
            self._count_drop("error", len(events) + len(records))
            return
        self._count_drop("spool_full", dropped.events + dropped.records)

    def _replay(self) -> None:
        """Resend spooled batches, oldest first, until one fails or the budget is spent."""
        if self.transport is None or time.monotonic() < self._down_until:
            return
        started = time.monotonic()
        while time.monotonic() - started < REPLAY_BUDGET:
            batch = self.spool.claim_oldest()
            if batch is None:
                return
            try:
                result = self.transport.send(batch.events, batch.records,
                                             batch_id=batch.batch_id)
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
                self._count_drop("error", len(batch.events) + len(batch.records))
                continue
            self.spool.done(batch)
            self._delivered(batch.events, batch.records, result)

    def _refresh_suppressions(self) -> None:
        fetch = getattr(self.transport, "fetch_suppressions", None)
        now = time.monotonic()
        if fetch is None or now < self._next_suppression_refresh or now < self._down_until:
            return
        self._next_suppression_refresh = now + self.settings.suppression_refresh
        try:
            answer = fetch(since=self.suppressions.version)
        except TransportError as exc:
            log.info("suppression refresh failed: %s", exc)
            return
        # None: the collector has no privacy routes (404).
        if answer is not None and not answer.unchanged:
            self.suppressions.replace(answer.hashes, answer.version, purged=answer.purged)

    def _tick(self) -> None:
        self._refresh_suppressions()
        self._replay()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background worker (from the ASGI lifespan)."""
        if self.enabled:
            self._stopping = False
            self._buffer.start()

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Deliver (or spool) everything queued so far; True if done within ``timeout``."""
        if not self.enabled:
            return True
        return self._buffer.force_flush(timeout)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush what is queued, then stop; later events are dropped as ``shutdown``."""
        if not self.enabled:
            return
        self._stopping = True
        self._buffer.shutdown(timeout)
        if isinstance(self.spool, MemorySpool):  # a memory spool dies with the process
            _, events, records = self.spool.counts()
            while self.spool.claim_oldest() is not None:
                pass
            self._count_drop("shutdown", events + records)
        if self._owns_transport and self.transport is not None:
            try:
                self.transport.close()
            except Exception:
                log.exception("closing the transport failed")
