"""A served page as the capture queue holds it (:class:`PageHit`), and the event the worker
builds from it (:class:`HitBuilder`, pure).

Every page a visitor is served becomes one :class:`PageHit` on the request path
(``Capture.page``) and one wire event (``consent_mw.wire.EVENT_SCHEMA``) in the worker. What the
event carries depends on the consent state the hit holds (the data inventory's field map):

* no ``analytics`` (undecided, refused, or only ``marketing``/``location``): an ``anonymous``
  count: scrubbed path, ``ts`` rounded down to the hour, ``device_type``, consent flags.
  No cookie id, no IP, no UA string, no campaign fields.
* ``analytics``: a ``pageview`` with host, path, status, method, ts, search terms, referrer
  host and channel, language, network type, Save-Data, raw UA and client hints (parsed and
  dropped by the collector), visitor/session/consent ids and the IP.
* ``analytics`` + ``marketing``: also ``utm_*`` and ``click_id_type`` (never the click id value).
* ``location``: only its flag in ``consent``; the collector looks the IP up only when
  ``consent["location"]`` and ``consent["analytics"]`` are both true. Without analytics there
  is no IP to look up, so location alone adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any, NamedTuple

from consent_mw import wire
from consent_mw.bounded import HEADER_OVERHEAD, BoundedCache
from consent_mw.capture import fields as f
from consent_mw.capture.fields import PageRequest, analytics_headers, request_fields
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER
from consent_mw.state import ConsentState
from consent_mw.useragent import device_type

HOUR_MS = 3_600_000


class PageHit(NamedTuple):
    """One served page, as the request path queues it: references, nothing copied or decoded.

    Made for every response, so ``Capture.page`` builds it with ``tuple.__new__`` (the
    generated ``__new__`` costs twice as much). The worker reads only what the consent in
    ``state`` allows (see the module docstring): of ``headers``, the
    :data:`ANALYTICS_HEADERS` of a measured page and the User-Agent of an anonymous one;
    everything else, ``Cookie`` included, is dropped with the hit.
    """

    ts: int  # ms since the epoch
    state: ConsentState  # the visitor's: shared, frozen
    path: str
    method: str | None
    status: int
    query: bytes  # raw; only allow-listed params survive the build
    headers: Sequence[tuple[bytes, bytes]]  # the server's own list for this request
    visitor_id: str | None
    session_id: str | None
    client: tuple[str, int] | None  # ``scope["client"]``: the IP is resolved in the worker
    ip: str | None  # the client IP, when the site resolved it (``RequestContext.client_ip``)


def headers_size(headers: Sequence[tuple[bytes, bytes]]) -> int:
    """What a request's header list holds: names, values and the objects around them (2,000
    headers of empty values still weigh a quarter of a megabyte). C-level iteration: this is
    on every captured request's path."""
    return sum(map(len, chain.from_iterable(headers))) + HEADER_OVERHEAD * len(headers)


#: How much of a path a build can read (``scrub_capped`` of MAX_PATH): the cache keys on it.
KEY_PATH = 4 * wire.MAX_PATH + 320

# Upper bound of what an event adds to its cached fields: event_id, ts, kind, three ids
# (each at most 64 id characters) and gpc, with their keys and punctuation.
_ENVELOPE_BOUND = 400


@lru_cache(maxsize=1024)  # keys of at most KEY_PATH + MAX_UA bytes: ~10 MiB at most
def _anonymous_template(path: str, ua: bytes | None) -> tuple[dict[str, Any], int]:
    """An anonymous count's fields but its time, id and consent, and their encoded size.
    Keyed on the User-Agent's bytes: decoding it per event cost as much as the rest."""
    fields = {"kind": "anonymous", "name": "pageview",
              "path": f.clean_text(path, wire.MAX_PATH) or "/",
              "device_type": device_type(None if ua is None else ua.decode("latin-1"))}
    return fields, f.json_size(fields)


@lru_cache(maxsize=64)  # the same few category sets, event after event
def consent_bound(names: tuple[str, ...]) -> int:
    """An upper bound of the encoded ``consent`` map of these categories."""
    # "name":false, per category; 6 bytes per character covers any JSON escape.
    return 16 + sum(6 * len(k) + 10 for k in names)


class _Known(NamedTuple):
    """What the build needs of one consent state, worked out once per state."""

    state: ConsentState  # held, so its id() is not reused while cached
    analytics: bool
    marketing: bool
    bound: int  # _ENVELOPE_BOUND plus the consent map's bound
    consent: dict[str, bool]  # shared by the state's events: built events are only read


#: Built pageviews waiting for their batch, their size bounds, and each one's consent map.
#: The map is kept apart until the events leave (:func:`attach_consent`): a dict holding
#: only strings, numbers and None is not tracked by the garbage collector, and one holding a
#: dict is. Thousands of tracked events held for a second were promoted to the oldest
#: generation and set off its full collections (~20 ms each) in the web process. (Up to
#: Python 3.13: 3.14 tracks every dict from its creation, and its collector is incremental.)
Held = tuple[list[dict[str, Any]], list[int], list[dict[str, bool]]]


def attach_consent(events: list[dict[str, Any]], consents: Sequence[dict[str, bool]]
                   ) -> list[dict[str, Any]]:
    """Give built events their consent maps, as they are handed on (in place)."""
    for event, consent in zip(events, consents, strict=True):
        event["consent"] = consent
    return events


