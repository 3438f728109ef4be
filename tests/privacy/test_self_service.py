"""Visitor self-service through the real consent middleware, backed by the in-process collector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from privacy_kit import wire_event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from collector.privacy import InProcessRights
from consent_mw.middleware import ConsentMiddleware
from consent_mw.self_service import SelfService

SAME = {"Origin": "http://testserver"}


def site(settings: Any, rights: Any, **kw: Any) -> TestClient:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("home")

    app = Starlette(routes=[Route("/", home)])
    mw = ConsentMiddleware(app, settings=settings,
                           self_service=SelfService(settings, rights=rights, **kw))
    return TestClient(mw, follow_redirects=False)


def consented(client: TestClient) -> str:
    resp = client.post("/_consent", json={"action": "accept_all"}, headers=SAME)
    assert resp.status_code == 200
    visitor = client.cookies.get("cmw_vid")
    assert visitor
    return str(visitor)


def test_visitor_downloads_then_deletes_their_own_data(
    service: Any, make_settings: Callable[..., Any]
) -> None:
    client = site(make_settings(capture=False), InProcessRights(service))
    visitor = consented(client)
    service.ingest.process([wire_event(visitor_id=visitor, path=f"/t{i}") for i in range(3)])

    download = client.get("/_consent/my-data")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    assert len(download.json()["events"]) == 3

    unconfirmed = client.post("/_consent/my-data/delete", data={"confirm": "no"}, headers=SAME)
    assert unconfirmed.status_code == 400
    deleted = client.post("/_consent/my-data/delete", data={"confirm": "yes"},
                          headers={**SAME, "Accept": "application/json"})
    assert deleted.status_code == 200
    assert deleted.json()["remaining"] == 0 and deleted.json()["rows_deleted"]["events"] == 3
    expired = [h for h in deleted.headers.get_list("set-cookie") if h.startswith("cmw_vid=")]
    assert expired and "Max-Age=0" in expired[0]
    assert service.store.scalar("SELECT count() FROM events") == 0


def test_cross_site_delete_is_refused(service: Any, make_settings: Callable[..., Any]) -> None:
    client = site(make_settings(capture=False), InProcessRights(service))
    consented(client)
    resp = client.post("/_consent/my-data/delete", data={"confirm": "yes"},
                       headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403


class CountingRights:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def export(self, visitor_id: str) -> dict[str, Any]:
        self.calls.append(visitor_id)
        return {"events": []}

    def purge(self, visitor_id: str, reason: str, requested_by: str) -> dict[str, Any]:
        raise AssertionError("not expected")


def test_without_an_analytics_consent_there_is_no_visitor_to_serve(
    make_settings: Callable[..., Any]
) -> None:
    rights = CountingRights()
    client = site(make_settings(capture=False), rights)
    assert client.get("/_consent/my-data").status_code == 403
    client.post("/_consent", json={"action": "reject_all"}, headers=SAME)
    assert client.get("/_consent/my-data").status_code == 403
    assert rights.calls == []


def test_requests_are_rate_limited_per_visitor(make_settings: Callable[..., Any]) -> None:
    rights = CountingRights()
    client = site(make_settings(capture=False), rights, limit=2)
    visitor = consented(client)
    assert [client.get("/_consent/my-data").status_code for _ in range(3)] == [200, 200, 429]
    assert rights.calls == [visitor, visitor]


@pytest.mark.parametrize("path", ["/_consent/my-data", "/_consent/my-data/delete"])
def test_self_service_is_404_when_not_configured(make_settings: Callable[..., Any],
                                                 path: str) -> None:
    app = ConsentMiddleware(Starlette(), settings=make_settings(capture=False))
    assert TestClient(app).get(path).status_code == 404
