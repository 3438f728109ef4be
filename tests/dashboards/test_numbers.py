"""Dashboard figures equal the same counts taken directly in SQL, on seeded traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.dashboards import RANGE, insert_events, interactions_beside, seeded_dsn

from collector.ddl.tables import EXACT_UP_TO, uniq

# Seeded range in UTC: 2026-06-17 00:00 JST .. 2026-07-01 00:00 JST.
T0, T1 = "2026-06-16 15:00:00", "2026-06-30 15:00:00"
WHERE = (f"ts >= toDateTime64('{T0}', 3, 'UTC') AND ts < toDateTime64('{T1}', 3, 'UTC') "
         "AND kind IN ('pageview', 'custom')")
# Distinct visitors are counted with the dashboards' estimator: exact up to EXACT_UP_TO.
U = uniq()
# A visit ends at midnight in the site's time zone.
VISIT = "session_id, toDate(ts, 'Asia/Tokyo')"


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


@pytest.fixture
def seeded(store: Any) -> Any:
    return store


def test_kpis_equal_direct_sql(seeded: Any, login: Any) -> None:
    client: TestClient = login("marketing")
    kpis = client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]
    visitors, exact, visits, pageviews = seeded.rows(
        f"SELECT {U}(visitor_id), count(DISTINCT visitor_id), count(DISTINCT {VISIT}), "
        f"countIf(kind = 'pageview') FROM events WHERE {WHERE}")[0]
    bounces = seeded.scalar(
        f"SELECT countIf(pv = 1 AND n = 1) FROM (SELECT countIf(kind='pageview') pv,"
        f" count() n FROM events WHERE {WHERE} GROUP BY {VISIT})")
    assert exact > EXACT_UP_TO and abs(visitors - exact) / exact < 0.03
    assert (kpis["visitors"], kpis["visits"], kpis["pageviews"], kpis["bounces"]) == (
        visitors, visits, pageviews, bounces)
    assert "reservations" not in kpis  # a goal's figure now: no event name is special


def test_top_pages_and_countries_equal_direct_sql(seeded: Any, login: Any) -> None:
    client = login("marketing")
    pages = client.get("/dashboards/api/bd_path", params=RANGE).json()["rows"]
    direct = seeded.rows(
        f"SELECT path, {U}(visitor_id) v, count() FROM events WHERE {WHERE} "
        f"AND kind = 'pageview' GROUP BY path ORDER BY v DESC, path LIMIT 3")
    assert [(r["key"], r["visitors"], r["events"]) for r in pages[:3]] == \
        [tuple(r) for r in direct]
    jp = client.get("/dashboards/api/bd_country", params={**RANGE, "f.browser": "Edge"}).json()
    direct_jp = seeded.rows(
        f"SELECT count(DISTINCT visitor_id), count() FROM events WHERE {WHERE} "
        f"AND kind = 'pageview' AND country = 'JP' AND browser = 'Edge'")[0]
    assert direct_jp[0] <= EXACT_UP_TO  # small enough to be exact: count(DISTINCT) holds
    row = next(r for r in jp["rows"] if r["key"] == "JP")
    assert (row["visitors"], row["events"]) == tuple(direct_jp)


def test_timeseries_days_sum_to_pageviews(seeded: Any, login: Any) -> None:
    client = login("marketing")
    series = client.get("/dashboards/api/series", params=RANGE).json()["rows"]
    kpis = client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]
    assert series[0]["bucket"] == "2026-06-17"
    assert sum(r["pageviews"] for r in series) == kpis["pageviews"]


def test_consent_funnel_counts_match_records(seeded: Any, login: Any) -> None:
    client = login("privacy")
    funnel = client.get("/dashboards/api/consent_funnel", params=RANGE).json()["rows"]
    shown = seeded.scalar(
        f"SELECT count(DISTINCT consent_id) FROM consent_records WHERE event = 'shown' AND "
        f"ts >= toDateTime64('{T0}', 3, 'UTC') AND ts < toDateTime64('{T1}', 3, 'UTC')")
    assert next(r for r in funnel if r["step"] == "shown")["consents"] == shown
    assert {r["method"] for r in funnel if r["step"] == "decided"} == \
        {"accept_all", "reject_all", "save"}


def test_overview_page_renders_every_panel(seeded: Any, login: Any) -> None:
    client = login("marketing")
    page = client.get("/dashboards/overview", params=RANGE)
    assert page.status_code == 200
    for panel in ("kpis", "series", "bd_path", "bd_entry_path", "bd_channel", "bd_country"):
        assert f'id="panel-{panel}"' in page.text
    assert 'type="application/json" id="chart-data"' in page.text


def test_csv_download_has_the_table(seeded: Any, login: Any) -> None:
    client = login("marketing")
    r = client.get("/dashboards/csv/bd_channel", params=RANGE)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == "key,is_other,visitors,events"
    assert "search" in r.text


def test_one_scan_breakdowns_equal_single_breakdowns(seeded: Any, login: Any) -> None:
    from collector.query import run as query_run
    dims = ["path", "entry_path", "channel", "referrer_host", "device_type", "country"]
    base = {"start": RANGE["start"], "end": RANGE["end"], "k": 5}
    for filters in ({}, {"channel": "search"}, {"country": "FR", "browser": "Firefox"}):
        combined = query_run.run(seeded, "breakdowns",
                                 {**base, "dims": dims, "filters": filters})
        for dim in dims:
            single = query_run.run(seeded, "breakdown", {**base, "dim": dim, "filters": filters})
            assert single == [{k: v for k, v in r.items() if k != "dim"}
                              for r in combined if r["dim"] == dim], (dim, filters)


def test_overview_page_shows_what_the_panel_api_gives(seeded: Any, login: Any) -> None:
    client = login("marketing")
    params = {**RANGE, "f.channel": "search"}
    page = client.get("/dashboards/overview", params=params).text
    top = client.get("/dashboards/api/bd_path", params=params).json()["rows"][0]
    assert f">{top['key']}</a>" in page and f"{top['visitors']:,}" in page


def test_every_page_renders_for_admin_with_and_without_filters(seeded: Any, login: Any) -> None:
    from dashboards.panels import PAGES

    client = login("admin")
    for page in PAGES:
        for extra in ({}, {"f.country": "JP", "grain": "week"}, {"preset": "today"}):
            r = client.get(f"/dashboards/{page}", params={**RANGE, **extra})
            assert r.status_code == 200, (page, extra, r.text[:300])
            assert "could not answer" not in r.text and "応答できません" not in r.text


def test_interaction_events_change_only_the_panels_they_feed(seeded: Any, login: Any) -> None:
    from collector.query.params import DIMENSIONS
    from dashboards.panels import PANELS

    fed = {p.id for p in PANELS.values()
           if p.query in ("engagement", "page_engagement")
           or (p.dim and p.query == "breakdown" and "'interaction'" in DIMENSIONS[p.dim].rows)}
    assert {"engagement", "bd_outbound", "bd_tel_page"} <= fed
    client = login("admin")
    views = [RANGE, {**RANGE, "f.channel": "search"}, {**RANGE, "f.device_type": "mobile"}]

    def panels() -> dict[tuple[str, int], Any]:
        return {(panel, i): client.get(f"/dashboards/api/{panel}", params=view).json()
                for panel in PANELS for i, view in enumerate(views)}

    before = panels()
    assert all(answer["rows"] is not None for answer in before.values())
    insert_events(seeded, interactions_beside(seeded))
    after = panels()
    assert {k: v for k, v in after.items() if k[0] not in fed} == {
        k: v for k, v in before.items() if k[0] not in fed}
    moved = {k[0] for k in after if after[k] != before[k]}
    assert {"engagement", "bd_interaction", "bd_outbound", "bd_form"} <= moved


def test_the_same_seed_writes_the_same_traffic(tmp_path: Path) -> None:
    """``seed`` is deterministic for an rng_seed and an end, interactions included: they
    were drawn from the page views' random event ids, so every seeded store (each test's
    template) had other clicks, and a figure near k was there in one run and not the next."""
    from support.dashboards import END

    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store
    from dashboards.seed import seed

    digests = []
    for n in (1, 2):
        store = Store(f"chdb://{tmp_path / f'store{n}.chdb'}")
        try:
            apply_migrations(store, DdlOptions())
            seed(store, 3_000, 3, rng_seed=5, end=END)
            digests.append(store.rows(
                "SELECT kind, name, count(), sum(cityHash64(ts, path, visitor_id, session_id, "
                "target_host, target, scroll_depth, engaged_seconds)) FROM events "
                "GROUP BY kind, name ORDER BY kind, name"))
        finally:
            store.close()
    assert digests[0] == digests[1]
    assert {(str(k), str(n)) for k, n, *_ in digests[0]} >= {
        ("pageview", "pageview"), ("interaction", "app"), ("interaction", "tel")}
