"""Saved segments: a filter set saved under a name, shared with the team, picked from a list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support.dashboards import ORIGIN, RANGE, seeded_dsn

from collector import staff
from collector.notes import WriteRefused
from collector.query import run as query_run
from collector.segments import Segments, check_segment
from consent_mw.config import Secret

TOKEN = "segments-token-0123456789"
FILTERED = {**RANGE, "f.channel": "social", "f.device_type": "mobile"}


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def save(client: TestClient, name: str, view: dict[str, str] = FILTERED) -> Any:
    page = client.get("/dashboards/overview", params=view).text
    form = {"csrf": csrf_of(page), "name": name, "next": "/dashboards/overview",
            **{k: v for k, v in view.items() if k.startswith("f.")}}
    return client.post("/dashboards/segments", data=form, headers={"Origin": ORIGIN},
                       follow_redirects=False)


def test_a_saved_segment_is_shared_and_applies_its_filters(store: Any, login: Any) -> None:
    marketing = login("marketing")
    page = marketing.get("/dashboards/overview", params=FILTERED).text
    assert 'id="segment-save"' in page  # filters on, not saved yet: the save form
    assert save(marketing, "SNS経由のスマホ").status_code == 303
    listed = query_run.run(store, "segments", {})
    assert [(r["name"], r["created_by"]) for r in listed] == [("SNS経由のスマホ", "marketing")]
    # Another staff member sees it and picks it: the same view, filtered by it.
    admin = login("admin")
    plain = admin.get("/dashboards/overview", params=RANGE).text
    assert "SNS経由のスマホ" in plain and 'id="segment-save"' not in plain
    picked = admin.get("/dashboards/overview",
                       params={**RANGE, "segment": listed[0]["segment_id"]},
                       follow_redirects=False)
    assert picked.status_code == 303
    target = picked.headers["location"]
    assert "f.channel=social" in target and "f.device_type=mobile" in target
    assert "start=2026-06-17" in target and "segment=" not in target
    shown = admin.get(target).text
    direct = admin.get("/dashboards/overview", params=FILTERED).text
    figure = 'data-kpi="visitors">'
    assert shown.split(figure)[1][:120] == direct.split(figure)[1][:120]
    assert '<option value="' + listed[0]["segment_id"] + '" selected>' in shown
    # Removing it takes it off everyone's list, and keeps who saved and who removed it.
    gone = admin.post(f"/dashboards/segments/{listed[0]['segment_id']}/delete",
                      data={"csrf": csrf_of(shown), "next": "/dashboards/overview"},
                      headers={"Origin": ORIGIN}, follow_redirects=False)
    assert gone.status_code == 303 and query_run.run(store, "segments", {}) == []
    assert store.rows("SELECT created_by, updated_by, deleted FROM dashboard_segments FINAL") \
        == [("marketing", "admin", True)]


@pytest.mark.parametrize(("name", "view", "reason"), [
    ("", FILTERED, "名前は 1〜60 文字"),
    ("x" * 61, FILTERED, "名前は 1〜60 文字"),
    ("no filters", RANGE, "絞り込みの条件が1つ以上必要"),
])
def test_a_bad_segment_is_refused_with_its_reason(store: Any, login: Any, name: str,
                                                  view: dict[str, str], reason: str) -> None:
    r = save(login("marketing"), name, view)
    assert r.status_code == 400 and reason in r.text
    assert query_run.run(store, "segments", {}) == []


def test_a_segment_holds_only_filterable_dimensions() -> None:
    with pytest.raises(WriteRefused, match="not filterable"):
        check_segment("ips", {"ip": "192.0.2.1"})
    name, filters = check_segment(" LINE\n経由 ", {"channel": "social"})
    assert (name, filters) == ("LINE 経由", '{"channel": "social"}')


def test_an_unknown_segment_is_a_400_and_privacy_staff_cannot_save(store: Any,
                                                                    login: Any) -> None:
    client = login("marketing")
    r = client.get("/dashboards/overview", params={**RANGE, "segment": "0" * 32})
    assert r.status_code == 400 and "すでに削除された可能性があります" in r.text
    privacy = login("privacy")
    page = privacy.get("/dashboards/consent", params=FILTERED).text
    assert 'id="segment-save"' not in page
    form = {"csrf": csrf_of(page), "name": "x", "f.channel": "social"}
    assert privacy.post("/dashboards/segments", data=form, headers={"Origin": ORIGIN},
                        follow_redirects=False).status_code == 403


def test_segments_through_the_collector_need_its_token(store: Any) -> None:
    collector = TestClient(Starlette(routes=staff.build_routes(lambda: store, Secret(TOKEN))))
    body = {"name": "LINE", "filters": {"utm_source": "line"}, "author": "admin"}
    assert collector.post("/v1/segments", json=body).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for wrong in ({"filters": {"visitor_id": "v"}}, {"name": "\ud800"},
                  {"filters": {"channel": "\ud800"}}):
        bad = collector.post("/v1/segments", content=json.dumps({**body, **wrong}),
                             headers={**auth, "Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"] == "bad_segment"
    ok = collector.post("/v1/segments", json=body, headers=auth)
    assert ok.status_code == 200
    assert [r["name"] for r in query_run.run(store, "segments", {})] == ["LINE"]
    segment_id = ok.json()["id"]
    assert collector.post(f"/v1/segments/{segment_id}/delete", json={"author": "admin"},
                          headers=auth).json() == {"deleted": True}
    assert Segments(store).delete(segment_id, "admin") is False
