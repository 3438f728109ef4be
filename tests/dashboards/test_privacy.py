"""k-anonymity at every filter combination, suppression, roles, and hostile input."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from support.dashboards import ORIGIN, RANGE, event, insert_events, visitors

BIG = 20  # visitors in the large groups; the small group has 3 (< k = 5)


def _setup(store: Any) -> None:
    rows = (visitors("a", BIG, country="JP", browser="Chrome", path="/")
            + visitors("b", BIG, country="KR", browser="Safari", path="/price")
            # The small group: 3 visitors from FR on Firefox reading one page.
            + visitors("c", 3, country="FR", browser="Firefox", path="/secret-page"))
    insert_events(store, rows)


def _keys(client: Any, panel: str, **filters: str) -> set[str]:
    params = {**RANGE, **{f"f.{k}": v for k, v in filters.items()}}
    r = client.get(f"/dashboards/api/{panel}", params=params)
    assert r.status_code == 200, r.text
    return {row["key"] for row in r.json()["rows"] if not row["is_other"]}


def test_group_below_k_is_never_shown_alone(store: Any, login: Any) -> None:
    _setup(store)
    client = login("marketing")
    assert _keys(client, "bd_country") == {"JP", "KR"}
    assert "/secret-page" not in _keys(client, "bd_path")
    assert "Firefox" not in _keys(client, "bd_browser")
    # "(other)" would hold only the 3 visitors: it is dropped, not shown.
    rows = client.get("/dashboards/api/bd_country", params=RANGE).json()["rows"]
    assert all(r["visitors"] >= 5 for r in rows)


def test_filter_combinations_cannot_single_out_a_small_group(store: Any, login: Any) -> None:
    _setup(store)
    client = login("marketing")
    for filters in ({"country": "FR"}, {"browser": "Firefox"},
                    {"country": "FR", "browser": "Firefox"}, {"path": "/secret-page"},
                    {"country": "FR", "path": "/secret-page"}):
        for panel in ("bd_path", "bd_country", "bd_browser", "bd_channel"):
            assert _keys(client, panel, **filters) == set(), (panel, filters)
        kpis = client.get("/dashboards/api/kpis",
                          params={**RANGE, **{f"f.{k}": v for k, v in filters.items()}})
        row = kpis.json()["rows"][0]
        assert row["below_k"] == 1 and row["visitors"] is None and row["pageviews"] is None
        series = client.get("/dashboards/api/series",
                            params={**RANGE, **{f"f.{k}": v for k, v in filters.items()}})
        assert all(r["visitors"] is None for r in series.json()["rows"])


def test_small_groups_fold_into_other_when_other_reaches_k(store: Any, login: Any) -> None:
    _setup(store)
    insert_events(store, visitors("d", 3, country="DE", browser="Firefox", path="/x"))
    client = login("marketing")
    rows = client.get("/dashboards/api/bd_country", params=RANGE).json()["rows"]
    other = [r for r in rows if r["is_other"]]
    assert len(other) == 1 and other[0]["visitors"] == 6 and other[0]["key"] == ""
    assert {r["key"] for r in rows if not r["is_other"]} == {"JP", "KR"}


def test_suppressed_visitor_is_excluded_everywhere(store: Any, login: Any) -> None:
    _setup(store)
    # Five visitors on /promo: visible until one of them is suppressed (then 4 < k).
    promo = visitors("p", 5, path="/promo", country="JP")
    insert_events(store, promo)
    client = login("marketing")
    assert "/promo" in _keys(client, "bd_path")
    before = client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]
    store.insert("suppressions", [["visitor_id", promo[0]["visitor_id"], "h1", True, False,
                                   "test", "test", dt.datetime.now(dt.UTC), 1]],
                 ["id_type", "subject", "subject_hash", "active", "purged", "reason",
                  "requested_by", "updated_at", "version"])
    after = client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]
    assert after["visitors"] == before["visitors"] - 1
    assert after["pageviews"] == before["pageviews"] - 1
    assert "/promo" not in _keys(client, "bd_path")


def test_lifted_suppression_and_purged_empty_subject(store: Any, login: Any) -> None:
    _setup(store)
    client = login("marketing")
    target = "a0000".ljust(32, "0")
    cols = ["id_type", "subject", "subject_hash", "active", "purged", "reason",
            "requested_by", "updated_at", "version"]
    now = dt.datetime.now(dt.UTC)
    store.insert("suppressions", [["visitor_id", target, "h2", True, False, "", "", now, 1],
                                  # After a purge the subject is emptied: it must not match
                                  # every row whose user_id is simply empty.
                                  ["user_id", "", "h3", True, True, "", "", now, 1]], cols)
    assert client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]["visitors"] \
        == 2 * BIG + 3 - 1
    store.insert("suppressions", [["visitor_id", target, "h2", False, False, "", "", now, 2]],
                 cols)
    assert client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]["visitors"] \
        == 2 * BIG + 3


def test_api_requires_login_and_html_redirects(client: Any) -> None:
    assert client.get("/dashboards/api/kpis").status_code == 401
    assert client.get("/dashboards/csv/bd_path").status_code == 401
    r = client.get("/dashboards/overview")
    assert r.status_code == 303 and r.headers["location"].startswith("/dashboards/login")


def test_roles_without_access_get_403(store: Any, login: Any) -> None:
    client = login("privacy")
    assert client.get("/dashboards/api/bd_path").status_code == 403
    assert client.get("/dashboards/overview").status_code == 403
    assert client.get("/dashboards/consent").status_code == 200
    client.cookies.clear()
    login("marketing")
    assert client.get("/dashboards/privacy").status_code == 403
    assert client.get("/dashboards/api/suppression_stats").status_code == 403
    client.cookies.clear()
    login("admin")
    assert client.get("/dashboards/privacy").status_code == 200


def test_login_refuses_wrong_password_and_cross_site_posts(client: Any) -> None:
    bad = client.post("/dashboards/login", data={"username": "admin", "password": "nope"},
                      headers={"Origin": ORIGIN})
    assert bad.status_code == 401 and "cmw_dash" not in bad.cookies
    cross = client.post("/dashboards/login",
                        data={"username": "admin", "password": "test-password-1"},
                        headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    no_origin = client.post("/dashboards/login",
                            data={"username": "admin", "password": "test-password-1"})
    assert no_origin.status_code == 403


def test_login_cookie_is_httponly_and_samesite(client: Any) -> None:
    r = client.post("/dashboards/login", data={"username": "admin",
                                               "password": "test-password-1"},
                    headers={"Origin": ORIGIN})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboards/" in cookie


def test_bad_input_gives_400_with_reason(store: Any, login: Any) -> None:
    client = login("marketing")
    cases = {
        "unknown filter": {"f.visitor_id": "x"},
        "must not be before start": {"preset": "custom", "start": "2026-06-10",
                                     "end": "2026-06-01"},
        "valid date": {"preset": "custom", "start": "2026-02-31", "end": "2026-03-01"},
        "expected a date": {"preset": "custom", "start": "yesterday';DROP"},
        "unknown preset": {"preset": "forever"},
        "grain": {"grain": "minute"},
    }
    for reason, params in cases.items():
        api = client.get("/dashboards/api/kpis", params=params)
        assert api.status_code == 400 and reason in api.json()["message"], (reason, api.text)
        page = client.get("/dashboards/overview", params=params)
        assert page.status_code == 400 and "<script" not in page.text.split("<main>")[1]


def test_hostile_values_are_bound_and_escaped(store: Any, login: Any) -> None:
    evil = "<script>alert(1)</script>"
    insert_events(store, visitors("e", 6, path="/search", search_terms=evil))
    client = login("marketing")
    sqlish = client.get("/dashboards/overview",
                        params={**RANGE, "f.path": "/' OR 1=1 --", "f.country": evil})
    assert sqlish.status_code == 200
    assert evil not in sqlish.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in sqlish.text
    page = client.get("/dashboards/acquisition", params=RANGE)
    assert page.status_code == 200
    assert evil not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # The CSV neutralises formulas a spreadsheet would run.
    insert_events(store, visitors("f", 6, path="/search", search_terms="=HYPERLINK(1)"))
    csv = client.get("/dashboards/csv/bd_search_terms", params=RANGE).text
    assert "'=HYPERLINK(1)" in csv


def test_suppression_by_user_id_hides_that_accounts_rows(store: Any, login: Any) -> None:
    rows = visitors("u", 6, path="/members")
    for r in rows[:2]:
        r["user_id"] = "f" * 32
    insert_events(store, rows)
    client = login("marketing")
    assert "/members" in _keys(client, "bd_path")
    store.insert("suppressions", [["user_id", "f" * 32, "h9", True, False, "", "",
                                   dt.datetime.now(dt.UTC), 1]],
                 ["id_type", "subject", "subject_hash", "active", "purged", "reason",
                  "requested_by", "updated_at", "version"])
    # 4 visitors remain on /members: below k, so the page disappears from the breakdown.
    assert "/members" not in _keys(client, "bd_path")


def test_consent_rows_below_k_are_dropped(store: Any, login: Any) -> None:
    cols = ["record_id", "consent_id", "ts", "event", "method", "component", "categories", "gpc"]
    now = dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)
    rows = [[uuid.uuid4(), f"c{i}", now, "shown", "none", "banner", {}, False] for i in range(9)]
    rows += [[uuid.uuid4(), f"c{i}", now, "decided", "accept_all", "banner",
              {"analytics": True}, False] for i in range(6)]
    rows += [[uuid.uuid4(), f"c{i}", now, "decided", "reject_all", "banner",
              {"analytics": False}, False] for i in range(6, 9)]
    store.insert("consent_records", rows, cols)
    client = login("privacy")
    funnel = client.get("/dashboards/api/consent_funnel", params=RANGE).json()["rows"]
    assert {(r["step"], r["method"]): r["consents"] for r in funnel} == \
        {("shown", "none"): 9, ("decided", "accept_all"): 6}
    optin = client.get("/dashboards/api/optin", params=RANGE).json()["rows"]
    assert [(r["category"], r["rate"]) for r in optin] == [("analytics", 6 / 9)]


def test_coverage_compares_views_with_views(store: Any, login: Any) -> None:
    anon = [event(kind="anonymous", path="/price", visitor_id="", session_id="", country="",
                  browser="", os="") for _ in range(7)]
    insert_events(store, anon + visitors("v", 6, path="/price")
                  + visitors("v", 6, path="/"))  # the same visits also viewed /
    client = login("marketing")
    rows = client.get("/dashboards/api/coverage",
                      params={**RANGE, "f.path": "/price"}).json()["rows"]
    assert [(r["anonymous"], r["consented"]) for r in rows] == [(7, 6)]
    blocked = client.get("/dashboards/api/coverage", params={**RANGE, "f.country": "JP"})
    assert blocked.json()["rows"] == []


def test_json_and_csv_errors_share_one_shape(client: Any, login: Any) -> None:
    def shape(path: str, params: dict[str, str] | None = None) -> tuple[int, str]:
        r = client.get(path, params=params or RANGE)
        body = r.json()
        assert set(body) == {"error", "message"} and body["message"], (path, body)
        return r.status_code, body["error"]

    assert shape("/dashboards/api/kpis") == (401, "login_required")
    assert shape("/dashboards/csv/kpis") == (401, "login_required")
    login("marketing")
    assert shape("/dashboards/api/nope") == (404, "not_found")
    assert shape("/dashboards/csv/suppression_stats") == (403, "forbidden")
    assert shape("/dashboards/api/kpis", {"preset": "forever"}) == (400, "bad_request")


def test_every_page_lists_known_panels_and_every_panel_has_a_reader() -> None:
    from dashboards.auth import PAGE_ROLES, may_read
    from dashboards.panels import PAGES, PANELS

    assert set(PAGE_ROLES) == set(PAGES)
    assert {pid for page in PAGES.values() for pid in page.panels} == set(PANELS)
    assert not may_read("marketing", "suppression_stats")
    assert may_read("privacy", "suppression_stats") and may_read("privacy", "optin")
