"""The daily rollup answers exactly what a scan of the raw events answers, at every change."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from support.dashboards import (
    END,
    ORIGIN,
    PASSWORD,
    event,
    insert_events,
    interactions_beside,
    seeded_dsn,
)

from collector.ddl.tables import EXACT_UP_TO, uniq
from collector.funnels import Funnels
from collector.goals import Goals
from collector.privacy.operations import Privacy
from collector.query import catalogue, params
from collector.query import run as query_run
from collector.query.conversions import GOAL_ROLLUP_DIMS
from collector.query.funnels import FUNNEL_DIMS
from collector.query.rollup import KEEP_SUPERSEDED_S, Rollup
from collector.query.sql import VISIT_KEY_DIMS, compared, rollup_mode
from consent_mw.config import SettingsError
from dashboards.app import create_dashboards
from dashboards.backends import StoreBackend
from dashboards.seed import seed
from dashboards.settings import DashboardSettings

KEY = b"rollup-test-key-0123456789"
END_ZONE = zoneinfo.ZoneInfo("Asia/Tokyo")
BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
DIMS = ["path", "entry_path", "channel", "referrer_host", "device_type", "country"]
# Every query the rollup serves, over a range whose last day (06-30) is still open.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("kpis", {}), ("kpis_previous", {}),
    ("timeseries", {"grain": "day"}), ("timeseries", {"grain": "week"}),
    ("timeseries_previous", {"grain": "day"}), ("kpis_previous", {"compare": "year"}),
    ("kpis_series", {"grain": "day"}), ("kpis_series", {"grain": "week"}),
    ("kpis_series_previous", {"grain": "day"}),
    ("breakdowns", {"dims": DIMS}),
    ("engagement", {}), ("engagement_previous", {}), ("page_engagement", {"limit": 50}),
    *[("breakdown", {"dim": d}) for d in params.DIMENSIONS],
    # Goals: one of each kind (GOALS), then the first by every rolled-up dimension.
    ("goals", {}), ("goal_series", {"goal": "first"}),
    ("goal_series", {"goal": "first", "grain": "week"}),
    *[("goal_breakdown", {"dim": d, "goal": "first"}) for d in GOAL_ROLLUP_DIMS],
    ("goal_breakdowns", {"dims": list(GOAL_ROLLUP_DIMS), "goal": "first"}),
    # A funnel within a visit (steps are per-visit measures, like goals).
    ("funnel", {"funnel": "first"}),
    *[("funnel_breakdown", {"dim": d, "funnel": "first"}) for d in FUNNEL_DIMS],
]
# One filter the rollup keeps per value: a channel, a small campaign (near k on some days), a
# device and a page (visits that viewed it); each with the queries a filtered view reads.
FILTERED: list[tuple[str, dict[str, Any]]] = [
    (name, {**extra, "filters": filt})
    for filt in ({"channel": "search"}, {"utm_campaign": "futae_ig"},
                 {"device_type": "tablet"}, {"path": "/treatments/futae"},
                 # Read from the day's visits: two filters, a filter without rows per
                 # value, one on an interaction.
                 {"channel": "search", "device_type": "mobile"},
                 {"path": "/reservation", "utm_source": "google"},
                 {"city": "Osaka"}, {"interaction": "tel"})
    for name, extra in [("kpis", {}), ("kpis_previous", {}), ("timeseries", {"grain": "day"}),
                        ("timeseries_previous", {"grain": "week"}),
                        ("kpis_series", {"grain": "day"}),
                        ("kpis_series_previous", {"grain": "week"}),
                        ("engagement", {}), ("engagement_previous", {}),
                        ("goals", {}), ("goal_series", {"goal": "first", "grain": "week"}),
                        ("goal_breakdown", {"dim": "utm_campaign", "goal": "first"}),
                        ("goal_breakdowns", {"dims": list(GOAL_ROLLUP_DIMS),
                                             "goal": "first"}),
                        ("funnel", {"funnel": "first"}),
                        ("funnel_breakdown", {"dim": "utm_source", "funnel": "first"}),
                        ("breakdowns", {"dims": DIMS}), ("breakdown", {"dim": "event"}),
                        ("breakdown", {"dim": "outbound"}), ("breakdown", {"dim": "property"}),
                        ("page_engagement", {"limit": 50})]
]
QUERIES += FILTERED
GOALS: dict[str, dict[str, Any]] = {
    "a reservation": {"kind": "event", "event": "reservation"},
    "phone tap": {"kind": "interaction", "interaction": "tel"},
    "treatments": {"kind": "page", "path": "/treatments/*"},
    "a minute": {"kind": "engaged", "seconds": 60},
}


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


@pytest.fixture
def seeded(store: Any) -> Any:
    for name, body in GOALS.items():
        Goals(store).add(name, body, "marketing")
    booked = next(g.goal_id for g in Goals(store).live() if g.name == "a reservation")
    Funnels(store).add("to a booking", {"steps": [{"path": "/treatments/*"},
                                                  {"path": "/reservation"}, {"goal": booked}]},
                       "marketing")
    return store


def resolved(store: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` with goal "first" as the id of the first goal (by name), and funnel "first"
    as the first funnel's."""
    if extra.get("goal") == "first":
        first = min(Goals(store).live(), key=lambda g: g.name)
        extra = {**extra, "goal": first.goal_id}
    if extra.get("funnel") == "first":
        funnel = str(store.scalar("SELECT min(funnel_id) FROM dashboard_funnels"))
        extra = {**extra, "funnel": funnel}
    return extra


