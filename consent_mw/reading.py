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

from consent_mw import i18n
from consent_mw.consent import analytics_gate, apply_gpc, gpc_from_headers, undecided
from consent_mw.cookies import (
    CookieCodec,
    StoredConsent,
    evict_oldest,
    parse_cookie_header,
    parse_session_cookie,
    single,
    valid_visitor_id,
)
from consent_mw.settings import Settings
from consent_mw.state import ConsentState

READING_CACHE_SIZE = 4096
MAX_CACHED_KEY_BYTES = 4096  # larger inputs are read every time instead of being kept
READING_TTL = 60.0  # seconds; also bounds how stale a cached reading can be
SESSION_SLIDE = 60  # seconds between re-issues of the sliding session cookie

#: ``Cookie`` (all fields joined with "; "), the ``Sec-GPC`` values, the first
#: ``Accept-Language``: everything a reading depends on besides the clock.
ReadingKey = tuple[bytes, tuple[bytes, ...], bytes]


@dataclass(frozen=True, slots=True)
class Reading:
    """The consent inputs of a request, parsed and verified. Shared: never mutate."""

    cookies: Mapping[str, list[str]]
    stored: StoredConsent | None
    gpc: bool
    state: ConsentState
    locale: str
    visitor_cookie: str | None
    session_cookie: str | None  # the session id
    session_issued: int  # when the session cookie was last set (s); 0 when unknown
    shown_cid: str | None
    until: float  # time.time() after which it must be read again
    analytics: bool = False  # visitor and session ids may exist
    #: Analytics granted, both id cookies present and the session cookie set less than
    #: SESSION_SLIDE ago (``until`` ends before that changes): no id cookie to (re)set.
    ids_settled: bool = False
    #: Decided, with nothing to set, expire or record: ids settled under analytics, no id
    #: cookies to expire without it, no ``gpc_applied`` record due. A page response then
    #: needs no Set-Cookie and (without tags) no body change, only ``Vary``: the
    #: middleware's fast path.
    settled: bool = False


class Reader:
    """Reads (and caches) :class:`Reading` s for one Settings."""

    def __init__(self, settings: Settings, codec: CookieCodec) -> None:
        self.settings = settings
        self.codec = codec
        self._undecided = undecided(settings)
        self._analytics_gate = analytics_gate(settings)
        self._cache: dict[ReadingKey, Reading] = {}

    def read_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> Reading:
        """The reading of a request's ASGI headers (names lower-case, as ASGI requires).

        Picks out the :data:`ReadingKey`; several Cookie fields (HTTP/2 splits them) are
        joined with "; ", as RFC 9113 says. One function with :meth:`read`'s cache lookup
        inlined, because every request calls it.
        """
        cookie: bytes | None = None
        gpc: tuple[bytes, ...] = ()
        accept_language = b""
        for key, value in headers:
            if key == b"cookie":
                cookie = bytes(value) if cookie is None else cookie + b"; " + bytes(value)
            elif key == b"sec-gpc":
                gpc += (bytes(value),)
            elif key == b"accept-language" and not accept_language:
                accept_language = bytes(value)
        inputs = (cookie or b"", gpc, accept_language)
        now = time.time()
        hit = self._cache.get(inputs)
        if hit is not None and now < hit.until:
            return hit
        return self._read_and_keep(inputs, now)

    def read(self, key: ReadingKey) -> Reading:
        """The reading of a request's consent inputs (see :data:`ReadingKey`)."""
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None and now < hit.until:
            return hit
        return self._read_and_keep(key, now)

    def _read_and_keep(self, key: ReadingKey, now: float) -> Reading:
        """Read ``key`` afresh and cache the result (unless its inputs are huge)."""
        cookie, sec_gpc, accept_language = key
        reading = self._read(cookie, sec_gpc, accept_language, now)
        if len(cookie) + len(accept_language) <= MAX_CACHED_KEY_BYTES:
            cache = self._cache
            cache.pop(key, None)
            if len(cache) >= READING_CACHE_SIZE:
                evict_oldest(cache)
            cache[key] = reading
        return reading

    def _read(self, cookie: bytes, sec_gpc: tuple[bytes, ...], accept_language: bytes,
              now: float) -> Reading:
        s = self.settings
        cookies = parse_cookie_header([cookie] if cookie else [])
        stored = self.codec.load_consent(single(cookies, s.consent_cookie))
        gpc = gpc_from_headers(list(sec_gpc))
        until = now + READING_TTL
        shown_cid: str | None = None
        if stored is not None:
            until = min(until, self.codec.expires_at(stored))
        else:
            shown = self.codec.load_shown_until(single(cookies, s.consent_cookie + "_shown"))
            if shown is not None:
                shown_cid, shown_until = shown
                until = min(until, shown_until)
        session = parse_session_cookie(single(cookies, s.session_cookie))
        state = apply_gpc(stored.state if stored else self._undecided, s, gpc)
        visitor = valid_visitor_id(single(cookies, s.visitor_cookie))
        analytics = state.granted_any(self._analytics_gate)
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
            visitor_cookie=visitor,
            session_cookie=session[0] if session else None,
            session_issued=issued,
            shown_cid=shown_cid,
            until=until,
            analytics=analytics,
            ids_settled=settled,
            settled=(state.decided
                     and (settled if analytics else not (s.visitor_cookie in cookies
                                                         or s.session_cookie in cookies))
                     and not (state.gpc_applied and stored is not None
                              and not stored.gpc_recorded)),
        )

