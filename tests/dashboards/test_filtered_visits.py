"""A filter selects visits, and a visit is a session's events within one day.

The daily rollup per filter value (``collector.query.filtered``) is exact only because raw
scans count the same visits; ``test_rollup`` compares the two on seeded traffic, this on a
session built to cross midnight.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from support.dashboards import END, event, insert_events

from collector.privacy.operations import Privacy
from collector.query import catalogue
from collector.query import run as query_run
from collector.query.rollup import Rollup
from consent_mw.ids import hash_user_id

KEY = b"filtered-test-key-0123456789"


def test_a_filtered_view_counts_whole_visits_of_one_day(store: Any) -> None:
    """A session that lands from search before midnight and goes on after it is two visits:
    only the first is a search visit. An event of someone suppressed selects no visit: v9
    landed from search signed in (u9), then read a page signed out; once u9 is suppressed,
    that page is not a search visit's. The rollup answers as the raw scan does."""
    night = dt.datetime(2026, 6, 20, 14, 50, tzinfo=dt.UTC)  # 23:50 in Tokyo
    rows = [event(ts=night, channel="search", session_id=f"s{i}", visitor_id=f"v{i}",
                  path="/a") for i in range(5)]
    rows += [event(ts=night + dt.timedelta(minutes=20), channel="internal",
                   session_id=f"s{i}", visitor_id=f"v{i}", path="/b") for i in range(5)]
    rows += [event(ts=night - dt.timedelta(hours=1), channel="search", session_id="s9",
                   visitor_id="v9", user_id=hash_user_id(KEY, "u9"), path="/a"),
             event(ts=night - dt.timedelta(minutes=50), channel="internal", session_id="s9",
                   visitor_id="v9", path="/c")]
    insert_events(store, rows)
    raw = {"start": "2026-06-20", "end": "2026-06-21", "k": 2,
           "filters": {"channel": "search"}}
    series = query_run.run(store, "timeseries", {**raw, "grain": "day"})
    assert [(r["bucket"], r["pageviews"]) for r in series] == [("2026-06-20", 7)]
    privacy = Privacy(store, KEY)
    privacy.suppress(visitor_id="v0")
    privacy.suppress(user_id="u9")
    (row,) = query_run.run(store, "kpis", raw)
    assert (row["visitors"], row["visits"], row["pageviews"]) == (4, 4, 4)
    assert not query_run.rollup_plan(store, "kpis", catalogue.params_for("kpis", raw))
    Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    assert query_run.rollup_plan(store, "kpis", catalogue.params_for("kpis", raw))
    assert query_run.run(store, "kpis", raw) == [row]


def test_with_two_filters_a_visit_must_match_each_by_any_of_its_events(store: Any) -> None:
    """Search visits that saw the price page: the landing matches one filter, a later page
    the other. A visit from search that never saw it, and one that saw it from an ad, are
    not counted. The rollup of the day's visits answers the same."""
    noon = dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)
    rows = []
    for i in range(6):
        landing = "search" if i < 5 else "ad"
        rows += [event(ts=noon, channel=landing, session_id=f"s{i}", visitor_id=f"v{i}",
                       path="/a"),
                 event(ts=noon + dt.timedelta(minutes=1), channel="internal",
                       session_id=f"s{i}", visitor_id=f"v{i}", path="/price")]
    rows += [event(ts=noon, channel="search", session_id=f"t{i}", visitor_id=f"w{i}",
                   path="/a") for i in range(5)]
    insert_events(store, rows)
    raw = {"start": "2026-06-20", "end": "2026-06-21", "k": 2,
           "filters": {"channel": "search", "path": "/price"}}
    (row,) = query_run.run(store, "kpis", raw)
    assert (row["visitors"], row["visits"], row["pageviews"]) == (5, 5, 10)
    pages = query_run.run(store, "breakdown", {**raw, "dim": "path"})
    assert {(r["key"], r["events"]) for r in pages} == {("/a", 5), ("/price", 5)}
    Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    assert query_run.rollup_plan(store, "kpis", catalogue.params_for("kpis", raw))
    assert query_run.run(store, "kpis", raw) == [row]
    assert query_run.run(store, "breakdown", {**raw, "dim": "path"}) == pages
