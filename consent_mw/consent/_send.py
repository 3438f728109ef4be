"""The send wrappers of page responses: where a page is captured and its headers and body
change.

Classes rather than closures: one object per request instead of a function and a cell per
captured variable, which matters on a path every response takes. Whatever fails in here is
counted (``ConsentMiddleware.stats()``) and the response goes out as the app made it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from consent_mw.consent._inject import (
    ascii_safe,
    body_end,
    inject,
    injected_headers,
    make_private,
    response_info,
    wants_body,
)
from consent_mw.consent.incoming import Incoming
from consent_mw.state import RequestContext
from consent_mw.types import Message, Scope, Send

if TYPE_CHECKING:  # the middleware imports this module
    from consent_mw.consent.middleware import ConsentMiddleware


def capture_page(mw: ConsentMiddleware, ctx: RequestContext, scope: Scope, status: int,
                 header_bytes: int) -> None:
    """Queue the served page for capture; a failure is counted (``capture``), never raised.
    (SettledSend has this inline: it runs on every returning visitor's page.)"""
    if mw.capture is not None:
        try:
            mw.capture.page(ctx, scope, status, header_bytes)
        except Exception:
            mw._fail("capture")


def start_headers(message: Message) -> list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]:
    """The start message's headers, read once: any iterable is allowed, so one that is not a
    list or tuple is made a list, in the message too."""
    headers = message.get("headers") or ()
    if not isinstance(headers, (list, tuple)):
        headers = message["headers"] = list(headers)
    return headers


async def held_back() -> None:
    """What ``send`` returns for a message held back: a coroutine, as a server's own ``send``
    returns, so an app may also run it as a task."""


class SettledSend:
    """For a returning visitor with nothing to set (``Reading.settled``): capture the page
    and add ``Vary`` to HTML; no cookie, no body change.

    A plain method that returns the wrapped ``send``'s awaitable, so no coroutine of ours
    runs per message; the work is inline because every call here is paid on every page.
    """

    __slots__ = ("ctx", "header_bytes", "mw", "scope", "send")

    def __init__(self, mw: ConsentMiddleware, ctx: RequestContext, scope: Scope,
                 send: Send, header_bytes: int) -> None:
        self.mw = mw
        self.ctx = ctx
        self.scope = scope
        self.send = send
        self.header_bytes = header_bytes

    def __call__(self, message: Message) -> Awaitable[None]:
        if message["type"] != "http.response.start":
            return self.send(message)
        mw = self.mw
        capture = mw.capture
        if capture is not None:
            try:
                capture.page(self.ctx, self.scope, int(message.get("status", 200)),
                             self.header_bytes)
            except Exception:
                mw._fail("capture")
        try:
            headers = message.get("headers") or ()
            if not isinstance(headers, (list, tuple)):  # any iterable is allowed: read it once
                headers = message["headers"] = list(headers)
            vary = response_info(headers)[2]
            if vary is not None:
                message["headers"] = [*headers, (b"vary", vary)]
        except Exception:
            mw._fail("response_start")
        return self.send(message)


class SettledBeaconSend:
    """For a returning visitor who granted analytics, with the beacon on: what
    :class:`SettledSend` does, plus the beacon's script element, the same bytes on every page,
    before ``</body>`` of a complete HTML body. Nothing else about the visitor is read again,
    so such a page costs a little more than a settled one, not the full path."""

    __slots__ = ("ctx", "header_bytes", "held", "mw", "scope", "send", "tag")

    def __init__(self, mw: ConsentMiddleware, ctx: RequestContext, scope: Scope,
                 send: Send, header_bytes: int, tag: bytes) -> None:
        self.mw = mw
        self.ctx = ctx
        self.scope = scope
        self.send = send
        self.header_bytes = header_bytes
        self.tag = tag
        self.held: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if self._start(message):
                self.held = message
                return
            await self.send(message)
            return
        held, self.held = self.held, None
        if held is None:
            await self.send(message)
            return
        body = message.get("body", b"")
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            at = body_end(body)
            if at >= 0:
                body = body[:at] + self.tag + body[at:]
                held["headers"] = injected_headers(held["headers"], len(body))
                message = {**message, "body": body}
        await self.send(held)  # streamed, or no </body>: as the app made it
        await self.send(message)

    def _start(self, message: Message) -> bool:
        """Capture the page and add ``Vary``; whether its body is to be held for the tag."""
        mw = self.mw
        status = int(message.get("status", 200))
        capture_page(mw, self.ctx, self.scope, status, self.header_bytes)
        try:
            headers = start_headers(message)
            html, encoding, vary, content_type = response_info(headers)
            if vary is not None:
                message["headers"] = headers = [*headers, (b"vary", vary)]
            return (html and 200 <= status < 300 and status not in (204, 205)
                    and self.scope.get("method") != "HEAD"
                    and (not encoding or encoding.strip().lower() == b"identity")
                    and ascii_safe(content_type))
        except Exception:
            mw._fail("response_start")
            return False


