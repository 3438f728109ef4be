"""``ConsentMiddleware``: pure ASGI; reads consent, gates capture and tags, injects the banner.

Everything that depends only on the settings is built once in ``__init__``. Response headers
and bodies change only inside the send wrapper, and only for responses that need it: streamed,
compressed, HEAD, 304 and non-HTML responses pass through untouched.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import anyio.to_thread

from consent_mw.capture.pipeline import Capture
from consent_mw.capture.transport import Transport
from consent_mw.consent import i18n
from consent_mw.consent.banner import render_banner, return_target
from consent_mw.consent.cookies import (
    CookieCodec,
    StoredConsent,
    expire_cookie,
    remaining_max_age,
    set_cookie,
)
from consent_mw.consent.decision import analytics_gate, decide, undecided
from consent_mw.consent.reading import SESSION_SLIDE, Reader, Reading
from consent_mw.consent.records import MemorySink, RecordSink, build_record
from consent_mw.consent.self_service import SelfService
from consent_mw.consent.tags import render_tags
from consent_mw.ids import new_consent_id, new_session_id, new_visitor_id
from consent_mw.settings import PathExclusions, Settings
from consent_mw.state import SCOPE_KEY, ConsentState, RequestContext

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

GPC_JSON_PATH = "/.well-known/gpc.json"
#: How the settled path routes a path: a page to capture, an excluded path, our endpoint.
_ROUTE_PAGE, _ROUTE_EXCLUDED, _ROUTE_OURS = 0, 1, 2
MAX_ROUTES = 4096
MAX_ROUTED_PATH = 512


class Incoming:
    """What the middleware read from one request: the shared :class:`Reading` of its consent
    inputs, plus per-request flags. Other headers are decoded only when asked for."""

    __slots__ = (
        "_headers",
        "forget",
        "new_session",
        "new_visitor",
        "raw_headers",
        "reading",
        "rebound",
        "secure",
    )

    def __init__(self, raw_headers: Any, reading: Reading, *, secure: bool) -> None:
        self.raw_headers = raw_headers
        self.reading = reading
        self.secure = secure
        self.new_visitor = False
        self.new_session = False
        #: The browser carries the ids of a purged person: reset it on this response.
        self.forget = False
        #: A new consent id for a stored decision that gets a new visitor id here.
        self.rebound: str | None = None
        self._headers: dict[bytes, list[bytes]] | None = None

    @property
    def headers(self) -> dict[bytes, list[bytes]]:
        if self._headers is None:
            result: dict[bytes, list[bytes]] = {}
            for key, value in self.raw_headers:
                result.setdefault(bytes(key).lower(), []).append(bytes(value))
            self._headers = result
        return self._headers

    def header(self, name: bytes) -> str | None:
        values = self.headers.get(name)
        return values[0].decode("latin-1") if values else None

    # The reading, under the names the endpoints use.
    @property
    def cookies(self) -> Mapping[str, list[str]]:
        return self.reading.cookies

    @property
    def stored(self) -> StoredConsent | None:
        return self.reading.stored

    @property
    def gpc(self) -> bool:
        return self.reading.gpc

    @property
    def visitor_id(self) -> str | None:
        return self.reading.visitor_id

    @property
    def session_id(self) -> str | None:
        return self.reading.session_id

    @property
    def shown_cid(self) -> str | None:
        return self.reading.shown_cid

    @property
    def owned(self) -> bool:
        """Whether the stored decision is provably this browser's: its signed cookie binds
        the visitor id this request carries. Only then does its consent id carry on; any
        other stored decision (one without analytics, so without an id to bind, or a cookie
        copied from elsewhere) continues under a new consent id when it is recorded again."""
        return self.reading.stored is not None and self.reading.visitor_id is not None


def _response_info(headers: Any) -> tuple[bool, bytes | None, bytes | None]:
    """(is HTML, Content-Encoding, the ``Vary`` value to add) of response headers, in one
    pass. Only HTML gets a banner or tags, so only HTML needs ``Vary``; None when the
    response is not HTML or already names both headers."""
    html: bool | None = None
    encoding: bytes | None = None
    vary: list[bytes] | None = None
    for key, value in headers:
        name = key.lower()
        if name == b"content-type":
            if html is None:
                html = value.lower().startswith(b"text/html")
        elif name == b"content-encoding":
            if encoding is None:
                encoding = value
        elif name == b"vary":
            vary = [value] if vary is None else [*vary, value]
    if not html:
        return False, encoding, None
    return True, encoding, _VARY if vary is None else _missing_vary(vary)


_VARY = b"Cookie, Sec-GPC"


def _missing_vary(existing: list[bytes] | None) -> bytes | None:
    """A ``Vary`` value naming what the middleware's output depends on and is not yet named."""
    if not existing:
        return _VARY
    have = {p.strip().lower() for v in existing for p in v.split(b",")}
    if b"*" in have:
        return None
    missing = [n for n in (b"Cookie", b"Sec-GPC") if n.lower() not in have]
    return b", ".join(missing) if missing else None


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


