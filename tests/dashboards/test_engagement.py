"""Engagement figures and interaction panels equal what plain Python makes of the raw rows;
they stay k-anonymous, honour suppression, purge and filters, and show on the demo's data."""

from __future__ import annotations

import datetime as dt
import re
import statistics
import uuid
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from support.dashboards import END, RANGE, insert_events, seeded_dsn, visitors

from collector.ddl.tables import EXACT_UP_TO
from collector.privacy.operations import Privacy
from collector.query import catalogue
from collector.query import run as query_run
from collector.query.engagement import ENGAGED_BOUNCE_S
from collector.query.rollup import Rollup

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
KEY = b"engagement-test-key-0123456789"


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def raw_rows(store: Any) -> list[dict[str, Any]]:
    return store.dicts(
        "SELECT session_id, visitor_id, ts, kind, name, path, engaged_seconds, scroll_depth "
        "FROM events WHERE kind IN ('pageview', 'custom', 'interaction') "
        "AND ts >= toDateTime64('2026-06-16 15:00:00', 3, 'UTC') "
        "AND ts < toDateTime64('2026-06-30 15:00:00', 3, 'UTC')")


def visits_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Visits as the docs define them, in Python: a session's events within one Tokyo day,
    with a page view or a custom event."""
    grouped: dict[tuple[str, dt.date], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        ts = r["ts"].replace(tzinfo=dt.UTC) if r["ts"].tzinfo is None else r["ts"]
        grouped[(r["session_id"], ts.astimezone(TOKYO).date())].append({**r, "ts": ts})
    out = []
    for events in grouped.values():
        views = sorted((e for e in events if e["kind"] == "pageview"),
                       key=lambda e: (e["ts"], e["path"]))
        if not views and not any(e["kind"] == "custom" for e in events):
            continue
        times = [e["ts"] for e in events]
        out.append({
            "visitor": events[0]["visitor_id"], "views": len(views),
            "duration": int((max(times) - min(times)).total_seconds()),
            "engaged": sum(e["engaged_seconds"] for e in events
                           if e["kind"] == "interaction" and e["name"] == "engaged"),
            "exit": views[-1]["path"] if views else None,
        })
    return out


def distinct(counted: int, exact: int) -> bool:
    """The dashboards' distinct counts are exact up to EXACT_UP_TO, then within ~1 %."""
    return counted == exact if exact <= EXACT_UP_TO else abs(counted - exact) / exact < 0.03


