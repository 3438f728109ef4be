"""The reservation form under the consent middleware: demand is counted, people are not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta

import pytest
from starlette.testclient import TestClient

from clinic.app import GOOGLE_ANALYTICS
from clinic.content import POLICY_LABEL, policy_text
from clinic.site import create_site
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.settings import Settings

NAME = "山田 花子"
PHONE = "090-1234-5678"
EMAIL = "hanako.yamada@example.jp"


@pytest.fixture
def transport() -> InMemoryTransport:
    return InMemoryTransport()


@pytest.fixture
def middleware(
    make_settings: Callable[..., Settings], transport: InMemoryTransport
) -> ConsentMiddleware:
    settings = make_settings(policy_label=POLICY_LABEL, policy_text=policy_text(),
                             tags=(GOOGLE_ANALYTICS,), flush_interval=0.05)
    return ConsentMiddleware(create_site(), settings=settings, transport=transport)


@pytest.fixture
def client(middleware: ConsentMiddleware) -> Iterator[TestClient]:
    # Runs the lifespan, which starts capture; browsers send Origin on every POST.
    with TestClient(middleware, headers={"origin": "http://testserver"}) as c:
        yield c


def decide(client: TestClient, action: str) -> None:
    response = client.post("/_consent", data={"action": action, "return": "/"},
                           headers={"origin": "http://testserver"}, follow_redirects=False)
    assert response.status_code == 303


def reserve(client: TestClient) -> None:
    form = {"name": NAME, "phone": PHONE, "email": EMAIL, "treatment": "hyaluronic",
            "date": (date.today() + timedelta(days=20)).isoformat()}
    response = client.post("/reservation", data=form)
    assert response.status_code == 200


def flush(middleware: ConsentMiddleware) -> None:
    assert middleware.capture is not None
    assert middleware.capture.force_flush(5.0)


def test_reservation_with_consent_sends_only_non_personal_properties(
    client: TestClient, middleware: ConsentMiddleware, transport: InMemoryTransport
) -> None:
    decide(client, "accept_all")
    reserve(client)
    flush(middleware)
    custom = [e for e in transport.events if e.get("name") == "reservation"]
    assert len(custom) == 1
    props = custom[0]["properties"]
    month = (date.today() + timedelta(days=20)).isoformat()[:7]
    assert props == {"treatment": "hyaluronic", "preferred_month": month}
    # Nothing that identifies the person anywhere in what left the process.
    sent = json.dumps({"events": transport.events, "records": transport.records},
                      ensure_ascii=False)
    for needle in (NAME, "山田", PHONE, "09012345678", EMAIL, "hanako"):
        assert needle not in sent


def test_reservation_without_consent_sends_no_custom_event(
    client: TestClient, middleware: ConsentMiddleware, transport: InMemoryTransport
) -> None:
    decide(client, "reject_all")
    reserve(client)
    flush(middleware)
    assert [e for e in transport.events if e.get("name") == "reservation"] == []


def test_banner_is_shown_in_the_page_language_until_a_choice(client: TestClient) -> None:
    ja = client.get("/").text
    en = client.get("/en/").text
    assert 'id="cmw-banner"' in ja and 'id="cmw-banner"' in en
    assert ja.split('id="cmw-banner"')[1][:2000] != en.split('id="cmw-banner"')[1][:2000]
    decide(client, "reject_all")
    assert 'id="cmw-banner"' not in client.get("/").text


def test_analytics_tag_loads_only_after_consent(client: TestClient) -> None:
    assert "G-DEMO000000" not in client.get("/").text.split("<body")[1]
    decide(client, "accept_all")
    assert "googletagmanager.com/gtag/js?id=G-DEMO000000" in client.get("/").text


def test_search_terms_reach_analytics_but_the_page_reflects_them_escaped(
    client: TestClient, middleware: ConsentMiddleware, transport: InMemoryTransport
) -> None:
    decide(client, "accept_all")
    response = client.get("/search", params={"q": "<b>二重</b>"})
    assert "<b>二重</b>" not in response.text
    flush(middleware)
    pages = [e for e in transport.events if e.get("path") == "/search"]
    assert pages and "二重" in json.dumps(pages, ensure_ascii=False)
