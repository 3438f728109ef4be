"""The first-layer banner: injected into HTML pages of visitors who have not decided yet."""

from __future__ import annotations

import re
from html import escape
from urllib.parse import quote

from consent_mw.bounded import BoundedCache
from consent_mw.consent.decision import gpc_categories
from consent_mw.consent.i18n import t
from consent_mw.settings import Settings


def safe_return(target: str | None, default: str = "/") -> str:
    """A same-site relative path to send the visitor back to, or ``default``.

    Only ``/path`` forms are accepted: no scheme, no ``//host``, no backslashes or control
    characters, so the redirect after a form post can never leave the site.
    """
    if not target or len(target) > 2048 or not target.startswith("/"):
        return default
    if target.startswith(("//", "/\\")) or "\\" in target:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    return target


#: A path ``quote`` would leave as it is (the common case: no need to call it).
_PLAIN_PATH = re.compile(r"/[0-9A-Za-z/%:@!$&'()*+,;=._~-]*")


def return_target(path: str, query: bytes) -> str:
    """The current page as a relative path (with its query) for the banner form."""
    plain = _PLAIN_PATH.fullmatch(path) is not None
    target = path if plain else quote(path, safe="/%:@!$&'()*+,;=-._~")
    if query:
        target += "?" + query.decode("latin-1")
    return safe_return(target)


def render_banner(settings: Settings, locale: str, return_to: str, *, gpc: bool = False
                  ) -> str:
    """Banner markup: no inline script or style, so a strict CSP still works.

    "Reject all" and "Accept all" are the same element with the same class: equally prominent.
    Without JavaScript the form posts to ``{prefix}`` and is redirected back (303).

    Everything but the return path depends on the settings and the locale only: rendered once
    per pair (a new visitor's first page would otherwise escape a dozen strings).
    """
    head, middle, tail = _parts(settings, locale, gpc)
    return head + escape(return_to, quote=True) + middle + quote(return_to) + tail


#: Encoded banners of pages without a query string and with a path of at most this many
#: characters: a new visitor's page would otherwise render, quote, escape and encode ~1.3 KB
#: per request. A query is left out: first visits from ads each carry their own click id,
#: so such pages would rarely be asked for twice, and their ids would sit in memory.
MAX_CACHED_PATH = 512
#: Paths come from visitors: the cache is bounded in entries and in bytes (what a path of
#: non-ASCII characters grows to, escaped and quoted, is charged as it is).
_BYTES: BoundedCache[tuple[int, str, str, str, bool], tuple[Settings, bytes]] = BoundedCache(
    max_entries=1024, max_bytes=2 * 1024 * 1024)


def banner_bytes(settings: Settings, locale: str, path: str, query: bytes,
                 encoding: str, *, gpc: bool = False) -> bytes:
    """:func:`render_banner` for the page at ``path`` and ``query``, encoded in the page's
    charset (characters it lacks as character references); remembered per page, locale,
    charset and GPC signal for pages without a query (see :data:`MAX_CACHED_PATH`)."""
    key = (id(settings), locale, path, encoding, gpc)
    entry = _BYTES.get(key) if not query else None
    if entry is not None and entry[0] is settings:
        return entry[1]
    data = render_banner(settings, locale, return_target(path, query), gpc=gpc).encode(
        encoding, errors="xmlcharrefreplace")
    if not query and len(path) <= MAX_CACHED_PATH:
        _BYTES.put(key, (settings, data), len(data) + 4 * len(path) + len(locale) + len(encoding))
    return data


_PARTS: dict[tuple[int, str, bool], tuple[Settings, tuple[str, str, str]]] = {}
_PARTS_MAX = 64  # locales are few and configured: a bound, not an expected size


def _parts(settings: Settings, locale: str, gpc: bool) -> tuple[str, str, str]:
    """The banner around its two return-path slots, cached per Settings, locale and GPC."""
    entry = _PARTS.get((id(settings), locale, gpc))
    if entry is not None and entry[0] is settings:
        return entry[1]
    p = escape(settings.prefix, quote=True)
    lang = escape(locale, quote=True)
    parts = (
        f'<link rel="stylesheet" href="{p}/static/banner.css">'
        f'<div id="cmw-banner" class="cmw-banner" role="dialog" aria-modal="false" '
        f'aria-labelledby="cmw-banner-title" aria-describedby="cmw-banner-text" '
        f'tabindex="-1" lang="{lang}" data-cmw-endpoint="{p}">'
        f'<h2 id="cmw-banner-title" class="cmw-title">{escape(t(locale, "banner_title"))}</h2>'
        f'<p id="cmw-banner-text" class="cmw-text">{escape(t(locale, "banner_text"))} '
        f'<a class="cmw-link" href="{p}/external-transmission">'
        f'{escape(t(locale, "external_link"))}</a></p>'
        # The browser's GPC signal changes what "accept all" grants: say so before the tap
        # (on a site with a category GPC refuses: elsewhere it changes nothing).
        + (f'<p class="cmw-text cmw-gpc">{escape(t(locale, "gpc_banner"))}</p>'
           if gpc and gpc_categories(settings) else "")
        + f'<form class="cmw-actions" method="post" action="{p}">'
        f'<input type="hidden" name="return" value="',
        f'">'
        f'<input type="hidden" name="locale" value="{lang}">'
        f'<button type="submit" class="cmw-button" name="action" value="reject_all">'
        f'{escape(t(locale, "reject_all"))}</button>'
        f'<button type="submit" class="cmw-button" name="action" value="accept_all">'
        f'{escape(t(locale, "accept_all"))}</button>'
        f'<a class="cmw-link cmw-settings" href="{p}/preferences?return=',
        f'">'
        f'{escape(t(locale, "settings"))}</a>'
        f"</form></div>"
        f'<script src="{p}/static/banner.js" defer></script>',
    )
    if len(_PARTS) >= _PARTS_MAX:
        _PARTS.clear()
    _PARTS[(id(settings), locale, gpc)] = (settings, parts)
    return parts
