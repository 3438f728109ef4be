"""``ConsentMiddleware``: pure ASGI; reads consent, gates capture and tags, injects the banner.

Everything that depends only on the settings is built once in ``__init__``. Response headers
and bodies change only inside the send wrapper, and only for responses that need it: streamed,
compressed, HEAD, 304 and non-HTML responses pass through untouched.
"""

from __future__ import annotations

import codecs
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import anyio.to_thread

from consent_mw import i18n
from consent_mw.banner import render_banner, return_target
from consent_mw.capture import Capture
from consent_mw.consent import (
    analytics_granted,
    apply_gpc,
    gpc_from_headers,
    undecided,
)
from consent_mw.cookies import (
    SHOWN_MAX_AGE,
    CookieCodec,
    StoredConsent,
    expire_cookie,
    parse_cookie_header,
    remaining_max_age,
    set_cookie,
    single,
    valid_session_id,
    valid_visitor_id,
)
from consent_mw.ids import new_consent_id, new_session_id, new_visitor_id
from consent_mw.records import MemorySink, RecordSink, build_record
from consent_mw.self_service import SelfService
from consent_mw.settings import Settings
from consent_mw.state import SCOPE_KEY, ConsentState, RequestContext
from consent_mw.tags import render_tags

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("consent_mw")

GPC_JSON_PATH = "/.well-known/gpc.json"


@dataclass(slots=True)
class Incoming:
    """What the middleware read from one request (headers parsed once)."""

    headers: dict[bytes, list[bytes]]
    cookies: dict[str, list[str]]
    stored: StoredConsent | None
    gpc: bool
    visitor_cookie: str | None
    session_cookie: str | None
    shown_cid: str | None
    secure: bool
    new_visitor: bool = False
    set_cookies: list[str] = field(default_factory=list)

    def header(self, name: bytes) -> str | None:
        values = self.headers.get(name)
        return values[0].decode("latin-1") if values else None


def _headers(scope: Scope) -> dict[bytes, list[bytes]]:
    result: dict[bytes, list[bytes]] = {}
    for key, value in scope.get("headers", ()):
        result.setdefault(bytes(key).lower(), []).append(bytes(value))
    return result


def _add_vary(headers: list[tuple[bytes, bytes]]) -> None:
    existing = [v for k, v in headers if k.lower() == b"vary"]
    have = {p.strip().lower() for v in existing for p in v.split(b",")}
    if b"*" in have:
        return
    missing = [n for n in (b"Cookie", b"Sec-GPC") if n.lower() not in have]
    if missing:
        headers.append((b"vary", b", ".join(missing)))


def _make_private(headers: list[tuple[bytes, bytes]]) -> None:
    """A shared cache must not hand one visitor's banner or tags to another."""
    for i, (k, v) in enumerate(headers):
        if k.lower() == b"cache-control":
            low = v.lower()
            if b"private" in low or b"no-store" in low:
                return
            parts = [p.strip() for p in v.split(b",") if p.strip()]
            kept = [p for p in parts
                    if p.lower() != b"public" and not p.lower().startswith(b"s-maxage")]
            headers[i] = (k, b", ".join([b"private", *kept]))
            return
    headers.append((b"cache-control", b"private"))


def _header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _charset(content_type: bytes) -> str:
    for part in content_type.split(b";")[1:]:
        key, _, value = part.strip().partition(b"=")
        if key.lower() == b"charset":
            name = value.strip(b" \"'").decode("latin-1")
            try:
                return codecs.lookup(name).name
            except LookupError:
                return "utf-8"
    return "utf-8"


