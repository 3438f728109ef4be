"""Capture pipeline: consent-gated pages and site events → bounded queue → worker → events →
collector.

The request path (:meth:`Capture.page`; ``custom``, ``identify`` and ``interaction``
through ``site``; ``record``) checks consent and queues references; it never blocks and
never raises. The worker builds and scrubs events
(``hits``, ``events``), batches them with consent records (``batching``) and hands them to
the sender (``sender``, ``delivery``), or, when the collector is down or slow, to the spool,
replayed when it answers again. :meth:`Capture.stats` counts what did not go as planned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from consent_mw import wire
from consent_mw.capture.batching import Exporter, Item, Items
from consent_mw.capture.buffer import BatchBuffer
from consent_mw.capture.counters import Counters
from consent_mw.capture.delivery import Delivery
from consent_mw.capture.events import Interaction
from consent_mw.capture.hits import HitBuilder, PageHit, headers_size
from consent_mw.capture.sender import Sender
from consent_mw.capture.site import ITEM_OVERHEAD, SiteEvents
from consent_mw.capture.spool import DiskSpool, MemorySpool, Spool
from consent_mw.capture.suppression import SuppressionList
from consent_mw.capture.transport import HttpTransport, RetryPolicy, Transport
from consent_mw.consent.decision import analytics_gate, marketing_gate
from consent_mw.settings import PathExclusions, Settings
from consent_mw.state import RequestContext

log = logging.getLogger(__name__)

RECORD_BYTES = 2048  # a consent record, built by the middleware: a fixed, small shape
BUILD_EVERY = 64  # items the worker builds at a time (it holds the GIL meanwhile)
#: Paths whose exclusion is remembered (Capture.page), and the longest: they come from
#: visitors, so the map is emptied when full (~2 MiB at most).
MAX_PATHS = 4096
MAX_REMEMBERED_PATH = 512
_time_ns = time.time_ns
_new_tuple = tuple.__new__  # PageHit without its generated __new__: see PageHit
_UA_ITEM = headers_size(((b"user-agent", b""),))  # an anonymous hit's one header, but its value


def _discard(item: Item, nbytes: int = 0) -> bool:  # capture off: page() queues nothing
    return False


class Capture:
    """Consent-gated events into a bounded queue, flushed off the request path.

    ``transport`` receives the batches; without one, an :class:`HttpTransport` to
    ``settings.collector_url`` (owned, so closed at shutdown); without either, capture is off.
    """

    def __init__(self, settings: Settings, *, transport: Transport | None = None,
                 retry: RetryPolicy | None = None, spool: Spool | None = None) -> None:
        self.settings = settings
        self._owns_transport = False
        if transport is None and settings.capture and settings.collector_url:
            transport = HttpTransport(settings.collector_url, settings.collector_token.value,
                                      connect_timeout=settings.collector_connect_timeout,
                                      read_timeout=settings.collector_read_timeout,
                                      compression=settings.collector_compression)
            self._owns_transport = True
        self.transport = transport
        self.enabled = bool(settings.capture and transport is not None)
        self.suppressions = SuppressionList(settings.hash_key)
        self.retry = retry or RetryPolicy()
        self.spool: Spool = spool or self._make_spool()
        self._counters = Counters(log_interval=settings.drop_log_interval)
        self._delivery = None if transport is None else Delivery(
            transport, self.spool, self._counters, self.suppressions, retry=self.retry,
            refresh_every=settings.suppression_refresh)
        self._sender = None if self._delivery is None else Sender(self._delivery)
        self._excluded = PathExclusions(settings.exclude_paths)
        self._excluded_paths: dict[str, bool] = {}
        self._analytics = analytics_gate(settings)
        self._marketing = marketing_gate(settings)
        hits = HitBuilder(
            analytics=self._analytics, marketing=self._marketing,
            search_params=settings.search_params, click_id_params=settings.click_id_params,
            trusted_proxies=settings.trusted_proxies, forwarded_header=settings.forwarded_header)
        self._exporter = Exporter(hits, self.suppressions, self._counters, self._send,
                                  max_event_bytes=settings.max_event_bytes,
                                  batch_size=settings.batch_size)
        self._buffer: BatchBuffer[Item] = BatchBuffer(
            self._exporter, flush=self._exporter.flush, wake_every=BUILD_EVERY,
            max_queue=settings.queue_size, max_bytes=settings.queue_max_bytes,
            batch_size=settings.batch_size, interval=settings.flush_interval,
            drop=self._counters.drop)
        # Bound once: every page queues through it (or nowhere, with capture off).
        self._emit = self._buffer.emit if self.enabled else _discard
        self._site = SiteEvents(analytics=self._analytics, marketing=self._marketing,
                                hash_key=settings.hash_key, suppressions=self.suppressions,
                                counters=self._counters, emit=self._emit)

    def _make_spool(self) -> Spool:
        if self.settings.spool_dir is not None:
            try:
                return DiskSpool(self.settings.spool_dir, self.settings.spool_max_bytes)
            except OSError as exc:  # a bad spool dir must not take the site down
                log.error("spool dir %s unusable (%r); spooling in memory",
                          self.settings.spool_dir, exc)
        return MemorySpool(self.settings.spool_max_bytes)

    def _send(self, events: Items, records: Items, size: int) -> None:
        if self._sender is not None:
            self._sender.send(events, records, size)

    def stats(self) -> dict[str, Any]:
        """Counts since start (docs/capture.md): queued, delivered, spooled, dropped by reason,
        the collector's state. ``error`` drops and ``worker_errors`` are failures, logged."""
        (batches, events, records), counts = self.spool.counts(), self._counters.snapshot()
        delivery = self._delivery
        return {
            "queued": len(self._buffer),
            "queued_bytes": self._buffer.bytes,
            "in_flight": (self._buffer.exporting + self._exporter.held
                          + (self._sender.waiting if self._sender else 0)),
            "sent": counts["sent"],
            "records_sent": counts["records_sent"],
            "rejected": counts["rejected"],
            "spooled": events + records,
            "spool_batches": batches,
            "spool_bytes": self.spool.nbytes(),
            "last_sent_at": None if delivery is None else delivery.last_sent_at,
            "collector": "up" if delivery is None else delivery.state,
            "dropped": counts["dropped"],
            "worker_errors": counts["worker_errors"],
        }

    # -- request path -----------------------------------------------------------------------

    def page(self, ctx: RequestContext, scope: Mapping[str, Any], status: int,
             header_bytes: int = -1) -> None:
        """Queue one served page; never raises, never blocks. The one entry for pages.

        Analytics granted: a pageview; otherwise, for a successful ``GET``, an anonymous
        count; nothing for an excluded path. This runs on every response, so it only checks
        and queues a :class:`PageHit` of references: suppression, decoding, parsing and
        scrubbing happen in the worker. ``header_bytes``: :func:`headers_size` of the
        request's headers, when the caller has it already (the middleware does).
        """
        try:
            path = scope.get("path") or "/"
            # Remembered per path: a site has few, and one lookup beats the prefix tests.
            excluded = self._excluded_paths.get(path)
            if excluded is None:
                excluded = self._exclusion(path)
            if excluded:
                return
            state = ctx.state
            headers = headers_in = scope.get("headers") or ()
            # state.granted_any(self._analytics), inline: this is paid on every page.
            if state.granted_names.isdisjoint(self._analytics):
                if scope.get("method") != "GET" or not 200 <= status < 300:
                    # Anonymous counts are page counts: a redirect, an error or a form post
                    # would count a page twice or count junk paths.
                    return
                # Only the User-Agent is read: anyone's oversized headers must not fill the
                # queue's memory while the collector is slow.
                headers = ()
                header_bytes = 0
                for k, v in headers_in:  # a loop, not next(<genexpr>): paid on every page
                    if k == b"user-agent":
                        ua = bytes(v[:wire.MAX_UA])
                        headers = ((b"user-agent", ua),)
                        header_bytes = len(ua) + _UA_ITEM
                        break
            elif header_bytes < 0:
                # The server's own list, not a copy (the worker only reads it), charged its
                # size: a server may accept megabytes of headers.
                header_bytes = headers_size(headers)
            query = scope.get("query_string") or b""
            self._emit(_new_tuple(PageHit, (
                _time_ns() // 1_000_000, state, path, scope.get("method"), status, query,
                headers, ctx.visitor_id, ctx.session_id, scope.get("client"), ctx.client_ip,
            )), ITEM_OVERHEAD + len(path) + len(query) + header_bytes)
        except Exception:
            log.exception("capture.page failed")
            self._counters.drop("error")

    def _exclusion(self, path: str) -> bool:
        excluded = path in self._excluded  # the public API's guarantee, whoever calls page()
        if len(path) <= MAX_REMEMBERED_PATH:
            if len(self._excluded_paths) >= MAX_PATHS:
                self._excluded_paths.clear()
            self._excluded_paths[path] = excluded
        return excluded

    def custom(self, ctx: RequestContext, name: str, properties: Mapping[str, Any], *,
               conversion: bool = False, scope: Mapping[str, Any] | None = None,
               value: tuple[float, str] | None = None) -> None:
        """A custom event from the site's code (``track``); a conversion also needs marketing."""
        if self.enabled:
            self._site.custom(ctx, name, properties, conversion=conversion, scope=scope,
                              value=value)

    def identify(self, ctx: RequestContext, user_id: str, traits: Mapping[str, Any], *,
                 scope: Mapping[str, Any] | None = None) -> None:
        """Link the visitor to an account (``identify``): the id leaves only as a keyed hash."""
        if self.enabled:
            self._site.identify(ctx, user_id, traits)

    def interaction(self, ctx: RequestContext, report: Interaction, *,
                    host: str | None = None) -> bool:
        """One report of the interaction beacon (``consent.beacon``) on ``host``'s page
        ``report.page``, admitted like a custom event. True when queued; otherwise the drop
        is counted (``no_consent``, ``suppressed``, ``queue_full``...)."""
        return self.enabled and self._site.interaction(ctx, report, host=host)

    def record(self, record: Mapping[str, Any]) -> None:
        """A consent record (wire RECORD_SCHEMA), through the same pipeline as events.

        Records are proof of consent, so suppression never drops them.
        """
        if not self.enabled:
            return
        try:
            # Proof of consent: queued even where a page view would be refused.
            self._buffer.emit(dict(record), RECORD_BYTES, priority=True)
        except Exception:
            log.exception("capture.record failed")
            self._counters.drop("error")

    def write(self, record: Mapping[str, Any]) -> None:
        """Record-sink protocol: the pipeline is a consent-record sink."""
        self.record(record)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background worker and the sender (from the ASGI lifespan)."""
        if self.enabled:
            if self._sender is not None:
                self._sender.start()
            self._buffer.start()

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Deliver (or spool) everything queued so far; True if done within ``timeout``.
        Not started, this also replays the spool and refreshes suppressions, in this thread."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + timeout
        done = self._buffer.force_flush(timeout)
        if self._delivery is None or self._sender is None:
            return done
        if self._sender.running:
            return self._sender.flush(max(0.0, deadline - time.monotonic())) and done
        self._delivery.tick()
        return done

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush what is queued, then stop; later events are dropped as ``shutdown``."""
        if not self.enabled:
            return
        deadline = time.monotonic() + timeout
        self._buffer.shutdown(timeout)
        if self._sender is not None:
            self._sender.shutdown(max(0.5, deadline - time.monotonic()))
        if isinstance(self.spool, MemorySpool):  # a memory spool dies with the process
            _, events, records = self.spool.counts()
            while self.spool.claim_oldest() is not None:
                pass
            self._counters.drop("shutdown", events + records)
        self._counters.log_drops(force=True)
        if self._owns_transport and self.transport is not None:
            try:
                self.transport.close()
            except Exception:
                log.exception("closing the transport failed")
                self._counters.worker_failed()
