"""Build wire events (``consent_mw.wire.EVENT_SCHEMA``) from request snapshots (pure).

The request path only copies what consent allows into a :class:`Snapshot`; the worker thread
turns it into an event here. Rules (the data inventory's field map):

* no ``analytics`` (undecided, refused, or only ``marketing``/``location``): an ``anonymous``
  count: scrubbed path, ``ts`` rounded down to the hour, ``device_type``, consent flags.
  No cookie ids, no IP, no UA string, no campaign fields.
* ``analytics``: a ``pageview`` with host, path, status, method, ts, search terms, referrer host
  and channel, language, network type, Save-Data, raw UA and client hints (parsed and dropped by
  the collector), visitor/session/consent ids and the IP.
* ``analytics`` + ``marketing``: also ``utm_*`` and ``click_id_type`` (never the click id value).
* ``location``: only its flag in ``consent``; the collector looks the IP up only when
  ``consent["location"]`` and ``consent["analytics"]`` are both true. Without analytics there
  is no IP to look up, so location alone adds nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from consent_mw import wire
from consent_mw.bounded import BoundedCache
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, client_ip
from consent_mw.consent.i18n import ranked_languages
from consent_mw.scrub import scrub_capped
from consent_mw.state import ConsentState
from consent_mw.useragent import device_type

HOUR_MS = 3_600_000
UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_PROPERTIES = 32
MAX_KEY = 64
TRAIT_MAX = 64

#: Request headers a pageview may use; nothing else is copied off the request.
ANALYTICS_HEADERS = frozenset({
    b"host", b"referer", b"user-agent", b"accept-language", b"ect", b"save-data",
    b"sec-ch-ua-model", b"sec-ch-ua-platform", b"x-forwarded-for", b"forwarded",
})
ECT_VALUES = frozenset({"slow-2g", "2g", "3g", "4g"})
#: Forwarding headers: every line counts (the proxy chain), the others' first value does.
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"forwarded"})
MAX_FORWARDING_LINES = 16


def analytics_headers(headers: Sequence[tuple[bytes, bytes]]
                      ) -> tuple[tuple[bytes, bytes], ...]:
    """The headers a pageview reads, in order: what the worker keys and builds on.

    A request can repeat a header thousands of times; the build reads only the first value
    of each, and of the forwarding headers at most the last MAX_FORWARDING_LINES lines (the
    proxies' end of the chain), so only those are kept.
    """
    kept = [h for h in headers if h[0] in ANALYTICS_HEADERS]
    if len(kept) <= 2 * len(ANALYTICS_HEADERS):  # the usual case: nothing to trim
        return tuple(kept)
    seen: set[bytes] = set()
    forwarding = [h for h in kept if h[0] in FORWARDING_HEADERS][-MAX_FORWARDING_LINES:]
    first = []
    for name, value in kept:
        if name not in FORWARDING_HEADERS and name not in seen:
            seen.add(name)
            first.append((name, value))
    return (*first, *forwarding)

SEARCH_ENGINES = (
    "google.", "bing.com", "yahoo.", "duckduckgo.com", "baidu.com", "yandex.", "naver.com",
    "ecosia.org", "search.brave.com", "goo.ne.jp", "biglobe.ne.jp", "so-net.ne.jp",
    "startpage.com", "qwant.com",
)
SOCIAL_SITES = (
    "facebook.com", "fb.com", "instagram.com", "t.co", "twitter.com", "x.com", "linkedin.com",
    "lnkd.in", "line.me", "tiktok.com", "youtube.com", "pinterest.", "reddit.com",
    "threads.net", "note.com", "mixi.jp", "ameblo.jp", "hatena.ne.jp", "bsky.app",
)


@dataclass(slots=True, kw_only=True)  # not frozen: frozen __init__ costs µs per request
class Snapshot:
    """What the request path copied, already limited to what the consent allows.

    The request path copies raw header bytes; decoding, IP resolution and everything else
    happen in the worker.
    """

    kind: str  # "page" | "custom" | "identify"
    ts: int  # ms
    consent: Mapping[str, bool]
    analytics: bool
    marketing: bool
    gpc: bool = False
    path: str = "/"
    ua: str | None = None  # anonymous: only to derive device_type, never sent
    host: str | None = None
    method: str | None = None
    status: int | None = None
    query: str = ""  # raw; only allow-listed params survive the build
    headers: Mapping[str, str] = field(default_factory=dict)
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()  # ANALYTICS_HEADERS only, undecoded
    peer: str | None = None  # scope["client"][0]: the IP is resolved in the worker
    visitor_id: str | None = None
    session_id: str | None = None
    consent_id: str | None = None
    ip: str | None = None
    name: str | None = None
    properties: Mapping[str, Any] | None = None
    conversion: bool = False
    user_id: str | None = None  # already the keyed hash
    traits: Mapping[str, Any] | None = None  # as given; cleaned by the build


#: A consented pageview as the request path queues it: a plain tuple of references, because
#: it is made for every page and a NamedTuple costs four times as much to make. In order:
#: ts (ms); the visitor's ConsentState (shared and frozen: categories, marketing, gpc,
#: consent id); path; method; status; the raw query (only allow-listed params survive the
#: build); the request's header list as the server gave it (every header: the worker picks
#: the analytics ones); visitor id; session id; ``scope["client"]``.
#: Everything else (consent flags, filtering, decoding, the client IP, suppression, parsing)
#: happens in the worker; the result equals :func:`build_event` of the equivalent
#: :class:`Snapshot`.
PageHit = tuple[int, ConsentState, str, "str | None", int, bytes,
                "Sequence[tuple[bytes, bytes]]", "str | None", "str | None", Any]


def _cap(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return value[:limit]


def clean_text(value: str | None, limit: int = wire.MAX_TEXT) -> str | None:
    """Scrubbed and capped; empty becomes None."""
    if value is None:
        return None
    text = scrub_capped(value.strip(), limit)
    return text or None


def query_params(query: str) -> dict[str, str]:
    """First value of each parameter, names lower-cased."""
    params: dict[str, str] = {}
    if not query:
        return params
    for key, value in parse_qsl(query, keep_blank_values=False):
        params.setdefault(key.lower(), value)
    return params


def search_terms(params: Mapping[str, str], allowed: tuple[str, ...]) -> str | None:
    for name in allowed:
        value = params.get(name.lower())
        if value and value.strip():
            return clean_text(value)
    return None


def click_id_type(params: Mapping[str, str], allowed: tuple[str, ...]) -> str | None:
    for name in allowed:
        if params.get(name.lower()):
            return name.lower()[:32]
    return None


def clean_host(value: str | None) -> str | None:
    if not value:
        return None
    host = value.strip().lower()
    if host.startswith("["):  # IPv6 literal with optional port
        host = host.split("]", 1)[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    return clean_text(host, 253)


def referrer_host(referer: str | None) -> str | None:
    if not referer:
        return None
    try:
        parts = urlsplit(referer.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "android-app"):
        return None
    return clean_host(parts.hostname)


def _same_site(a: str, b: str) -> bool:
    a = a.removeprefix("www.")
    b = b.removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def _matches(host: str, patterns: tuple[str, ...]) -> bool:
    for p in patterns:
        if p.endswith("."):
            if host.startswith(p) or ("." + p) in host:
                return True
        elif host == p or host.endswith("." + p):
            return True
    return False


def channel(ref_host: str | None, host: str | None, params: Mapping[str, str],
            click_ids: tuple[str, ...]) -> str:
    """direct / search / social / ad / referral / internal."""
    if any(params.get(p) for p in UTM_PARAMS) or any(params.get(c.lower()) for c in click_ids):
        return "ad"
    if not ref_host:
        return "direct"
    if host and _same_site(ref_host, host):
        return "internal"
    if _matches(ref_host, SEARCH_ENGINES):
        return "search"
    if _matches(ref_host, SOCIAL_SITES):
        return "social"
    return "referral"


def primary_language(accept_language: str | None) -> str | None:
    """The primary subtag of the preferred language (highest q, first on ties): ``ja``."""
    if not accept_language:
        return None
    ranked = ranked_languages(accept_language)
    return ranked[0] if ranked else None


def save_data(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() == "on"


def network_type(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip().lower()
    return text if text in ECT_VALUES else None


def clean_properties(props: Mapping[str, Any] | None) -> dict[str, str | int | float | bool | None]:
    """At most 32 scalar properties; strings scrubbed and capped; other types dropped."""
    out: dict[str, str | int | float | bool | None] = {}
    if not props:
        return out
    for key, value in props.items():
        if len(out) >= MAX_PROPERTIES:
            break
        if not isinstance(key, str) or not key:
            continue
        name = scrub_capped(key, MAX_KEY)
        if value is None or isinstance(value, bool | int):
            out[name] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                out[name] = value
        elif isinstance(value, str):
            out[name] = scrub_capped(value, wire.MAX_TEXT)
    return out


def _base(snap: Snapshot, event_id: str, kind: str) -> dict[str, Any]:
    return {"event_id": event_id, "ts": snap.ts, "kind": kind, "consent": dict(snap.consent)}


#: How much of a path a build can read (``scrub_capped`` of MAX_PATH): the cache keys on it.
KEY_PATH = 4 * wire.MAX_PATH + 320


@lru_cache(maxsize=1024)  # keys of at most KEY_PATH + MAX_UA characters: ~10 MiB at most
def _anonymous_fields(path: str, ua: str | None) -> tuple[tuple[tuple[str, Any], ...], int]:
    fields = {"name": "pageview", "path": clean_text(path, wire.MAX_PATH) or "/",
              "device_type": device_type(ua)}
    return tuple(fields.items()), json_size(fields)


def anonymous_event_sized(snap: Snapshot, event_id: str) -> tuple[dict[str, Any], int]:
    """The anonymous count and an upper bound of its encoded size."""
    event = _base(snap, event_id, "anonymous")
    event["ts"] = snap.ts - snap.ts % HOUR_MS
    items, size = _anonymous_fields(snap.path[:KEY_PATH], snap.ua[:wire.MAX_UA] if snap.ua
                                    else None)
    event.update(items)
    return event, size + _ENVELOPE_BOUND + _consent_bound(snap.consent)


def _set_ids(event: dict[str, Any], visitor_id: str | None, session_id: str | None,
             consent_id: str | None, gpc: bool) -> None:
    """The ids an event carries under analytics; absent ids are left out, not null."""
    if visitor_id is not None:
        event["visitor_id"] = visitor_id
    if session_id is not None:
        event["session_id"] = session_id
    if consent_id is not None:
        event["consent_id"] = consent_id
    event["gpc"] = gpc


def header_map(snap: Snapshot) -> dict[str, str]:
    """Decoded headers: the first value of each raw header, then any given as text."""
    h: dict[str, str] = {}
    for key, value in snap.raw_headers:
        h.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    h.update(snap.headers)
    return h


def resolve_ip(snap: Snapshot, trusted_proxies: tuple[str, ...],
               forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> str | None:
    if snap.ip is not None or snap.peer is None:
        return snap.ip
    return client_ip({"client": (snap.peer, 0), "headers": snap.raw_headers}, trusted_proxies,
                     forwarded_header)


def _request_fields(snap: Snapshot, search_params: tuple[str, ...],
                    click_id_params: tuple[str, ...], trusted_proxies: tuple[str, ...],
                    forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> dict[str, Any]:
    """Everything a pageview derives from the request itself (not from the visitor's ids)."""
    h = header_map(snap)
    params = query_params(snap.query)
    host = clean_host(snap.host or h.get("host"))
    ref = referrer_host(h.get("referer"))
    fields: dict[str, Any] = dict(
        name="pageview",
        host=host,
        path=clean_text(snap.path, wire.MAX_PATH) or "/",
        method=_cap(snap.method, 16),
        status=snap.status,
        search_terms=search_terms(params, search_params),
        referrer_host=ref,
        channel=channel(ref, host, params, click_id_params),
        language=primary_language(h.get("accept-language")),
        network_type=network_type(h.get("ect")),
        save_data=save_data(h.get("save-data")),
        ua=_cap(h.get("user-agent"), wire.MAX_UA),
        ch_ua_model=_cap(h.get("sec-ch-ua-model"), 128),
        ch_ua_platform=_cap(h.get("sec-ch-ua-platform"), 64),
        ip=resolve_ip(snap, trusted_proxies, forwarded_header),
    )
    if snap.marketing:
        for name in UTM_PARAMS:
            fields[name] = clean_text(params.get(name))
        fields["click_id_type"] = click_id_type(params, click_id_params)
    return {k: v for k, v in fields.items() if v is not None}


def json_size(item: Mapping[str, Any]) -> int:
    """Bytes of ``item`` as the transport encodes it (compact, UTF-8)."""
    return len(wire.encode_json(item))


# Upper bound of what a pageview adds to its request fields: event_id, ts, kind, three ids
# (each at most 64 id characters) and gpc, with their keys and punctuation.
_ENVELOPE_BOUND = 400


def _consent_bound(consent: Mapping[str, bool]) -> int:
    return _consent_bound_of(tuple(consent))


@lru_cache(maxsize=64)  # the same few category sets, event after event
def _consent_bound_of(names: tuple[str, ...]) -> int:
    # "name":false, per category; 6 bytes per character covers any JSON escape.
    return 16 + sum(6 * len(k) + 10 for k in names)


def pageview_event_sized(snap: Snapshot, event_id: str, *, search_params: tuple[str, ...],
                         click_id_params: tuple[str, ...],
                         trusted_proxies: tuple[str, ...] = (),
                         forwarded_header: str = DEFAULT_FORWARDED_HEADER
                         ) -> tuple[dict[str, Any], int]:
    """A pageview and an upper bound of its encoded size."""
    event = _base(snap, event_id, "pageview")
    # Snapshot pageviews are the rare ones (a site that resolved the IP itself); the common
    # PageHit path caches its request fields in HitBuilder.
    fields = _request_fields(snap, search_params, click_id_params, trusted_proxies,
                             forwarded_header)
    event.update(fields)
    size = json_size(fields)
    _set_ids(event, snap.visitor_id, snap.session_id, snap.consent_id, snap.gpc)
    return event, size + _ENVELOPE_BOUND + _consent_bound(snap.consent)


def _hit_template(path: str, query: bytes, raw_headers: tuple[tuple[bytes, bytes], ...],
                  method: str | None, status: int, peer: Any, marketing: bool,
                  search_params: tuple[str, ...], click_id_params: tuple[str, ...],
                  trusted_proxies: tuple[str, ...], forwarded_header: str
                  ) -> tuple[dict[str, Any], int]:
    """A pageview with its request-derived fields only, and their encoded size (never
    mutated: each event is a copy). ``peer`` is the client's host, without its port: the
    port changes with every connection and would make every new connection a miss."""
    snap = Snapshot(kind="page", ts=0, consent={}, analytics=True, marketing=marketing,
                    path=path, query=query.decode("utf-8", "replace"), raw_headers=raw_headers,
                    method=method, status=status, peer=None if peer is None else str(peer))
    fields = _request_fields(snap, search_params, click_id_params, trusted_proxies,
                             forwarded_header)
    return {"kind": "pageview", **fields}, json_size(fields)


#: path, query, analytics headers, method, status, client host, marketing granted.
_TemplateKey = tuple[str, bytes, tuple[tuple[bytes, bytes], ...], "str | None", int, Any, bool]


class HitBuilder:
    """Builds the pageviews of :class:`PageHit` s for one set of settings (the worker's).

    What depends only on a consent state (the marketing flag, the size of its ``consent``
    map, the map itself) is worked out once per state: a returning visitor's state object is
    shared by all of their requests. The events of one state share its ``consent`` dict, as
    they share the template's values: built events are read (encoded, validated), never
    changed in place. The cache holds the states it keys, so their ids cannot be reused
    while cached, and is cleared when it fills.
    """

    __slots__ = ("_click_ids", "_forwarded", "_marketing", "_proxies", "_search", "_states",
                 "_templates", "misses")

    MAX_STATES = 4096
    MAX_TEMPLATES = 4096
    #: Templates are keyed on what the request sent (path, query, headers): bounded in bytes.
    MAX_TEMPLATE_BYTES = 8 * 1024 * 1024

    def __init__(self, *, marketing: tuple[str, ...], search_params: tuple[str, ...] = (),
                 click_id_params: tuple[str, ...] = (),
                 trusted_proxies: tuple[str, ...] = (),
                 forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> None:
        self._marketing = marketing
        self._search = search_params
        self._click_ids = click_id_params
        self._proxies = trusted_proxies
        self._forwarded = forwarded_header
        self._states: dict[int, tuple[ConsentState, bool, int, dict[str, bool]]] = {}
        # Keyed without the settings (fixed per builder): hashing them per event adds up.
        self._templates: BoundedCache[_TemplateKey, tuple[dict[str, Any], int]] = BoundedCache(
            max_entries=self.MAX_TEMPLATES, max_bytes=self.MAX_TEMPLATE_BYTES)
        self.misses = 0  # templates built, for tests and tuning

    def __call__(self, hit: PageHit, event_id: str) -> tuple[dict[str, Any], int]:
        """The pageview of one hit and an upper bound of its encoded size."""
        events, sizes = self.build_all((hit,), (event_id,))  # raises what the build raised
        return events[0], sizes[0]

    def build_all(self, hits: Sequence[PageHit], event_ids: Sequence[str],
                  on_error: Callable[[], None] | None = None
                  ) -> tuple[list[dict[str, Any]], list[int]]:
        """The pageviews of ``hits`` (one id each, in order) and upper bounds of their encoded
        sizes. A hit that cannot be built is left out and reported to ``on_error`` (which may
        log; it runs inside the ``except``).

        One loop with the per-event work inline, because a call per event cost a third of
        the whole build.
        """
        events: list[dict[str, Any]] = []
        sizes: list[int] = []
        states = self._states
        templates = self._templates
        for hit, event_id in zip(hits, event_ids, strict=True):
            try:
                # One unpack instead of ten lookups: this runs for every page of every visitor.
                ts, state, path, method, status, query, headers, visitor_id, session_id, \
                    client = hit
                known = states.get(id(state))
                if known is None or known[0] is not state:
                    known = self._learn(state)
                key: _TemplateKey = (
                    path, query, analytics_headers(headers), method, status,
                    client[0] if client else None, known[1])
                cached = templates.get(key)
                if cached is None:
                    cached = self._template(key)
                event = cached[0].copy()  # a C-level copy of ~20 fields
                event["event_id"] = event_id
                event["ts"] = ts
                event["consent"] = known[3]
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
            sizes.append(cached[1] + known[2])
        return events, sizes

    def _learn(self, state: ConsentState) -> tuple[ConsentState, bool, int, dict[str, bool]]:
        if len(self._states) >= self.MAX_STATES:
            self._states.clear()
        known = (state, state.granted_any(self._marketing),
                 _ENVELOPE_BOUND + _consent_bound_of(tuple(state.categories)),
                 dict(state.categories))
        self._states[id(state)] = known
        return known

    def _template(self, key: _TemplateKey) -> tuple[dict[str, Any], int]:
        self.misses += 1
        built = _hit_template(*key, self._search, self._click_ids, self._proxies,
                              self._forwarded)
        path, query, headers = key[0], key[1], key[2]
        # Charged twice its key: the template holds about as much again. One larger than the
        # whole budget is simply not kept.
        self._templates.put(key, built, 2 * (len(path) + len(query) + 128 * len(headers)
                                             + sum(len(k) + len(v) for k, v in headers)))
        return built


def custom_event(snap: Snapshot, event_id: str) -> dict[str, Any]:
    event = _base(snap, event_id, "custom")
    event["name"] = clean_text(snap.name, 128) or "event"
    event["properties"] = clean_properties(snap.properties)
    event["host"] = clean_host(snap.host)
    event["path"] = clean_text(snap.path, wire.MAX_PATH) if snap.path else None
    if snap.conversion:
        event["conversion"] = True
    _set_ids(event, snap.visitor_id, snap.session_id, snap.consent_id, snap.gpc)
    return event


def identify_event(snap: Snapshot, event_id: str) -> dict[str, Any]:
    event = _base(snap, event_id, "identify")
    event["name"] = "identify"
    event["user_id"] = snap.user_id
    event["traits"] = clean_traits(snap.traits)
    _set_ids(event, snap.visitor_id, snap.session_id, snap.consent_id, snap.gpc)
    return event


def build_event(snap: Snapshot, event_id: str, *, search_params: tuple[str, ...] = (),
                click_id_params: tuple[str, ...] = (),
                trusted_proxies: tuple[str, ...] = (),
                forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> dict[str, Any] | None:
    """The wire event for ``snap``, with None-valued fields removed; None if nothing to send."""
    return build_event_sized(snap, event_id, search_params=search_params,
                             click_id_params=click_id_params,
                             trusted_proxies=trusted_proxies,
                             forwarded_header=forwarded_header)[0]


def build_event_sized(snap: Snapshot, event_id: str, *, search_params: tuple[str, ...] = (),
                      click_id_params: tuple[str, ...] = (),
                      trusted_proxies: tuple[str, ...] = (),
                      forwarded_header: str = DEFAULT_FORWARDED_HEADER
                      ) -> tuple[dict[str, Any] | None, int]:
    """:func:`build_event` and the event's encoded size: exact, or for a pageview an upper
    bound that costs no encoding (the worker batches and size-checks by it)."""
    if snap.kind == "page":  # both builders leave None-valued fields out already
        if snap.analytics:
            return pageview_event_sized(snap, event_id, search_params=search_params,
                                        click_id_params=click_id_params,
                                        trusted_proxies=trusted_proxies,
                                        forwarded_header=forwarded_header)
        return anonymous_event_sized(snap, event_id)
    if not snap.analytics:  # custom and identify need analytics; capture gates, we re-check
        return None, 0
    if snap.kind == "custom":
        event = custom_event(snap, event_id)
    elif snap.kind == "identify":
        event = identify_event(snap, event_id)
    else:
        return None, 0
    clean = {k: v for k, v in event.items() if v is not None}
    return clean, json_size(clean)


# -- traits (identify) ---------------------------------------------------------------------

_ZIP_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF10, 0xFF1A)}


def age_band(value: object) -> str | None:
    """``"30-39"`` from an age; a band the site already computed is kept if well-formed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{1,3}", text):
            value = int(text)
        elif re.fullmatch(r"\d{1,2}0-\d{1,2}9|\d{2,3}\+", text):
            return text
        else:
            return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= 130:
        return None
    if value >= 90:
        return "90+"
    low = value // 10 * 10
    return f"{low}-{low + 9}"


def zip3(value: object) -> str | None:
    """The first 3 digits of a (Japanese) postal code: ``"〒170-0013"`` → ``"170"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:07d}" if value < 10_000_000 else str(value)
    if not isinstance(value, str):
        return None
    digits = "".join(ch for ch in value.translate(_ZIP_FOLD) if "0" <= ch <= "9")
    return digits[:3] if len(digits) >= 3 else None


def clean_traits(traits: Mapping[str, Any] | None) -> dict[str, str]:
    """Only allow-listed traits (``wire.TRAITS``): ``age`` → ``age_band``, ``zip`` → ``zip3``."""
    out: dict[str, str] = {}
    if not traits:
        return out
    band = age_band(traits["age_band"]) if "age_band" in traits else None
    if band is None and "age" in traits:
        band = age_band(traits["age"])
    if band:
        out["age_band"] = band
    z = zip3(traits["zip3"]) if "zip3" in traits else None
    if z is None:
        for key in ("zip", "zip_code", "postal_code"):
            if key in traits:
                z = zip3(traits[key])
                break
    if z:
        out["zip3"] = z
    for key in ("gender", "occupation"):
        value = traits.get(key)
        if isinstance(value, str):
            text = clean_text(value, TRAIT_MAX)
            if text:
                out[key] = text
    return out
