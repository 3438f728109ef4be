"""What a request's consent inputs say, read once per distinct set of inputs.

A returning visitor's browser sends the same ``Cookie``, ``Sec-GPC`` and ``Accept-Language``
on every page. Everything the middleware derives from them (the verified consent cookie, the
GPC-adjusted state, the banner locale, the id cookies, the banner-shown marker) is a pure
function of those bytes and the clock, so a :class:`Reader` computes it once and reuses it
until the clock could change the answer (a cookie expiring) or for at most a minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from consent_mw.bounded import HEADER_OVERHEAD, BoundedCache
from consent_mw.consent import i18n
from consent_mw.consent.cookies import (
    CookieCodec,
    StoredConsent,
    parse_cookie_header,
    single,
    valid_visitor_id,
)
from consent_mw.consent.decision import analytics_gate, apply_gpc, gpc_from_headers, undecided
from consent_mw.settings import Settings
from consent_mw.state import ConsentState

READING_CACHE_SIZE = 4096
READING_CACHE_BYTES = 8 * 1024 * 1024
READING_TTL = 60.0  # seconds; also bounds how stale a cached reading can be
SESSION_SLIDE = 60  # seconds between re-issues of the sliding session cookie

#: Size caps of the request headers the middleware reads. A larger value is treated as
#: absent: browsers send far less (a Cookie header rarely passes 8 KB), and every byte kept
#: is a byte an attacker chose.
MAX_COOKIE_HEADER = 16 * 1024
MAX_COOKIE_FIELDS = 32  # HTTP/2 sends one field per cookie; more is not a browser
MAX_GPC_VALUE = 16  # "1" is the only value that means anything
MAX_GPC_VALUES = 4
MAX_ACCEPT_LANGUAGE = i18n.MAX_ACCEPT_LANGUAGE

#: ``Cookie`` (all fields joined with "; "), the ``Sec-GPC`` values, the first
#: ``Accept-Language``: everything a reading depends on besides the clock.
ReadingKey = tuple[bytes, tuple[bytes, ...], bytes]


def capped_key(cookie: bytes, gpc: tuple[bytes, ...], accept_language: bytes) -> ReadingKey:
    """The reading key of raw header values, each over its cap treated as absent."""
    if len(cookie) > MAX_COOKIE_HEADER:
        cookie = b""
    if gpc and (len(gpc) > MAX_GPC_VALUES or any(len(v) > MAX_GPC_VALUE for v in gpc)):
        gpc = tuple(v for v in gpc[:MAX_GPC_VALUES] if len(v) <= MAX_GPC_VALUE)
    if len(accept_language) > MAX_ACCEPT_LANGUAGE:
        accept_language = b""
    return cookie, gpc, accept_language


def key_bytes(key: ReadingKey) -> int:
    """What a cached reading of ``key`` holds: the key, the parsed cookies (about as large
    again) and, per cookie, a dict entry, a list and two strings (~200 bytes: 3,000 tiny
    cookies weigh far more than their 16 KB)."""
    cookie = key[0]
    return (2 * len(cookie) + 200 * (cookie.count(b";") + 1) + sum(map(len, key[1]))
            + len(key[2]))


@dataclass(frozen=True, slots=True)
class Reading:
    """The consent inputs of a request, parsed and verified. Shared: never mutate."""

    cookies: Mapping[str, list[str]]
    stored: StoredConsent | None
    gpc: bool
    state: ConsentState
    locale: str
    #: The visitor id the consent cookie binds, when the ``cmw_vid`` cookie carries it. A
    #: ``cmw_vid`` the consent does not bind (another visitor's, planted, or issued before
    #: binding existed) is ignored: it never names whose data this is.
    visitor_id: str | None
    session_id: str | None  # from a session cookie issued with ``visitor_id``
    session_issued: int  # when the session cookie was last set (s); 0 when unknown
    shown_cid: str | None
    until: float  # time.time() after which it must be read again
    analytics: bool = False  # visitor and session ids may exist
    #: Analytics granted, both ids bound and the session cookie set less than SESSION_SLIDE
    #: ago (``until`` ends before that changes): no id cookie to (re)set.
    ids_settled: bool = False
    #: Decided, with nothing to set, expire or record: ids settled under analytics, no id
    #: cookies to expire without it, no ``gpc_applied`` record due. A page response then
    #: needs no Set-Cookie and (without tags) no body change, only ``Vary``: the
    #: middleware's fast path.
    settled: bool = False
    shown_rid: str | None = None  # the ``shown`` record a first decision follows
    #: No stored decision, no analytics and no id cookies: a page response has no cookie to
    #: set, expire or re-sign (a first visit, or a visitor who never decided).
    fresh: bool = False


class Reader:
    """Reads (and caches) :class:`Reading` s for one Settings."""

    def __init__(self, settings: Settings, codec: CookieCodec) -> None:
        self.settings = settings
        self.codec = codec
        self._undecided = undecided(settings)
        self._analytics_gate = analytics_gate(settings)
        self._cache: BoundedCache[ReadingKey, Reading] = BoundedCache(
            max_entries=READING_CACHE_SIZE, max_bytes=READING_CACHE_BYTES)
        self._get = self._cache.get

    def read_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> Reading:
        """The reading of a request's ASGI headers (names lower-case, as ASGI requires)."""
        return self.read_sized(headers)[0]

    def read_sized(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[Reading, int]:
        """The reading of a request's ASGI headers, and what the header list holds in bytes
        (names, values and :data:`HEADER_OVERHEAD` each: what queueing it for capture costs).

        Picks out the :data:`ReadingKey`; several Cookie fields (HTTP/2 splits them) are
        joined with "; ", as RFC 9113 says. Linear in the headers whatever their number (a
        server may accept tens of thousands), and capped: past :data:`MAX_COOKIE_FIELDS`
        cookie fields or :data:`MAX_COOKIE_HEADER` bytes the cookies read as absent. The size
        is summed in the same pass, because this loop runs on every request anyway.
        """
        cookies: list[bytes] | None = None
        gpc: list[bytes] | None = None
        accept_language = b""
        size = 0
        for key, value in headers:
            size += len(key) + len(value) + HEADER_OVERHEAD
            if key == b"cookie":
                if cookies is None:
                    cookies = [value]
                elif len(cookies) <= MAX_COOKIE_FIELDS:
                    cookies.append(value)
            elif key == b"sec-gpc":
                if gpc is None:
                    gpc = [value]
                elif len(gpc) <= MAX_GPC_VALUES:
                    gpc.append(value)
            elif key == b"accept-language" and not accept_language:
                accept_language = value
        if cookies is None:
            cookie = b""
        elif len(cookies) == 1:  # the usual case: no join, no copy
            cookie = bytes(cookies[0])
        elif len(cookies) > MAX_COOKIE_FIELDS:
            cookie = b"x" * (MAX_COOKIE_HEADER + 1)  # over the cap: read as absent
        else:
            cookie = b"; ".join(map(bytes, cookies))
        inputs = (cookie, tuple(map(bytes, gpc)) if gpc else (), bytes(accept_language))
        now = time.time()
        hit = self._get(inputs)
        if hit is None or now >= hit.until:
            hit = self._read_and_keep(capped_key(*inputs), now)
        return hit, size

    def read(self, key: ReadingKey) -> Reading:
        """The reading of a request's consent inputs (see :data:`ReadingKey`)."""
        now = time.time()
        hit = self._get(key)
        if hit is not None and now < hit.until:
            return hit
        return self._read_and_keep(capped_key(*key), now)

    def _read_and_keep(self, key: ReadingKey, now: float) -> Reading:
        """Read ``key`` afresh and cache the result (charged by its size)."""
        cookie, sec_gpc, accept_language = key
        reading = self._read(cookie, sec_gpc, accept_language, now)
        # Kept under the capped key only: an over-cap input is read afresh every time, so
        # sending one costs the sender as much as it costs us, and nothing is kept for it.
        self._cache.put(key, reading, key_bytes(key))
        return reading

    def _read(self, cookie: bytes, sec_gpc: tuple[bytes, ...], accept_language: bytes,
              now: float) -> Reading:
        s = self.settings
        codec = self.codec
        cookies = parse_cookie_header([cookie] if cookie else [])
        stored = codec.load_consent(single(cookies, s.consent_cookie))
        gpc = gpc_from_headers(list(sec_gpc))
        until = now + READING_TTL
        shown_cid: str | None = None
        shown_rid: str | None = None
        if stored is not None:
            until = min(until, codec.expires_at(stored))
        else:
            shown = codec.load_shown_until(single(cookies, s.consent_cookie + "_shown"))
            if shown is not None:
                shown_cid, shown_rid = shown.consent_id, shown.record_id
                until = min(until, shown.until)
        state = apply_gpc(stored.state if stored else self._undecided, s, gpc)
        analytics = state.granted_any(self._analytics_gate)
        visitor = valid_visitor_id(single(cookies, s.visitor_cookie))
        if stored is None or not analytics or not stored.binds(visitor):
            visitor = None
        session = codec.load_session(single(cookies, s.session_cookie), visitor)
        issued = session[1] if session else 0
        settled = False
        if analytics and visitor and session and now - SESSION_SLIDE <= issued <= now:
            settled = True
            until = min(until, issued + SESSION_SLIDE)
        return Reading(
            cookies=cookies,
            stored=stored,
            gpc=gpc,
            state=state,
            locale=i18n.choose_locale(s, accept_language=accept_language.decode("latin-1")),
            visitor_id=visitor,
            session_id=session[0] if session else None,
            session_issued=issued,
            shown_cid=shown_cid,
            shown_rid=shown_rid,
            until=until,
            analytics=analytics,
            ids_settled=settled,
            settled=(state.decided
                     and (settled if analytics else not (s.visitor_cookie in cookies
                                                         or s.session_cookie in cookies))
                     and not (state.gpc_applied and stored is not None
                              and not stored.gpc_recorded)),
            fresh=(stored is None and not analytics and s.visitor_cookie not in cookies
                   and s.session_cookie not in cookies),
        )
