"""The pages a patient sees around their data, in headless Chromium, in Japanese, on a 390 px
phone: the deletion flow from the preferences page to the verified receipt, and the refusal
a visitor without analytics consent gets. No raw JSON, no horizontal scroll, no console
errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.phone import decide, looks_human, open_page
from support.servers import Demo, wait_for

pytestmark = pytest.mark.browser

def test_a_patient_deletes_their_data_on_a_phone_in_japanese(
        demo: Demo, browser: Any, artifacts: Path) -> None:
    context, page, errors = open_page(browser)
    try:
        page.goto(demo.url + "/")
        decide(page, "accept_all")
        page.goto(demo.url + "/_consent/preferences")
        page.click("a[href='/_consent/my-data/delete']")
        assert page.locator("h1").inner_text() == "データの削除"
        looks_human(page)
        page.screenshot(path=str(artifacts / "my-data-delete-ja-390.png"), full_page=True)
        page.click("button.cmw-button")
        assert page.locator("h1").inner_text() == "削除を受け付けました"
        looks_human(page)
        page.screenshot(path=str(artifacts / "my-data-requested-ja-390.png"), full_page=True)
        status = page.locator("a.cmw-button").get_attribute("href")
        assert status and status.startswith("/_consent/my-data/status?ref=")

        def verified() -> bool:
            page.goto(demo.url + status)
            return "残っていないことを確認しました" in page.inner_text("body")

        wait_for(verified, 60, "the receipt")
        looks_human(page)
        body = page.inner_text("body")
        assert "受領番号" in body and "保存を続けるもの" in body and "(UTC)" in body
        page.screenshot(path=str(artifacts / "my-data-status-ja-390.png"), full_page=True)
        page.click("text=サイトに戻る")
        assert page.url.rstrip("/") == demo.url
        assert errors == []
    finally:
        context.close()


def test_a_visitor_without_analytics_gets_a_page_not_an_error_dump(
        demo: Demo, browser: Any, artifacts: Path) -> None:
    context, page, errors = open_page(browser)
    try:
        page.goto(demo.url + "/")
        decide(page, "reject_all")
        response = page.goto(demo.url + "/_consent/my-data")
        assert response is not None and response.status == 403
        assert page.locator("h1").inner_text() == "記録されたデータはありません"
        looks_human(page)
        page.screenshot(path=str(artifacts / "my-data-refused-ja-390.png"), full_page=True)
        # The 403 itself is the only console message a refusal may cause.
        assert errors and all("403" in e for e in errors), errors
    finally:
        context.close()
