"""A privacy request end to end in headless Chromium, in Japanese, on a 390 px phone: a
patient asks on the site's form, proves their e-mail with the code the demo's real SMTP server
received, privacy staff complete it in the console, and the patient reads the result. No raw
JSON, no codes, no horizontal scroll, no console errors; screenshots of every step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support.phone import decide, looks_human, open_page
from support.servers import PASSWORD, Demo, wait_for

pytestmark = pytest.mark.browser

EMAIL = "hanako@example.jp"


def code_in(text: str) -> str:
    found = re.search(r"確認コード: (\d{6})", text)
    assert found, text
    return found.group(1)


def test_a_deletion_request_from_the_form_to_the_result_on_a_phone(
        demo: Demo, browser: Any, artifacts: Path) -> None:
    mailbox = demo.parts.mailbox
    assert mailbox is not None and mailbox.running
    context, page, errors = open_page(browser)
    staff_context, staff, staff_errors = open_page(browser)
    try:
        # A patient who browsed with analytics on asks for deletion, including this browser.
        page.goto(demo.url + "/")
        decide(page, "accept_all")
        page.goto(demo.url + "/treatments/hyaluronic")
        demo.flush()
        page.goto(demo.url + "/privacy")
        page.click("a[href^='/_consent/requests']")
        assert page.locator("h1").inner_text() == "個人情報に関するご請求"
        looks_human(page)
        page.screenshot(path=str(artifacts / "request-form-ja-390.png"), full_page=True)
        page.check("input[value=deletion]")
        page.fill("input[name=email]", EMAIL)
        page.fill("textarea[name=text]", "アクセス解析の記録を削除してください。")
        page.check("input[name=attach]")
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "ご請求を受け付けました"
        ref = page.locator(".cmw-ref").inner_text().strip()
        assert re.fullmatch(r"R-[0-9A-Z]{4}-[0-9A-Z]{4}", ref)
        looks_human(page)
        page.screenshot(path=str(artifacts / "request-received-ja-390.png"), full_page=True)

        page.fill("input[name=code]", code_in(mailbox.wait_for(EMAIL, "確認コード").text))
        page.click("button[value=check]")
        assert "ご本人であることを確認しました" in page.inner_text("body")
        looks_human(page)
        page.screenshot(path=str(artifacts / "request-verified-ja-390.png"), full_page=True)

        # Privacy staff complete it in the console, on a phone too.
        staff.goto(demo.url + "/dashboards/login?next=/dashboards/requests")
        staff.fill("input[name=username]", "privacy")
        staff.fill("input[name=password]", PASSWORD)
        staff.click("button[type=submit]")
        staff.wait_for_load_state("load")
        staff.click(f"text={ref}")
        staff.wait_for_load_state("load")
        body = staff.inner_text("body")
        assert "本人確認済み" in body and "訪問者 ID(ブラウザー): " in body  # the attached browser
        looks_human(staff)
        assert not {"person", "system", "visitor_id"} & set(body.split())  # words, not codes
        staff.screenshot(path=str(artifacts / "console-request-ja-390.png"), full_page=True)
        staff.fill("form[action$='/complete'] input[name=note]", "削除を実施しました")
        staff.click("form[action$='/complete'] button")
        # A purge cannot be undone: the form asks for a tick first, and nothing ran yet.
        assert staff.locator("form[action$='/complete'] input[name=confirm]").count() == 1
        assert "実行結果(受領証)" not in staff.inner_text("body")
        staff.check("form[action$='/complete'] input[name=confirm]")
        staff.click("form[action$='/complete'] button")

        def completed() -> bool:
            staff.goto(demo.url + f"/dashboards/requests/{ref}")
            return "実行結果(受領証)" in staff.inner_text("body")

        wait_for(completed, 90, "the purge receipt on the request")
        body = staff.inner_text("body")
        assert "削除と確認" in body and "残った記録\n0" in body.replace("\t", "\n")
        # Consent records are kept as proof and unlinked: the receipt does not call it deleted.
        assert "結び付きを消した同意の記録" in body
        looks_human(staff)
        staff.screenshot(path=str(artifacts / "console-completed-ja-390.png"), full_page=True)
        staff.goto(demo.url + "/dashboards/requests")
        looks_human(staff)
        staff.screenshot(path=str(artifacts / "console-queue-ja-390.png"), full_page=True)
        staff.goto(demo.url + "/dashboards/audit")
        audit = staff.inner_text("body")
        assert "改ざんなし" in audit and "privacy request" not in audit
        assert "(started)" not in audit
        looks_human(staff)

        # The patient is told by mail, and reads the result behind a new code.
        done = mailbox.wait_for(EMAIL, "完了")
        assert "削除を実施しました" in done.text and ref in done.text
        page.goto(demo.url + "/_consent/requests/status?lang=ja")
        page.fill("input[name=ref]", ref)
        page.click("button[value=send]")
        assert "新しい確認コードをメールでお送りしました" in page.inner_text("body")

        def fresh_code() -> bool:
            codes = [m for m in mailbox.received() if "確認コード" in m.subject and ref in
                     m.subject]
            return len(codes) >= 2

        wait_for(fresh_code, 30, "the second code")
        page.fill("input[name=code]", code_in(mailbox.wait_for(EMAIL, "確認コード").text))
        page.click("button[value=check]")
        body = page.inner_text("body")
        assert "完了" in body and "残っていないことを確認しました" in body
        assert "保存を続けるもの" in body
        looks_human(page)
        page.screenshot(path=str(artifacts / "request-completed-ja-390.png"), full_page=True)
        page.goto(demo.url + "/demo/mail")
        looks_human(page)
        page.screenshot(path=str(artifacts / "demo-mailbox-ja-390.png"), full_page=True)
        assert errors == [] and staff_errors == []
    finally:
        context.close()
        staff_context.close()