class HitBuilder:
    """Builds the events of :class:`PageHit` s for one set of settings (the worker's).

    What depends only on a consent state is worked out once per state (a returning visitor's
    state object is shared by all of their requests); what a pageview derives from its
    request is built once per distinct :class:`PageRequest` and copied per event. Both caches
    are bounded: the states' by count (cleared when full), the templates' also in bytes,
    since they are keyed on what the request sent.
    """

    __slots__ = ("_analytics", "_click_ids", "_forwarded", "_marketing", "_proxies", "_search",
                 "_states", "_templates", "misses")

    MAX_STATES = 4096
    MAX_TEMPLATES = 4096
    MAX_TEMPLATE_BYTES = 8 * 1024 * 1024

    def __init__(self, *, analytics: tuple[str, ...], marketing: tuple[str, ...],
                 search_params: tuple[str, ...] = (), click_id_params: tuple[str, ...] = (),
                 trusted_proxies: tuple[str, ...] = (),
                 forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> None:
        self._analytics = analytics
        self._marketing = marketing
        self._search = search_params
        self._click_ids = click_id_params
        self._proxies = trusted_proxies
        self._forwarded = forwarded_header
        self._states: dict[int, _Known] = {}
        # Keyed without the settings (fixed per builder): hashing them per event adds up.
        self._templates: BoundedCache[tuple[object, ...], tuple[dict[str, Any], int]] = (
            BoundedCache(max_entries=self.MAX_TEMPLATES, max_bytes=self.MAX_TEMPLATE_BYTES))
        self.misses = 0  # templates built, for tests and tuning

    def measured(self, state: ConsentState) -> bool:
        """Whether a hit under ``state`` is a pageview (analytics granted), not a count."""
        return self._known(state).analytics

    def __call__(self, hit: PageHit, event_id: str) -> tuple[dict[str, Any], int]:
        """The event of one hit and an upper bound of its encoded size."""
        events, sizes, consents = self.build_all((hit,), (event_id,))  # raises what it raised
        return attach_consent(events, consents)[0], sizes[0]

    def build_all(self, hits: Sequence[PageHit], event_ids: Sequence[str],
                  on_error: Callable[[], None] | None = None) -> Held:
        """The events of ``hits`` (one id each, in order), upper bounds of their encoded
        sizes, and their consent maps, apart (see :data:`Held`). A hit that cannot be built
        is left out and reported to ``on_error`` (which may log; it runs inside the
        ``except``).

        One loop with the per-event work inline, because a call per event cost a third of
        the whole build.
        """
        events: list[dict[str, Any]] = []
        sizes: list[int] = []
        consents: list[dict[str, bool]] = []
        states = self._states
        templates = self._templates
        for hit, event_id in zip(hits, event_ids, strict=True):
            try:
                # One unpack instead of eleven lookups: this runs for every page of every visitor.
                ts, state, path, method, status, query, headers, visitor_id, session_id, \
                    client, ip = hit
                known = states.get(id(state))
                if known is None or known.state is not state:
                    known = self._known(state)
                if not known.analytics:
                    # Only the User-Agent is read (Capture.page queued no other header).
                    ua = None
                    for name, value in headers:  # a loop, not next(<genexpr>): per event
                        if name == b"user-agent":
                            ua = bytes(value[:wire.MAX_UA])
                            break
                    template, size = _anonymous_template(path[:KEY_PATH], ua)
                    event = template.copy()  # built events are only read: shared values
                    event["ts"] = ts - ts % HOUR_MS
                    event["event_id"] = event_id
                    events.append(event)
                    sizes.append(size + known.bound)
                    consents.append(known.consent)
                    continue
                key = (path, query, analytics_headers(headers), method, status,
                       client[0] if client else None, ip, known.marketing)
                cached = templates.get(key)
                if cached is None:
                    cached = self._template(key)
                event = cached[0].copy()  # a C-level copy of ~20 fields
                event["event_id"] = event_id
                event["ts"] = ts
                if visitor_id is not None:
                    event["visitor_id"] = visitor_id
                if session_id is not None:
                    event["session_id"] = session_id
                if state.consent_id is not None:
                    event["consent_id"] = state.consent_id
                event["gpc"] = state.gpc
            except Exception:
                if on_error is None:
                    raise
                on_error()
                continue
            events.append(event)
            sizes.append(cached[1] + known.bound)
            consents.append(known.consent)
        return events, sizes, consents

    def _known(self, state: ConsentState) -> _Known:
        known = self._states.get(id(state))
        if known is not None and known.state is state:
            return known
        if len(self._states) >= self.MAX_STATES:
            self._states.clear()
        known = _Known(state, state.granted_any(self._analytics),
                       state.granted_any(self._marketing),
                       _ENVELOPE_BOUND + consent_bound(tuple(state.categories)),
                       dict(state.categories))
        self._states[id(state)] = known
        return known

    def _template(self, key: tuple[object, ...]) -> tuple[dict[str, Any], int]:
        self.misses += 1
        req = PageRequest._make(key)
        fields = request_fields(req, search_params=self._search,
                                click_id_params=self._click_ids,
                                trusted_proxies=self._proxies,
                                forwarded_header=self._forwarded)
        built = {"kind": "pageview", **fields}, f.json_size(fields)
        # Charged twice its key: the template holds about as much again. One larger than the
        # whole budget is simply not kept.
        self._templates.put(key, built, 2 * (
            len(req.path) + len(req.query) + 128 * len(req.headers)
            + sum(len(k) + len(v) for k, v in req.headers)))
        return built
