"""The settled path: a returning, decided visitor with nothing to set gets exactly what the
full path would give them (headers, body, captured event), only cheaper.

Each test sends the same request twice from the same browser, once with the middleware's
settled path on and once with it off, and compares everything that leaves the middleware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.apps import ORIGIN, starlette_app

from consent_mw import ConsentMiddleware
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.settings import Settings

DECISIONS: dict[str, dict[str, Any]] = {
    "accept_all": {"action": "accept_all"},
    "reject_all": {"action": "reject_all"},
    "analytics_only": {"categories": {"analytics": True}},
    "location_and_marketing": {"categories": {"analytics": True, "location": True,
                                              "marketing": True}},
}
# HTML, JSON, an app-set Cache-Control, validators, an excluded path, a 304.
PATHS = ["/en", "/json", "/cached", "/etag", "/static/page.html", "/notmodified", "/context"]
VOLATILE_EVENT_FIELDS = ("event_id", "ts")


class Site:
    def __init__(self, client: TestClient, mw: ConsentMiddleware,
                 transport: InMemoryTransport) -> None:
        self.client = client
        self.mw = mw
        self.transport = transport

    def get(self, path: str, *, settled_path: bool, **kwargs: Any) -> tuple[Any, list[Any]]:
        """The response and the events it produced, with the settled path on or off."""
        capture = self.mw.capture
        assert capture is not None and capture.force_flush(5.0)  # earlier requests' events
        self.mw._settled_path = settled_path
        before = len(self.transport.events)
        response = self.client.get(path, **kwargs)
        assert capture.force_flush(5.0)
        events = [{k: v for k, v in e.items() if k not in VOLATILE_EVENT_FIELDS}
                  for e in self.transport.events[before:]]
        return response, events

    def reading(self, **headers: str) -> Any:
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        raw = [(b"cookie", cookie.encode())] + [(k.lower().encode(), v.encode())
                                                for k, v in headers.items()]
        return self.mw.reader.read_headers(raw)


@pytest.fixture(params=[False, True], ids=["beacon off", "beacon on"])
def site(make_settings: Callable[..., Settings], request: pytest.FixtureRequest
         ) -> Iterator[Site]:
    """With the beacon on, a visitor who granted analytics takes the settled path too: the
    same comparisons then also cover its script element."""
    transport = InMemoryTransport()
    app = starlette_app(make_settings(flush_interval=0.05, beacon=request.param),
                        transport=transport)
    with TestClient(app, follow_redirects=False) as client:
        client.get("/en")  # build the middleware stack
        mw = app.middleware_stack
        while not isinstance(mw, ConsentMiddleware):
            mw = mw.app
        yield Site(client, mw, transport)


def comparable(response: Any) -> tuple[int, bytes, list[tuple[str, str]]]:
    return response.status_code, response.content, sorted(response.headers.multi_items())


@pytest.mark.parametrize("decision", sorted(DECISIONS))
@pytest.mark.parametrize("path", PATHS)
def test_a_settled_visitor_gets_what_the_full_path_gives(site: Site, decision: str,
                                                         path: str) -> None:
    assert site.client.post("/_consent", json=DECISIONS[decision],
                            headers={"origin": ORIGIN}).status_code == 200
    assert site.reading().settled
    fast, fast_events = site.get(path, settled_path=True)
    full, full_events = site.get(path, settled_path=False)
    assert comparable(fast) == comparable(full)
    assert fast_events == full_events
    assert "set-cookie" not in fast.headers  # nothing to set: that is what settled means
    assert site.mw.stats()["failures"] == 0  # and neither path served over a failure


@pytest.mark.parametrize("decision", sorted(DECISIONS))
def test_settled_visitors_are_captured_as_their_consent_allows(site: Site,
                                                               decision: str) -> None:
    site.client.post("/_consent", json=DECISIONS[decision], headers={"origin": ORIGIN})
    response, events = site.get("/en", settled_path=True)
    assert response.headers["vary"] == "Cookie, Sec-GPC"
    (event,) = events
    analytics = decision != "reject_all"
    assert event["kind"] == ("pageview" if analytics else "anonymous")
    if analytics:
        assert event["visitor_id"] == site.client.cookies["cmw_vid"]
        assert event["consent"]["analytics"] is True
    else:
        assert "visitor_id" not in event and "cmw_vid" not in site.client.cookies


def test_the_settled_path_is_the_one_taken(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    full_reads: list[str] = []
    original = site.mw.read_request

    def spy(scope: Any, reading: Any = None, **kw: Any) -> Any:
        full_reads.append(scope["path"])
        return original(scope, reading, **kw)

    monkeypatch.setattr(site.mw, "read_request", spy)
    site.get("/en", settled_path=True)
    site.get("/en", settled_path=False)
    assert full_reads == ["/en"]


def test_what_is_not_settled_takes_the_full_path(site: Site) -> None:
    assert not site.reading().settled  # undecided: the banner
    site.client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    assert site.reading().settled
    # Sec-GPC on a stored grant: a gpc_applied record and a re-signed cookie are due.
    assert not site.reading(**{"Sec-GPC": "1"}).settled
    site.client.post("/_consent", json={"action": "reject_all"}, headers={"origin": ORIGIN})
    site.client.cookies.set("cmw_vid", "0" * 32, domain="testserver.local")  # left to expire
    assert not site.reading().settled
    response, _ = site.get("/en", settled_path=True)
    assert "cmw_vid=" in response.headers["set-cookie"]
    assert site.reading().settled


def test_a_settled_visitor_with_gpc_records_gpc_applied_once(site: Site) -> None:
    site.client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    gpc = {"Sec-GPC": "1"}
    for _ in range(3):
        site.get("/en", settled_path=True, headers=gpc)
    applied = [r for r in site.transport.records if r["event"] == "gpc_applied"]
    assert len(applied) == 1
    assert site.reading(**gpc).settled


def test_a_settled_visitor_reaches_our_endpoints_and_the_route_map_stays_bounded(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from consent_mw.consent import middleware
    site.client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    assert site.reading().settled
    consent, _ = site.get("/_consent", settled_path=True)
    gpc, _ = site.get("/.well-known/gpc.json", settled_path=True)
    assert consent.status_code == 200 and consent.json()["categories"]["analytics"] is True
    assert gpc.status_code == 200 and gpc.json()["gpc"] is True

    monkeypatch.setattr(middleware, "MAX_ROUTES", 8)
    for i in range(20):  # paths come from visitors: the map is emptied, not grown
        site.get(f"/page-{i}", settled_path=True)
    assert 0 < len(site.mw._routes) <= 8
    _, events = site.get("/static/page.html", settled_path=True)  # still excluded after
    assert events == []
