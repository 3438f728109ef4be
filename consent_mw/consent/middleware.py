"""``ConsentMiddleware``: pure ASGI; reads consent, gates capture and tags, injects the banner.

Everything that depends only on the settings is built once in ``__init__``. A request's
consent inputs are read once (``consent.reading``); the request is then answered by the
middleware's own routes (``consent.endpoints``, and ``consent.metrics`` at ``metrics_path``)
or passed to the app with a send wrapper (``consent._send``) that captures the page and
changes headers and body only where needed: streamed, compressed, HEAD, 304 and non-HTML
responses pass through untouched. Whatever fails is counted (:meth:`ConsentMiddleware.stats`)
and the response is served regardless.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Literal, get_args

import anyio.to_thread

from consent_mw.capture.pipeline import Capture
from consent_mw.capture.transport import Transport
from consent_mw.config import SettingsError
from consent_mw.consent._first_visit import FirstVisitSend
from consent_mw.consent._send import PageSend, SettledBeaconSend, SettledSend
from consent_mw.consent.beacon import Beacon, render_beacon
from consent_mw.consent.cookies import CookieCodec
from consent_mw.consent.decision import analytics_gate, undecided
from consent_mw.consent.endpoints import Endpoints
from consent_mw.consent.identity import Identity
from consent_mw.consent.incoming import Incoming
from consent_mw.consent.metrics import MetricsEndpoint
from consent_mw.consent.reading import Reader, Reading
from consent_mw.consent.records import MemorySink, RecordSink
from consent_mw.consent.self_service import SelfService
from consent_mw.settings import PathExclusions, Settings
from consent_mw.state import SCOPE_KEY, RequestContext
from consent_mw.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Where the middleware can fail; each failure is counted under its place (``stats()``).
ErrorPlace = Literal["read_request", "is_forgotten", "capture", "response_start", "inject",
                     "record_sink", "self_service", "lifespan", "metrics", "beacon"]
ERROR_PLACES: tuple[ErrorPlace, ...] = get_args(ErrorPlace)

GPC_JSON_PATH = "/.well-known/gpc.json"
#: How the settled path routes a path: a page to capture, an excluded path, our endpoint
#: (the metrics path among them).
_ROUTE_PAGE, _ROUTE_EXCLUDED, _ROUTE_OURS = 0, 1, 2
MAX_ROUTES = 4096
MAX_ROUTED_PATH = 512


class ConsentMiddleware:
    """Consent layer around any ASGI app (Starlette, FastAPI, ...).

    Capture: ``capture``, a pipeline of the host's own; else one built on ``transport``, or
    on ``settings.collector_url``; else none. ``record_sink`` receives consent records; by
    default the capture pipeline when there is one, else an in-memory
    :class:`~consent_mw.consent.records.MemorySink` (``self.records``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        transport: Transport | None = None,
        capture: Capture | None = None,
        record_sink: RecordSink | None = None,
        self_service: SelfService | None = None,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else Settings.from_env()
        s = self.settings
        if capture is not None and transport is not None:
            raise SettingsError("transport", "give a capture or a transport, not both")
        if capture is None and s.capture and (transport is not None or s.collector_url):
            capture = Capture(s, transport=transport)
        self.capture = capture
        self.records: RecordSink = (
            record_sink if record_sink is not None else (capture or MemorySink())
        )
        # Whose purge was asked for: their browsers are reset when they come back.
        self._suppressions = capture.suppressions if capture is not None else None
        self.errors: Counter[ErrorPlace] = Counter()
        self.codec = CookieCodec(s)
        self.identity = Identity(s, self.codec, self.write_record)
        self.self_service = self_service if self_service is not None else SelfService(s)
        # The interaction beacon, when on and there is a capture to feed.
        beacon = (Beacon(s, capture, self.identity, fail=self._fail)
                  if s.beacon and capture is not None and capture.enabled else None)
        self.endpoints = Endpoints(s, self.identity, self.self_service, fail=self._fail,
                                   beacon=beacon)
        #: The script element injected for visitors who granted analytics (None: off).
        self.beacon_tag = (None if beacon is None
                           else render_beacon(s, self.endpoints.hashed["beacon.js"]))
        self._analytics = analytics_gate(s)
        self.reader = Reader(s, self.codec)
        # Capture's figures for a scraper; None (and prometheus-client never imported) when off.
        self.metrics = (MetricsEndpoint(s, self.stats, fail=self._fail)
                        if s.metrics_path is not None else None)
        self._metrics_path = s.metrics_path
        self._read_sized = self.reader.read_sized
        self._has_tags = bool(s.tags)
        self._prefix_slash = s.prefix + "/"
        self._excluded = PathExclusions(s.exclude_paths)
        # Off with tags (they go into every decided visitor's page) and with the beacon (it
        # goes into the pages of those who granted analytics; those who did not keep the
        # settled path); tests turn it off to compare the two paths.
        self._settled_path = not s.tags
        # A first visit's page gets the banner and nothing else unless tags are configured
        # (the beacon goes only to those who granted analytics): its own send wrapper.
        self._first_visit_path = s.banner and not s.tags
        # With the beacon on, a settled visitor who granted analytics gets its script
        # element: the same bytes on every page, so encoded once.
        self._beacon_bytes = (None if self.beacon_tag is None
                              else self.beacon_tag.encode("ascii", "xmlcharrefreplace"))
        # The settled path's routing of a path (a page, excluded, or ours), kept per path:
        # a site has few, and one lookup beats four prefix tests on every request.
        self._routes: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.capture is not None:
                receive = self._lifespan_receive(receive)
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        try:
            reading: Reading | None
            reading, header_bytes = self._read_sized(scope.get("headers") or ())
        except Exception:
            reading, header_bytes = None, -1  # read_request fails the same way and counts it
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
                ctx = scope[SCOPE_KEY] = RequestContext(
                    self.settings, reading.state, reading.locale, reading.visitor_id,
                    reading.session_id, None, self.capture)
                if route == _ROUTE_EXCLUDED:
                    await self.app(scope, receive, send)
                elif self._beacon_bytes is None or reading.state.granted_names.isdisjoint(
                        self._analytics):
                    await self.app(scope, receive,
                                   SettledSend(self, ctx, scope, send, header_bytes))
                else:
                    await self.app(scope, receive, SettledBeaconSend(
                        self, ctx, scope, send, header_bytes, self._beacon_bytes))
                return
        route = self._routes.get(path)
        if route is None:
            route = self._route(path)
        if (route == _ROUTE_PAGE and reading is not None and reading.fresh
                and self._first_visit_path and not forget and not reading.state.decided
                and not reading.state.gpc_applied):
            # A first visit, or a visitor who never decides: no ids to assign (no analytics),
            # no cookie to set, expire or re-sign, so no Incoming (read_request's result is
            # this context); FirstVisitSend applies PageSend's rules from one read.
            ctx = scope[SCOPE_KEY] = RequestContext(
                self.settings, reading.state, reading.locale, None, None, None, self.capture)
            await self.app(scope, receive, FirstVisitSend(
                self, ctx, reading.locale, scope, send, header_bytes))
            return
        if route == _ROUTE_OURS and path == self._metrics_path and self.metrics is not None:
            # A scrape, not a visit: no consent to read, no ids, no page view.
            await self.metrics(scope, send)
            return
        incoming, ctx = self._read_or_fall_back(scope, reading, forget)
        scope[SCOPE_KEY] = ctx
        if route == _ROUTE_OURS:
            if path == GPC_JSON_PATH:
                await self.endpoints.gpc_json(scope, send)
                return
            if path == self.settings.prefix or path.startswith(self._prefix_slash):
                await self.endpoints.handle(ctx, incoming, scope, receive, send)
                return
        await self.app(scope, receive, PageSend(
            self, ctx, incoming, scope, send, header_bytes,
            excluded=route == _ROUTE_EXCLUDED
            or (route == _ROUTE_OURS and path in self._excluded)))

    def stats(self) -> dict[str, Any]:
        """What failed, for hosts and tests to check: ``errors``, the middleware's own
        failures by place (each logged with a traceback; the response was served
        regardless); ``capture``, :meth:`Capture.stats` (None without capture); ``failures``,
        their total (the errors plus capture's ``error`` drops and ``worker_errors``)."""
        errors = {place: self.errors.get(place, 0) for place in ERROR_PLACES}
        capture = self.capture.stats() if self.capture is not None else None
        failures = sum(errors.values())
        if capture is not None:
            failures += capture["dropped"]["error"] + capture["worker_errors"]
        return {"failures": failures, "errors": errors, "capture": capture}

    def _fail(self, where: ErrorPlace) -> None:
        self.errors[where] += 1
        log.exception("consent_mw: %s failed; the response is served regardless", where)

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

    def write_record(self, record: dict[str, Any]) -> None:
        try:
            self.records.write(record)
        except Exception:
            self._fail("record_sink")

    def _route(self, path: str) -> int:
        """Where the settled path sends ``path``, remembered (bounded: paths come from
        visitors, so the map is emptied when full)."""
        if (path == self.settings.prefix or path == self._metrics_path
                or path.startswith((self._prefix_slash, GPC_JSON_PATH))):
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

    def read_request(self, scope: Scope, reading: Reading | None = None, *,
                     forget: bool = False) -> tuple[Incoming, RequestContext]:
        """Parse the request's consent inputs (unless ``reading`` has them already) into an
        :class:`Incoming` and a context. ``forget``: the browser belongs to a purged person
        and is treated as having withdrawn (see :meth:`Identity.forget_cookies`). The pages
        of settled visitors and of first visits build their context without it (``__call__``)."""
        if reading is None:
            reading = self.reader.read_headers(scope.get("headers") or ())
        incoming = Incoming(scope.get("headers") or (), reading,
                            secure=scope.get("scheme") in ("https", "wss"))
        state = reading.state
        if forget:
            state = self.identity.forgotten_state()
            incoming.forget = True
        # Positional: a keyword call costs ~3x, and a new visitor's every page makes one.
        ctx = RequestContext(self.settings, state, reading.locale, None, None, None,
                             self.capture)
        self.identity.assign_ids(ctx, incoming)
        return incoming, ctx

    def _read_or_fall_back(self, scope: Scope, reading: Reading | None, forget: bool
                           ) -> tuple[Incoming, RequestContext]:
        """:meth:`read_request`, or, when the request cannot be read, an undecided visitor:
        bad input must never cost the visitor the page."""
        try:
            return self.read_request(scope, reading, forget=forget)
        except Exception:
            self._fail("read_request")
        state = undecided(self.settings)
        incoming = Incoming((), Reading(
            cookies={}, stored=None, gpc=False, state=state,
            locale=self.settings.default_locale, visitor_id=None, session_id=None,
            session_issued=0, shown_cid=None, until=0.0,
        ), secure=scope.get("scheme") == "https")
        ctx = RequestContext(settings=self.settings, state=state,
                             locale=self.settings.default_locale, capture=self.capture)
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
