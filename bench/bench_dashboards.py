"""Dashboard latency on seeded data: main page server time and each panel query.

    python bench/bench_dashboards.py --events 10000000 [--runs 20] [--store chdb:///tmp/x]

Seeds a fresh embedded store (unless --reuse), builds the daily rollup and merges each of
its months into one part (what a running collector's engine does five minutes after a
build: ``collector.ddl.tables.ROLLUP_MERGES``), then measures, in this process:
- the overview, engagement, goals and funnels pages end to end through the ASGI app (cold:
  result cache off, so every panel query runs; with one and two filters; warm: cache on,
  unchanged data), p50/p95; the demo clinic's goals and funnels are defined
  (clinic/goals.toml), and a five-step funnel within a visit, which the funnels page shows;
- each panel's catalogue query alone, p50/p95.
Each run uses a different 30-day window ending on a different day, so the engine cannot
answer from one warm result. Days are the dashboards' (Asia/Tokyo): the first window ends
today, which is open and read from events; the others are periods of closed days, which read
the daily rollup alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
import zoneinfo
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from clinic.app import DEMO_GOALS
from collector.accounts import demo_accounts
from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import ROLLUP_TABLES, DdlOptions
from collector.funnels import Funnels, load_funnels
from collector.goals import Goals, load_goals
from collector.query import run as query_run
from collector.query.rollup import Rollup
from collector.store import Store
from dashboards.app import create_dashboards
from dashboards.backends import StoreBackend
from dashboards.panels import PAGES, PANELS
from dashboards.seed import seed
from dashboards.settings import DashboardSettings
from dashboards.view import View, panel_params


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def fmt(samples: list[float]) -> str:
    """p50, p95 (nearest rank: with 10 runs, the slowest), the slowest, and the first run,
    which is usually the slowest: the first of its queries in the process, with the engine's
    caches (marks, compiled expressions) not yet holding them."""
    return (f"p50 {1000 * statistics.median(samples):7.1f} ms  "
            f"p95 {1000 * pct(samples, .95):7.1f} ms  max {1000 * max(samples):7.1f} ms  "
            f"first {1000 * samples[0]:7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--store", default=None)
    ap.add_argument("--reuse", action="store_true", help="do not seed: the store has data")
    args = ap.parse_args()
    tmp = None
    if args.store is None:
        tmp = tempfile.mkdtemp(prefix="bench-dash-")
        args.store = f"chdb://{Path(tmp) / 'store.chdb'}"
    store = Store(args.store)
    try:
        apply_migrations(store, DdlOptions())
        if not args.reuse:
            t = time.perf_counter()
            counts = seed(store, args.events, args.days, rng_seed=1)
            print(f"seeded {counts['events']:,} events, {counts['interactions']:,} "
                  f"interactions, {counts['consent_records']:,} records "
                  f"in {time.perf_counter() - t:.1f}s")
        define_goals(store)
        store.command("OPTIMIZE TABLE events FINAL")
        rollup = Rollup(store, "Asia/Tokyo", grace=0)
        report = rollup.refresh()
        print(f"daily rollup: built {len(report.built)} days in {report.seconds:.1f}s "
              f"({1000 * report.seconds / max(1, len(report.built)):.0f} ms a day)")
        t = time.perf_counter()
        for table in ROLLUP_TABLES:  # what the engine does five minutes after a build
            store.command(f"OPTIMIZE TABLE {table} FINAL",
                          settings={"optimize_skip_merged_partitions": 1})
        print(f"rollup months merged into one part each in {time.perf_counter() - t:.1f}s")
        run(store, args.runs)
    finally:
        store.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def define_goals(store: Store) -> None:
    """The demo clinic's goals and funnels (a reservation, a phone tap, a LINE add, ...) and
    a five-step funnel within a visit: home, a treatment, the reservation page, the form
    sent, the reservation booked."""
    Goals(store).sync(load_goals(DEMO_GOALS), "bench")
    Funnels(store).sync(load_funnels(DEMO_GOALS), "bench")
    if not any(g.name == "予約フォーム送信" for g in Goals(store).live()):
        Goals(store).add("予約フォーム送信", {"kind": "interaction", "interaction": "form",
                                              "target": "reservation-form"}, "bench")
    by_name = {g.name: g.goal_id for g in Goals(store).live()}
    Funnels(store).sync([("5ステップ", {"steps": [
        {"path": "/"}, {"path": "/treatments/*"}, {"path": "/reservation"},
        {"goal": "予約フォーム送信"}, {"goal": "カウンセリング予約"}], "days": 0})], "bench")
    assert by_name


def run(store: Store, runs: int) -> None:
    users = demo_accounts("bench-password")
    settings = DashboardSettings(users=users)
    # The site's today, not the machine's: from 15:00 to midnight UTC, the machine's date is
    # Tokyo's yesterday.
    today = dt.datetime.now(zoneinfo.ZoneInfo(settings.tz)).date()
    windows = [(today - dt.timedelta(days=29 + i), today - dt.timedelta(days=i))
               for i in range(runs)]
    one = {"f.channel": "search"}
    two = {"f.channel": "search", "f.device_type": "mobile"}
    for name, cache, filters in ((n, c, f) for n in ("overview", "engagement", "goals",
                                                      "funnels")
                                 for c, f in ((False, {}), (False, one), (False, two),
                                              (True, {}))):
        app = Starlette(routes=[Mount("/dashboards", app=create_dashboards(
            settings, StoreBackend(store), cache=cache))])
        with TestClient(app, follow_redirects=False) as client:
            r = client.post("/dashboards/login", data={"username": "marketing",
                                                       "password": "bench-password"},
                            headers={"Origin": "http://testserver"})
            assert r.status_code == 303
            samples = []
            for start, end in windows:
                params = {"preset": "custom", "start": start.isoformat(),
                          "end": end.isoformat(), **filters}
                if cache:  # warm: the same view again, data unchanged
                    client.get(f"/dashboards/{name}", params=params)
                t = time.perf_counter()
                r = client.get(f"/dashboards/{name}", params=params)
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:300]
            label = ("warm (cached, data unchanged)" if cache else
                     f"cold, {len(filters)} filter(s)" if filters else "cold (every query runs)")
            print(f"{name} page, {label:32} {fmt(samples)}")
    # Live ingestion: a small batch lands between page loads (the default 30-day view).
    for max_age in (0, 60):
        live = DashboardSettings(users=users, cache_seconds=max_age)
        app = Starlette(routes=[Mount("/dashboards", app=create_dashboards(
            live, StoreBackend(store)))])
        with TestClient(app, follow_redirects=False) as client:
            client.post("/dashboards/login", data={"username": "marketing",
                                                   "password": "bench-password"},
                        headers={"Origin": "http://testserver"})
            samples = []
            for i in range(runs):
                seed(store, 500, 1, rng_seed=10_000 + 100 * max_age + i)  # today: raw
                t = time.perf_counter()
                r = client.get("/dashboards/overview", params={"preset": "30d"})
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200
            label = f"live ingestion, cache_seconds={max_age}"
            print(f"overview page, {label:32} {fmt(samples)}")
    print("per panel query (overview, 30 days):")
    page = PAGES["overview"]
    queries = [(pid, PANELS[pid]) for pid in page.panels] + [("kpis_previous", PANELS["kpis"])]
    dims = [PANELS[pid].dim for pid in page.panels if PANELS[pid].query == "breakdown"]
    samples_all = []
    for start, end in windows:
        view = View("custom", start, end, (), "auto", "previous")
        t = time.perf_counter()
        query_run.run(store, "breakdowns", view.params(5, "Asia/Tokyo", dims=dims, limit=10))
        samples_all.append(time.perf_counter() - t)
    print(f"  {'breakdowns (6 in 1)':18} {fmt(samples_all)}")
    for pid, panel in queries:
        samples = []
        for start, end in windows:
            view = View("custom", start, end, (), "auto", "previous")
            query_params = panel_params(panel, view, 5, "Asia/Tokyo", 10)
            name = "kpis_previous" if pid == "kpis_previous" else panel.query
            t = time.perf_counter()
            query_run.run(store, name, query_params)
            samples.append(time.perf_counter() - t)
        print(f"  {pid:18} {fmt(samples)}")
    print("funnels (30 days):")
    for funnel in query_run.stored_funnels(store, query_run.stored_goals(store)):
        samples = []
        for start, end in windows:
            t = time.perf_counter()
            query_run.run(store, "funnel", {"start": start.isoformat(), "end": end.isoformat(),
                                            "funnel": funnel.funnel_id})
            samples.append(time.perf_counter() - t)
        within = "one visit" if not funnel.days else f"{funnel.days} days"
        print(f"  {len(funnel.steps)} steps within {within:10} {fmt(samples)}")


if __name__ == "__main__":
    main()
