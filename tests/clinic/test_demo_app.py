"""The composed demo app in-process: consent → capture → in-process collector → chDB store.

It opens its own chDB store, so it must not share a test with the ``store`` fixture (chDB
allows one store path per process at a time).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from clinic.app import DemoParts, build_demo_app

SECRET = "demo-test-secret-0123456789abcdef"
DASH_PASSWORD = "demo-dashboards-pw"


@contextmanager
def running(tmp_path: Path, seed: int = 0) -> Iterator[tuple[TestClient, DemoParts]]:
    app = build_demo_app(f"chdb://{tmp_path / 'store'}", secret_key=SECRET, seed_events=seed,
                         dashboard_password=DASH_PASSWORD,
                         settings_overrides={"flush_interval": 0.05})
    # The lifespan starts the collector and capture; browsers send Origin on every POST.
    with TestClient(app, headers={"origin": "http://testserver"}) as client:
        yield client, app.state.demo


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[TestClient, DemoParts]]:
    with running(tmp_path) as pair:
        yield pair


@pytest.fixture
def seeded_demo(tmp_path: Path) -> Iterator[tuple[TestClient, DemoParts]]:
    with running(tmp_path, seed=300) as pair:
        yield pair


def accept_all(client: TestClient) -> None:
    response = client.post("/_consent", data={"action": "accept_all", "return": "/"},
                           headers={"origin": "http://testserver"}, follow_redirects=False)
    assert response.status_code == 303


def stored(parts: DemoParts, sql: str, **params: Any) -> list[dict[str, Any]]:
    assert parts.flush()
    return parts.store.dicts(sql, params)


@pytest.mark.slow
def test_accepted_visit_lands_in_the_store(demo: tuple[TestClient, DemoParts]) -> None:
    client, parts = demo
    home = client.get("/")
    assert home.status_code == 200
    assert 'id="cmw-banner"' in home.text
    accept_all(client)
    assert client.get("/treatments/datsumo?utm_source=google&gclid=abc").status_code == 200
    rows = stored(parts, "SELECT name, path, visitor_id FROM events WHERE name = 'pageview'")
    paths = [r["path"] for r in rows]
    assert "/treatments/datsumo" in paths
    assert all(r["visitor_id"] for r in rows if r["path"] == "/treatments/datsumo")
    records = stored(parts, "SELECT count() AS n FROM consent_records")
    assert records[0]["n"] >= 1


@pytest.mark.slow
def test_reservation_event_in_the_store_has_no_personal_data(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    accept_all(client)
    form = {"name": "佐藤 一郎", "phone": "080-9876-5432", "email": "ichiro@example.jp",
            "treatment": "futae", "date": "2099-01-01"}
    assert client.post("/reservation", data=form).status_code == 400  # too far ahead
    form["date"] = _in_days(7)
    assert client.post("/reservation", data=form).status_code == 200
    rows = stored(parts, "SELECT * FROM events WHERE name = 'reservation'")
    assert len(rows) == 1
    assert rows[0]["properties"] == {"treatment": "futae", "preferred_month": form["date"][:7]}
    # Worth the treatment's first price, for the goals' value by campaign.
    assert (rows[0]["value"], rows[0]["currency"]) == (29800.0, "JPY")
    dump = repr(stored(parts, "SELECT * FROM events")) + repr(
        stored(parts, "SELECT * FROM consent_records"))
    for needle in ("佐藤", "080-9876-5432", "08098765432", "ichiro@example.jp"):
        assert needle not in dump


@pytest.mark.slow
def test_before_a_choice_only_an_anonymous_hourly_count_is_stored(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    client.get("/treatments/futae", headers={"referer": "https://www.google.com/search?q=x"})
    rows = stored(parts, "SELECT kind, visitor_id, session_id, ip, referrer_host, ts "
                         "FROM events WHERE path = '/treatments/futae'")
    assert len(rows) == 1
    row = rows[0]
    assert row["kind"] == "anonymous"
    assert (row["visitor_id"], row["session_id"], row["ip"], row["referrer_host"]) == (
        "", "", "", "")
    assert (row["ts"].minute, row["ts"].second) == (0, 0)
    assert "cmw_vid" not in client.cookies


@pytest.mark.slow
def test_ad_landing_keeps_campaign_data_only_with_marketing_consent(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    landing = "/lp/futae-spring?utm_source=google&utm_medium=cpc&utm_campaign=spring&gclid=abc"
    analytics_only = client.post(
        "/_consent", json={"categories": {"analytics": True, "marketing": False}},
        headers={"origin": "http://testserver"})
    assert analytics_only.status_code == 200
    assert client.get(landing).status_code == 200
    accept_all(client)
    assert client.get(landing).status_code == 200
    rows = stored(parts, "SELECT utm_source, utm_campaign, click_id_type FROM events "
                         "WHERE path = '/lp/futae-spring' AND kind != 'anonymous'")
    assert sorted((r["utm_source"], r["utm_campaign"], r["click_id_type"]) for r in rows) == [
        ("", "", ""), ("google", "spring", "gclid")]


@pytest.mark.slow
def test_collector_and_consent_pages_are_mounted(demo: tuple[TestClient, DemoParts]) -> None:
    client, _ = demo
    assert client.get("/_collector/healthz").json() == {"status": "ok"}
    assert client.get("/_collector/metrics").status_code == 200
    notice = client.get("/_consent/external-transmission")
    assert notice.status_code == 200
    assert "G-DEMO000000" in notice.text or "Google" in notice.text
    prefs = client.get("/_consent/preferences?lang=en")
    assert prefs.status_code == 200


@pytest.mark.slow
def test_dashboards_show_seeded_data_to_the_demo_login(
    seeded_demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = seeded_demo
    assert parts.seeded is not None and parts.seeded["events"] == 300
    assert set(parts.dashboard_users) >= {"marketing", "privacy", "admin"}
    assert client.get("/dashboards/", follow_redirects=False).status_code in (302, 303)
    origin = {"origin": "http://testserver"}
    wrong = client.post("/dashboards/login", data={"username": "admin", "password": "nope"},
                        headers=origin)
    assert wrong.status_code == 401
    login = client.post("/dashboards/login", headers=origin, follow_redirects=False,
                        data={"username": "marketing", "password": DASH_PASSWORD})
    assert login.status_code == 303
    overview = client.get("/dashboards/")
    assert overview.status_code == 200
    # The clinic's consent banner is never injected into the dashboards.
    assert 'id="cmw-banner"' not in overview.text
    # The demo comes with the clinic's goals and funnels (clinic/goals.toml), computed.
    goals = client.get("/dashboards/goals")
    for name in ("カウンセリング予約", "電話タップ", "LINE友だち追加", "施術ページの閲覧",
                 "1分以上の閲覧"):
        assert name in goals.text
    funnels = client.get("/dashboards/funnels")
    assert funnels.status_code == 200 and "施術ページから予約まで" in funnels.text
    assert "キャンペーンLPから予約まで(7日)" in funnels.text


@pytest.mark.slow
def test_a_suppressed_visitor_stops_being_captured_at_once(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    privacy = parts.service.privacy  # the demo's own instance
    accept_all(client)
    client.get("/treatments/futae")
    visitor = client.cookies.get("cmw_vid")
    assert visitor
    stored(parts, "SELECT 1")
    privacy.suppress(visitor_id=visitor, reason="test", requested_by="test")
    client.get("/treatments/hyaluronic")
    rows = stored(parts, "SELECT path FROM events WHERE visitor_id = {v:String}", v=visitor)
    paths = {r["path"] for r in rows}
    assert "/treatments/futae" in paths
    assert "/treatments/hyaluronic" not in paths
    assert parts.capture is not None
    assert parts.capture.stats()["dropped"].get("suppressed", 0) >= 1


@pytest.mark.slow
def test_privacy_admin_api_is_reachable_with_the_printed_token(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    token, origin = parts.admin_token
    assert len(token) >= 16 and origin.startswith("generated")
    path = "/_collector/v1/privacy/requests"
    assert client.get(path).status_code in (401, 403)
    assert client.get(path, headers={"authorization": f"Bearer {token}"}).status_code == 200
    # The collector's old staff page sends people to the dashboards' request console.
    old = client.get("/_collector/v1/privacy/staff", follow_redirects=False)
    assert old.status_code == 303 and old.headers["location"] == "/dashboards/requests"


@pytest.mark.slow
def test_visitor_can_download_and_delete_their_data_from_the_policy_page(
    demo: tuple[TestClient, DemoParts],
) -> None:
    client, parts = demo
    policy = client.get("/privacy").text
    assert 'href="/_consent/my-data"' in policy
    assert 'href="/_consent/my-data/delete"' in policy
    accept_all(client)
    client.get("/treatments/datsumo")
    visitor = client.cookies.get("cmw_vid")
    assert visitor
    assert parts.flush()
    export = client.get("/_consent/my-data")
    assert export.status_code == 200
    assert "/treatments/datsumo" in export.text
    deleted = client.post("/_consent/my-data/delete", data={"confirm": "yes"},
                          headers={"origin": "http://testserver", "accept": "application/json"})
    assert deleted.status_code == 202, deleted.text
    status_url = deleted.json()["status_url"]
    deadline = time.monotonic() + 60
    while client.get(status_url, headers={"accept": "application/json"}).json()[
            "status"] != "completed":
        assert time.monotonic() < deadline, "the purge batch did not run"
        time.sleep(0.2)
    left = stored(parts, "SELECT count() AS n FROM events WHERE visitor_id = {v:String}",
                  v=visitor)
    assert left[0]["n"] == 0


def _in_days(days: int) -> str:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    return (datetime.now(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=days)).isoformat()