def rollup(store: Any, now: float = END) -> Rollup:
    return Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: now)


def served_and_raw(store: Any, name: str, raw: dict[str, Any]) -> tuple[Any, Any, int]:
    """(rows as the catalogue serves them, rows of a raw scan, rollup days used)."""
    raw = resolved(store, raw)
    params = catalogue.params_for(name, raw)
    goals = query_run.stored_goals(store)
    funnels = query_run.stored_funnels(store, goals)
    plan = query_run.rollup_plan(store, name, params, goals, funnels)
    active = query_run.active_suppression_types(store)
    served = query_run.run(store, name, raw)
    scanned = query_run.run_readonly(store, catalogue.build(name, raw, active, None, goals,
                                                            funnels))
    return served, scanned, len(plan)


def same_figures(served: list[dict[str, Any]], scanned: list[dict[str, Any]]) -> bool:
    """Equal rows, but for what ``ddl.tables.EXACT_UP_TO`` allows: a distinct count above it
    is an estimate that depends on the order states were merged in (threads decide it), so
    it, and a rate of the row it is in, may differ from the scan's by under 3 %."""
    if len(served) != len(scanned):
        return False
    for a, b in zip(served, scanned, strict=True):
        if a.keys() != b.keys():
            return False
        off = {k for k in a if a[k] != b[k]}
        counts = {k for k in off if type(b[k]) is int and type(a[k]) is int}
        if any(b[k] <= EXACT_UP_TO or abs(a[k] - b[k]) >= 0.03 * b[k] for k in counts):
            return False
        if any(not counts or type(b[k]) is not float or type(a[k]) is not float
               or abs(a[k] - b[k]) >= 0.03 * abs(b[k]) for k in off - counts):
            return False
    return True


def assert_all_equal_raw(store: Any, *, expect_rollup: bool = True) -> None:
    defined = bool(Goals(store).live())
    for name, extra in QUERIES:
        if (name.startswith(("goal", "funnel"))) and not defined:
            continue
        served, scanned, days = served_and_raw(store, name, {**BASE, **extra})
        assert same_figures(served, scanned), (name, extra, served, scanned)
        assert (days > 0) == expect_rollup, (name, extra, days)


def kpis(store: Any) -> dict[str, Any]:
    rows: list[dict[str, Any]] = query_run.run(store, "kpis", BASE)
    return rows[0]


def test_rollup_answers_equal_a_raw_scan_for_every_query(seeded: Any) -> None:
    report = rollup(seeded).refresh()
    # 06-17 .. 06-29 are over; 06-30 (END is its noon) is scanned raw.
    assert report.built == tuple(dt.date(2026, 6, d) for d in range(17, 30))
    assert_all_equal_raw(seeded)
    assert rollup(seeded).refresh().built == ()  # nothing changed: nothing rebuilt


