"""The middleware around Starlette and FastAPI apps: banner injection, cookies, capture hook."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient
from support.apps import ORIGIN, PAGE_EN, cookie_values, middleware_of, report_shown

from consent_mw import ConsentMiddleware, Settings
from consent_mw.capture.suppression import SuppressionList
from consent_mw.consent.categories import Tag
from consent_mw.consent.records import MemorySink
from consent_mw.wire import RECORD_SCHEMA

# The smoke set that also runs under FastAPI (see conftest.pytest_generate_tests).
pytestmark = pytest.mark.fastapi

MakeClient = Callable[..., TestClient]


def decide(client: TestClient, action: str) -> Any:
    return client.post("/_consent", json={"action": action}, headers={"origin": ORIGIN})


def test_package_exports_the_middleware_and_settings() -> None:
    import consent_mw

    assert consent_mw.ConsentMiddleware is ConsentMiddleware
    assert consent_mw.Settings is Settings
    from consent_mw.capture.api import identify, track

    assert consent_mw.track is track and consent_mw.identify is identify


def test_banner_is_injected_before_the_last_body_tag_with_a_correct_length(
    client: TestClient,
) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert 'id="cmw-banner"' in r.text
    assert r.text.index('id="cmw-banner"') < r.text.rindex("</body>")
    assert int(r.headers["content-length"]) == len(r.content)
    assert "すべて拒否する" in r.text  # <html lang="ja">


def test_banner_language_follows_html_lang_then_accept_language(client: TestClient) -> None:
    assert "Reject all" in client.get("/en").text
    assert "Reject all" in client.get("/nolang", headers={"accept-language": "en-US"}).text
    assert "すべて拒否する" in client.get("/nolang", headers={"accept-language": "fr"}).text
    assert "すべて拒否する" in client.get("/nolang").text


def test_the_banner_says_what_gpc_changes_before_the_tap(client: TestClient) -> None:
    # With GPC, "accept all" leaves marketing off: the banner says so, and only then (the
    # banner bytes are cached: the two must not be served for each other).
    for _ in range(2):
        assert "グローバル・プライバシー・コントロール" in client.get(
            "/nolang", headers={"sec-gpc": "1"}).text
        assert "グローバル・プライバシー・コントロール" not in client.get("/nolang").text
    assert "stay off even if you accept all" in client.get("/en", headers={"sec-gpc": "1"}).text


def test_a_site_without_a_category_gpc_refuses_says_nothing_of_it(
        make_client: MakeClient) -> None:
    from consent_mw.consent.categories import DEFAULT_CATEGORIES

    client = make_client(categories=tuple(c for c in DEFAULT_CATEGORIES
                                          if c.name != "marketing"))
    page = client.get("/nolang", headers={"sec-gpc": "1"}).text
    assert "すべて拒否する" in page and "グローバル・プライバシー・コントロール" not in page


def test_reject_is_as_prominent_as_accept(client: TestClient) -> None:
    html = client.get("/en").text
    reject = re.search(r'<(\w+)([^>]*)value="reject_all"[^>]*>', html)
    accept = re.search(r'<(\w+)([^>]*)value="accept_all"[^>]*>', html)
    assert reject and accept
    assert reject.group(1) == accept.group(1) == "button"
    cls = re.compile(r'class="([^"]+)"')
    assert cls.search(reject.group(0)).group(1) == cls.search(accept.group(0)).group(1)  # type: ignore[union-attr]
    assert 'href="/_consent/preferences?return=/en"' in html


def test_banner_is_an_accessible_dialog_without_inline_script_or_style(client: TestClient) -> None:
    html = client.get("/en").text
    banner = html[html.index("<link"):html.rindex("</body>")]
    assert 'role="dialog"' in banner and 'aria-labelledby="cmw-banner-title"' in banner
    assert 'id="cmw-banner-title"' in banner
    assert "style=" not in banner and "<style" not in banner
    assert re.findall(r"<script(?![^>]*\bsrc=)", banner) == []
    assert 'src="/_consent/static/banner.js"' in banner


def test_altered_html_varies_on_cookie_and_gpc_and_is_private(client: TestClient) -> None:
    r = client.get("/cached")
    assert "cmw-banner" in r.text
    assert "Cookie" in r.headers["vary"] and "Sec-GPC" in r.headers["vary"]
    assert r.headers["cache-control"].startswith("private")
    assert "public" not in r.headers["cache-control"]


@pytest.mark.parametrize("path", ["/stream", "/gzip", "/json", "/static/page.html"])
def test_streamed_compressed_non_html_and_excluded_responses_are_untouched(
    client: TestClient, path: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert b"cmw-banner" not in r.content
    assert "cmw_consent_shown" not in cookie_values(r)


def test_head_and_304_are_untouched(client: TestClient) -> None:
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert "cmw_consent_shown" not in cookie_values(head)
    assert client.get("/notmodified").status_code == 304


def test_banner_disappears_after_a_decision_and_the_page_is_unaltered(client: TestClient) -> None:
    assert decide(client, "reject_all").status_code == 200
    r = client.get("/en")
    assert r.text == PAGE_EN
    assert "Cookie" in r.headers["vary"]


def test_visitor_cookie_only_after_analytics_is_granted(client: TestClient) -> None:
    assert "cmw_vid" not in cookie_values(client.get("/"))
    r = decide(client, "reject_all")
    assert "cmw_vid" not in client.cookies and r.json()["visitor_id"] is None
    r = decide(client, "accept_all")
    vid = cookie_values(r)["cmw_vid"]
    assert f"Max-Age={395 * 86400}" in vid and "HttpOnly" in vid
    assert client.cookies["cmw_vid"] == r.json()["visitor_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", client.cookies["cmw_vid"])


def test_visitor_cookie_is_not_reissued_or_extended_on_later_visits(client: TestClient) -> None:
    decide(client, "accept_all")
    vid = client.cookies["cmw_vid"]
    r = client.get("/")
    assert "cmw_vid" not in cookie_values(r)
    assert client.get("/ctx").json()["visitor_id"] == vid


def test_the_session_cookie_slides_at_most_once_a_minute(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    decide(client, "accept_all")
    first = client.cookies["cmw_sid"]
    sid = client.get("/ctx").json()["session_id"]
    assert first.split(".")[0] == sid
    assert "cmw_sid" not in cookie_values(client.get("/"))  # set 0 s ago: not again
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    slid = cookie_values(client.get("/"))["cmw_sid"]
    assert slid.startswith(f"cmw_sid={sid}.{int(later):x}.") and "Max-Age=1800" in slid
    assert client.get("/ctx").json()["session_id"] == sid


def test_a_session_cookie_the_server_did_not_issue_starts_a_new_session(
        client: TestClient) -> None:
    decide(client, "accept_all")
    del client.cookies["cmw_sid"]
    client.cookies.set("cmw_sid", "legacy0123456789")  # older, unsigned form
    r = client.get("/ctx")
    assert r.json()["session_id"] not in (None, "legacy0123456789")
    assert cookie_values(r)["cmw_sid"].startswith(f"cmw_sid={r.json()['session_id']}.")


def test_withdrawing_analytics_expires_visitor_and_session_cookies(client: TestClient) -> None:
    decide(client, "accept_all")
    client.get("/")
    r = client.post("/_consent", json={"categories": {"marketing": True}},
                    headers={"origin": ORIGIN})
    cookies = cookie_values(r)
    assert "Max-Age=0" in cookies["cmw_vid"] and "Max-Age=0" in cookies["cmw_sid"]
    assert "cmw_vid" not in client.cookies
    assert client.get("/ctx").json()["visitor_id"] is None


def test_a_leftover_visitor_cookie_without_consent_is_expired(client: TestClient) -> None:
    client.cookies.set("cmw_vid", "0" * 32)
    r = client.get("/")
    assert "Max-Age=0" in cookie_values(r)["cmw_vid"]


def test_request_context_is_in_the_scope(client: TestClient) -> None:
    body = client.get("/ctx", headers={"sec-gpc": "1", "accept-language": "en"}).json()
    assert body == {"decided": False, "categories": {"necessary": True, "analytics": False,
                                                     "location": False, "marketing": False},
                    "visitor_id": None, "session_id": None, "gpc": True, "locale": "en"}


def test_websocket_passes_through_untouched(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "echo:hi:False"


def test_fastapi_native_route_passes_through(make_settings: Callable[..., Settings]) -> None:
    from support.apps import fastapi_app

    with TestClient(fastapi_app(make_settings())) as client:
        r = client.get("/api/items")
    assert r.json() == {"items": [1, 2]} and "set-cookie" not in r.headers


@pytest.mark.parametrize("cookie", [
    "cmw_consent=garbage", "cmw_consent=..", "cmw_consent=\"unterminated",
    "cmw_consent=%ff%fe", "cmw_consent=a" + "b" * 6000, "=;;;==",
])
def test_bad_cookies_never_break_the_page(client: TestClient, cookie: str) -> None:
    r = client.get("/", headers={"cookie": cookie})
    assert r.status_code == 200 and "cmw-banner" in r.text
    # A cookie that does not verify is no decision, not a failure: nothing was swallowed.
    assert middleware_of(client).stats()["failures"] == 0


def test_a_request_that_cannot_be_read_is_served_as_undecided_and_counted(
        client: TestClient) -> None:
    # Header pairs that are not bytes break reading them; the page is served regardless.
    mw = middleware_of(client)
    scope = {"type": "http", "method": "GET", "path": "/en", "scheme": "http",
             "query_string": b"", "headers": [("cookie", 1)], "client": ("127.0.0.1", 1)}
    messages: list[Any] = []

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        messages.append(message)

    from support.servers import run_async

    run_async(mw(scope, receive, send))
    assert messages[0]["status"] == 200 and b"cmw-banner" in messages[1]["body"]
    stats = mw.stats()
    assert stats["errors"]["read_request"] == 1 and stats["failures"] == 1


def test_shown_record_is_written_once_per_undecided_visitor(client: TestClient,
                                                             sink: MemorySink) -> None:
    client.get("/")
    assert sink.records == []  # serving the banner records nothing: its display does
    for path in ("/", "/en", "/"):
        assert report_shown(client, path=path).status_code == 204
    shown = [r for r in sink.records if r["event"] == "shown"]
    assert len(shown) == 1
    jsonschema.validate(shown[0], RECORD_SCHEMA)
    assert shown[0]["component"] == "banner" and shown[0]["method"] == "none"
    assert shown[0]["path"] == "/" and shown[0]["locale"] == "ja"
    decide(client, "accept_all")
    decided = [r for r in sink.records if r["event"] == "decided"]
    # The choice answers the banner (linked by record), under a consent id of its own: the
    # marker cookie could have been copied from another browser.
    assert decided[0]["previous_record_id"] == shown[0]["record_id"]
    assert decided[0]["consent_id"] != shown[0]["consent_id"]


def test_decision_records_are_valid_and_linked(client: TestClient, sink: MemorySink) -> None:
    decide(client, "accept_all")
    decide(client, "reject_all")
    client.post("/_consent", json={"categories": {"analytics": True}},
                headers={"origin": ORIGIN})
    events = [(r["event"], r["method"], r["component"]) for r in sink.records]
    assert events == [("decided", "accept_all", "api"), ("withdrawn", "reject_all", "api"),
                      ("updated", "api", "api")]
    for prev, rec in zip(sink.records, sink.records[1:], strict=False):
        jsonschema.validate(rec, RECORD_SCHEMA)
        assert rec["previous_record_id"] == prev["record_id"]
    first, withdrawn, regranted = sink.records
    assert withdrawn["consent_id"] == first["consent_id"]
    # Granted again after a withdrawal, the visitor gets a new visitor id, and with it a new
    # consent id: a consent id never spans two visitor ids.
    assert regranted["consent_id"] != first["consent_id"]
    assert all("ip" not in r for r in sink.records)


def test_gpc_refuses_marketing_and_is_recorded_once(client: TestClient, sink: MemorySink) -> None:
    gpc = {"sec-gpc": "1", "origin": ORIGIN}
    r = client.post("/_consent", json={"action": "accept_all"}, headers=gpc)
    assert r.json()["categories"]["marketing"] is False
    assert r.json()["gcm"]["ad_user_data"] == "denied"
    for _ in range(3):
        client.get("/", headers=gpc)
    applied = [rec for rec in sink.records if rec["event"] == "gpc_applied"]
    assert len(applied) == 1 and applied[0]["method"] == "gpc" and applied[0]["gpc"] is True


def test_gpc_arriving_after_a_grant_is_recorded_once_per_consent(client: TestClient,
                                                                  sink: MemorySink) -> None:
    decide(client, "accept_all")
    for _ in range(3):
        assert client.get("/ctx", headers={"sec-gpc": "1"}).json()["categories"][
            "marketing"] is False
    assert [r["event"] for r in sink.records].count("gpc_applied") == 1
    assert client.get("/ctx").json()["categories"]["marketing"] is True  # GPC off again


def test_explicit_opt_in_on_preferences_overrides_gpc(client: TestClient,
                                                      sink: MemorySink) -> None:
    r = client.post("/_consent", data={"form": "preferences", "marketing": "on",
                                       "return": "/"}, headers={"origin": ORIGIN, "sec-gpc": "1"})
    assert r.status_code == 303
    assert client.get("/ctx", headers={"sec-gpc": "1"}).json()["categories"]["marketing"]
    assert sink.records[-1]["gpc_conflict"] is True
    assert sink.records[-1]["component"] == "preferences"


class FakeCapture:
    """Stands in for the capture pipeline: records what the middleware hands it."""

    def __init__(self) -> None:
        self.pages: list[tuple[str, int, Any]] = []
        self.calls: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.fail = False
        self.suppressions = SuppressionList(b"key")

    def page(self, ctx: Any, scope: Any, status: int, header_bytes: int = -1) -> None:
        self.pages.append((scope["path"], status, ctx.visitor_id))
        if self.fail:
            raise RuntimeError("capture broke")

    def write(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def start(self) -> None:
        self.calls.append("start")

    def shutdown(self, timeout: float = 5.0) -> None:
        self.calls.append("shutdown")

    def stats(self) -> dict[str, Any]:
        return {"dropped": {"error": 0}, "worker_errors": 0}


@pytest.fixture
def fake_capture() -> FakeCapture:
    return FakeCapture()


def test_capture_sees_every_non_excluded_response_and_consent_records(
    make_client: MakeClient, fake_capture: FakeCapture
) -> None:
    client = make_client(middleware_kwargs={"capture": fake_capture, "record_sink": None})
    client.get("/")
    client.get("/json")
    client.get("/static/page.html")
    client.get("/_consent")
    capture = fake_capture
    assert [(p, s) for p, s, _ in capture.pages] == [("/", 200), ("/json", 200)]
    report_shown(client)
    assert [r["event"] for r in capture.records] == ["shown"]  # default sink = capture


def test_capture_is_off_without_transport_or_collector(make_client: MakeClient) -> None:
    client = make_client()
    client.get("/")
    mw = middleware_of(client)
    assert mw.capture is None and mw.stats()["capture"] is None


def test_a_failing_capture_never_breaks_the_page(make_client: MakeClient,
                                                 fake_capture: FakeCapture) -> None:
    client = make_client(middleware_kwargs={"capture": fake_capture})
    client.get("/json")
    mw = middleware_of(client)
    assert mw.stats()["failures"] == 0
    fake_capture.fail = True
    r = client.get("/en")
    assert r.status_code == 200 and "cmw-banner" in r.text
    stats = mw.stats()
    assert stats["errors"]["capture"] == 1 and stats["failures"] == 1


def test_lifespan_starts_and_shuts_down_capture(make_client: MakeClient,
                                                fake_capture: FakeCapture) -> None:
    client = make_client(middleware_kwargs={"capture": fake_capture})
    with client:
        assert fake_capture.calls == ["start"]
    assert fake_capture.calls == ["start", "shutdown"]
    assert middleware_of(client).stats()["failures"] == 0


GA = Tag(name="ga4", kind="google_analytics", category="analytics", service="google_analytics",
         measurement_id="G-TEST123", recipient={"en": "Google LLC"}, items={"en": "pages"},
         purpose={"en": "stats"})
ADS = Tag(name="ads", kind="script", category="marketing", src="https://ads.example/t.js",
          recipient={"en": "Ads Inc"}, items={"en": "clicks"}, purpose={"en": "ads"})


def test_nothing_of_google_before_a_grant(make_client: MakeClient) -> None:
    client = make_client(tags=(GA, ADS))
    assert "googletagmanager" not in client.get("/en").text
    decide(client, "reject_all")
    html = client.get("/en").text
    assert "googletagmanager" not in html and "gcm.js" not in html and "ads.example" not in html


def test_granted_google_tag_is_preceded_by_consent_mode_default_and_update(
    make_client: MakeClient,
) -> None:
    client = make_client(tags=(GA, ADS))
    decide(client, "accept_all")
    r = client.get("/en")
    html = r.text
    gcm_at = html.index('src="/_consent/static/gcm.js"')
    assert gcm_at < html.index("googletagmanager.com/gtag/js?id=G-TEST123")
    assert "data-gcm-default=" in html and "&quot;ad_storage&quot;:&quot;granted&quot;" in html
    assert "ads.example/t.js" in html
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.headers["cache-control"] == "private"


def test_tag_needs_its_service_and_gpc_removes_marketing_tags(make_client: MakeClient) -> None:
    client = make_client(tags=(GA, ADS))
    client.post("/_consent", json={"categories": {"analytics": True, "marketing": True},
                                   "services": {}}, headers={"origin": ORIGIN})
    html = client.get("/en").text
    assert "G-TEST123" not in html and "ads.example" in html
    assert "ads.example" not in client.get("/en", headers={"sec-gpc": "1"}).text


def test_cookies_are_secure_over_https(make_client: MakeClient) -> None:
    client = make_client(base_url="https://testserver")
    r = client.post("/_consent", json={"action": "accept_all"},
                    headers={"origin": "https://testserver"})
    assert all(line.endswith("Secure") for line in r.headers.get_list("set-cookie"))
    assert "Max-Age=15724800" in cookie_values(r)["cmw_consent"]


def test_refusal_lasts_as_long_as_acceptance(client: TestClient) -> None:
    refused = cookie_values(decide(client, "reject_all"))["cmw_consent"]
    accepted = cookie_values(decide(client, "accept_all"))["cmw_consent"]
    age = re.compile(r"Max-Age=(\d+)")
    assert age.search(refused).group(1) == age.search(accepted).group(1)  # type: ignore[union-attr]


def test_a_new_policy_version_shows_the_banner_again(make_client: MakeClient) -> None:
    first = make_client(policy_text="v1")
    decide(first, "accept_all")
    second = make_client(policy_text="v2")
    second.cookies = first.cookies
    assert "cmw-banner" in second.get("/").text
    assert "cmw-banner" not in first.get("/").text


def test_altered_pages_drop_validators_so_a_304_cannot_revive_the_banner(
    client: TestClient,
) -> None:
    r = client.get("/etag")
    assert "cmw-banner" in r.text
    assert "etag" not in r.headers and "last-modified" not in r.headers
    decide(client, "reject_all")
    assert client.get("/etag").headers["etag"] == '"v1"'  # unaltered: validators kept


def test_records_carry_the_language_the_banner_was_shown_in(client: TestClient,
                                                            sink: MemorySink) -> None:
    client.get("/en")
    report_shown(client, locale="en", path="/en")
    client.post("/_consent", data={"action": "reject_all", "locale": "en", "return": "/en"},
                headers={"origin": ORIGIN, "accept-language": "ja"})
    assert [(r["event"], r["locale"]) for r in sink.records] == [("shown", "en"),
                                                                 ("decided", "en")]
    assert sink.records[1]["component"] == "banner"


def test_responses_carrying_id_cookies_are_never_publicly_cacheable(client: TestClient) -> None:
    decide(client, "accept_all")
    del client.cookies["cmw_sid"]  # a new session: the response sets its cookie
    r = client.get("/json")
    assert "cmw_sid" in cookie_values(r)
    assert r.headers["cache-control"] == "private"


def test_a_duplicated_consent_cookie_means_no_decision(client: TestClient) -> None:
    decide(client, "accept_all")
    value = client.cookies["cmw_consent"]
    client.cookies.clear()
    r = client.get("/ctx", headers={"cookie": f"cmw_consent={value}; cmw_consent={value}"})
    assert r.json()["decided"] is False
    r = client.get("/", headers={"cookie": f"cmw_consent={value}"})
    assert "cmw-banner" not in r.text


def test_banner_can_be_turned_off_for_sites_with_their_own_ui(make_client: MakeClient) -> None:
    client = make_client(banner=False)
    r = client.get("/en")
    assert r.text == PAGE_EN and "cmw_consent_shown" not in cookie_values(r)


def test_settings_default_to_the_environment(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no consent-mw.toml here
    monkeypatch.setenv("CONSENT_MW_SECRET_KEY", "env-secret-0123456789abcdef")
    monkeypatch.setenv("CONSENT_MW_PREFIX", "/privacy")
    mw = ConsentMiddleware(lambda *a: None)  # type: ignore[arg-type]
    assert mw.settings.prefix == "/privacy"
    assert mw.settings.secret_keys[0].value == "env-secret-0123456789abcdef"


def test_response_headers_given_as_a_generator_are_read_once_and_kept(
        make_settings: Callable[..., Settings]) -> None:
    import asyncio
    import threading

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": (h for h in [(b"content-type", b"application/json"),
                                            (b"x-app", b"1")])})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    mw = ConsentMiddleware(app, settings=make_settings())
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "scheme": "http"}
    # In its own thread: a browser test's Playwright may leave a loop in this one.
    runner = threading.Thread(target=lambda: asyncio.run(mw(scope, receive, send)))
    runner.start()
    runner.join(10)
    assert (b"x-app", b"1") in list(sent[0]["headers"])
    assert mw.stats()["failures"] == 0


def test_shown_reports_are_same_origin_bounded_and_only_for_undecided_visitors(
        make_client: MakeClient, sink: MemorySink, monkeypatch: pytest.MonkeyPatch) -> None:
    import consent_mw.consent.posts as posts_module

    monkeypatch.setattr(posts_module, "SHOWN_PER_HOUR", 3)
    client = make_client()
    cross = client.post("/_consent/shown", json={}, headers={"origin": "https://evil.example"})
    assert cross.status_code == 403 and sink.records == []
    assert client.post("/_consent/shown", content=b"[1]",
                       headers={"origin": ORIGIN}).status_code == 400
    decide(client, "reject_all")
    assert report_shown(client).status_code == 204
    assert [r["event"] for r in sink.records] == ["decided"]  # a decided visitor: nothing
    # A script that drops its cookies is held to the per-address budget.
    fresh = make_client()
    for _ in range(6):
        fresh.cookies.clear()
        assert report_shown(fresh).status_code == 204
    assert sum(r["event"] == "shown" for r in sink.records) == 3