class PageSend:
    """The send wrapper of any other page response: capture, cookies, ``Vary``, and the
    banner, tags or beacon when the response is a complete HTML body."""

    __slots__ = ("beacon", "ctx", "excluded", "header_bytes", "held", "incoming", "mw",
                 "passthrough", "scope", "send")

    def __init__(self, mw: ConsentMiddleware, ctx: RequestContext, incoming: Incoming,
                 scope: Scope, send: Send, header_bytes: int = -1, *,
                 excluded: bool) -> None:
        self.mw = mw
        self.header_bytes = header_bytes  # summed by the middleware's read: not again here
        self.ctx = ctx
        self.incoming = incoming
        self.scope = scope
        self.send = send
        self.excluded = excluded  # routed by the middleware, which remembers it per path
        self.held: Message | None = None
        self.passthrough = False
        self.beacon = ""  # the beacon's script element, when this page gets it

    def __call__(self, message: Message) -> Awaitable[None]:
        # A plain method returning the awaitable, as SettledSend: no coroutine of ours for a
        # message passed on as it is or held.
        kind = message["type"]
        if kind == "http.response.start":
            info = None if self.excluded else self._start(message)
            mw = self.mw
            if info is not None and mw.beacon_tag is not None and not (
                    self.ctx.state.granted_names.isdisjoint(mw._analytics)):
                self.beacon = mw.beacon_tag  # analytics granted: its interactions may count
            if (info is not None
                    and (mw._has_tags or self.beacon or not self.ctx.state.decided)
                    and wants_body(mw.settings, self.ctx, self.scope, message, info,
                                   beacon=bool(self.beacon))):
                self.held = message
                return held_back()
            return self.send(message)
        held = self.held
        if held is not None and not self.passthrough:
            self.held = None
            if kind == "http.response.body" and not message.get("more_body", False):
                return self._send_injected(held, message)
            # Streamed (or an extension message): leave it alone.
            self.passthrough = True
            return self._send_both(held, message)
        return self.send(message)

    async def _send_both(self, first: Message, second: Message) -> None:
        await self.send(first)
        await self.send(second)

    def _start(self, message: Message) -> tuple[bool, bytes | None] | None:
        """Capture the page and add cookies and ``Vary``; the response's headers, as read
        (None when they cannot be read: the response then passes as it is)."""
        mw, ctx, incoming = self.mw, self.ctx, self.incoming
        capture_page(mw, ctx, self.scope, int(message.get("status", 200)), self.header_bytes)
        try:
            headers = start_headers(message)
            html, encoding, vary, _ = response_info(headers)
        except Exception:  # headers that are not (name, value) pairs: leave them to the server
            mw._fail("response_start")
            return None
        try:
            identity = mw.identity
            reading = incoming.reading
            state = ctx.state
            if incoming.forget:
                cookies = identity.forget_cookies(ctx, incoming, self.scope, component="api")
            elif (reading.ids_settled or reading.fresh) and state is reading.state:
                # Ids present and the session cookie recently set, or no cookie at all.
                cookies = None
            else:
                cookies = identity.id_cookies(ctx, incoming)
            if not incoming.forget and (state.gpc_applied or incoming.new_visitor):
                cookies = (cookies or []) + identity.resign_cookie(ctx, incoming, self.scope)
            # Whether a banner or tags appear depends on these request headers: ``vary``.
            if not cookies:
                if vary:
                    message["headers"] = [*headers, (b"vary", vary)]
                return html, encoding
            headers = list(headers)
            headers.extend((b"set-cookie", c.encode("latin-1")) for c in cookies)
            # A shared cache must never store (and replay) one visitor's ids.
            make_private(headers)
            if vary:
                headers.append((b"vary", vary))
            message["headers"] = headers
        except Exception:
            mw._fail("response_start")
        return html, encoding

    async def _send_injected(self, start: Message, message: Message) -> None:
        body: bytes = message.get("body", b"")
        try:
            new_body = inject(self.mw.settings, self.ctx, self.incoming, self.scope, start,
                              body, beacon=self.beacon)
            if new_body is not None:
                start["headers"] = injected_headers(start["headers"], len(new_body))
                message = {**message, "body": new_body}
        except Exception:
            self.mw._fail("inject")
        await self.send(start)
        await self.send(message)