#: The queries that leave out the events part of a period whose every day is rolled up.
ROLLUP_ONLY = ("kpis", "kpis_previous", "timeseries", "timeseries_previous", "kpis_series",
               "kpis_series_previous", "engagement", "engagement_previous",
               "page_engagement", "breakdown", "breakdowns", "goals", "goal_series",
               "goal_breakdown", "goal_breakdowns", "funnel", "funnel_breakdown")


def test_a_period_of_closed_days_reads_the_rollup_alone_and_equals_a_raw_scan(
        seeded: Any) -> None:
    """06-17 .. 06-29 are all rolled up: no events part to plan (sql.NO_EVENTS), and still
    the numbers of a raw scan, filtered or not."""
    rollup(seeded).refresh()
    closed = {**BASE, "end": "2026-06-29"}
    goals = query_run.stored_goals(seeded)
    funnels = query_run.stored_funnels(seeded, goals)
    active = query_run.active_suppression_types(seeded)
    left_out = 0
    for name, extra in QUERIES:
        raw = resolved(seeded, {**closed, **extra})
        served, scanned, _ = served_and_raw(seeded, name, raw)
        assert same_figures(served, scanned), (name, extra, served, scanned)
        params = catalogue.params_for(name, raw)
        plan = query_run.rollup_plan(seeded, name, params, goals, funnels)
        # A filtered breakdown of a custom event's properties reads the events of the visits
        # its filters select (the others, their keys: rollup_visit_keys);
        # a compared period before the seeded days has no rollup days to read.
        dims = list(params.dims) or [params.dim]
        period = compared(params) if name.endswith("_previous") else params
        rolled_up = {d for d, _ in plan} >= {
            period.start + dt.timedelta(days=i)
            for i in range((period.end - period.start).days + 1)}
        if name in ROLLUP_ONLY and rolled_up and not (
                name.startswith("breakdown") and rollup_mode(params, dims) == "visits"
                and not set(dims) <= VISIT_KEY_DIMS):
            sql = catalogue.build(name, raw, active, plan, goals, funnels).text
            assert "FROM events" not in sql, (name, extra)
            left_out += 1
    assert left_out >= 30  # the check ran, filtered and not


