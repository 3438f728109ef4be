"""The request form, the status page and the staff console, attacked over HTTP on the served
demo (real uvicorn, real store, the demo's real SMTP server)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from support.servers import PASSWORD, Browser, Demo

EMAIL = "taro@example.jp"
EVIL = {"Origin": "https://evil.example"}


def form(**fields: str) -> dict[str, str]:
    return {"kind": "suspension", "email": EMAIL, "lang": "ja", **fields}


def refs(demo: Demo) -> list[Any]:
    return demo.parts.service.desk.every()


def staff(demo: Demo, user: str = "privacy") -> tuple[Browser, str]:
    """A logged-in console session and its CSRF token."""
    b = demo.browser()
    answer = b.post("/dashboards/login", data={"username": user, "password": PASSWORD,
                                               "next": "/dashboards/requests"})
    assert answer.status_code == 303, answer.text
    page = b.get("/dashboards/requests")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return b, token.group(1) if token else ""


def submitted(demo: Demo, b: Browser, **fields: str) -> str:
    answer = b.post("/_consent/requests", data=form(**fields))
    assert answer.status_code == 201, answer.text
    found = re.search(r"R-[0-9A-Z]{4}-[0-9A-Z]{4}", answer.text)
    assert found
    return found.group(0)


def test_the_form_speaks_the_visitors_language(demo: Demo) -> None:
    b = demo.browser()
    ja = b.get("/_consent/requests", headers={"Accept-Language": "ja"})
    en = b.get("/_consent/requests?lang=en")
    assert ja.status_code == en.status_code == 200
    assert "個人情報に関するご請求" in ja.text and "Privacy requests" in en.text
    assert 'name="attach"' not in ja.text  # a new browser has no records to include
    assert "<script" not in ja.text  # no JavaScript needed


def test_a_cross_site_post_creates_nothing(demo: Demo) -> None:
    b = demo.browser()
    answer = b.post("/_consent/requests", data=form(), headers=EVIL)
    assert answer.status_code == 403 and refs(demo) == []
    status = b.post("/_consent/requests/status", data={"ref": "R-0000-0000", "code": "1"},
                    headers=EVIL)
    assert status.status_code == 403


def test_a_bad_field_comes_back_with_its_reason_and_the_values_kept(demo: Demo) -> None:
    b = demo.browser()
    answer = b.post("/_consent/requests", data=form(email="not-an-address", text="詳細です"))
    assert answer.status_code == 400
    assert "メールアドレスを正しく入力してください" in answer.text and "詳細です" in answer.text
    assert refs(demo) == []
    big = b.post("/_consent/requests", content=b"kind=deletion&text=" + b"x" * 70_000,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413


def test_the_longest_details_in_japanese_are_taken(demo: Demo) -> None:
    # 2,000 characters, the field's limit, are ~18 KB once the browser URL-encodes them.
    b = demo.browser()
    ref = submitted(demo, b, text="診療の記録" * 400)
    assert demo.parts.service.desk.get(ref).text == "診療の記録" * 400
    # Past the limit (within the form's body limit): refused here, the form kept.
    long = b.post("/_consent/requests", data=form(text="診療の記録" * 1000))
    assert long.status_code == 400 and "2,000 文字以内" in long.text
    assert "診療の記録" * 50 in long.text
    from collector.requests.model import MAX_TEXT as COLLECTORS
    from consent_mw.consent.request_form import MAX_TEXT
    assert MAX_TEXT == COLLECTORS


def test_this_browser_is_included_only_when_asked_and_only_its_bound_id(demo: Demo) -> None:
    b = demo.browser()
    visitor = b.accept_all()
    assert 'name="attach"' in b.get("/_consent/requests").text
    plain = submitted(demo, b, email="a@example.jp")
    attached = submitted(demo, b, email="b@example.jp", attach="yes")
    by_ref = {r.ref: r for r in refs(demo)}
    assert by_ref[plain].visitor_ids == [] and by_ref[attached].visitor_ids == [visitor]

    # A cookie that merely names someone's id includes nothing.
    forger = demo.browser()
    forger.http.cookies.set("cmw_vid", visitor)
    assert 'name="attach"' not in forger.get("/_consent/requests").text
    forged = submitted(demo, forger, email="c@example.jp", attach="yes")
    assert {r.ref: r for r in refs(demo)}[forged].visitor_ids == []


def test_submissions_from_one_address_are_limited(demo: Demo) -> None:
    b = demo.browser()
    for n in range(10):
        submitted(demo, b, email=f"p{n}@example.jp")
    answer = b.post("/_consent/requests", data=form(email="p10@example.jp"))
    assert answer.status_code == 429 and answer.headers["retry-after"]
    assert len(refs(demo)) == 10


def test_the_status_page_opens_nothing_without_the_right_code(demo: Demo) -> None:
    b = demo.browser()
    ref = submitted(demo, b)
    unknown = b.post("/_consent/requests/status", data={"ref": "R-0000-0000", "code": "123456",
                                                        "action": "check"})
    assert unknown.status_code == 404 and "見つかりませんでした" in unknown.text
    wrong = b.post("/_consent/requests/status", data={"ref": ref, "code": "000000",
                                                      "action": "check"})
    assert wrong.status_code == 400 and "確認コードが違います" in wrong.text
    assert EMAIL not in wrong.text and "受付日" not in wrong.text
    slip = b.post("/_consent/requests/status", data={"ref": ref, "code": "12345",
                                                     "action": "check"})
    assert slip.status_code == 400 and "6桁の数字" in slip.text
    tries = [e.action for e in demo.parts.service.desk.get(ref).timeline]
    assert tries.count("code_failed") == 1  # the wrong code, not the slip
    again = b.post("/_consent/requests/status", data={"ref": ref, "action": "send"})
    assert again.status_code == 200 and "秒後に送れます" in again.text  # the code is unused


def test_the_console_is_for_privacy_staff_only(demo: Demo) -> None:
    ref = submitted(demo, demo.browser())
    anonymous = demo.browser().get(f"/dashboards/requests/{ref}")
    assert anonymous.status_code == 303 and "/dashboards/login" in anonymous.headers["location"]
    marketer, _ = staff(demo, "marketing")
    assert marketer.get("/dashboards/requests").status_code == 403
    assert marketer.get(f"/dashboards/requests/{ref}/json").status_code == 403
    assert "ご請求" not in marketer.get("/dashboards/overview").text.split("<main>")[0]


def test_console_changes_need_the_same_origin_and_the_session_token(demo: Demo) -> None:
    ref = submitted(demo, demo.browser())
    b, token = staff(demo)
    note = {"note": "窓口で確認"}
    assert b.post(f"/dashboards/requests/{ref}/verify", data=note).status_code == 403
    assert b.post(f"/dashboards/requests/{ref}/verify", data={**note, "csrf": token},
                  headers=EVIL).status_code == 403
    assert demo.parts.service.desk.get(ref).status == "received"
    ok = b.post(f"/dashboards/requests/{ref}/verify", data={**note, "csrf": token})
    assert ok.status_code == 303
    request = demo.parts.service.desk.get(ref)
    assert request.status == "verified" and request.timeline[-1].actor == "privacy"


def test_a_deletion_is_completed_only_with_the_tick_that_says_it_cannot_be_undone(
        demo: Demo) -> None:
    ref = submitted(demo, demo.browser(), kind="deletion")
    b, token = staff(demo)
    verified = b.post(f"/dashboards/requests/{ref}/verify",
                      data={"csrf": token, "note": "窓口で身分証を確認"})
    assert verified.status_code == 303
    unticked = b.post(f"/dashboards/requests/{ref}/complete", data={"csrf": token})
    assert unticked.status_code == 400 and "元に戻せません" in unticked.text
    assert demo.parts.service.desk.get(ref).status == "verified"
    # Ticked, the request goes on to the desk's own checks (no id is linked yet).
    ticked = b.post(f"/dashboards/requests/{ref}/complete",
                    data={"csrf": token, "confirm": "yes"})
    assert ticked.status_code == 409 and "識別子が結び付いていません" in ticked.text


def test_an_unverified_request_cannot_be_completed_from_the_console(demo: Demo) -> None:
    b0 = demo.browser()
    visitor = b0.accept_all()
    ref = submitted(demo, b0, kind="deletion", attach="yes")
    b, token = staff(demo)
    answer = b.post(f"/dashboards/requests/{ref}/complete", data={"csrf": token})
    assert answer.status_code == 409 and "本人確認がまだ済んでいません" in answer.text
    assert demo.parts.service.desk.get(ref).status == "received"
    assert not demo.store.rows("SELECT 1 FROM privacy_requests WHERE operation = 'purge'")
    assert visitor


def test_staff_enter_a_phone_request_look_up_an_id_and_link_it(demo: Demo) -> None:
    someone = demo.browser()
    visitor = someone.accept_all()
    someone.get("/treatments/hyaluronic")
    demo.flush()
    b, token = staff(demo)
    entered = b.post("/dashboards/requests", data={
        "csrf": token, "kind": "disclosure", "channel": "phone", "email": "jiro@example.jp",
        "lang": "ja", "text": "電話で受付"})
    assert entered.status_code == 303
    ref = entered.headers["location"].rsplit("/", 1)[1]
    request = demo.parts.service.desk.get(ref)
    assert request.channel == "phone" and request.timeline[0].actor == "privacy"
    found = b.get(f"/dashboards/requests/{ref}?id_type=visitor_id&value={visitor}")
    assert found.status_code == 200 and "記録の件数" in found.text
    # Words and the dashboards' clock, not column names and ISO timestamps.
    assert "ページ閲覧・イベント: " in found.text and "events:" not in found.text
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", found.text)
    # The fee, the completion and a refusal mail their note: the label says so.
    assert "メールに記載され" in found.text
    bad = b.get(f"/dashboards/requests/{ref}?id_type=visitor_id&value=%3Cscript%3E")
    assert bad.status_code == 200 and "<script>" not in bad.text
    assert "識別子の形式が正しくありません" in bad.text and "is malformed" not in bad.text
    linked = b.post(f"/dashboards/requests/{ref}/link", data={
        "csrf": token, "id_type": "visitor_id", "value": visitor, "note": "予約番号で照合"})
    assert linked.status_code == 303
    assert demo.parts.service.desk.get(ref).subjects == [("visitor_id", visitor)]
    raw = b.get(f"/dashboards/requests/{ref}/json")
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.json()["subjects"] == [["visitor_id", visitor]]
    audit = b.get("/dashboards/audit")
    assert audit.status_code == 200 and "改ざんなし" in audit.text and ref in audit.text


def test_the_console_works_against_a_collector_over_http(demo: Demo) -> None:
    """HttpDesk: the same answers through the collector's /v1/requests, under the staff
    member's name as the admin token records it."""
    from dashboards.desk_backend import HttpDesk

    token, _ = demo.parts.admin_token
    desk = HttpDesk(demo.url + "/_collector", token)
    try:
        ref = desk.submit({"kind": "suspension", "email": EMAIL, "channel": "letter"}, "sato")
        assert [r["ref"] for r in desk.every()] == [ref]
        with pytest.raises(Exception, match="not verified"):
            desk.act(ref, "complete", "sato", {})
        view = desk.act(ref, "verify", "sato", {"note": "書面の署名を照合"})
        assert view["status"] == "verified"
        assert demo.parts.service.desk.get(ref).timeline[-1].actor == "sato [admin token]"
        rows, report = desk.audit(50)
        assert report["ok"] is True and rows
        import zipfile
        from datetime import UTC, datetime

        today = datetime.now(UTC).date().isoformat()
        with desk.evidence(today, today, "sato") as pack:
            assert "index.html" in zipfile.ZipFile(pack).namelist()
        with pytest.raises(Exception, match="before"):
            desk.evidence(today, "2000-01-01", "sato")
    finally:
        desk.close()
    assert httpx.get(demo.url + "/_collector/v1/requests").status_code == 401


def test_staff_make_the_evidence_pack_from_the_console(demo: Demo) -> None:
    import io
    import zipfile
    from datetime import UTC, datetime

    b, token = staff(demo)
    today = datetime.now(UTC).date().isoformat()
    period = {"from": today, "to": today}
    assert b.post("/dashboards/evidence", data=period).status_code == 403  # no CSRF token
    assert b.post("/dashboards/evidence", data={**period, "csrf": token},
                  headers=EVIL).status_code == 403
    answer = b.post("/dashboards/evidence", data={**period, "csrf": token})
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    version = demo.parts.settings.policy_version
    assert "index.html" in names and f"notices/{version}/ja/banner.html" in names
    bad = b.post("/dashboards/evidence", data={"from": today, "to": "2000-01-01",
                                               "csrf": token})
    assert bad.status_code == 400 and "終了日が開始日より前" in bad.text
