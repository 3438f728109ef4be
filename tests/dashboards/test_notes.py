"""Notes on the time axis: staff write them from the page, the dashboards add one at every new
consent-banner and policy version, and every series shows them."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support.dashboards import ORIGIN, RANGE, seeded_dsn

from collector import staff
from collector.notes import Notes, WriteRefused, check_note
from collector.query import run as query_run
from consent_mw.config import Secret
from dashboards.backends import CachedBackend, CollectorBackend, StoreBackend

BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
TOKEN = "notes-token-0123456789"
TODAY = dt.date(2026, 6, 30)


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def csrf_of(client: TestClient) -> str:
    page = client.get("/dashboards/overview", params=RANGE).text
    return page.split('name="csrf" value="')[1].split('"')[0]


def note_form(client: TestClient, **fields: str) -> dict[str, str]:
    here = "/dashboards/overview?preset=custom&start=2026-06-17&end=2026-06-30"
    return {"csrf": csrf_of(client), "next": here, "day": "2026-06-24",
            "text": "春のキャンペーン開始", **fields}


def annotations(store: Any) -> list[tuple[str, str, str]]:
    return [(r["day"], r["kind"], r["text"])
            for r in query_run.run(store, "annotations", BASE)]


def test_a_note_written_on_the_page_shows_on_the_chart_and_can_be_removed(
        store: Any, login: Any) -> None:
    client = login("marketing")
    form = note_form(client, text="春のキャンペーン開始\n(LINE配信)")
    r = client.post("/dashboards/notes", data=form, headers={"Origin": ORIGIN},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == form["next"] + "&done=saved"
    assert ("2026-06-24", "note", "春のキャンペーン開始 (LINE配信)") in annotations(store)
    page = client.get(r.headers["location"]).text
    assert '<p class="flash" role="status">保存しました。</p>' in page  # the write is confirmed
    assert "done=saved" not in page.split('class="lang" href="')[1].split('"')[0]
    assert "春のキャンペーン開始 (LINE配信)" in page and "(marketing)" in page
    chart = page.split('id="chart-data">')[1].split("</script>")[0]
    assert '"x0":"2026-06-24"' in chart and "春のキャンペーン開始" in chart
    note_id = page.split('action="/dashboards/notes/')[1].split("/delete")[0]
    gone = client.post(f"/dashboards/notes/{note_id}/delete", headers={"Origin": ORIGIN},
                       data={"csrf": form["csrf"], "next": form["next"]},
                       follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].endswith("&done=removed")
    assert "削除しました。" in client.get(gone.headers["location"]).text
    assert "削除しました。" not in client.get(form["next"]).text  # said once, not on every view
    assert ("2026-06-24", "note", "春のキャンペーン開始 (LINE配信)") not in annotations(store)
    # Kept, marked deleted by whoever removed it: what was noted stays on record.
    assert store.rows("SELECT created_by, updated_by, deleted FROM dashboard_notes FINAL "
                      "WHERE note_id = {i:String}", {"i": note_id}) == [
        ("marketing", "marketing", True)]


@pytest.mark.parametrize(("change", "status"), [
    ({"csrf": "forged"}, 403),
    ({"text": "x" * 201}, 400),
    ({"text": " \n\t "}, 400),
    ({"day": "2020-01-01"}, 400),
    ({"day": "24/06/2026"}, 400),
])
def test_a_bad_or_forged_note_is_refused_with_its_reason(store: Any, login: Any,
                                                         change: dict[str, str],
                                                         status: int) -> None:
    client = login("marketing")
    r = client.post("/dashboards/notes", data=note_form(client, **change),
                    headers={"Origin": ORIGIN}, follow_redirects=False)
    assert r.status_code == status
    assert "<html" in r.text and "Traceback" not in r.text
    assert not [a for a in annotations(store) if a[1] == "note"]


def test_only_those_who_read_the_series_may_write_and_never_cross_site(
        store: Any, login: Any, client: TestClient) -> None:
    marketing = login("marketing")
    form = note_form(marketing)
    cross = marketing.post("/dashboards/notes", data=form,
                           headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert cross.status_code == 403
    privacy = login("privacy")  # the same client, now the privacy role's session
    form["csrf"] = privacy.get("/dashboards/consent").text.split(
        'name="csrf" value="')[1].split('"')[0]
    assert privacy.post("/dashboards/notes", data=form, headers={"Origin": ORIGIN},
                        follow_redirects=False).status_code == 403
    assert "note-add" not in privacy.get("/dashboards/consent").text
    assert not [a for a in annotations(store) if a[1] == "note"]


def test_a_new_banner_or_policy_version_marks_the_axis_by_itself(store: Any,
                                                                 login: Any) -> None:
    seeded = store.rows("SELECT DISTINCT policy_version FROM consent_records")
    assert len(seeded) == 1
    before = annotations(store)
    assert [a[1] for a in before] == ["policy"]  # the seeded version, first seen in range
    store.insert("consent_records", [[
        uuid.uuid4(), "c-new", "", dt.datetime(2026, 6, 25, 1, 0, tzinfo=dt.UTC),
        "shown", "none", "banner", "2026-06-25+9a8b7c6d5e4f"]],
        ["record_id", "consent_id", "visitor_id", "ts", "event", "method", "component",
         "policy_version"])
    assert annotations(store) == [*before, ("2026-06-25", "policy", "2026-06-25+9a8b7c6d5e4f")]
    page = login("marketing").get("/dashboards/overview", params=RANGE).text
    assert "同意バナー・ポリシーの版 2026-06-25+9a8b7c6d5e4f を表示開始" in page


def test_notes_through_the_collector_need_its_token(store: Any) -> None:
    app = Starlette(routes=staff.build_routes(lambda: store, Secret(TOKEN)))
    collector = TestClient(app)
    body = {"day": "2026-06-20", "text": "TV", "author": "marketing"}
    assert collector.post("/v1/notes", json=body).status_code == 401
    for bad in ({"day": "soon"}, {"text": "\ud800"}, {"author": "\ud800"}):
        # As JSON text: a lone surrogate is a \u escape no encoder would send raw.
        refused = collector.post("/v1/notes", content=json.dumps({**body, **bad}),
                                 headers={"Authorization": f"Bearer {TOKEN}",
                                          "Content-Type": "application/json"})
        assert refused.status_code == 400 and refused.json()["error"] == "bad_note"
    remote = CollectorBackend("http://testserver", TOKEN, transport=_Asgi(app))
    note_id = remote.add_item("notes", {"day": "2026-06-20", "text": "TV"}, "marketing")
    assert ("2026-06-20", "note", "TV") in annotations(store)
    assert remote.delete_item("notes", note_id, "admin") is True
    assert remote.delete_item("notes", note_id, "admin") is False  # already gone
    with pytest.raises(WriteRefused):
        remote.delete_item("notes", "../../v1/query", "admin")
    with pytest.raises(WriteRefused):
        remote.add_item("../query", {}, "admin")
    assert collector.post("/v1/anything", json=body).status_code == 404


class _Asgi(httpx.BaseTransport):
    """httpx's sync client onto an ASGI app, through Starlette's test client."""

    def __init__(self, app: Starlette) -> None:
        self.client = TestClient(app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        r = self.client.request(request.method, request.url.path, content=request.read(),
                                headers=dict(request.headers))
        return httpx.Response(r.status_code, content=r.content, headers=r.headers)


def test_a_note_changes_the_data_version_so_no_page_is_stale(store: Any) -> None:
    cached = CachedBackend(StoreBackend(store))
    before = cached.version()
    Notes(store).add(TODAY.isoformat(), "site change", "admin")
    assert cached.version() != before


def test_note_text_is_one_clean_line() -> None:
    when, text, who = check_note("2026-06-24", "  a\x00b\u2028c\n  d ", " admin ", today=TODAY)
    assert (when, text, who) == (dt.date(2026, 6, 24), "a b c d", "admin")
    with pytest.raises(WriteRefused, match="within 400 days"):
        check_note("2025-01-01", "x", "admin", today=TODAY)


def test_the_consent_charts_carry_the_version_changes_too(store: Any, login: Any) -> None:
    page = login("marketing").get("/dashboards/consent", params=RANGE).text
    charts = page.split('id="chart-data">')[1].split("</script>")[0]
    first = str(store.scalar("SELECT toString(toDate(min(ts), 'Asia/Tokyo')) "
                             "FROM consent_records"))
    # The opt-in, GPC and coverage charts each mark the day the seeded version began.
    assert charts.count(f'"x0":"{first}"') == 3 and charts.count("バナー変更") == 3


def test_a_hostile_note_is_text_on_the_page_and_on_the_chart(store: Any, login: Any) -> None:
    Notes(store).add("2026-06-24", '<a href="javascript:alert(1)">x</a><img src=x>', "admin")
    page = login("marketing").get("/dashboards/overview", params=RANGE).text
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page
    charts = json.loads(page.split('id="chart-data">')[1].split("</script>")[0])["charts"]
    labels = [a["text"] for c in charts for a in c["layout"].get("annotations", [])]
    # Plotly would read tags in a label: they reach it as entities.
    assert labels and all("<" not in label for label in labels)
    assert any(label.startswith("&lt;a href=") for label in labels)

