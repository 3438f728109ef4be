"""The middleware's own routes: status, submissions, pages, static files, gpc.json."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.apps import ORIGIN, cookie_values, starlette_app
from support.servers import run_async

from consent_mw.consent.categories import Tag
from consent_mw.http import BadRequest, read_body
from consent_mw.settings import Settings
from consent_mw.state import RequestContext

MakeClient = Callable[..., TestClient]
SAME = {"origin": ORIGIN}


def test_status_reports_an_undecided_visitor(client: TestClient) -> None:
    r = client.get("/_consent")
    body = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert {"decided", "categories", "policy_version", "consent_id", "visitor_id",
            "gcm"} <= set(body)
    assert body["decided"] is False and body["consent_id"] is None
    assert body["categories"] == {"necessary": True, "analytics": False, "location": False,
                                  "marketing": False}
    assert len(body["gcm"]) == 7 and body["gcm"]["analytics_storage"] == "denied"


def test_json_accept_all_then_status(client: TestClient) -> None:
    r = client.post("/_consent", json={"action": "accept_all"}, headers=SAME)
    assert r.status_code == 200 and r.json()["decided"] is True
    status = client.get("/_consent").json()
    assert status["categories"]["analytics"] is True
    assert status["visitor_id"] == client.cookies["cmw_vid"]
    assert status["consent_id"] == r.json()["consent_id"]


def test_json_categories_submission(client: TestClient) -> None:
    r = client.post("/_consent", json={"categories": {"location": True}}, headers=SAME)
    assert r.json()["categories"] == {"necessary": True, "analytics": False, "location": True,
                                      "marketing": False}
    assert "cmw_vid" not in client.cookies


@pytest.mark.parametrize(("body", "reason"), [
    ({"categories": {"spying": True}}, "unknown category 'spying'"),
    ({"action": "maybe"}, "unknown action"),
    ({"categories": ["analytics"]}, "must be an object"),
    ({"categories": {"analytics": True}, "foo": 1}, "unknown fields"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_json_submissions_are_400_with_a_reason(client: TestClient, body: Any,
                                                    reason: str) -> None:
    r = client.post("/_consent", content=json.dumps(body),
                    headers={**SAME, "content-type": "application/json"})
    assert r.status_code == 400 and reason in r.json()["message"]
    assert "cmw_consent" not in client.cookies


def test_invalid_json_is_400(client: TestClient) -> None:
    r = client.post("/_consent", content=b"{nope",
                    headers={**SAME, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["message"].startswith("invalid JSON")


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post("/_consent", content=b"action=accept_all",
                    headers={**SAME, "content-type": "text/plain"})
    assert r.status_code == 415


def test_oversized_body_is_413(client: TestClient) -> None:
    r = client.post("/_consent", content=b"{" + b" " * 9000 + b"}",
                    headers={**SAME, "content-type": "application/json"})
    assert r.status_code == 413


def test_body_is_read_incrementally_and_stops_early() -> None:
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        sent.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def run() -> None:
        await read_body(receive, 2500)

    with pytest.raises(BadRequest) as info:
        run_async(run())
    assert info.value.status == 413 and len(sent) == 3  # never read past the limit


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"sec-fetch-site": "cross-site"},
    {"referer": "https://evil.example/page"},
    {},
])
def test_cross_site_or_unproven_submissions_are_403(client: TestClient,
                                                    headers: dict[str, str]) -> None:
    r = client.post("/_consent", data={"action": "accept_all"}, headers=headers)
    assert r.status_code == 403
    assert "cmw_consent" not in client.cookies


@pytest.mark.parametrize("headers", [
    {"origin": ORIGIN},
    {"sec-fetch-site": "same-origin"},
    {"sec-fetch-site": "none"},
    {"referer": ORIGIN + "/some/page?x=1"},
])
def test_same_site_submissions_are_accepted(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/_consent", data={"action": "reject_all", "return": "/en"}, headers=headers)
    assert r.status_code == 303 and r.headers["location"] == "/en"


def test_configured_allowed_origin_may_post(make_client: MakeClient) -> None:
    client = make_client(allowed_origins=("https://www.example.jp",))
    r = client.post("/_consent", json={"action": "accept_all"},
                    headers={"origin": "https://www.example.jp"})
    assert r.status_code == 200


def test_missing_host_is_400(make_settings: Callable[..., Settings]) -> None:
    app = starlette_app(make_settings())
    messages: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "POST", "path": "/_consent", "scheme": "http",
             "query_string": b"", "headers": [(b"content-type", b"application/json")],
             "asgi": {"version": "3.0"}, "http_version": "1.1", "root_path": ""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"action":"accept_all"}', "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    run_async(app(scope, receive, send))
    assert messages[0]["status"] == 400
    assert b"Host" in messages[1]["body"]


def test_form_post_redirects_back_with_303(client: TestClient) -> None:
    r = client.post("/_consent", data={"action": "accept_all", "return": "/en?x=1"},
                    headers=SAME)
    assert r.status_code == 303 and r.headers["location"] == "/en?x=1"
    assert "cmw_consent" in cookie_values(r) and "cmw_vid" in cookie_values(r)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "evil", "/ok\r\nSet-Cookie: x=1", ""])
def test_form_post_only_returns_to_same_site_relative_paths(client: TestClient,
                                                            target: str) -> None:
    r = client.post("/_consent", data={"action": "reject_all", "return": target}, headers=SAME)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_form_checkboxes_set_categories_and_services(client: TestClient) -> None:
    r = client.post("/_consent", data={"form": "preferences", "action": "save",
                                       "analytics": "on", "service.google_analytics": "on"},
                    headers=SAME)
    assert r.status_code == 303
    status = client.get("/_consent").json()
    assert status["categories"]["analytics"] and not status["categories"]["marketing"]
    assert status["services"] == {"google_analytics": True}


def test_preferences_form_without_the_service_box_refuses_the_service(client: TestClient) -> None:
    client.post("/_consent", data={"form": "preferences", "analytics": "on"}, headers=SAME)
    assert client.get("/_consent").json()["services"] == {"google_analytics": False}


def test_form_with_unknown_category_is_400(client: TestClient) -> None:
    r = client.post("/_consent", data={"tracking": "on"}, headers=SAME)
    assert r.status_code == 400 and "unknown category 'tracking'" in r.text


def test_preferences_page_lists_every_category_nothing_pre_ticked(client: TestClient) -> None:
    r = client.get("/_consent/preferences", headers={"accept-language": "en"})
    html = r.text
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="cmw-cat-necessary" checked disabled' in html
    for name in ("analytics", "location", "marketing"):
        assert f'name="{name}" value="on" aria' in html  # unchecked
    assert 'name="service.google_analytics" value="on">' in html
    assert "13 months; the full IP address is erased after 30 days" in html
    assert 'href="/_consent/external-transmission' in html
    assert 'method="post" action="/_consent"' in html
    assert "Download my data" not in html
    assert "<script" not in html and "style=" not in html
    assert "Nothing is pre-selected" in html
    # No other site may frame it and lay its own buttons over "accept all".
    assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert r.headers["x-frame-options"] == "DENY"


def test_preferences_page_shows_current_choices_in_japanese_by_default(client: TestClient) -> None:
    client.post("/_consent", json={"categories": {"marketing": True}}, headers=SAME)
    html = client.get("/_consent/preferences").text
    assert 'lang="ja"' in html and "プライバシー設定" in html
    assert 'name="marketing" value="on" checked' in html
    assert 'name="analytics" value="on" aria' in html
    # Ticked boxes are the visitor's own choice now: the page no longer says none are.
    assert "チェックは、いまの設定です" in html
    assert "あらかじめ選択されている項目はありません" not in html


def test_withdrawal_from_the_preferences_page(client: TestClient) -> None:
    client.post("/_consent", json={"action": "accept_all"}, headers=SAME)
    r = client.post("/_consent", data={"form": "preferences", "action": "reject_all",
                                       "analytics": "on",
                                       "return": "/_consent/preferences?saved=1"},
                    headers=SAME)
    assert r.status_code == 303 and "Max-Age=0" in cookie_values(r)["cmw_vid"]
    assert not any(v for k, v in client.get("/_consent").json()["categories"].items()
                   if k != "necessary")


class EnabledSelfService:
    def __init__(self, handles: bool) -> None:
        self.handles = handles
        self.calls: list[str] = []

    @property
    def enabled(self) -> bool:
        return True

    async def handle(self, ctx: RequestContext, scope: dict[str, Any], receive: Any,
                     send: Any, *, visitor_id: str | None, forget: Any) -> bool:
        self.calls.append(scope["path"])
        if not self.handles:
            return False
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"your data"})
        return True


def test_self_service_links_and_routing(make_client: MakeClient) -> None:
    service = EnabledSelfService(handles=True)
    client = make_client(middleware_kwargs={"self_service": service})
    html = client.get("/_consent/preferences?lang=en").text
    assert "Download my data" in html and "Delete my data" in html
    assert client.get("/_consent/my-data").text == "your data"
    assert service.calls == ["/_consent/my-data"]
    assert 'href="/_consent/my-data"' in html and 'href="/_consent/my-data/delete"' in html


def test_self_service_declining_is_404(make_client: MakeClient) -> None:
    client = make_client(middleware_kwargs={"self_service": EnabledSelfService(handles=False)})
    assert client.get("/_consent/my-data").status_code == 404


def test_my_data_is_404_when_self_service_is_not_configured(client: TestClient) -> None:
    assert client.get("/_consent/my-data").status_code == 404


TAG = Tag(name="Google Analytics 4", kind="google_analytics", category="analytics",
          measurement_id="G-X1", recipient={"ja": "Google LLC", "en": "Google LLC"},
          items={"ja": "閲覧ページ", "en": "Pages viewed, device"},
          purpose={"ja": "解析", "en": "Usage statistics"},
          opt_out={"en": "Refuse analytics"}, opt_out_url="https://tools.google.com/dlpage/gaoptout")


def test_external_transmission_notice_is_generated_from_the_tags(make_client: MakeClient) -> None:
    client = make_client(tags=(TAG,))
    html = client.get("/_consent/external-transmission?lang=en").text
    for text in ("Google Analytics 4", "Google LLC", "Pages viewed, device", "Usage statistics",
                 "Refuse analytics", "https://tools.google.com/dlpage/gaoptout", "Analytics"):
        assert text in html
    assert "外部送信" in client.get("/_consent/external-transmission").text


def test_a_tag_of_a_service_is_headed_by_the_services_label(make_client: MakeClient) -> None:
    client = make_client(tags=(dataclasses.replace(TAG, name="google_analytics",
                                                   service="google_analytics"),))
    html = client.get("/_consent/external-transmission").text
    assert "<h2>Google アナリティクス</h2>" in html and "google_analytics</h2>" not in html


def test_external_transmission_notice_without_tags(client: TestClient) -> None:
    assert "No tags currently" in client.get("/_consent/external-transmission?lang=en").text


def test_gpc_json(client: TestClient) -> None:
    r = client.get("/.well-known/gpc.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["gpc"] is True and len(body["lastUpdate"]) == 10
    assert body["lastUpdate"][4] == body["lastUpdate"][7] == "-"


@pytest.mark.parametrize(("name", "ctype"), [("banner.js", "text/javascript"),
                                             ("banner.css", "text/css"),
                                             ("gcm.js", "text/javascript")])
def test_static_files_are_served(client: TestClient, name: str, ctype: str) -> None:
    r = client.get(f"/_consent/static/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)
    assert len(r.content) > 100


@pytest.mark.parametrize("path", ["/_consent/static/../settings.py", "/_consent/static/nope.js",
                                  "/_consent/nothing"])
def test_unknown_consent_paths_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_wrong_method_is_405(client: TestClient) -> None:
    assert client.delete("/_consent").status_code == 405
    assert client.post("/_consent/preferences", headers=SAME).status_code == 405


def test_every_refusal_has_the_one_error_shape(client: TestClient) -> None:
    accept = {"accept": "application/json"}
    missing = client.get("/_consent/nothing", headers=accept)
    wrong = client.delete("/_consent", headers=accept)
    cross = client.post("/_consent", json={"action": "accept_all"},
                        headers={"origin": "https://evil.example"})
    assert missing.json() == {"error": "not_found", "message": "not found"}
    assert wrong.json() == {"error": "method_not_allowed", "message": "method not allowed"}
    assert wrong.headers["allow"] == "GET, HEAD, POST"
    assert cross.status_code == 403 and cross.json()["error"] == "cross_site"
    assert set(cross.json()) == {"error", "message"}
    # A browser (no JSON asked for) reads the reason as text.
    assert client.get("/_consent/nothing").text == "not found"


def test_consent_decisions_are_limited_per_address_and_refusals_take_no_token(
        make_client: MakeClient, sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import consent_mw.consent.posts as posts_module

    monkeypatch.setattr(posts_module, "DECISIONS_PER_HOUR", 3)
    client = make_client()
    for _ in range(3):  # cross-site attempts are refused before the budget is touched
        assert client.post("/_consent", json={"action": "accept_all"},
                           headers={"origin": "https://evil.example"}).status_code == 403
    answers = []
    for _ in range(5):  # a script dropping its cookies between decisions
        client.cookies.clear()
        answers.append(client.post("/_consent", json={"action": "accept_all"},
                                   headers={"origin": ORIGIN}))
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    refused = answers[-1]
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    assert sum(r["event"] == "decided" for r in sink.records) == 3