class ConsentMiddleware:
    """Consent layer around any ASGI app (Starlette, FastAPI, ...).

    ``record_sink`` receives consent records; by default the capture pipeline when there is
    one, else an in-memory :class:`~consent_mw.records.MemorySink` (``self.records``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        transport: Any = None,
        record_sink: RecordSink | None = None,
        self_service: SelfService | None = None,
    ) -> None:
        from consent_mw.endpoints import Endpoints  # endpoints reads back this class

        self.app = app
        self.settings = settings if settings is not None else Settings.from_env()
        s = self.settings
        self.codec = CookieCodec(s)
        self.capture: Capture | None = None
        if s.capture and (transport is not None or s.collector_url):
            self.capture = Capture(s, transport=transport)
        self.records: RecordSink = (
            record_sink if record_sink is not None else (self.capture or MemorySink())
        )
        self.self_service = self_service if self_service is not None else SelfService(s)
        self.errors: Counter[str] = Counter()
        self.endpoints = Endpoints(self)
        self._prefix_slash = s.prefix + "/"
        self._exclude = tuple(p.rstrip("/") for p in s.exclude_paths if p.strip("/"))
        self._injects = s.banner or bool(s.tags)

    # ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan" and self.capture is not None:
            await self.app(scope, self._lifespan_receive(receive), send)
        else:
            await self.app(scope, receive, send)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        capture = self.capture
        assert capture is not None

        async def wrapped() -> Message:
            message = await receive()
            try:
                if message["type"] == "lifespan.startup":
                    capture.start()
                elif message["type"] == "lifespan.shutdown":
                    # Flushing may block up to its timeout: keep the event loop free.
                    await anyio.to_thread.run_sync(capture.shutdown)
            except Exception:
                self._fail("lifespan")
            return message

        return wrapped

    def _fail(self, where: str) -> None:
        self.errors[where] += 1
        log.exception("consent_mw: %s failed; the response is served regardless", where)

    def write_record(self, record: dict[str, Any]) -> None:
        try:
            self.records.write(record)
        except Exception:
            self._fail("record_sink")

    def excluded(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self._exclude)

    # ------------------------------------------------------------------------------------
    def read_request(self, scope: Scope) -> tuple[Incoming, RequestContext]:
        """Parse the request's consent inputs into an :class:`Incoming` and a context."""
        s = self.settings
        headers = _headers(scope)
        cookies = parse_cookie_header(headers.get(b"cookie", []))
        stored = self.codec.load_consent(single(cookies, s.consent_cookie))
        gpc = gpc_from_headers(headers.get(b"sec-gpc", []))
        incoming = Incoming(
            headers=headers,
            cookies=cookies,
            stored=stored,
            gpc=gpc,
            visitor_cookie=valid_visitor_id(single(cookies, s.visitor_cookie)),
            session_cookie=valid_session_id(single(cookies, s.session_cookie)),
            shown_cid=None if stored else self.codec.load_shown(
                single(cookies, s.consent_cookie + "_shown")),
            secure=scope.get("scheme") in ("https", "wss"),
        )
        state = apply_gpc(stored.state if stored else undecided(s), s, gpc)
        ctx = RequestContext(
            settings=s,
            state=state,
            locale=i18n.choose_locale(s, accept_language=incoming.header(b"accept-language")
                                      or ""),
            capture=self.capture,
        )
        self.assign_ids(ctx, incoming)
        return incoming, ctx

    def assign_ids(self, ctx: RequestContext, incoming: Incoming) -> None:
        """Visitor and session ids exist only while analytics is granted."""
        if analytics_granted(ctx.state, self.settings):
            ctx.visitor_id = incoming.visitor_cookie or new_visitor_id()
            incoming.new_visitor = incoming.visitor_cookie is None
            ctx.session_id = incoming.session_cookie or new_session_id()
        else:
            ctx.visitor_id = None
            ctx.session_id = None
            incoming.new_visitor = False

    def id_cookies(self, ctx: RequestContext, incoming: Incoming, *,
                   withdrawing: bool = False) -> list[str]:
        """Set-Cookie values for the visitor/session ids after this response.

        The visitor cookie is set once, when first granted, and never extended; the session
        cookie slides. Without analytics both are expired if the browser still has them.
        """
        s = self.settings
        out: list[str] = []
        if ctx.visitor_id:
            if incoming.new_visitor:
                out.append(set_cookie(s.visitor_cookie, ctx.visitor_id,
                                      max_age=s.visitor_max_age, secure=incoming.secure))
            if ctx.session_id:
                out.append(set_cookie(s.session_cookie, ctx.session_id,
                                      max_age=s.session_timeout, secure=incoming.secure))
        else:
            if withdrawing or s.visitor_cookie in incoming.cookies:
                out.append(expire_cookie(s.visitor_cookie, secure=incoming.secure))
            if withdrawing or s.session_cookie in incoming.cookies:
                out.append(expire_cookie(s.session_cookie, secure=incoming.secure))
        return out

    def record(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
               state: ConsentState, *, event: str, method: str, component: str,
               previous_record_id: str | None = None) -> dict[str, Any]:
        rec = build_record(
            self.settings, state, event=event, method=method, component=component,
            locale=ctx.locale, host=incoming.header(b"host"), path=scope.get("path"),
            user_agent=incoming.header(b"user-agent") or "",
            visitor_id=ctx.visitor_id, previous_record_id=previous_record_id,
        )
        self.write_record(rec)
        return rec

    def gpc_cookie(self, ctx: RequestContext, incoming: Incoming, scope: Scope) -> list[str]:
        """Record ``gpc_applied`` once per consent id and policy version, not per request:
        the cookie remembers it was recorded (re-signed without extending its lifetime)."""
        stored = incoming.stored
        if stored is None or not ctx.state.gpc_applied or stored.gpc_recorded:
            return []
        rec = self.record(ctx, incoming, scope, ctx.state, event="gpc_applied", method="gpc",
                          component="api", previous_record_id=stored.record_id)
        value = self.codec.dump_consent(stored.state, gpc_recorded=True,
                                        record_id=rec["record_id"])
        return [set_cookie(self.settings.consent_cookie, value,
                           max_age=remaining_max_age(stored, self.settings),
                           secure=incoming.secure)]

    # ------------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            incoming, ctx = self.read_request(scope)
        except Exception:
            # Bad input must never cost the visitor the page: fall back to "undecided".
            self._fail("read_request")
            incoming = Incoming(headers={}, cookies={}, stored=None, gpc=False,
                                visitor_cookie=None, session_cookie=None, shown_cid=None,
                                secure=scope.get("scheme") == "https")
            ctx = RequestContext(settings=self.settings, state=undecided(self.settings),
                                 locale=self.settings.default_locale, capture=self.capture)
        scope[SCOPE_KEY] = ctx
        path: str = scope.get("path", "")
        if path == GPC_JSON_PATH:
            await self.endpoints.gpc_json(scope, send)
            return
        if path == self.settings.prefix or path.startswith(self._prefix_slash):
            await self.endpoints.handle(ctx, incoming, scope, receive, send)
            return
        await self.app(scope, receive, self._page_send(ctx, incoming, scope, send))

    def _page_send(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                   send: Send) -> Send:
        excluded = self.excluded(scope.get("path", ""))
        held: Message | None = None
        passthrough = False

        async def wrapper(message: Message) -> None:
            nonlocal held, passthrough
            kind = message["type"]
            if kind == "http.response.start":
                self._on_start(ctx, incoming, scope, message, excluded)
                if not excluded and self._wants_body(ctx, scope, message):
                    held = message
                    return
                await send(message)
                return
            if held is not None and not passthrough:
                start, held = held, None
                if kind == "http.response.body" and not message.get("more_body", False):
                    await self._send_injected(ctx, incoming, scope, start, message, send)
                    return
                # Streamed (or an extension message): leave it alone.
                passthrough = True
                await send(start)
            await send(message)

        return wrapper

    def _on_start(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                  message: Message, excluded: bool) -> None:
        status = int(message.get("status", 200))
        if excluded:
            return
        if self.capture is not None:
            try:
                self.capture.page(ctx, scope, status)
            except Exception:
                self._fail("capture.page")
        try:
            headers = list(message.get("headers", ()))
            cookies = self.id_cookies(ctx, incoming) + self.gpc_cookie(ctx, incoming, scope)
            headers.extend((b"set-cookie", c.encode("latin-1")) for c in cookies)
            if cookies:
                # A shared cache must never store (and replay) one visitor's ids.
                _make_private(headers)
            ctype = _header_value(headers, b"content-type") or b""
            if ctype.lower().startswith(b"text/html"):
                # Whether a banner or tags appear depends on these request headers.
                _add_vary(headers)
            message["headers"] = headers
        except Exception:
            self._fail("response_start")

    def _wants_body(self, ctx: RequestContext, scope: Scope, message: Message) -> bool:
        if not self._injects or scope.get("method") == "HEAD":
            return False
        status = int(message.get("status", 200))
        if status < 200 or status in (204, 205, 304):
            return False
        headers = message.get("headers", [])
        ctype = (_header_value(headers, b"content-type") or b"").lower()
        if not ctype.startswith(b"text/html"):
            return False
        encoding = _header_value(headers, b"content-encoding")
        if encoding and encoding.strip().lower() != b"identity":
            return False
        if ctx.state.decided:
            return bool(self.settings.tags)
        return self.settings.banner

    async def _send_injected(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                             start: Message, message: Message, send: Send) -> None:
        body: bytes = message.get("body", b"")
        try:
            new_body = self._inject(ctx, incoming, scope, start, body)
        except Exception:
            self._fail("inject")
            new_body = None
        if new_body is not None:
            # Validators describe the app's body, not ours: a 304 on revalidation would
            # otherwise bring back a cached banner after the visitor decided.
            dropped = (b"content-length", b"etag", b"last-modified")
            headers = [(k, v) for k, v in start["headers"] if k.lower() not in dropped]
            headers.append((b"content-length", str(len(new_body)).encode("ascii")))
            _make_private(headers)
            start["headers"] = headers
            message = {**message, "body": new_body}
        await send(start)
        await send(message)

    def _inject(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                start: Message, body: bytes) -> bytes | None:
        """The body with tags and banner before the last ``</body>``; None to leave it."""
        at = body.lower().rfind(b"</body")
        if at < 0:
            return None
        s = self.settings
        lang = i18n.from_html(body)
        ctx.locale = i18n.choose_locale(
            s, html_lang=lang, accept_language=incoming.header(b"accept-language") or "")
        snippet = render_tags(s, ctx.state) if ctx.state.decided else ""
        if not ctx.state.decided and s.banner:
            snippet += render_banner(
                s, ctx.locale, return_target(scope.get("path", "/"),
                                             scope.get("query_string", b"")))
            self._shown(ctx, incoming, scope, start)
        if not snippet:
            return None
        charset = _charset(_header_value(start["headers"], b"content-type") or b"")
        encoded = snippet.encode(charset, errors="xmlcharrefreplace")
        return body[:at] + encoded + body[at:]

    def _shown(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
               start: Message) -> None:
        """A ``shown`` record at most once per consent-less visitor per 30 minutes.

        A short-lived signed cookie (strictly necessary: it is part of asking) carries the
        consent id of that record, so the later decision is linked to what was shown.
        """
        if incoming.shown_cid is not None:
            return
        cid = new_consent_id()
        state = replace(ctx.state, consent_id=cid)
        self.record(ctx, incoming, scope, state, event="shown", method="none",
                    component="banner")
        start["headers"] = [*start["headers"], (b"set-cookie", set_cookie(
            self.settings.consent_cookie + "_shown", self.codec.dump_shown(cid),
            max_age=SHOWN_MAX_AGE, secure=incoming.secure).encode("latin-1"))]
