"""Key figures and their series in one query a period (``kpis_series``): the same numbers
``kpis`` and ``timeseries`` give, raw and from the rollup, and what the overview reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from support.dashboards import queries_run, seeded_dsn

from collector.query import catalogue
from collector.query import run as query_run
from collector.query.params import QueryError
from collector.query.rollup import Rollup
from dashboards import pagedata
from dashboards.backends import CachedBackend, StoreBackend
from dashboards.pagedata import PageLoader
from dashboards.panels import PAGES
from dashboards.settings import DashboardSettings
from dashboards.view import parse_view

from .test_rollup import END

BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
# None, one filter with rows per value, two filters and one without (the visits' rows).
FILTERS: list[dict[str, str]] = [{}, {"channel": "search"},
                                 {"channel": "search", "device_type": "mobile"},
                                 {"path": "/treatments/futae"}, {"city": "Osaka"}]
SERIES_KEYS = ("bucket", "visitors", "visits", "pageviews")


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def together(store: Any, raw: dict[str, Any], previous: bool = False
             ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]],
                        list[dict[str, Any]]]:
    """(the fused totals row, its buckets, what kpis answers, what timeseries answers)."""
    tail = "_previous" if previous else ""
    rows = query_run.run(store, f"kpis_series{tail}", raw)
    [totals] = [r for r in rows if r["bucket"] == ""]
    buckets = [{k: r[k] for k in SERIES_KEYS} for r in rows if r["bucket"] != ""]
    [kpis] = query_run.run(store, f"kpis{tail}", raw)
    series = query_run.run(store, f"timeseries{tail}", raw)
    return totals, buckets, [kpis], series


def assert_same(store: Any, raw: dict[str, Any], previous: bool = False) -> None:
    totals, buckets, [kpis], series = together(store, raw, previous)
    assert {k: v for k, v in totals.items() if k != "bucket"} == kpis, raw
    assert buckets == series, raw


@pytest.mark.parametrize("grain", ["day", "week"])
def test_figures_with_series_equal_the_two_queries_raw_and_rolled_up(store: Any,
                                                                     grain: str) -> None:
    for filters in FILTERS:
        raw = {**BASE, "grain": grain, "filters": filters}
        assert_same(store, raw)
        assert_same(store, {**raw, "start": "2026-06-24"}, previous=True)
    Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    for filters in FILTERS:
        raw = {**BASE, "grain": grain, "filters": filters}
        params = catalogue.params_for("kpis_series", raw)
        assert query_run.rollup_plan(store, "kpis_series", params)  # rolled-up days read
        assert_same(store, raw)
        assert_same(store, {**raw, "start": "2026-06-24"}, previous=True)
    # Real figures, not two empty answers: the fortnight has visits, and a filter keeps fewer.
    everyone, _, _, _ = together(store, {**BASE, "grain": grain})
    searched, _, _, _ = together(store, {**BASE, "grain": grain,
                                         "filters": {"channel": "search"}})
    assert everyone["visits"] > searched["visits"] > 0


def test_a_period_without_visits_still_has_its_totals_row(store: Any) -> None:
    raw = {"start": "2020-01-01", "end": "2020-01-14", "k": 5, "grain": "day"}
    assert query_run.run(store, "kpis_series", raw) == [
        {"bucket": "", "visitors": None, "visits": None, "pageviews": None, "bounces": None,
         "below_k": 1}]
    assert_same(store, raw)


def test_an_hourly_series_is_refused_with_its_reason(store: Any) -> None:
    with pytest.raises(QueryError, match="grain: key figures with their series come by day"):
        query_run.run(store, "kpis_series", {**BASE, "grain": "hour"})


@pytest.mark.parametrize(("compare", "filters", "rolled"), [
    ("previous", {}, False), ("previous", {}, True),
    ("off", {"channel": "search", "device_type": "mobile"}, True),
    ("year", {"channel": "search"}, False), ("previous", {"channel": "search"}, True)])
def test_the_overview_reads_each_period_once_and_shows_what_the_two_queries_give(
        store: Any, users: Any, monkeypatch: pytest.MonkeyPatch, compare: str,
        filters: dict[str, str], rolled: bool) -> None:
    if rolled:
        Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    settings = DashboardSettings(users=users, k=5)
    loader = PageLoader(CachedBackend(StoreBackend(store), max_entries=0), settings)
    view = parse_view({"preset": "custom", "start": "2026-06-17", "end": "2026-06-30",
                       "compare": compare, **{f"f.{k}": v for k, v in filters.items()}},
                      "Asia/Tokyo")
    page = PAGES["overview"]
    ran = queries_run(monkeypatch)
    fused = loader.page(page, view)
    expected = ["kpis_series"] + (["kpis_series_previous"] if compare != "off" else [])
    assert [n for n in ran if n.startswith(("kpis", "timeseries"))] == expected
    ran.clear()
    monkeypatch.setattr(pagedata, "FUSED_GRAINS", frozenset())  # as before: two queries
    apart = loader.page(page, view)
    assert "kpis" in ran and "timeseries" in ran
    for pid in ("kpis", "series"):
        assert fused[pid] == apart[pid], pid
    assert fused["kpis"].current and fused["kpis"].current["visits"]
    assert (fused["kpis"].previous is None) == (compare == "off")


def test_a_collector_without_the_query_gets_the_two_queries(
        store: Any, users: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dashboards process newer than its collector: the page still shows its figures."""
    settings = DashboardSettings(users=users, k=5)
    loader = PageLoader(CachedBackend(StoreBackend(store), max_entries=0), settings)
    view = parse_view({"preset": "custom", "start": "2026-06-17", "end": "2026-06-30"},
                      "Asia/Tokyo")
    page = PAGES["overview"]
    older = {k: v for k, v in catalogue.CATALOGUE.items() if not k.startswith("kpis_series")}
    monkeypatch.setattr(catalogue, "CATALOGUE", older)
    asked: list[str] = []
    run = loader.backend.run

    def recorded(name: str, params: Any, *, version: str | None = None) -> Any:
        asked.append(name)
        return run(name, params, version=version)

    monkeypatch.setattr(loader.backend, "run", recorded)
    data = loader.page(page, view)
    assert asked.count("kpis_series") == 1 and "kpis" in asked and "timeseries" in asked
    assert data["kpis"].current and data["kpis"].current["visits"]
    assert data["series"].rows and data["series"].previous_rows is not None


def test_an_empty_answer_reads_as_no_visit() -> None:
    """Figures of a period no row answers for: what ``kpis`` gives for a period without a
    visit, a fresh row each time (panels never share one to mutate)."""
    first, buckets = pagedata._split([])
    again, _ = pagedata._split([])
    assert buckets == [] and first == again == [
        {"visitors": None, "visits": None, "pageviews": None, "bounces": None, "below_k": 1}]
    assert first[0] is not again[0]


def test_the_dates_of_the_buckets_are_the_series_dates(store: Any) -> None:
    rows = query_run.run(store, "kpis_series", {**BASE, "grain": "day"})
    days = [r["bucket"] for r in rows if r["bucket"]]
    assert days == sorted(days) and days[0] == "2026-06-17" and days[-1] == "2026-06-30"
    assert all(dt.date.fromisoformat(d) for d in days)