_CHARSETS: dict[bytes, str] = {}


def _charset(content_type: bytes) -> str:
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


class _PageSend:
    """The send wrapper of one page response.

    A class rather than a closure: one object per request instead of a function and a cell
    per captured variable, which matters on a path every response takes.
    """

    __slots__ = ("ctx", "excluded", "held", "incoming", "mw", "passthrough", "scope", "send")

    def __init__(self, mw: ConsentMiddleware, ctx: RequestContext, incoming: Incoming,
                 scope: Scope, send: Send) -> None:
        self.mw = mw
        self.ctx = ctx
        self.incoming = incoming
        self.scope = scope
        self.send = send
        self.excluded = mw.excluded(scope.get("path", ""))
        self.held: Message | None = None
        self.passthrough = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            mw = self.mw
            ctx = self.ctx
            info = mw._on_start(ctx, self.incoming, self.scope, message, self.excluded)
            if (info is not None and (mw._has_tags or not ctx.state.decided)
                    and mw._wants_body(ctx, self.scope, message, info)):
                self.held = message
                return
            await self.send(message)
            return
        held = self.held
        if held is not None and not self.passthrough:
            self.held = None
            if kind == "http.response.body" and not message.get("more_body", False):
                await self.mw._send_injected(self.ctx, self.incoming, self.scope, held,
                                             message, self.send)
                return
            # Streamed (or an extension message): leave it alone.
            self.passthrough = True
            await self.send(held)
        await self.send(message)