def upper_median(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def test_engagement_figures_equal_python_over_the_raw_rows_raw_and_rolled_up(
        store: Any) -> None:
    visits = visits_of(raw_rows(store))
    durations = [v["duration"] for v in visits]
    expected = {
        "visits": len(visits), "duration_median": upper_median(durations),
        "duration_mean": pytest.approx(statistics.fmean(durations)),
        "engaged_mean": pytest.approx(statistics.fmean(v["engaged"] for v in visits)),
        "engaged_bounces": sum(1 for v in visits
                               if v["views"] == 1 and v["engaged"] < ENGAGED_BOUNCE_S),
        "below_k": 0,
    }
    # The seeded beacon makes these figures mean something: most visits report engagement.
    assert sum(1 for v in visits if v["engaged"]) > len(visits) / 2
    assert 0 < expected["engaged_bounces"] < len(visits) / 2
    assert query_run.run(store, "engagement", BASE) == [expected]
    report = Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    assert len(report.built) == 13
    assert query_run.rollup_plan(store, "engagement",
                                 catalogue.params_for("engagement", BASE))
    assert query_run.run(store, "engagement", BASE) == [expected]


def test_page_engagement_and_exits_equal_python_over_the_raw_rows(store: Any) -> None:
    rows = raw_rows(store)
    viewers: dict[str, set[str]] = defaultdict(set)
    views: dict[str, int] = defaultdict(int)
    reports: dict[tuple[str, str], list[int]] = defaultdict(list)
    reporters: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if r["kind"] == "pageview":
            viewers[r["path"]].add(r["visitor_id"])
            views[r["path"]] += 1
        elif r["kind"] == "interaction" and r["name"] in ("engaged", "scroll"):
            value = r["engaged_seconds"] if r["name"] == "engaged" else r["scroll_depth"]
            reports[(r["path"], r["name"])].append(value)
            reporters[(r["path"], r["name"])].add(r["visitor_id"])
    exits: dict[str, int] = defaultdict(int)
    for v in visits_of(rows):
        if v["exit"] is not None:
            exits[v["exit"]] += 1
    shown = sorted((p for p in viewers if len(viewers[p]) >= 5),
                   key=lambda p: (-views[p], p))
    Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    got = query_run.run(store, "page_engagement", {**BASE, "limit": 100})
    mine = [r for r in got if not r["is_other"]]
    assert [r["key"] for r in mine] == shown
    for r in mine:
        page = r["key"]
        assert (r["views"], r["exits"]) == (views[page], exits[page])
        assert distinct(r["visitors"], len(viewers[page]))
        for name, column in (("engaged", "engaged_mean"), ("scroll", "scroll_mean")):
            if len(reporters[(page, name)]) >= 5:
                assert r[column] == pytest.approx(statistics.fmean(reports[(page, name)]))
            else:  # fewer than k people behind the mean: not shown
                assert r[column] is None
        assert r["exit_rate"] == pytest.approx(exits[page] / views[page])
    # The exit pages panel is the same rows by exits.
    from dashboards.pagedata import top_rows

    assert [r["exits"] for r in top_rows(got, "exits", 3)] == sorted(
        (exits[p] for p in shown), reverse=True)[:3]


def test_interaction_breakdowns_equal_python_and_fold_small_groups(store: Any) -> None:
    rows = store.dicts(
        "SELECT visitor_id, name, path, target_host, target FROM events "
        "WHERE kind = 'interaction' AND ts >= toDateTime64('2026-06-16 15:00:00', 3, 'UTC') "
        "AND ts < toDateTime64('2026-06-30 15:00:00', 3, 'UTC')")
    by_page: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["name"] == "tel":
            by_page[r["path"]].add(r["visitor_id"])
    got = query_run.run(store, "breakdown", {**BASE, "dim": "tel_page", "limit": 100})
    assert {r["key"]: r["visitors"] for r in got if not r["is_other"]} == {
        p: len(v) for p, v in by_page.items() if len(v) >= 5}
    small = {v for p, vs in by_page.items() if len(vs) < 5 for v in vs}
    other = [r for r in got if r["is_other"]]
    assert (other[0]["visitors"] if other else 0) == (len(small) if len(small) >= 5 else 0)
    apps = query_run.run(store, "breakdown", {**BASE, "dim": "app"})
    assert {r["key"] for r in apps} == {"line", "instagram"}
    hosts = query_run.run(store, "breakdown", {**BASE, "dim": "outbound"})
    assert [r["key"] for r in hosts] == ["reserve.example.com"]


def tel_visits(store: Any) -> set[tuple[str, dt.date]]:
    """The visits (a session within one Tokyo day) with a phone tap: what the filter selects."""
    return {(str(r[0]), r[1]) for r in store.rows(
        "SELECT session_id, toDate(ts, 'Asia/Tokyo') FROM events "
        "WHERE kind = 'interaction' AND name = 'tel'")}


def in_visits(rows: list[dict[str, Any]],
              chosen: set[tuple[str, dt.date]]) -> list[dict[str, Any]]:
    def day(r: dict[str, Any]) -> dt.date:
        ts = r["ts"].replace(tzinfo=dt.UTC) if r["ts"].tzinfo is None else r["ts"]
        return ts.astimezone(TOKYO).date()
    return [r for r in rows if (r["session_id"], day(r)) in chosen]


def test_a_visit_filter_by_interaction_keeps_the_visits_with_one(store: Any) -> None:
    rows = raw_rows(store)
    visits = visits_of(in_visits(rows, tel_visits(store)))
    got = query_run.run(store, "engagement", {**BASE, "filters": {"interaction": "tel"}})
    assert got[0]["visits"] == len(visits) > 20
    kpis = query_run.run(store, "kpis", {**BASE, "filters": {"interaction": "tel"}})
    assert kpis[0]["visits"] == len(visits)


def test_an_interaction_filter_matches_no_custom_event_of_the_same_name(store: Any) -> None:
    # The site may call its own event "tel": a filter on the tap must not pick it up.
    insert_events(store, [
        {**row, "kind": "custom", "name": "tel"} for row in visitors("ct", 40)])
    tapped = query_run.run(store, "kpis", {**BASE, "filters": {"interaction": "tel"}})
    custom = query_run.run(store, "kpis", {**BASE, "filters": {"event": "tel"}})
    assert custom[0]["visits"] == 40
    assert tapped[0]["visits"] == len(visits_of(in_visits(raw_rows(store), tel_visits(store))))


def tel_visitors(store: Any) -> dict[str, int]:
    got = query_run.run(store, "breakdown", {**BASE, "dim": "tel_page", "limit": 100})
    return {r["key"]: r["visitors"] for r in got}


def test_below_k_nothing_is_shown(store: Any) -> None:
    quiet = {"start": "2026-07-05", "end": "2026-07-05", "k": 5}
    ts = dt.datetime(2026, 7, 5, 3, 0, tzinfo=dt.UTC)
    rows = visitors("q", 4, ts=ts, path="/quiet")
    for r in list(rows):
        rows.append({**r, "event_id": uuid.uuid4(), "kind": "interaction",
                     "name": "tel", "ts": ts + dt.timedelta(seconds=30)})
    insert_events(store, rows)
    assert query_run.run(store, "engagement", quiet)[0] == {
        "visits": None, "duration_median": None, "duration_mean": None, "engaged_mean": None,
        "engaged_bounces": None, "below_k": 1}
    assert query_run.run(store, "page_engagement", quiet) == []
    assert query_run.run(store, "breakdown", {**quiet, "dim": "tel_page"}) == []


def test_suppression_and_purge_take_interactions_out_of_every_panel(store: Any) -> None:
    # One Rollup for the test: with a fixed clock, its builds are ordered by its own counter.
    rollup = Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END)
    rollup.refresh()
    page, count = max(tel_visitors(store).items(), key=lambda kv: (kv[1], kv[0]))
    victim = str(store.scalar(
        "SELECT visitor_id FROM events WHERE kind = 'interaction' AND name = 'tel' "
        "AND path = {p:String} ORDER BY visitor_id LIMIT 1", {"p": page}))
    before = query_run.run(store, "engagement", BASE)[0]
    privacy = Privacy(store, KEY)
    privacy.suppress(visitor_id=victim)
    assert tel_visitors(store)[page] == count - 1
    assert query_run.run(store, "engagement", BASE)[0]["visits"] < before["visits"]
    privacy.purge(visitor_id=victim)
    assert int(store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                            {"v": victim})) == 0
    assert rollup.refresh().built  # the purged person's days, from what remains
    assert tel_visitors(store)[page] == count - 1


