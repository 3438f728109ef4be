"""Capture at the HTTP level: a tiny ASGI shim standing in for the consent middleware builds
the RequestContext and calls capture.page() at http.response.start, like the real one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from support.capture import RecordingTransport, consent_state

from consent_mw.capture.api import identify, track
from consent_mw.capture.pipeline import Capture
from consent_mw.clientip import client_ip
from consent_mw.settings import Settings
from consent_mw.state import SCOPE_KEY, RequestContext


class Shim:
    """Consent from an ``x-test-consent`` header; nothing else of the middleware."""

    def __init__(self, app: ASGIApp, settings: Settings, capture: Capture) -> None:
        self.app, self.settings, self.capture = app, settings, capture

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        granted = [c for c in headers.get(b"x-test-consent", b"").decode().split(",") if c]
        state = consent_state(granted)
        analytics = state.granted("analytics")
        ctx = RequestContext(
            settings=self.settings, state=state, locale="ja",
            visitor_id="0123456789abcdef0123456789abcdef" if analytics else None,
            session_id="0123456789abcdef" if analytics else None,
            client_ip=client_ip(scope, self.settings.trusted_proxies), capture=self.capture,
        )
        scope[SCOPE_KEY] = ctx

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.capture.page(ctx, scope, message["status"])
            await send(message)

        await self.app(scope, receive, wrapped)


async def done(request: Request) -> PlainTextResponse:
    track(request, "booking_completed", {"treatment": request.query_params.get("t", "")})
    identify(request, "account-7", {"age": 29, "nickname": "taro"})
    return PlainTextResponse("ok", status_code=201)


def run(settings: Settings, capture: Capture, requests: list[tuple[str, dict[str, str]]],
        peer: str = "127.0.0.1") -> None:
    app = Shim(Starlette(routes=[Route("/reserve/done", done)]), settings, capture)

    async def go() -> None:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="https://clinic.example.jp") as client:
            for url, headers in requests:
                await client.get(url, headers=headers)

    # In a fresh thread: Playwright's sync API (browser tests) leaves a loop in the main one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, go()).result()


def test_pageview_custom_and_identify_from_a_real_request(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    capture.start()
    run(settings, capture, [(
        "/reserve/done?t=whitening&email=taro%40example.jp&q=%E6%AD%AF",
        {"x-test-consent": "analytics", "x-forwarded-for": "6.6.6.6, 198.51.100.23",
         "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"},
    )])
    capture.shutdown(5)
    kinds = {e["kind"]: e for e in transport.events}
    assert set(kinds) == {"pageview", "custom", "identify"}
    page = kinds["pageview"]
    assert page["status"] == 201 and page["path"] == "/reserve/done"
    assert page["ip"] == "198.51.100.23"  # loopback peer is a trusted proxy
    assert page["search_terms"] == "歯" and "taro" not in str(page)
    assert kinds["custom"]["properties"] == {"treatment": "whitening"}
    assert kinds["identify"]["traits"] == {"age_band": "20-29"}


def test_forwarded_header_from_an_untrusted_peer_is_ignored(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    run(settings, capture, [("/reserve/done", {"x-test-consent": "analytics",
                                               "x-forwarded-for": "6.6.6.6"})],
        peer="203.0.113.9")
    capture.shutdown(5)
    assert {e["kind"]: e for e in transport.events}["pageview"]["ip"] == "203.0.113.9"


def test_refused_visitor_gives_one_anonymous_count_and_nothing_else(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    run(settings, capture, [("/reserve/done?t=x", {"x-test-consent": "marketing",
                                                   "user-agent": "Googlebot/2.1"})])
    capture.shutdown(5)
    (event,) = transport.events
    assert event["kind"] == "anonymous" and event["device_type"] == "bot"
    assert capture.stats()["dropped"]["no_consent"] == 2  # track() and identify()
