"""The banner in a real browser (Debian chromium) against a real uvicorn server, strict CSP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import expect
from support.apps import starlette_app

from consent_mw.consent.records import MemorySink
from consent_mw.settings import Settings

#: The consent records of the module's server.
RECORDS = MemorySink()
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'"

pytestmark = pytest.mark.browser


class CspMiddleware:
    """A strict CSP on every response, outside the consent layer (as a site would set it)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/favicon.ico":
            # The browser asks for it on its own; a 404 would be a console error.
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return

        async def wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"],
                                      (b"content-security-policy", CSP.encode())]
            await send(message)

        await self.app(scope, receive, wrapped if scope["type"] == "http" else send)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    from consent_mw.config import Secret

    settings = Settings(secret_keys=(Secret("browser-test-secret-0123456789"),),
                        policy_text="browser policy")
    app = CspMiddleware(starlette_app(settings, record_sink=RECORDS))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page_factory(browser: Any) -> Iterator[Callable[..., tuple[Any, Any, list[str]]]]:
    contexts: list[Any] = []

    def make(**kwargs: Any) -> tuple[Any, Any, list[str]]:
        context = browser.new_context(**kwargs)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        return context, page, errors

    yield make
    for c in contexts:
        c.close()


def cookie_names(context: Any) -> set[str]:
    return {c["name"] for c in context.cookies()}


def test_banner_reject_accept_and_withdraw(server_url: str, page_factory: Any,
                                           artifacts: Path) -> None:
    context, page, errors = page_factory(viewport={"width": 1000, "height": 700})
    response = page.goto(server_url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    banner = page.locator("#cmw-banner")
    banner.wait_for(state="visible")
    assert banner.get_attribute("role") == "dialog"
    # banner.js moved focus to the dialog; Tab then walks its controls in reading order.
    # Locator assertions poll from Playwright's own world: under this page's strict CSP a
    # string predicate (wait_for_function) would need eval and fail when it has to poll.
    expect(banner).to_be_focused()
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.value || "
                                   "document.activeElement.getAttribute('href')"))
    assert order == ["/_consent/external-transmission", "reject_all", "accept_all",
                     "/_consent/preferences?return=/"]
    page.evaluate("document.activeElement.blur()")  # no focus ring favouring either button
    page.screenshot(path=str(artifacts / "banner.png"))
    settings_box = page.locator(".cmw-settings").bounding_box()
    assert settings_box and settings_box["height"] >= 40  # a finger's target, not 24 px

    page.get_by_role("button", name="すべて拒否する").click()
    banner.wait_for(state="detached")
    assert "cmw_consent" in cookie_names(context)
    assert "cmw_vid" not in cookie_names(context)
    page.reload()
    assert page.locator("#cmw-banner").count() == 0

    context.clear_cookies()
    page.goto(server_url + "/en")
    page.get_by_role("button", name="Accept all").click()
    page.wait_for_load_state("load")
    expect(page.locator("#cmw-banner")).to_have_count(0)
    assert "cmw_vid" in cookie_names(context)

    page.goto(server_url + "/_consent/preferences?return=/en")
    page.screenshot(path=str(artifacts / "preferences.png"), full_page=True)
    assert page.locator("#cmw-cat-analytics").is_checked()
    assert page.locator("#cmw-cat-necessary").is_disabled()
    box = page.locator("#cmw-cat-analytics").bounding_box()
    label = page.locator("label[for=cmw-cat-analytics]").bounding_box()
    assert box and label and box["height"] >= 24 and label["height"] >= 40
    with page.expect_navigation():
        page.locator("button[value=reject_all]").click()
    assert "saved=1" in page.url
    assert "cmw_vid" not in cookie_names(context)
    assert not page.locator("#cmw-cat-analytics").is_checked()
    assert errors == []


def test_banner_works_without_javascript(server_url: str, page_factory: Any) -> None:
    context, page, errors = page_factory(java_script_enabled=False)
    page.goto(server_url + "/en?from=test")
    with page.expect_navigation():
        page.get_by_role("button", name="Accept all").click()
    assert page.url == server_url + "/en?from=test"
    assert page.locator("#cmw-banner").count() == 0
    assert {"cmw_consent", "cmw_vid"} <= cookie_names(context)
    page.goto(server_url + "/_consent/preferences")
    page.locator("#cmw-cat-analytics").uncheck()
    with page.expect_navigation():
        page.locator("button[value=save]").click()
    assert "cmw_vid" not in cookie_names(context)
    assert errors == []


def test_the_displayed_banner_is_recorded_once_and_the_choice_links_to_it(
        server_url: str, page_factory: Any) -> None:
    context, page, errors = page_factory()
    before = len(RECORDS.records)
    page.goto(server_url + "/en")
    page.locator("#cmw-banner").wait_for(state="visible")
    # banner.js reports the display; the answer sets the marker that links the choice.
    deadline = time.monotonic() + 10
    while "cmw_consent_shown" not in cookie_names(context) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert "cmw_consent_shown" in cookie_names(context)
    page.reload()  # shown again within 30 minutes: no second record
    page.locator("#cmw-banner").wait_for(state="visible")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Accept all").click()
    page.wait_for_load_state("load")
    expect(page.locator("#cmw-banner")).to_have_count(0)
    new = RECORDS.records[before:]
    assert [r["event"] for r in new] == ["shown", "decided"]
    shown, decided = new
    assert (shown["path"], shown["locale"], shown["component"]) == ("/en", "en", "banner")
    assert decided["previous_record_id"] == shown["record_id"]
    assert errors == []
