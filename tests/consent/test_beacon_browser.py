"""The interaction beacon in a real browser (Debian chromium) under a strict CSP, against a
real uvicorn server whose capture keeps its events in memory: a visitor who accepted
analytics clicks, taps, downloads, sends a form and scrolls, and what reaches capture is where
and what kind, never a number, an address, an account, a field or a query string."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from support.apps import middleware_of
from support.servers import serve, wait_for

from consent_mw import ConsentMiddleware
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.config import Secret
from consent_mw.settings import Settings

pytestmark = pytest.mark.browser

CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'"
PHONE, EMAIL = "090-1234-5678", "taro.yamada@example.jp"
SECRETS = (PHONE, "09012345678", EMAIL, "someaccount", "ref=", "secret-token", "frag",
           "Taro", "?")

STOP_EXTERNAL = """document.addEventListener("click", function (e) {
  var a = e.target.closest && e.target.closest('a[href^="tel:"], a[href^="mailto:"]');
  if (a) { e.preventDefault(); }
});"""


def shop_page(other: str) -> str:
    filler = "".join(f"<p>Paragraph {i} of the price list.</p>" for i in range(150))
    return f"""<!DOCTYPE html><html lang="en"><head><title>Prices</title></head><body>
<h1>Prices</h1>
<p><a id="out" href="{other}/elsewhere?ref=secret-token#frag">Our partner</a></p>
<p><a id="tel" href="tel:{PHONE}">Call us</a> <a id="mail" href="mailto:{EMAIL}?subject=hi">
Mail us</a></p>
<p><a id="line" href="https://line.me/R/ti/p/@someaccount">LINE</a></p>
<p><a id="pdf" href="/files/price.pdf?v=secret-token">Price list (PDF)</a></p>
<p><a id="same" href="/about?ref=secret-token">About (same site: not reported)</a></p>
<p><button id="book" type="button" data-cmw-event="book-now">Book now</button></p>
<form id="contact" action="/contact/send?src=secret-token" method="post">
<input id="name" name="name"><input id="phone" name="tel"><input id="email" name="email">
<button id="send" type="submit">Send</button></form>
{filler}<p id="end">The end.</p></body></html>"""


async def page(request: Request) -> Response:
    return HTMLResponse(shop_page(request.app.state.other))


async def no_content(request: Request) -> Response:
    # A 204 leaves the browser on the page: the test goes on after a download or a form.
    return Response(status_code=204)


async def favicon(request: Request) -> Response:
    return Response(status_code=204)  # asked for by the browser itself


class Csp:
    """A strict CSP on every response, outside the consent layer (as a site would set it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"],
                                      (b"content-security-policy", CSP.encode())]
            await send(message)

        await self.app(scope, receive, wrapped if scope["type"] == "http" else send)


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, ConsentMiddleware, InMemoryTransport]]:
    transport = InMemoryTransport()
    settings = Settings(secret_keys=(Secret("beacon-browser-secret-0123456789"),),
                        policy_text="beacon browser policy", flush_interval=0.05,
                        beacon=True, beacon_path_hosts=("localhost",))
    inner = Starlette(routes=[
        Route("/", page), Route("/en", page), Route("/about", no_content),
        Route("/favicon.ico", favicon),
        Route("/files/price.pdf", no_content), Route("/contact/send", no_content,
                                                      methods=["POST"]),
    ])
    app = ConsentMiddleware(inner, settings=settings, transport=transport)
    mw = middleware_of(SimpleNamespace(app=app))
    served = serve(Csp(app))
    # The same server under another origin: an outbound link the test can follow.
    inner.state.other = served.url.replace("127.0.0.1", "localhost")
    try:
        yield served.url, mw, transport
    finally:
        served.stop()


def test_a_visit_reports_where_and_what_kind_never_what_was_typed(
        site: tuple[str, ConsentMiddleware, InMemoryTransport], browser: Any) -> None:
    url, mw, transport = site
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    try:
        tab = context.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        # A tel: or mailto: link would launch an external handler, after which headless
        # chromium drops the test's input; the page's own code stops it (as a site with a
        # click-to-call widget might), in the bubble phase, after the beacon saw the click.
        tab.add_init_script(STOP_EXTERNAL)
        # Off-site targets answer 204, so the visitor stays on the page for the next step.
        tab.route("https://line.me/**", lambda route: route.fulfill(status=204))
        tab.route(url.replace("127.0.0.1", "localhost") + "/**",
                  lambda route: route.fulfill(status=204))
        tab.goto(url + "/")
        assert tab.locator('script[src*="beacon"]').count() == 0  # not before consent
        with tab.expect_navigation():  # accepting reloads: the server injects the script
            tab.get_by_role("button", name="Accept all").click()
        vid = next(c["value"] for c in context.cookies() if c["name"] == "cmw_vid")
        assert tab.locator('script[src*="/_consent/static/beacon."]').count() == 1

        for link in ("#out", "#tel", "#mail", "#line", "#pdf", "#same", "#book"):
            tab.click(link)
            tab.wait_for_timeout(200)  # a navigation answered 204 settles before the next
        tab.fill("#name", "Taro Yamada")
        tab.fill("#phone", PHONE)
        tab.fill("#email", EMAIL)
        tab.click("#send")
        tab.wait_for_timeout(200)
        tab.mouse.move(200, 200)
        for _ in range(12):
            tab.mouse.wheel(0, 2000)
            tab.wait_for_timeout(100)
        tab.wait_for_timeout(2000)
        tab.goto(url + "/en")  # the page is hidden: scroll depth and engaged time go

        def mine() -> list[dict[str, Any]]:
            assert mw.capture is not None and mw.capture.force_flush(5.0)
            return [e for e in transport.events if e.get("visitor_id") == vid
                    and e["kind"] in ("interaction", "custom")]

        wait_for(lambda: {"scroll", "engaged"} <= {e["name"] for e in mine()}, 20,
                 "the hidden page's report")
        events = mine()
        assert errors == []
    finally:
        context.close()

    by_name = {e["name"]: e for e in events}
    assert sorted(by_name) == ["app", "book-now", "download", "engaged", "form", "mailto",
                               "outbound", "scroll", "tel"]
    assert len(events) == len(by_name)  # each once; the same-site link not at all

    def fields(name: str) -> dict[str, Any]:
        keys = ("kind", "path", "target_host", "target_path", "target", "scroll_depth")
        return {k: by_name[name][k] for k in keys if k in by_name[name]}

    assert fields("outbound") == {"kind": "interaction", "path": "/",
                                  "target_host": "localhost", "target_path": "/elsewhere"}
    assert fields("tel") == fields("mailto") == {"kind": "interaction", "path": "/"}
    assert fields("app") == {"kind": "interaction", "path": "/", "target_host": "line.me",
                             "target": "line"}
    assert fields("download") == {"kind": "interaction", "path": "/",
                                  "target_path": "/files/price.pdf", "target": "pdf"}
    assert fields("form") == {"kind": "interaction", "path": "/",
                              "target_path": "/contact/send", "target": "contact"}
    assert fields("book-now") == {"kind": "custom", "path": "/"}
    assert fields("scroll") == {"kind": "interaction", "path": "/", "scroll_depth": 100}
    assert 2 <= by_name["engaged"]["engaged_seconds"] <= 120
    captured = json.dumps(events, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in captured, secret
    stats = mw.stats()
    assert stats["failures"] == 0 and not any(stats["errors"].values())
