"""Event fields derived from request values: pure functions, each value scrubbed and capped.

:func:`request_fields` is what a pageview keeps of its request (``consent_mw.capture.hits``
builds it once per distinct :class:`PageRequest`); custom events read their page's host and
path through the same helpers, so both read a host, a referrer or a query string alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from consent_mw import wire
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, client_ip
from consent_mw.consent.i18n import ranked_languages
from consent_mw.scrub import scrub_capped

UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
ECT_VALUES = frozenset({"slow-2g", "2g", "3g", "4g"})
#: Request headers a pageview may use; nothing else of the request is read.
ANALYTICS_HEADERS = frozenset({
    b"host", b"referer", b"user-agent", b"accept-language", b"ect", b"save-data",
    b"sec-ch-ua-model", b"sec-ch-ua-platform", b"x-forwarded-for", b"forwarded",
})
#: Forwarding headers: every line counts (the proxy chain), the others' first value does.
FORWARDING_HEADERS = frozenset({b"x-forwarded-for", b"forwarded"})
MAX_FORWARDING_LINES = 16

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


def json_size(item: Mapping[str, Any]) -> int:
    """Bytes of ``item`` as the transport encodes it (compact, UTF-8)."""
    return len(wire.encode_json(item))


def cap(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


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


class PageRequest(NamedTuple):
    """What a pageview's request alone decides (host, path, search terms, referrer, channel,
    language, campaign, IP): a pure function of these, so built once per distinct request.

    The template cache keys on the plain tuple of these fields, in this order (made per event
    in the worker, where a NamedTuple would cost twice as much), and makes the named form
    only to build a template. ``peer`` is the client's host without its port: the port
    changes with every connection and would make each new connection a miss.
    """

    path: str
    query: bytes
    headers: tuple[tuple[bytes, bytes], ...]  # ANALYTICS_HEADERS only
    method: str | None
    status: int
    peer: str | None
    ip: str | None
    marketing: bool


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


def request_fields(req: PageRequest, *, search_params: tuple[str, ...],
                   click_id_params: tuple[str, ...], trusted_proxies: tuple[str, ...],
                   forwarded_header: str = DEFAULT_FORWARDED_HEADER) -> dict[str, Any]:
    """Everything a pageview derives from its request (not from the visitor's ids), with
    None-valued fields left out."""
    h: dict[str, str] = {}
    for key, value in req.headers:  # the first value of each
        h.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    params = query_params(req.query.decode("utf-8", "replace"))
    host = clean_host(h.get("host"))
    ref = referrer_host(h.get("referer"))
    ip = req.ip
    if ip is None:
        client = None if req.peer is None else (req.peer, 0)
        ip = client_ip({"client": client, "headers": req.headers}, trusted_proxies,
                       forwarded_header)
    fields: dict[str, Any] = dict(
        name="pageview",
        host=host,
        path=clean_text(req.path, wire.MAX_PATH) or "/",
        method=cap(req.method, 16),
        status=req.status,
        search_terms=search_terms(params, search_params),
        referrer_host=ref,
        channel=channel(ref, host, params, click_id_params),
        language=primary_language(h.get("accept-language")),
        network_type=network_type(h.get("ect")),
        save_data=save_data(h.get("save-data")),
        ua=cap(h.get("user-agent"), wire.MAX_UA),
        ch_ua_model=cap(h.get("sec-ch-ua-model"), 128),
        ch_ua_platform=cap(h.get("sec-ch-ua-platform"), 64),
        ip=ip,
    )
    if req.marketing:
        for name in UTM_PARAMS:
            fields[name] = clean_text(params.get(name))
        fields["click_id_type"] = click_id_type(params, click_id_params)
    return {k: v for k, v in fields.items() if v is not None}
