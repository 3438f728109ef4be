"""Headless Chromium as a patient's or staff member's phone: 390 px, Japanese, touch."""

from __future__ import annotations

from typing import Any

from support.servers import wait_for

PHONE = {"viewport": {"width": 390, "height": 844}, "locale": "ja-JP",
         "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def open_page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**PHONE)
    # The demo's Google tag loads once analytics is accepted; this machine has no internet.
    context.route("https://www.googletagmanager.com/**",
                  lambda route: route.fulfill(status=200, body="",
                                              content_type="text/javascript"))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def decide(page: Any, action: str) -> None:
    """Click a banner button and wait for the decision's cookie (the banner's script posts it
    without leaving the page)."""
    page.click(f"button[value={action}]")
    wait_for(lambda: any(c["name"] == "cmw_consent" for c in page.context.cookies()), 30,
             "the consent cookie")
    page.wait_for_load_state("networkidle")  # accepting reloads the page (to load the tags)


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def looks_human(page: Any) -> None:
    text = page.inner_text("body")
    assert '{"' not in text and "request_id" not in text and "status_url" not in text
    assert fits(page), page.url
