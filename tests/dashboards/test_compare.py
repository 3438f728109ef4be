"""Comparison: the period just before or the same dates a year earlier, as key figures beside
and as series laid over the chart; equal to the same queries over the compared dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from support.dashboards import RANGE, seeded_dsn

from collector.query import catalogue
from collector.query import run as query_run
from collector.query.params import QueryError, year_before
from collector.query.rollup import Rollup
from dashboards.reasons import GENERAL
from dashboards.view import parse_view

from .test_rollup import END

BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
A_YEAR_EARLIER = {"start": "2025-06-17", "end": "2025-06-30", "k": 5}


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


@pytest.fixture
def two_years(store: Any) -> Any:
    """The seeded fortnight, and a thinner copy of it a year earlier (every third event).

    The seeded days are in June 2026: a year before them is past the default retention (13
    months) from today, so this store keeps events longer.
    """
    store.command("ALTER TABLE events MODIFY TTL toDateTime(ts) + INTERVAL 3650 DAY",
                  settings={"mutations_sync": 2})
    cols = [r[0] for r in store.rows("DESCRIBE TABLE events") if r[0] not in ("ts",)
            and not str(r[0]).startswith("_")]
    names = ", ".join(c for c in cols if c != "event_id")
    store.command(
        f"INSERT INTO events (event_id, ts, {names}) SELECT generateUUIDv4(), "
        f"ts - INTERVAL 365 DAY, {names} FROM events WHERE cityHash64(event_id) % 3 = 0")
    return store


def test_a_year_earlier_is_the_same_dates_and_a_period_before_is_the_days_before() -> None:
    p = catalogue.params_for("kpis_previous", {**BASE, "compare": "year"})
    assert p.shift_days == 365
    assert catalogue.params_for("kpis_previous", BASE).shift_days == 14
    leap = catalogue.params_for("kpis", {"start": "2028-03-01", "end": "2028-03-31",
                                         "compare": "year"})
    assert leap.shift_days == 366  # 29 February 2028 lies between
    assert year_before(dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)
    with pytest.raises(QueryError, match="compare"):
        catalogue.params_for("kpis", {**BASE, "compare": "last-week"})


@pytest.mark.parametrize("name", ["kpis", "timeseries", "engagement"])
def test_a_year_earlier_equals_the_query_over_those_dates(two_years: Any, name: str) -> None:
    extra = {"grain": "day"} if name == "timeseries" else {}
    compared = query_run.run(two_years, f"{name}_previous",
                             {**BASE, **extra, "compare": "year"})
    direct = query_run.run(two_years, name, {**A_YEAR_EARLIER, **extra})
    assert compared == direct and any(r.get("visits") for r in compared)  # real figures
    assert compared != query_run.run(two_years, name, {**BASE, **extra})
    # The same once the days are rolled up (the plan covers the compared days too).
    Rollup(two_years, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    params = catalogue.params_for(f"{name}_previous", {**BASE, **extra, "compare": "year"})
    assert query_run.rollup_plan(two_years, f"{name}_previous", params)
    assert query_run.run(two_years, f"{name}_previous",
                         {**BASE, **extra, "compare": "year"}) == direct


def test_the_chart_lays_the_compared_series_over_this_period(two_years: Any,
                                                            login: Any) -> None:
    client = login("marketing")
    html = client.get("/dashboards/overview", params={**RANGE, "compare": "year"}).text
    assert '<option value="year" selected>前年同期</option>' in html
    data = html.split('id="chart-data">')[1].split("</script>")[0]
    assert data.count('"name":"') == 6 and "訪問者(前年同期)" in data
    # The compared points sit on this period's dates: 2025-06-17 is drawn at 2026-06-17.
    assert '"x":["2026-06-17"' in data and "2025-06" not in data
    off = client.get("/dashboards/overview", params={**RANGE, "compare": "off"}).text
    assert off.split('id="chart-data">')[1].count('"name":"') == 3
    assert 'data-kpi="visitors"' in off and "比較 " not in off


@pytest.mark.parametrize(("value", "expected"), [
    (None, "previous"), ("1", "previous"), ("0", "off"), ("off", "off"), ("year", "year")])
def test_links_made_before_year_existed_still_work(value: str | None, expected: str) -> None:
    query = {"preset": "30d"} if value is None else {"preset": "30d", "compare": value}
    assert parse_view(query, "Asia/Tokyo").compare == expected


def test_an_unknown_comparison_is_a_400_with_its_reason(login: Any) -> None:
    r = login("marketing").get("/dashboards/overview", params={"compare": "decade"})
    # A hand-made URL: the general sentence, not the collector's English.
    assert r.status_code == 400 and GENERAL in r.text and "compare:" not in r.text


@pytest.mark.parametrize("compare", ["previous", "year"])
def test_dates_the_store_cannot_hold_are_a_400_not_a_failure(login: Any, compare: str) -> None:
    r = login("marketing").get("/dashboards/overview", params={
        "preset": "custom", "start": "0001-01-01", "end": "0001-01-05", "compare": compare})
    assert r.status_code == 400 and "日付は 1971-01-01 から 2199-12-31 の間" in r.text
