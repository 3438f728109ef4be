"""The interaction beacon on the demo site, end to end, in headless Chromium: a patient who
accepted analytics taps the phone number, LINE, the e-mail address, the booking site and the
price list, reads a page to its end, then sends the reservation form with their name, phone
and e-mail. Their export holds each interaction with where and what kind, and the store holds
none of what they typed or what the links carried (searched in every file, inside
ClickHouse's compressed blocks too). Without analytics the script is not in the page, and a
report forged by hand with same-origin headers stores nothing and is counted."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from support.servers import Demo, wait_for

from collector.privacy.disk_scan import scan_directory

pytestmark = pytest.mark.browser

NAME, PHONE, EMAIL = "山田花子", "090-1234-5678", "hanako.yamada@example.jp"
#: Never in the store: what the patient typed, the numbers and addresses the links carried,
#: the LINE account, the booking link's query.
NEVER = [NAME, PHONE, "09012345678", EMAIL, "0300000000", "info@example.com",
         "aladdin-clinic-demo", "aladdin_clinic_demo", "from=site"]
#: A tel: or mailto: click starts the system's handler, after which Playwright's clicks no
#: longer reach the page: the default action is cancelled once the beacon has seen it.
STOP_HANDLERS = """document.addEventListener("click", function (e) {
  var a = e.target.closest && e.target.closest('a[href^="tel:"], a[href^="mailto:"]');
  if (a) { e.preventDefault(); }
});"""


def open_context(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
    context.add_init_script(STOP_HANDLERS)
    # No internet here: the Google tag, LINE, Instagram and the booking site answer 204, which
    # leaves the browser on the page.
    for pattern in ("https://www.googletagmanager.com/**", "https://line.me/**",
                    "https://www.instagram.com/**", "https://reserve.example.com/**"):
        context.route(pattern, lambda route: route.fulfill(status=204))
    context.route("**/static/price-list.pdf", lambda route: route.fulfill(status=204))
    return context


def accept(page: Any) -> None:
    page.click("button[value=accept_all]")
    wait_for(lambda: any(c["name"] == "cmw_consent" for c in page.context.cookies()), 30,
             "the consent cookie")
    page.wait_for_load_state("networkidle")


def test_a_patients_interactions_are_stored_as_where_and_what_kind_only(
        demo: Demo, browser: Any) -> None:
    context = open_context(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(demo.url + "/")
        accept(page)
        page.goto(demo.url + "/")
        assert page.locator("script[data-cmw-beacon]").count() == 1
        for href in ("tel:0300000000", "mailto:info@example.com",
                     "https://line.me/R/ti/p/@aladdin-clinic-demo",
                     "https://reserve.example.com/aladdin?from=site",
                     "/static/price-list.pdf"):
            page.click(f'a[href="{href}"]')
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(5000)
        page.goto(demo.url + "/reservation")  # leaving the page sends its scroll and time
        page.select_option("select[name=treatment]", index=1)
        page.fill("input[name=date]", (date.today() + timedelta(days=7)).isoformat())
        page.fill("input[name=name]", NAME)
        page.fill("input[name=phone]", PHONE)
        page.fill("input[name=email]", EMAIL)
        page.click("form.reservation button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "/reservation" in page.url and page.locator(".errors").count() == 0
        cookies = {c["name"]: c["value"] for c in context.cookies()}
    finally:
        context.close()
    assert errors == []

    def stored() -> set[str]:
        demo.flush()
        return {r[0] for r in demo.store.rows(
            "SELECT name FROM events WHERE kind = 'interaction'")}

    wait_for(lambda: {"scroll", "engaged", "form"} <= stored(), 30,
             "the page's scroll, time and the form")
    # What the patient downloads of their data (the export has a small budget: asked once).
    with httpx.Client(base_url=demo.url, cookies=cookies, timeout=10) as client:
        export = client.get("/_consent/my-data")
    assert export.status_code == 200, export.text
    reported = [e for e in json.loads(export.content)["events"] if e.get("kind") == "interaction"]
    # Every page left reports its scroll and time (the page reloaded after the choice too):
    # the one read to its end is the deepest and longest.
    got = {e["name"]: e for e in sorted(
        reported, key=lambda e: (e.get("scroll_depth") or 0, e.get("engaged_seconds") or 0))}
    assert set(got) == {"tel", "mailto", "app", "outbound", "download", "scroll", "engaged",
                        "form"}
    assert got["app"]["target"] == "line" and got["app"]["target_host"] == "line.me"
    # The booking site is one of the demo's path hosts: its path is kept, never its query.
    assert (got["outbound"]["target_host"], got["outbound"]["target_path"]) == (
        "reserve.example.com", "/aladdin")
    assert (got["download"]["target"], got["download"]["target_path"]) == (
        "pdf", "/static/price-list.pdf")
    assert got["form"]["target_path"] == "/reservation"
    assert got["scroll"]["scroll_depth"] == 100 and got["scroll"]["path"] == "/"
    assert 3 <= got["engaged"]["engaged_seconds"] <= 30
    for name in ("tel", "mailto"):
        assert got[name]["path"] == "/" and not got[name]["target"]
    text = json.dumps(list(got.values()), ensure_ascii=False)
    assert not [s for s in NEVER if s in text]
    assert demo.store.path is not None
    assert scan_directory(demo.store.path, NEVER).matches == []


def test_without_analytics_there_is_no_script_and_a_forged_report_stores_nothing(
        demo: Demo, browser: Any) -> None:
    context = open_context(browser)
    page = context.new_page()
    try:
        page.goto(demo.url + "/")
        page.click("button[value=reject_all]")
        wait_for(lambda: any(c["name"] == "cmw_consent" for c in context.cookies()), 30,
                 "the consent cookie")
        page.goto(demo.url + "/")
        assert page.locator("script[data-cmw-beacon]").count() == 0
        assert "beacon" not in page.content()
        cookies = {c["name"]: c["value"] for c in context.cookies()}
    finally:
        context.close()
    before = demo.parts.capture.stats()["dropped"]["no_consent"]
    forged = httpx.post(demo.url + "/_consent/beacon", cookies=cookies, headers={
        "Origin": demo.url, "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"},
        content=json.dumps({"events": [{"k": "tel", "p": "/"}]}), timeout=10)
    assert forged.status_code == 403 and forged.json()["error"] == "no_consent"
    assert demo.parts.capture.stats()["dropped"]["no_consent"] == before + 1
    demo.flush()
    assert demo.store.scalar("SELECT count() FROM events WHERE kind = 'interaction'") == 0