class _SettledSend:
    """The send wrapper for a returning visitor with nothing to set (``Reading.settled``):
    capture the page and add ``Vary`` to HTML; no cookie, no body change.

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
            ctx = self.ctx
            try:
                capture.page(ctx, self.scope, int(message.get("status", 200)),
                             self.header_bytes)
            except Exception:
                mw._fail("capture.page")
        try:
            headers = message.get("headers") or ()
            if not isinstance(headers, (list, tuple)):  # any iterable is allowed: read it once
                headers = message["headers"] = list(headers)
            vary = _response_info(headers)[2]
            if vary is not None:
                message["headers"] = [*headers, (b"vary", vary)]
        except Exception:
            mw._fail("response_start")
        return self.send(message)


class ConsentMiddleware:
    """Consent layer around any ASGI app (Starlette, FastAPI, ...).

    ``record_sink`` receives consent records; by default the capture pipeline when there is
    one, else an in-memory :class:`~consent_mw.consent.records.MemorySink` (``self.records``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        transport: Transport | None = None,
        record_sink: RecordSink | None = None,
        self_service: SelfService | None = None,
    ) -> None:
        from consent_mw.consent.endpoints import Endpoints  # endpoints reads back this class

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
        # Whose purge was asked for: their browsers are reset when they come back.
        self._suppressions = self.capture.suppressions if self.capture is not None else None
        self.self_service = self_service if self_service is not None else SelfService(s)
        self.errors: Counter[str] = Counter()
        self.endpoints = Endpoints(self)
        self.reader = Reader(s, self.codec)
        self._read_sized = self.reader.read_sized
        self._has_tags = bool(s.tags)
        self._analytics_gate = analytics_gate(s)
        self._prefix_slash = s.prefix + "/"
        self._excluded = PathExclusions(s.exclude_paths)
        self._injects = s.banner or bool(s.tags)
        # Off with tags (they go into every decided visitor's page); tests turn it off to
        # compare the two paths.
        self._settled_path = not s.tags
        # The settled path's routing of a path (a page, excluded, or ours), kept per path:
        # a site has few, and one lookup beats four prefix tests on every request.
        self._routes: dict[str, int] = {}

    # ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)  # a plain call returning the awaitable
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
        return path in self._excluded

    def _route(self, path: str) -> int:
        """Where the settled path sends ``path``, remembered (bounded: paths come from
        visitors, so the map is emptied when full)."""
        if path == self.settings.prefix or path.startswith((self._prefix_slash, GPC_JSON_PATH)):
            route = _ROUTE_OURS
        elif path in self._excluded:
            route = _ROUTE_EXCLUDED
        else:
            route = _ROUTE_PAGE
        if len(path) <= MAX_ROUTED_PATH:  # so the map holds at most ~2 MiB of paths
            if len(self._routes) >= MAX_ROUTES:
                self._routes.clear()
            self._routes[path] = route
        return route

    # ------------------------------------------------------------------------------------
    def read_request(self, scope: Scope, reading: Reading | None = None, *,
                     forget: bool = False) -> tuple[Incoming, RequestContext]:
        """Parse the request's consent inputs (unless ``reading`` has them already) into an
        :class:`Incoming` and a context. ``forget``: the browser belongs to a purged person
        and is treated as having withdrawn (see :meth:`forget_cookies`)."""
        if reading is None:
            reading = self.reader.read_headers(scope.get("headers") or ())
        incoming = Incoming(scope.get("headers") or (), reading,
                            secure=scope.get("scheme") in ("https", "wss"))
        state = reading.state
        if forget:
            state = self.forgotten_state()
            incoming.forget = True
        ctx = RequestContext(settings=self.settings, state=state,
                             locale=reading.locale, capture=self.capture)
        self.assign_ids(ctx, incoming)
        return incoming, ctx

    def is_forgotten(self, reading: Reading) -> bool:
        """Whether this browser still carries the visitor or consent id of a purged person.

        Costs one attribute read while nobody's purge was asked for.
        """
        suppressions = self._suppressions
        if suppressions is None or not suppressions.has_purged:
            return False
        stored = reading.stored
        return suppressions.is_purged(
            visitor_id=reading.visitor_id,
            consent_id=stored.state.consent_id if stored is not None else reading.shown_cid)

    def forgotten_state(self) -> ConsentState:
        """After a deletion: every optional category refused, under a new consent id, so
        nothing later carries the old one. Only a new, explicit decision records again."""
        return decide(self.settings, undecided(self.settings), action="reject_all")

    def forget_cookies(self, ctx: RequestContext, incoming: Incoming, scope: Scope, *,
                       component: str) -> list[str]:
        """Reset a deleted visitor's browser: the withdrawal recorded (with no visitor id),
        the consent cookie carrying it, the visitor, session and banner cookies expired."""
        s = self.settings
        rec = self.record(ctx, incoming, scope, ctx.state, event="withdrawn",
                          method="reject_all", component=component)
        value = self.codec.dump_consent(ctx.state, record_id=rec["record_id"])
        out = [set_cookie(s.consent_cookie, value, max_age=s.consent_max_age,
                          secure=incoming.secure)]
        out += [expire_cookie(name, secure=incoming.secure)
                for name in (s.visitor_cookie, s.session_cookie, s.consent_cookie + "_shown")]
        return out

    def assign_ids(self, ctx: RequestContext, incoming: Incoming) -> None:
        """Visitor and session ids exist only while analytics is granted."""
        reading = incoming.reading
        if ctx.state is reading.state and reading.ids_settled:  # a returning visitor
            ctx.visitor_id = reading.visitor_id
            ctx.session_id = reading.session_id
            incoming.new_visitor = incoming.new_session = False
        elif ctx.state.granted_any(self._analytics_gate):
            # Only a bound id is kept (see Reading.visitor_id), and never a purged person's.
            visitor = None if incoming.forget else reading.visitor_id
            session = None if incoming.forget else reading.session_id
            ctx.visitor_id = visitor or new_visitor_id()
            incoming.new_visitor = visitor is None
            ctx.session_id = session or new_session_id()  # bound to the visitor
            incoming.new_session = session is None
            if incoming.new_visitor and incoming.stored is not None and not incoming.forget:
                # A stored decision given a new visitor id (a browser that lost its cookie,
                # an older cookie, or one copied into another browser) continues under a new
                # consent id too, so a consent id never spans two visitors: it could
                # otherwise lead one visitor's export or purge to the other's rows.
                incoming.rebound = incoming.rebound or new_consent_id()
                ctx.state = replace(ctx.state, consent_id=incoming.rebound)
        else:
            ctx.visitor_id = None
            ctx.session_id = None
            incoming.new_visitor = False
            incoming.new_session = False

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
                now = time.time()
                issued = incoming.reading.session_issued
                # Slid at most once a minute: a Set-Cookie on every response costs every
                # response, and a session timeout one minute early changes nothing.
                if incoming.new_session or not now - SESSION_SLIDE <= issued <= now + SESSION_SLIDE:
                    value = self.codec.dump_session(ctx.session_id, ctx.visitor_id, now)
                    out.append(set_cookie(s.session_cookie, value,
                                          max_age=s.session_timeout, secure=incoming.secure))
        else:
            if withdrawing or s.visitor_cookie in incoming.cookies:
                out.append(expire_cookie(s.visitor_cookie, secure=incoming.secure))
            if withdrawing or s.session_cookie in incoming.cookies:
                out.append(expire_cookie(s.session_cookie, secure=incoming.secure))
        return out

    def record(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
               state: ConsentState, *, event: str, method: str, component: str,
               previous_record_id: str | None = None, consent_id: str | None = None,
               path: str | None = None) -> dict[str, Any]:
        """Build and write one consent record; ``path`` defaults to the request's."""
        rec = build_record(
            self.settings, state, event=event, method=method, component=component,
            locale=ctx.locale, host=incoming.header(b"host"),
            path=scope.get("path") if path is None else path,
            user_agent=incoming.header(b"user-agent") or "",
            visitor_id=ctx.visitor_id, previous_record_id=previous_record_id,
            consent_id=consent_id,
        )
        self.write_record(rec)
        return rec

    def resign_cookie(self, ctx: RequestContext, incoming: Incoming, scope: Scope
                      ) -> list[str]:
        """The consent cookie re-signed, without extending its lifetime, when a page response
        must change it: to bind a visitor id issued just now, or to remember that
        ``gpc_applied`` was recorded (once per consent id and policy version, not per
        request)."""
        stored = incoming.stored
        if stored is None:
            return []
        gpc_due = ctx.state.gpc_applied and not stored.gpc_recorded
        if not gpc_due and not incoming.new_visitor:
            return []
        if not incoming.owned and incoming.rebound is None:
            incoming.rebound = new_consent_id()  # a record is due: under an id of its own
        record_id = stored.record_id
        decision = stored.state
        if incoming.rebound is not None:
            # The decision under its new consent id: proof for what is recorded under it.
            decision = replace(decision, consent_id=incoming.rebound)
            rec = self.record(ctx, incoming, scope, replace(ctx.state, gpc_applied=False),
                              event="updated", method=decision.method or "api",
                              component="api", previous_record_id=record_id)
            record_id = rec["record_id"]
            gpc_due = ctx.state.gpc_applied
        if gpc_due:
            rec = self.record(ctx, incoming, scope, ctx.state, event="gpc_applied",
                              method="gpc", component="api", previous_record_id=record_id)
            record_id = rec["record_id"]
        value = self.codec.dump_consent(
            decision, gpc_recorded=(stored.gpc_recorded and incoming.rebound is None) or gpc_due,
            record_id=record_id, visitor_id=ctx.visitor_id)
        return [set_cookie(self.settings.consent_cookie, value,
                           max_age=remaining_max_age(stored, self.settings),
                           secure=incoming.secure)]

    # ------------------------------------------------------------------------------------
    def _http(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """What to await for an HTTP request: an endpoint of ours or the app behind us.

        Not a coroutine itself: one coroutine frame fewer on every request.
        """
        path: str = scope.get("path", "")
        header_bytes = -1
        try:
            reading: Reading | None
            reading, header_bytes = self._read_sized(scope.get("headers") or ())
        except Exception:
            reading = None  # read_request below fails the same way, logs it and falls back
        forget = False
        suppressions = self._suppressions
        if reading is not None and suppressions is not None and suppressions.has_purged:
            try:
                forget = self.is_forgotten(reading)
            except Exception:
                self._fail("is_forgotten")
        if reading is not None and reading.settled and self._settled_path and not forget:
            # A returning visitor with nothing to set or record: the common case.
            route = self._routes.get(path)
            if route is None:
                route = self._route(path)
            if route != _ROUTE_OURS:
                ctx = RequestContext(self.settings, reading.state, reading.locale,
                                     reading.visitor_id, reading.session_id, None,
                                     self.capture)
                scope[SCOPE_KEY] = ctx
                if route == _ROUTE_EXCLUDED:
                    return self.app(scope, receive, send)
                return self.app(scope, receive,
                                _SettledSend(self, ctx, scope, send, header_bytes))
        try:
            incoming, ctx = self.read_request(scope, reading, forget=forget)
        except Exception:
            # Bad input must never cost the visitor the page: fall back to "undecided".
            self._fail("read_request")
            state = undecided(self.settings)
            incoming = Incoming((), Reading(
                cookies={}, stored=None, gpc=False, state=state,
                locale=self.settings.default_locale, visitor_id=None, session_id=None,
                session_issued=0, shown_cid=None, until=0.0,
            ), secure=scope.get("scheme") == "https")
            ctx = RequestContext(settings=self.settings, state=state,
                                 locale=self.settings.default_locale, capture=self.capture)
        scope[SCOPE_KEY] = ctx
        if path == GPC_JSON_PATH:
            return self.endpoints.gpc_json(scope, send)
        if path == self.settings.prefix or path.startswith(self._prefix_slash):
            return self.endpoints.handle(ctx, incoming, scope, receive, send)
        return self.app(scope, receive, _PageSend(self, ctx, incoming, scope, send))

    def _on_start(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                  message: Message, excluded: bool) -> tuple[bool, bytes | None] | None:
        """Capture the page and add cookies and ``Vary``; the response's headers, as read."""
        status = int(message.get("status", 200))
        if excluded:
            return None
        if self.capture is not None:
            try:
                self.capture.page(ctx, scope, status)
            except Exception:
                self._fail("capture.page")
        headers = message.get("headers") or ()
        try:
            if not isinstance(headers, (list, tuple)):  # any iterable is allowed: read it once
                headers = message["headers"] = list(headers)
            html, encoding, vary = _response_info(headers)
        except Exception:  # headers that are not (name, value) pairs: leave them to the server
            self._fail("response_start")
            return None
        try:
            reading = incoming.reading
            state = ctx.state
            if incoming.forget:
                cookies = self.forget_cookies(ctx, incoming, scope, component="api")
            elif reading.ids_settled and state is reading.state:
                cookies = None  # ids present and the session cookie recently set
            else:
                cookies = self.id_cookies(ctx, incoming)
            if not incoming.forget and (state.gpc_applied or incoming.new_visitor):
                cookies = (cookies or []) + self.resign_cookie(ctx, incoming, scope)
            # Whether a banner or tags appear depends on these request headers: ``vary``.
            if not cookies:
                if vary:
                    message["headers"] = [*headers, (b"vary", vary)]
                return html, encoding
            headers = list(headers)
            headers.extend((b"set-cookie", c.encode("latin-1")) for c in cookies)
            # A shared cache must never store (and replay) one visitor's ids.
            _make_private(headers)
            if vary:
                headers.append((b"vary", vary))
            message["headers"] = headers
        except Exception:
            self._fail("response_start")
        return html, encoding

    def _wants_body(self, ctx: RequestContext, scope: Scope, message: Message,
                    info: tuple[bool, bytes | None]) -> bool:
        if ctx.state.decided and not self.settings.tags:  # the common case, decided first
            return False
        if not self._injects or scope.get("method") == "HEAD":
            return False
        status = int(message.get("status", 200))
        if status < 200 or status in (204, 205, 304):
            return False
        html, encoding = info
        if not html:
            return False
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
            # Its script reports the display (POST {prefix}/shown), which writes the
            # ``shown`` record: see Endpoints.shown.
            snippet += render_banner(
                s, ctx.locale, return_target(scope.get("path", "/"),
                                             scope.get("query_string", b"")))
        if not snippet:
            return None
        charset = _charset(_header_value(start["headers"], b"content-type") or b"")
        encoded = snippet.encode(charset, errors="xmlcharrefreplace")
        return body[:at] + encoded + body[at:]
