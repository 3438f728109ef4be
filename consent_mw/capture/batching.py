"""The worker's side of capture: queued items built into events and cut into batches under
the wire's caps, then handed on (``Delivery.send``).

Pages (nearly every item) are built in one call by the :class:`~consent_mw.capture.hits.
HitBuilder`, site events and consent records one by one. Suppression is checked here, not per
request: an id suppressed while its events were queued is honoured too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from consent_mw import wire
from consent_mw.capture.counters import Counters
from consent_mw.capture.events import SiteEvent, build_site_event
from consent_mw.capture.fields import json_size
from consent_mw.capture.hits import HitBuilder, PageHit, attach_consent
from consent_mw.capture.suppression import SuppressionList
from consent_mw.ids import new_event_id, new_event_ids

log = logging.getLogger(__name__)

#: What the queue holds: pages, the site's events, and consent records (wire RECORD_SCHEMA).
Item = PageHit | SiteEvent | dict[str, Any]
Items = list[dict[str, Any]]

# Room for the batch envelope under the collector's decompressed-size cap.
BATCH_BYTES = wire.MAX_BATCH_BYTES - 64 * 1024
#: Pages built between two releases of the GIL by the worker.
BUILD_STEP = 512


class Batches:
    """Items grouped into batches under the wire's caps; events over the per-event limit are
    dropped as ``too_large``."""

    def __init__(self, max_event_bytes: int, count_drop: Callable[[str, int], None]) -> None:
        self.max_event_bytes = max_event_bytes
        self.count_drop = count_drop
        self.batches: list[tuple[Items, Items]] = [([], [])]
        self.sizes = [0]  # each batch's estimated bytes
        self.bytes = 0
        self.items = 0

    def add_events(self, events: Items, sizes: list[int]) -> None:
        """Events with upper bounds of their sizes."""
        total = sum(sizes)
        if (not self.items and events and max(sizes) <= self.max_event_bytes
                and total <= BATCH_BYTES and len(events) <= wire.MAX_BATCH_ITEMS):
            self.batches[-1] = (events, self.batches[-1][1])  # the usual case: one batch
            self.bytes, self.items = total, len(events)
            self.sizes[-1] = total
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
            self.sizes.append(0)
            self.bytes = self.items = 0
        self.batches[-1][0 if is_event else 1].append(built)
        self.bytes += size
        self.sizes[-1] = self.bytes
        self.items += 1

    def done(self) -> list[tuple[Items, Items, int]]:
        """(events, records, estimated bytes) of each non-empty batch."""
        return [(events, records, size) for (events, records), size
                in zip(self.batches, self.sizes, strict=True) if events or records]


class Exporter:
    """The export function of the capture buffer: build, size-check, batch, hand on.

    Called for every few hundred items the worker takes, it builds them at once, so the
    worker never holds the GIL long nor the queue many request objects; the built events
    wait here until ``batch_size`` of them are ready or :meth:`flush` (once per interval),
    so the collector still gets large batches.
    """

    def __init__(self, hits: HitBuilder, suppressions: SuppressionList, counters: Counters,
                 send: Callable[[Items, Items, int], None], *, max_event_bytes: int,
                 batch_size: int = wire.MAX_BATCH_ITEMS) -> None:
        self._hits = hits
        self._suppressions = suppressions
        self._counters = counters
        self._send = send
        self._max_event_bytes = max_event_bytes
        self._batch_size = batch_size
        # Built pageviews and their consent maps, apart until handed on (hits.Held).
        self._events: Items = []
        self._sizes: list[int] = []
        self._consents: list[dict[str, bool]] = []
        self._others: list[tuple[dict[str, Any], int, bool]] = []

    @property
    def held(self) -> int:
        """Items built and not yet handed on."""
        return len(self._events) + len(self._others)

    def flush(self, keep: int = 0) -> None:
        """Hand on what was built so far, in batches under the wire's caps; ``keep``: leave
        that many of the newest events for the next batch (a full batch goes out alone)."""
        if not self._events and not self._others:
            return
        cut = len(self._events) - keep
        events = attach_consent(self._events[:cut], self._consents[:cut])
        sizes, others = self._sizes[:cut], self._others
        self._events, self._sizes, self._others = self._events[cut:], self._sizes[cut:], []
        self._consents = self._consents[cut:]
        batches = Batches(self._max_event_bytes, self._counters.drop)
        batches.add_events(events, sizes)
        for built in others:
            batches.add(*built)
        for batch_events, records, size in batches.done():
            try:
                self._send(batch_events, records, size)
            except Exception:  # counted here: the items are no longer held anywhere
                log.exception("handing on a batch failed; %d items dropped",
                              len(batch_events) + len(records))
                self._counters.drop("error", len(batch_events) + len(records))

    def __call__(self, items: list[Item]) -> None:
        hits = [item for item in items if isinstance(item, PageHit)]
        others = ([item for item in items if not isinstance(item, PageHit)]
                  if len(hits) < len(items) else [])
        if hits and len(self._suppressions):  # checked here, not per request
            suppressed = self._suppressions.is_suppressed
            measured = self._hits.measured
            kept = [hit for hit in hits if not (
                measured(hit.state)
                and suppressed(visitor_id=hit.visitor_id, consent_id=hit.state.consent_id))]
            self._counters.drop("suppressed", len(hits) - len(kept))
            hits = kept
        for start in range(0, len(hits), BUILD_STEP):
            if start:
                # The worker holds the GIL while it builds; the server's event loop would
                # wait a whole switch interval (5 ms) for it. Yielding between parts keeps
                # the added latency to a part's build time (~1 ms).
                time.sleep(0)
            part = hits[start:start + BUILD_STEP]
            part_events, part_sizes, part_consents = self._hits.build_all(
                part, new_event_ids(len(part)), self._build_failed)
            self._events += part_events
            self._sizes += part_sizes
            self._consents += part_consents
        for item in others:
            try:
                built = self._build_other(item)
            except Exception:
                self._build_failed()
                continue
            if built is not None:
                self._others.append(built)
        if self.held >= self._batch_size:
            self.flush(keep=max(0, self.held - self._batch_size))

    def _build_failed(self) -> None:
        log.exception("building a capture event failed")
        self._counters.drop("error", 1)

    def _build_other(self, item: SiteEvent | dict[str, Any]
                     ) -> tuple[dict[str, Any], int, bool] | None:
        """A site event, or a consent record (never suppressed: it is proof of consent)."""
        if not isinstance(item, SiteEvent):
            return item, json_size(item), False
        if self._suppressions.is_suppressed(visitor_id=item.visitor_id,
                                            user_id_hash=item.user_id,
                                            consent_id=item.consent_id):
            self._counters.drop("suppressed", 1)  # suppressed after it was queued: honoured
            return None
        event, size = build_site_event(item, new_event_id())
        return event, size, True
