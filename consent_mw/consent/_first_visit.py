"""The send wrapper of a first visit's page: capture it, add ``Vary``, put the banner in.

A first visit (``Reading.fresh``, undecided) is every visitor's first page and the page of
everyone who never decides, so it has a path of its own, as a returning visitor has
(``_send.SettledSend``): nothing to set, expire or re-sign, no tags, no beacon, only the
banner. It applies the same rules as :class:`~consent_mw.consent._send.PageSend` (which
responses can change, where the banner goes, what the changed response's headers say) from
one read of the response's headers instead of three: what ``response_info`` reads and what
``injected_headers`` keeps, in the same loop.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from consent_mw.consent._inject import (
    HTML_TYPE,
    VALIDATORS,
    VARY,
    body_end,
    changeable,
    inject_at,
    missing_vary,
    with_length,
)
from consent_mw.consent._send import capture_page, held_back, start_headers
from consent_mw.state import RequestContext
from consent_mw.types import Headers, Message, Scope, Send

if TYPE_CHECKING:  # the middleware imports this module
    from consent_mw.consent.middleware import ConsentMiddleware


class FirstVisitSend:
    """For an undecided visitor with no cookie of ours to set or expire, on a site without
    tags: capture the page, add ``Vary`` to HTML, and the banner before ``</body>`` of a
    complete, uncompressed HTML body. Whatever fails is counted and the response goes out as
    the app made it."""

    __slots__ = ("cache_control", "changed", "content_type", "ctx", "header_bytes", "held",
                 "locale", "mw", "scope", "send")

    def __init__(self, mw: ConsentMiddleware, ctx: RequestContext, locale: str, scope: Scope,
                 send: Send, header_bytes: int) -> None:
        self.mw = mw
        self.ctx = ctx
        self.locale = locale  # the reading's, from Accept-Language: the banner's fallback
        self.scope = scope
        self.send = send
        self.header_bytes = header_bytes
        self.held: Message | None = None
        self.content_type = b""
        self.changed: Headers = []  # the headers of a changed body, but its length
        self.cache_control = -1  # where Cache-Control is among them

    def __call__(self, message: Message) -> Awaitable[None]:
        # A plain method returning the awaitable, as PageSend: no coroutine of ours for a
        # message passed on as it is.
        kind = message["type"]
        if kind == "http.response.start":
            if self._start(message):
                self.held = message
                return held_back()
            return self.send(message)
        held = self.held
        if held is not None:
            self.held = None  # what follows goes straight on
            if kind == "http.response.body" and not message.get("more_body", False):
                return self._send_with_banner(held, message)
            return self._send_both(held, message)  # streamed, or an extension message
        return self.send(message)

    def _start(self, message: Message) -> bool:
        """Capture the page and add ``Vary``; whether its body is to be held for the banner."""
        mw = self.mw
        status = int(message.get("status", 200))
        capture_page(mw, self.ctx, self.scope, status, self.header_bytes)
        try:
            headers = start_headers(message)
            html: bool | None = None
            encoding: bytes | None = None
            vary: list[bytes] | None = None
            changed: Headers = []
            cache_control = -1
            for k, v in headers:  # response_info and without_validators, in one pass
                name = k.lower()
                if name == b"content-type":
                    if html is None:
                        html = v.lower().startswith(HTML_TYPE)
                        self.content_type = v
                elif name == b"content-encoding":
                    if encoding is None:
                        encoding = v
                elif name == b"vary":
                    vary = [v] if vary is None else [*vary, v]
                elif name == b"cache-control" and cache_control < 0:
                    cache_control = len(changed)
                if name not in VALIDATORS:
                    changed.append((k, v))
            if not html:
                return False
            add = VARY if vary is None else missing_vary(vary)
            if add is not None:
                message["headers"] = [*headers, (b"vary", add)]
                changed.append((b"vary", add))
            if self.scope.get("method") == "HEAD" or not changeable(status, encoding):
                return False
            self.changed, self.cache_control = changed, cache_control
            return True
        except Exception:
            mw._fail("response_start")
            return False

    async def _send_both(self, first: Message, second: Message) -> None:
        await self.send(first)
        await self.send(second)

    async def _send_with_banner(self, start: Message, message: Message) -> None:
        body: bytes = message.get("body", b"")
        try:
            new_body = inject_at(self.mw.settings, self.ctx, self.scope, body, body_end(body),
                                 locale=self.locale, content_type=self.content_type)
            if new_body is not None:
                start["headers"] = with_length(self.changed, self.cache_control, len(new_body))
                message = {**message, "body": new_body}
        except Exception:
            self.mw._fail("inject")
        await self.send(start)
        await self.send(message)