def test_the_engagement_page_shows_every_panel_on_seeded_data(store: Any, login: Any) -> None:
    client = login("marketing")
    by_exits = client.get("/dashboards/api/exit_pages", params=RANGE).json()["rows"]
    assert len(by_exits) == 10 and not by_exits[0]["is_other"]
    assert [r["exits"] for r in by_exits] == sorted((r["exits"] for r in by_exits), reverse=True)
    by_views = client.get("/dashboards/api/page_engagement", params=RANGE).json()["rows"]
    assert by_views != by_exits and {r["key"] for r in by_views} & {r["key"] for r in by_exits}
    html = client.get("/dashboards/engagement", params=RANGE).text
    for panel in ("engagement", "page_engagement", "exit_pages", "bd_interaction",
                  "bd_outbound", "bd_app", "bd_tel_page", "bd_download", "bd_form",
                  "bd_not_found"):
        section = html.split(f'id="panel-{panel}"')[1].split("</section>")[0]
        assert "表示できる行がありません" not in section, panel
        assert "<td" in section or 'data-kpi="' in section, panel
    # Durations read as times, depths as percentages; 404s name the missing pages.
    assert re.search(r'data-kpi="duration_median">\s*<dt>[^<]+</dt>\s*<dd>\d+分\d\d秒</dd>',
                     html)
    assert re.search(r"<td class=\"num\">\d+%</td>", html)
    assert "/treatments/botox" in html.split('id="panel-bd_not_found"')[1]
    # A row of the interaction breakdown is a link to the visits with that interaction.
    assert "f.interaction=tel" in html
    csv = client.get("/dashboards/csv/page_engagement", params=RANGE)
    assert csv.status_code == 200 and csv.text.startswith("key,is_other,visitors,views,exits")
    # Interaction kinds read as what they are; the filter link keeps the code.
    assert ">電話タップ</a>" in html.split('id="panel-bd_interaction"')[1]
    english = client.get("/dashboards/engagement", params={**RANGE, "lang": "en"}).text
    assert ">Phone tap</a>" in english and re.search(r"<dd>\d+m \d\ds</dd>", english)


