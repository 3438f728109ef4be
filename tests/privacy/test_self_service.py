"""Visitor self-service through the real consent middleware, backed by the in-process collector:
download, delete (queued, the browser reset at once, the receipt following), and the pages a
visitor reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from support.privacy import KEY, wire_event

from collector.transport import InProcessRights
from consent_mw.config import Secret
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.consent.rights import RightsBusy
from consent_mw.consent.self_service import SelfService

SAME = {"Origin": "http://testserver"}
JSON = {**SAME, "Accept": "application/json"}


def site(settings: Any, rights: Any, transport: Any = None, **kw: Any
         ) -> tuple[TestClient, ConsentMiddleware]:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse("<html><body>home</body></html>")

    app = Starlette(routes=[Route("/", home)])
    mw = ConsentMiddleware(app, settings=settings, transport=transport,
                           self_service=SelfService(settings, rights=rights, **kw))
    return TestClient(mw, follow_redirects=False), mw


def consented(client: TestClient) -> str:
    resp = client.post("/_consent", json={"action": "accept_all"}, headers=SAME)
    assert resp.status_code == 200
    visitor = client.cookies.get("cmw_vid")
    assert visitor
    return str(visitor)


def wait_status(client: TestClient, url: str, want: str = "completed") -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(url, headers={"accept": "application/json"}).json()
        if body["status"] == want:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def set_cookie_lines(response: Any) -> dict[str, str]:
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


def test_a_visitor_downloads_then_deletes_their_data_and_the_receipt_follows(
    service: Any, make_settings: Callable[..., Any]
) -> None:
    client, _ = site(make_settings(capture=False), InProcessRights(service.privacy))
    visitor = consented(client)
    service.ingest.process([wire_event(visitor_id=visitor, path=f"/t{i}") for i in range(3)])

    download = client.get("/_consent/my-data")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert len(download.json()["events"]) == 3

    unconfirmed = client.post("/_consent/my-data/delete", data={"confirm": "no"}, headers=JSON)
    assert unconfirmed.status_code == 400
    deleted = client.post("/_consent/my-data/delete", data={"confirm": "yes"}, headers=JSON)
    assert deleted.status_code == 202
    # Suppressed before the answer: nothing more is stored for this id.
    assert service.privacy.is_suppressed("visitor_id", visitor)
    receipt = wait_status(client, deleted.json()["status_url"])["receipt"]
    assert receipt["remaining"] == 0 and receipt["rows_deleted"]["events"] == 3
    assert service.store.scalar("SELECT count() FROM events") == 0


def test_deleting_resets_the_browser_so_nothing_more_is_recorded_under_the_old_ids(
    service: Any, make_settings: Callable[..., Any]
) -> None:
    # The collector hashes ids with the middleware's key, as in a deployment.
    settings = make_settings(capture=True, user_id_key=Secret(KEY.decode()))
    client, mw = site(settings, InProcessRights(service.privacy), transport=service.transport)
    assert mw.capture is not None
    service.privacy.attach(mw.capture.suppressions)
    visitor = consented(client)
    old_consent = mw.codec.load_consent(client.cookies["cmw_consent"])
    assert old_consent is not None
    old_cid = old_consent.state.consent_id
    client.get("/")
    deleted = client.post("/_consent/my-data/delete", data={"confirm": "yes"}, headers=JSON)
    assert deleted.status_code == 202
    cookies = set_cookie_lines(deleted)
    assert "Max-Age=0" in cookies["cmw_vid"] and "Max-Age=0" in cookies["cmw_sid"]
    now = mw.codec.load_consent(client.cookies["cmw_consent"])
    assert now is not None and now.state.decided and not now.state.granted("analytics")
    assert now.state.consent_id != old_cid
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert "cmw_vid" not in client.cookies
    wait_status(client, deleted.json()["status_url"])
    assert mw.capture.force_flush(10)
    store = service.store
    assert store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String} OR "
                        "consent_id = {c:String}", {"v": visitor, "c": old_cid}) == 0
    assert store.scalar("SELECT count() FROM consent_records WHERE visitor_id = {v:String} "
                        "OR consent_id = {c:String}", {"v": visitor, "c": old_cid}) == 0
    assert store.scalar("SELECT count() FROM events WHERE kind = 'pageview'") == 0
    withdrawn = store.dicts("SELECT consent_id, visitor_id, component FROM consent_records "
                            "WHERE event = 'withdrawn'")
    assert withdrawn == [{"consent_id": now.state.consent_id, "visitor_id": "",
                          "component": "self_service"}]


def test_a_browser_purged_by_staff_is_reset_when_it_comes_back(
    service: Any, make_settings: Callable[..., Any]
) -> None:
    # The collector hashes ids with the middleware's key, as in a deployment.
    settings = make_settings(capture=True, user_id_key=Secret(KEY.decode()))
    client, mw = site(settings, InProcessRights(service.privacy), transport=service.transport)
    assert mw.capture is not None
    service.privacy.attach(mw.capture.suppressions)
    visitor = consented(client)
    client.get("/")
    receipt = service.privacy.purge(visitor_id=visitor, reason="Art. 6 request",
                                    requested_by="sato")
    assert receipt["remaining"] == 0
    back = client.get("/")
    assert back.status_code == 200
    cookies = set_cookie_lines(back)
    assert "Max-Age=0" in cookies["cmw_vid"] and "cmw_consent" in cookies
    state = mw.codec.load_consent(client.cookies["cmw_consent"])
    assert state is not None and not state.state.granted("analytics")
    client.get("/")
    assert mw.capture.force_flush(10)
    assert service.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                                {"v": visitor}) == 0
    assert service.store.scalar("SELECT count() FROM consent_records WHERE event = "
                                "'withdrawn' AND visitor_id = ''") == 1


def test_pages_are_human_in_the_visitors_language(
    service: Any, make_settings: Callable[..., Any]
) -> None:
    client, _ = site(make_settings(capture=False), InProcessRights(service.privacy))
    refused = client.get("/_consent/my-data")
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    assert "アクセス解析の識別子がない" in refused.text and "{" not in refused.text
    consented(client)
    confirm = client.get("/_consent/my-data/delete", headers={"accept-language": "en"})
    assert "Delete my data" in confirm.text and 'lang="en"' in confirm.text
    done = client.post("/_consent/my-data/delete", data={"confirm": "yes"}, headers=SAME)
    assert done.status_code == 202 and "削除を受け付けました" in done.text
    assert '"request_id"' not in done.text
    link = done.text.split('href="/_consent/my-data/status?ref=')[1].split('"')[0]
    status_url = "/_consent/my-data/status?ref=" + link.replace("&amp;", "&")
    wait_status(client, status_url)
    page = client.get(status_url)
    assert page.status_code == 200 and "残っていないことを確認しました" in page.text
    assert "保存を続けるもの" in page.text and '"receipt_id"' not in page.text


@pytest.mark.parametrize("ref", ["", "not-signed", "IjEyMyI.bad.sig"])
def test_a_status_link_that_was_not_issued_finds_nothing(
        make_settings: Callable[..., Any], ref: str) -> None:
    client, _ = site(make_settings(capture=False), CountingRights())
    r = client.get(f"/_consent/my-data/status?ref={ref}")
    assert r.status_code == 404 and "見つかりませんでした" in r.text


def test_cross_site_delete_is_refused(service: Any, make_settings: Callable[..., Any]) -> None:
    client, _ = site(make_settings(capture=False), InProcessRights(service.privacy))
    consented(client)
    resp = client.post("/_consent/my-data/delete", data={"confirm": "yes"},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403


class CountingRights:
    def __init__(self, busy: bool = False) -> None:
        self.calls: list[str] = []
        self.busy = busy

    def export(self, visitor_id: str) -> dict[str, Any]:
        self.calls.append(visitor_id)
        return {"events": []}

    def request_purge(self, visitor_id: str) -> str:
        if self.busy:
            raise RightsBusy("full", 60)
        raise AssertionError("not expected")

    def purge_status(self, request_id: str) -> dict[str, Any] | None:
        return None


def test_without_an_analytics_consent_there_is_no_visitor_to_serve(
    make_settings: Callable[..., Any]
) -> None:
    rights = CountingRights()
    client, _ = site(make_settings(capture=False), rights)
    assert client.get("/_consent/my-data").status_code == 403
    client.post("/_consent", json={"action": "reject_all"}, headers=SAME)
    assert client.get("/_consent/my-data").status_code == 403
    assert rights.calls == []


def test_new_visitor_ids_do_not_reset_the_limit_of_one_client(
        make_settings: Callable[..., Any]) -> None:
    rights = CountingRights()
    client, _ = site(make_settings(capture=False), rights, address_limit=2)
    statuses = []
    for _ in range(3):  # a fresh cookie jar, so a fresh visitor id, from one address
        client.cookies.clear()
        consented(client)
        statuses.append(client.get("/_consent/my-data").status_code)
    assert statuses == [200, 200, 429]


def test_a_full_purge_queue_answers_busy_with_a_retry_time(
        make_settings: Callable[..., Any]) -> None:
    client, _ = site(make_settings(capture=False), CountingRights(busy=True))
    consented(client)
    r = client.post("/_consent/my-data/delete", data={"confirm": "yes"}, headers=SAME)
    assert r.status_code == 503 and r.headers["retry-after"] == "60"
    assert "混み合っています" in r.text


@pytest.mark.parametrize("path", ["/_consent/my-data", "/_consent/my-data/delete"])
def test_self_service_is_404_when_not_configured(make_settings: Callable[..., Any],
                                                 path: str) -> None:
    app = ConsentMiddleware(Starlette(), settings=make_settings(capture=False))
    assert TestClient(app).get(path).status_code == 404


def test_a_download_linked_from_another_site_or_asked_with_head_runs_no_export(
        make_settings: Callable[..., Any]) -> None:
    rights = CountingRights()
    client, _ = site(make_settings(capture=False), rights, limit=1)
    consented(client)
    # A link on another site would spend the visitor's budget and log exports in their name.
    linked = client.get("/_consent/my-data", headers={"sec-fetch-site": "cross-site"})
    assert linked.status_code == 403 and "他のサイト" in linked.text
    head = client.head("/_consent/my-data")
    assert head.status_code == 200 and head.content == b""
    assert "attachment" in head.headers["content-disposition"]
    assert rights.calls == []  # neither ran an export nor took the one token
    for fetch_site in ("same-origin", "none"):  # from the policy page; typed or bookmarked
        assert client.get("/_consent/my-data",
                          headers={"sec-fetch-site": fetch_site}).status_code in (200, 429)
    assert len(rights.calls) == 1
