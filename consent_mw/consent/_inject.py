"""What the middleware changes in a page response: ``Vary`` and ``Cache-Control`` on the
headers, the banner, the granted tags and the beacon before the body's last ``</body>``.

Only HTML gets a banner, tags or the beacon, and only a complete, uncompressed body of a
response that has one (no HEAD, 1xx, 204, 205 or 304): streamed and compressed responses pass
untouched.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping
from typing import Any

from consent_mw.consent import i18n
from consent_mw.consent.banner import banner_bytes
from consent_mw.consent.incoming import Incoming
from consent_mw.consent.tags import render_tags
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Headers, Message

#: What a banner or tags depend on: a cache must key the HTML on these request headers.
VARY = b"Cookie, Sec-GPC"
#: A response gets markup only when its Content-Type, lower-cased, starts with this.
HTML_TYPE = b"text/html"


def response_info(headers: Iterable[tuple[bytes, bytes]]
                  ) -> tuple[bool, bytes | None, bytes | None, bytes]:
    """(is HTML, Content-Encoding, the ``Vary`` value to add, Content-Type) of response
    headers, in one pass. Only HTML gets a banner or tags, so only HTML needs ``Vary``; None
    when the response is not HTML or already names both headers."""
    html: bool | None = None
    encoding: bytes | None = None
    vary: list[bytes] | None = None
    content_type = b""
    for key, value in headers:
        name = key.lower()
        if name == b"content-type":
            if html is None:
                html = value.lower().startswith(HTML_TYPE)
                content_type = value
        elif name == b"content-encoding":
            if encoding is None:
                encoding = value
        elif name == b"vary":
            vary = [value] if vary is None else [*vary, value]
    if not html:
        return False, encoding, None, content_type
    return True, encoding, VARY if vary is None else missing_vary(vary), content_type


def missing_vary(existing: list[bytes] | None) -> bytes | None:
    """A ``Vary`` value naming what the middleware's output depends on and is not yet named."""
    if not existing:
        return VARY
    have = {p.strip().lower() for v in existing for p in v.split(b",")}
    if b"*" in have:
        return None
    missing = [n for n in (b"Cookie", b"Sec-GPC") if n.lower() not in have]
    return b", ".join(missing) if missing else None


def make_private(headers: Headers) -> None:
    """A shared cache must not hand one visitor's banner, tags or ids to another."""
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"cache-control":
            headers[i] = (k, private_value(v))
            return
    headers.append((b"cache-control", b"private"))


def private_value(value: bytes) -> bytes:
    """A ``Cache-Control`` value that keeps shared caches out: as it is when it already says
    ``private`` or ``no-store``, else ``private`` in place of ``public`` and ``s-maxage``."""
    low = value.lower()
    if b"private" in low or b"no-store" in low:
        return value
    parts = [p.strip() for p in value.split(b",") if p.strip()]
    kept = [p for p in parts if p.lower() != b"public" and not p.lower().startswith(b"s-maxage")]
    return b", ".join([b"private", *kept])


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


_CHARSETS: dict[bytes, str] = {}


def charset(content_type: bytes) -> str:
    """The Python codec named by a Content-Type's charset (utf-8 when absent or unknown),
    remembered per header value: an app sends few distinct ones."""
    name = _CHARSETS.get(content_type)
    if name is None:
        name = _parse_charset(content_type)
        if len(content_type) <= 128:
            if len(_CHARSETS) >= 64:
                _CHARSETS.clear()
            _CHARSETS[content_type] = name
    return name


def _parse_charset(content_type: bytes) -> str:
    for part in content_type.split(b";")[1:]:
        key, _, value = part.strip().partition(b"=")
        if key.lower() == b"charset":
            name = value.strip(b" \"'").decode("latin-1")
            try:
                return codecs.lookup(name).name
            except LookupError:
                return "utf-8"
    return "utf-8"


def wants_body(settings: Settings, ctx: RequestContext, scope: Mapping[str, Any],
               message: Message, info: tuple[bool, bytes | None], *,
               beacon: bool = False) -> bool:
    """Whether this response gets a banner, tags or (``beacon``: this visitor granted
    analytics and the beacon is on) the beacon, so its body must be held and changed."""
    if ctx.state.decided and not (settings.tags or beacon):  # the common case, decided first
        return False
    if not (settings.banner or settings.tags or beacon) or scope.get("method") == "HEAD":
        return False
    html, encoding = info
    if not html or not changeable(int(message.get("status", 200)), encoding):
        return False
    if ctx.state.decided:
        return bool(settings.tags) or beacon
    return settings.banner or beacon