def test_a_pages_queries_share_their_reads_and_answer_as_each_alone(
        seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``Reads`` for every query of a page: the same rows as each query reading its own
    goals, suppressions and plan, from one read of each."""
    rollup(seeded).refresh()
    statements: list[str] = []
    query = seeded.query

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return query(sql, *args, **kwargs)

    reads = query_run.Reads(seeded)
    shared = []
    monkeypatch.setattr(seeded, "query", counted)
    for name, extra in QUERIES:
        shared.append(query_run.run(seeded, name, resolved(seeded, {**BASE, **extra}),
                                    reads=reads))
    monkeypatch.undo()
    alone = [query_run.run(seeded, name, resolved(seeded, {**BASE, **extra}))
             for name, extra in QUERIES]
    assert shared == alone
    assert statements.count(query_run.ACTIVE_TYPES_SQL) == 1
    assert statements.count(query_run.GOALS_SQL) == 1
    # One plan per period read: this period, the previous one and the year before.
    assert statements.count(query_run.ROLLUP_PLAN_SQL) == 3
    assert len(statements) < 2 * len(QUERIES)  # was five reads a query, not counting its own


@pytest.mark.parametrize("page", ["overview", "goals"])
def test_a_dashboard_page_reads_suppressions_and_plans_once(
        seeded: Any, settings: DashboardSettings, monkeypatch: pytest.MonkeyPatch,
        page: str) -> None:
    rollup(seeded).refresh()
    app = Starlette(routes=[Mount("/dashboards", app=create_dashboards(
        settings, StoreBackend(seeded), cache=False))])
    statements: list[str] = []
    query = seeded.query

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return query(sql, *args, **kwargs)

    with TestClient(app, follow_redirects=False) as client:
        r = client.post("/dashboards/login", data={"username": "marketing",
                                                   "password": PASSWORD},
                        headers={"Origin": ORIGIN})
        assert r.status_code == 303
        monkeypatch.setattr(seeded, "query", counted)
        for _ in range(2):  # and the next page reads them again
            r = client.get(f"/dashboards/{page}", params={"preset": "custom", **BASE})
            assert r.status_code == 200 and 'role="alert"' not in r.text
    reads = [s for s in statements if s == query_run.ACTIVE_TYPES_SQL]
    assert len(reads) == 2, len(statements)
    assert statements.count(query_run.ROLLUP_PLAN_SQL) <= 2 * 3


def test_views_the_rollup_cannot_answer_scan_raw(seeded: Any) -> None:
    rollup(seeded).refresh()
    hourly = catalogue.params_for("timeseries", {**BASE, "start": "2026-06-29", "grain": "hour"})
    assert query_run.rollup_plan(seeded, "timeseries", hourly) == []


def test_page_engagement_with_filters_reads_the_pages_of_the_visits_they_select(
        seeded: Any) -> None:
    """The pages of a filtered view come from its visits' rows (``rollup_visit_pages``),
    not from a scan of their events, and equal that scan."""
    rollup(seeded).refresh()
    for filters in ({"channel": "search"}, {"channel": "search", "device_type": "mobile"}):
        query = {**BASE, "end": "2026-06-29", "limit": 50, "filters": filters}
        pages = catalogue.params_for("page_engagement", query)
        plan = query_run.rollup_plan(seeded, "page_engagement", pages)
        assert plan
        built = catalogue.build("page_engagement", query,
                                query_run.active_suppression_types(seeded), plan)
        assert "rollup_visit_pages" in built.text and "FROM events" not in built.text
        served, scanned, days = served_and_raw(seeded, "page_engagement", query)
        assert days == 13 and same_figures(served, scanned)
        assert len(served) > 3 and any(r["exits"] for r in served)


def first_visitor(store: Any, day: str) -> tuple[str, set[dt.date]]:
    visitor = str(store.scalar(
        "SELECT visitor_id FROM events WHERE toDate(ts, 'Asia/Tokyo') = {d:Date} "
        "AND visitor_id != '' AND kind = 'pageview' ORDER BY visitor_id LIMIT 1",
        {"d": dt.date.fromisoformat(day)}))
    days = {r[0] for r in store.rows(
        "SELECT DISTINCT toDate(ts, 'Asia/Tokyo') FROM events WHERE visitor_id = {v:String}",
        {"v": visitor})}
    return visitor, days


def test_a_suppression_applies_at_once_and_refresh_rebuilds_only_that_persons_days(
        seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    before = kpis(seeded)
    visitor, days = first_visitor(seeded, "2026-06-20")
    privacy = Privacy(seeded, KEY)
    privacy.suppress(visitor_id=visitor)
    # The stamp moved: every day is scanned raw until the refresh, so the person is gone now.
    assert_all_equal_raw(seeded, expect_rollup=False)
    assert kpis(seeded)["visitors"] < before["visitors"]
    report = r.refresh()
    assert set(report.built) == days & set(report.built) == {
        d for d in days if d < dt.date(2026, 6, 30)}
    assert report.restamped == 13 - len(report.built)
    assert_all_equal_raw(seeded)
    privacy.unsuppress(visitor_id=visitor)
    assert_all_equal_raw(seeded, expect_rollup=False)
    assert set(r.refresh().built) == set(report.built)
    assert_all_equal_raw(seeded)
    assert kpis(seeded) == before


def test_a_purge_leaves_the_rollup_exact(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    visitor, _ = first_visitor(seeded, "2026-06-21")
    Privacy(seeded, KEY, cleanup_timeout=5).purge(visitor_id=visitor)
    r.refresh()
    assert_all_equal_raw(seeded)
    # Rollups hold hashes in uniq states, never an id.
    assert not seeded.scalar(
        "SELECT count() FROM rollup_dims WHERE position(key, {v:String}) > 0", {"v": visitor})


def test_late_events_from_ingest_mark_their_day_until_it_is_rebuilt(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    late = [event(ts=dt.datetime(2026, 6, 20, 3, i, tzinfo=dt.UTC), visitor_id=f"late{i:02}",
                  session_id=f"late-s{i}", path="/late") for i in range(6)]
    insert_events(seeded, late)
    r.note_inserted([int(e["ts"].timestamp() * 1000) for e in late])  # as ingest calls it
    served, scanned, days = served_and_raw(seeded, "breakdown",
                                           {**BASE, "dim": "path", "limit": 500})
    assert same_figures(served, scanned) and days == 12  # 06-20 is scanned raw
    assert any(row["key"] == "/late" for row in served)
    assert r.refresh().built == (dt.date(2026, 6, 20),)
    assert_all_equal_raw(seeded)


def test_today_events_leave_closed_days_alone(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    r.note_inserted([(END - 60) * 1000])
    assert len(query_run.rollup_plan(seeded, "kpis", catalogue.params_for("kpis", BASE))) == 13


def test_rows_written_around_the_collector_are_caught_by_the_count_check(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    insert_events(seeded, [event(ts=dt.datetime(2026, 6, 22, 5, 0, tzinfo=dt.UTC),
                                 visitor_id=f"direct{i}", session_id=f"direct{i}")
                           for i in range(3)])
    assert r.refresh().built == (dt.date(2026, 6, 22),)
    assert_all_equal_raw(seeded)


def test_seeding_marks_rolled_up_days_dirty(seeded: Any) -> None:
    rollup(seeded).refresh()
    seed(seeded, 300, 3, rng_seed=99, end=END - 86400)  # 06-27 .. 06-29
    plan = query_run.rollup_plan(seeded, "kpis", catalogue.params_for("kpis", BASE))
    assert {d for d, _ in plan} == {dt.date(2026, 6, d) for d in range(17, 27)}


def test_superseded_builds_are_deleted_once_no_query_can_use_them(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    r.mark_dirty({dt.date(2026, 6, 25)})
    assert r.refresh().collected == 0  # the old build may still be read by a running query
    builds = "SELECT count(DISTINCT build) FROM rollup_totals WHERE day = '2026-06-25'"
    assert seeded.scalar(builds) == 2
    assert rollup(seeded, END + KEEP_SUPERSEDED_S + 1).refresh().collected == 1
    assert seeded.scalar(builds) == 1
    assert_all_equal_raw(seeded)


#: Queries about one goal or funnel, which name it: test_goals.py and test_funnels.py compare
#: them with the raw rows.
ABOUT_ONE_GOAL = {"goal_breakdown", "goal_breakdowns", "goal_series", "funnel",
                  "funnel_breakdown"}
#: Every dated query the dashboards run, unfiltered and filtered, raw and rolled up.
EVERY_FIGURE: list[tuple[str, dict[str, Any]]] = [
    *QUERIES,
    *[(name, {}) for name in catalogue.CATALOGUE
      if name not in catalogue.UNDATED and name not in {n for n, _ in QUERIES}
      and name not in ABOUT_ONE_GOAL],
    ("timeseries", {"grain": "hour", "start": "2026-06-28"}),
    ("kpis", {"filters": {"channel": "search"}}),
    ("kpis", {"filters": {"path": "/"}}),
    ("breakdowns", {"dims": DIMS, "filters": {"device_type": "mobile"}}),
    ("coverage", {"filters": {"path": "/"}}),
]


def figures(store: Any) -> dict[str, Any]:
    """Every figure; those about one goal only where there are goals."""
    defined = bool(Goals(store).live())
    return {f"{name} {extra}": query_run.run(store, name, resolved(store, {**BASE, **extra}))
            for name, extra in EVERY_FIGURE
            if defined or ("goal" not in extra and "funnel" not in extra)}


#: What the beacon's reports are for: the engagement figures and the interaction breakdowns.
INTERACTION_FIGURES = {"engagement {}", "engagement_previous {}",
                       "page_engagement {'limit': 50}", "goals {}"} | {
    f"{name} {extra}" for name, extra in QUERIES if name.startswith("goal_")} | {
    f"breakdown {{'dim': '{d}'}}" for d, dim in params.DIMENSIONS.items()
    if "'interaction'" in dim.rows} | {
    # Filtered views fed too: by their filter on an interaction, their interaction
    # breakdown, or their engagement, pages and goals (a visit's engaged time, a page's
    # scroll depth, a phone tap).
    f"{name} {extra}" for name, extra in FILTERED
    if "interaction" in extra["filters"] or extra.get("dim") == "outbound"
    or name.startswith(("engagement", "page_engagement", "goal"))}


def split(figs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures interactions must not move, figures they feed)."""
    return ({k: v for k, v in figs.items() if k not in INTERACTION_FIGURES},
            {k: v for k, v in figs.items() if k in INTERACTION_FIGURES})


def test_interaction_events_move_only_their_figures_and_the_rollup_stays_exact(
        seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    before, fed_before = split(figures(seeded))
    # 30 reports of each kind: its visitors stay under 128, where every merge of the
    # rollup's states counts exactly (tables.EXACT_UP_TO); 50 took "outbound" to 129, which
    # the merged states counted 128 or 129 depending on the order of parts.
    late = interactions_beside(seeded, sessions=240)
    insert_events(seeded, late)
    r.note_inserted([int(e["ts"].timestamp() * 1000) for e in late])  # as ingest calls it
    after, fed = split(figures(seeded))  # the days they landed on are scanned raw
    assert after == before
    # Each one-second report lengthens a visit and brings an interaction into its panel.
    changed = {k for k in fed if fed[k] != fed_before[k]}
    assert {"engagement {}", "breakdown {'dim': 'interaction'}",
            "breakdown {'dim': 'outbound'}", "breakdown {'dim': 'form'}"} <= changed
    assert set(r.refresh().built) == {
        e["ts"].astimezone(END_ZONE).date() for e in late} - {dt.date(2026, 6, 30)}
    assert_all_equal_raw(seeded)
    assert split(figures(seeded)) == (before, fed)


@pytest.mark.parametrize("parts", [1, 2, 30])
def test_distinct_counts_are_exact_up_to_the_bound_even_merged(store: Any, parts: int) -> None:
    """Why k may not exceed K_MAX: below EXACT_UP_TO no estimate can pass a group for k."""
    sizes = sorted({1, 5, 50, 99, params.K_MAX, EXACT_UP_TO - 1, EXACT_UP_TO})
    rows = store.rows(f"""
        SELECT n, {uniq('Merge')}(st) FROM (
            SELECT n, {uniq('State')}(toString(cityHash64(x, n))) AS st
            FROM (SELECT arrayJoin({{sizes:Array(UInt32)}}) AS n) ARRAY JOIN range(n) AS x
            GROUP BY n, x % {parts})
        GROUP BY n ORDER BY n""", {"sizes": sizes})
    assert [(int(n), int(u)) for n, u in rows] == [(n, n) for n in sorted(sizes)]
    assert params.K_MAX < EXACT_UP_TO


def test_k_above_the_exact_range_is_refused(users: Any) -> None:
    with pytest.raises(params.QueryError, match=f"k: must be between 2 and {params.K_MAX}"):
        catalogue.params_for("kpis", {**BASE, "k": params.K_MAX + 1})
    with pytest.raises(SettingsError, match="dashboard_k"):
        DashboardSettings(users=users, k=params.K_MAX + 1)


def test_a_goal_defined_after_the_rollup_is_added_to_its_builds(seeded: Any) -> None:
    r = rollup(seeded)
    r.refresh()
    added = Goals(seeded).add("LINE", {"kind": "interaction", "interaction": "app",
                                       "target": "line"}, "marketing")
    raw = {**BASE, "goal": added}
    # Until the next refresh the new goal's days are scanned raw: right, only slower.
    served, scanned, days = served_and_raw(seeded, "goal_series", raw)
    assert same_figures(served, scanned) and days == 0
    assert served_and_raw(seeded, "goals", BASE)[2] == 0  # a query of every goal, too
    report = r.refresh()
    assert report.built == ()  # no day is rebuilt for a goal: its figures are added
    for name, extra in (("goal_series", {}), ("goal_breakdown", {"dim": "channel"}),
                        ("goals", {}), ("goals", {"filters": {"device_type": "mobile"}}),
                        ("goal_series", {"filters": {"channel": "social"}})):
        served, scanned, days = served_and_raw(seeded, name, {**raw, **extra})
        assert same_figures(served, scanned) and days == 13, name
        if name == "goals":  # the new goal's own figures, filtered too
            assert next(r for r in served if r["goal_id"] == added)["converted_visits"], extra
    # An edited goal is a new definition: its figures are built again, the old ones unused.
    Goals(seeded).delete(added, "marketing")
    edited = Goals(seeded).add("LINE", {"kind": "interaction", "interaction": "app",
                                        "target": "instagram"}, "marketing")
    assert served_and_raw(seeded, "goal_series", {**BASE, "goal": edited})[2] == 0
    r.refresh()
    served, scanned, days = served_and_raw(seeded, "goal_series", {**BASE, "goal": edited})
    assert same_figures(served, scanned) and days == 13
    assert any(row["conversions"] for row in served)


def test_a_goal_backfill_that_failed_halfway_is_redone_not_counted_twice(
        seeded: Any) -> None:
    """A backfill writes a goal's converting visits and its rows per filter value, then its
    rollup_goals rows (whose COVERED rows say the build has the goal). If the last insert
    fails, the next refresh backfills the goal again: the rows of the first attempt must not
    count twice, whether a view reads the visits' rows (two filters) or the value's (one)."""
    r = rollup(seeded)
    r.refresh()
    added = Goals(seeded).add("tel", {"kind": "interaction", "interaction": "tel"},
                              "marketing")
    r.refresh()
    key = next(g.rollup_key for g in query_run.stored_goals(seeded) if g.goal_id == added)
    # What a failure after the first insert leaves: visit rows, no rollup_goals rows.
    seeded.command("ALTER TABLE rollup_goals DELETE WHERE goal_key = {g:String}", {"g": key},
                   settings={"mutations_sync": 2})
    one = {**BASE, "filters": {"device_type": "mobile"}}
    two = {**BASE, "filters": {"device_type": "mobile", "channel": "search"}}
    assert served_and_raw(seeded, "goals", one)[2] == 0  # not covered: scanned raw
    r.refresh()  # the backfill again
    assert seeded.scalar("SELECT count() FROM rollup_visit_goals WHERE goal_key = {g:String}",
                         {"g": key}) == seeded.scalar(
        "SELECT count() FROM (SELECT DISTINCT build, visit FROM rollup_visit_goals "
        "WHERE goal_key = {g:String})", {"g": key}) > 0
    assert seeded.scalar("SELECT count() FROM rollup_fgoals WHERE goal_key = {g:String}",
                         {"g": key}) == seeded.scalar(
        "SELECT count() FROM (SELECT DISTINCT build, fdim, fval, dim, key FROM rollup_fgoals "
        "WHERE goal_key = {g:String})", {"g": key}) > 0
    for raw in (one, two):
        served, scanned, days = served_and_raw(seeded, "goals", raw)
        assert same_figures(served, scanned) and days == 13
        assert next(row for row in served if row["goal_id"] == added)["conversions"]


def test_values_beyond_the_cap_are_answered_from_the_visits(seeded: Any) -> None:
    """A visitor chooses their campaign names: a day keeps rows for its most visited values
    only, and a view of a value cut on one of its days reads the visits' rows, exact too."""
    Rollup(seeded, "Asia/Tokyo", grace=0, clock=lambda: END, per_value_cap=4).refresh()
    assert seeded.scalar("SELECT count() FROM rollup_ftotals WHERE fdim = '#' "
                         "AND fval = 'utm_campaign'") == 13
    campaigns = sorted(str(r[0]) for r in seeded.rows(
        "SELECT DISTINCT utm_campaign FROM events WHERE utm_campaign != ''"))
    covered: dict[bool, str] = {}
    for value in campaigns:
        p = catalogue.params_for("kpis", {**BASE, "filters": {"utm_campaign": value}})
        plan = query_run.rollup_plan(seeded, "kpis", p)
        assert plan
        covered.setdefault(query_run.per_value_covered(seeded, p, plan), value)
    assert set(covered) == {True, False}  # some values kept every day, some cut on one
    for value in covered.values():
        for name, extra in [("kpis", {}), ("timeseries", {"grain": "day"}),
                            ("breakdowns", {"dims": DIMS}), ("goals", {})]:
            raw = {**BASE, **extra, "filters": {"utm_campaign": value}}
            served, scanned, days = served_and_raw(seeded, name, raw)
            assert same_figures(served, scanned) and days > 0, (value, name)