def test_the_seeded_store_has_no_event_without_its_page(store: Any) -> None:
    """Every seeded report is about a page viewed in the same visit, before the report."""
    orphans = store.scalar("""
        SELECT count() FROM events AS i
        WHERE i.kind = 'interaction' AND (i.session_id, i.path) NOT IN (
            SELECT session_id, path FROM events WHERE kind IN ('pageview', 'custom'))""")
    assert orphans == 0
    assert store.scalar("SELECT count() FROM events WHERE kind = 'interaction'") > 10_000


def test_migration_8_on_a_rolled_up_store_rebuilds_every_day(store: Any) -> None:
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions

    from .test_rollup import assert_all_equal_raw

    r = Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END)
    r.refresh()
    expected = query_run.run(store, "engagement", BASE)
    # A store rolled up before migration 8: no engagement tables, every day built.
    for table in ("rollup_engagement", "rollup_pages"):
        store.command(f"DROP TABLE {table}")
    store.command("ALTER TABLE schema_migrations DELETE WHERE version IN (8, 11)",
                  settings={"mutations_sync": 2})
    assert apply_migrations(store, DdlOptions()) == [8, 11]
    # Until rebuilt, every day is scanned raw: never a day read from an empty table.
    params = catalogue.params_for("engagement", BASE)
    assert query_run.rollup_plan(store, "engagement", params) == []
    assert query_run.run(store, "engagement", BASE) == expected
    assert len(r.refresh().built) == 13
    assert query_run.rollup_plan(store, "engagement", params)
    assert query_run.run(store, "engagement", BASE) == expected
    assert_all_equal_raw(store)


def test_a_page_read_by_fewer_than_k_reporters_shows_no_mean(store: Any) -> None:
    """Five viewers, one of whom ran the script: the page is shown, its reading is not."""
    day = dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)
    rows = visitors("rd", 5, ts=day, path="/quiet-page", engaged_seconds=0, scroll_depth=0)
    report = {**rows[0], "event_id": uuid.uuid4(), "kind": "interaction",
              "ts": day + dt.timedelta(seconds=90)}
    insert_events(store, [*rows, {**report, "name": "engaged", "engaged_seconds": 1234},
                          {**report, "event_id": uuid.uuid4(), "name": "scroll",
                           "scroll_depth": 75}])
    for rolled in (False, True):
        if rolled:
            Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
        got = {r["key"]: r for r in query_run.run(store, "page_engagement",
                                                  {**BASE, "limit": 100})}
        assert got["/quiet-page"]["visitors"] == 5
        assert got["/quiet-page"]["engaged_mean"] is None
        assert got["/quiet-page"]["scroll_mean"] is None