def changeable(status: int, encoding: bytes | None) -> bool:
    """Whether an HTML response with this status and Content-Encoding has a body that markup
    can go into: one that is sent, and not compressed."""
    if status < 200 or status in (204, 205, 304):
        return False
    return not encoding or encoding.strip().lower() == b"identity"


def body_end(body: bytes) -> int:
    """Where injected markup goes: before the last ``</body>``, in any letter case (-1:
    none, leave the page).

    Lower-casing a whole page copies it, so the usual spellings are looked for first and
    only what follows the last of them is lower-cased (a later ``</Body`` still wins).
    """
    at = max(body.rfind(b"</body"), body.rfind(b"</BODY"))
    if at < 0:
        return body.lower().rfind(b"</body")
    later = body[at + 2:].lower().rfind(b"</body")
    return at if later < 0 else at + 2 + later


def ascii_safe(content_type: bytes) -> bool:
    """Whether ASCII markup can be inserted into a body of this type as it is (every
    charset but the UTF-16 and UTF-32 ones)."""
    return not charset(content_type).startswith(("utf-16", "utf-32"))


def inject(settings: Settings, ctx: RequestContext, incoming: Incoming,
           scope: Mapping[str, Any], start: Message, body: bytes, *,
           beacon: str = "") -> bytes | None:
    """The body with tags, the beacon's script element (``beacon``, given only for a
    visitor who granted analytics) and the banner before the last ``</body>``; None to
    leave it."""
    return inject_at(settings, ctx, scope, body, body_end(body), locale=incoming.reading.locale,
                     content_type=header_value(start["headers"], b"content-type") or b"",
                     beacon=beacon)


def inject_at(settings: Settings, ctx: RequestContext, scope: Mapping[str, Any], body: bytes,
              at: int, *, locale: str, content_type: bytes, beacon: str = "") -> bytes | None:
    """:func:`inject` with the body's end (:func:`body_end`), the locale to fall back on (the
    reading's, from Accept-Language) and the response's Content-Type already known."""
    if at < 0:
        return None
    lang = i18n.from_html(body)
    # The page's own language, else what the reading chose from Accept-Language (the same
    # choice choose_locale makes, without reading the headers again).
    ctx.locale = (lang if lang is not None and lang in i18n.supported_locales(settings.locales)
                  else locale)
    decided = ctx.state.decided
    snippet = (render_tags(settings, ctx.state) if decided else "") + beacon
    encoding = charset(content_type)
    encoded = snippet.encode(encoding, errors="xmlcharrefreplace") if snippet else b""
    if not decided and settings.banner:
        # Its script reports the display (POST {prefix}/shown), which writes the
        # ``shown`` record: see Endpoints.shown.
        encoded += banner_bytes(settings, ctx.locale, scope.get("path") or "/",
                                scope.get("query_string") or b"", encoding,
                                gpc=ctx.state.gpc_applied)
    if not encoded:
        return None
    return body[:at] + encoded + body[at:]


def injected_headers(headers: Iterable[tuple[bytes, bytes]], length: int) -> Headers:
    """The start's headers for a changed body: its length, private, and no validators.

    Validators describe the app's body, not ours: a 304 on revalidation would otherwise
    bring back a cached banner after the visitor decided.
    """
    out, cache_control = without_validators(headers)
    return with_length(out, cache_control, length)


def without_validators(headers: Iterable[tuple[bytes, bytes]]) -> tuple[Headers, int]:
    """The headers but the validators, and where Cache-Control is among them (-1: absent)."""
    out: Headers = []
    cache_control = -1
    for k, v in headers:
        name = k.lower()
        if name not in VALIDATORS:
            if name == b"cache-control" and cache_control < 0:
                cache_control = len(out)
            out.append((k, v))
    return out, cache_control


def with_length(out: Headers, cache_control: int, length: int) -> Headers:
    """:func:`without_validators`' headers made those of a changed body of ``length`` bytes
    (changed in place): its Content-Length, and private (make_private, without another pass)."""
    out.append((b"content-length", str(length).encode("ascii")))
    if cache_control < 0:
        out.append((b"cache-control", b"private"))
    else:
        k, v = out[cache_control]
        out[cache_control] = (k, private_value(v))
    return out


#: A tuple, not a set: a name that is a bytearray (outside ASGI, but seen) still compares.
VALIDATORS = (b"content-length", b"etag", b"last-modified")
