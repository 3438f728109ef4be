"""Daily rollups: what keeps the dashboards' panels off the raw events.

Once a day of the site's time zone is over (plus ``rollup_grace``), :meth:`Rollup.refresh`
aggregates it into ``rollup_totals``, ``rollup_dims``, ``rollup_engagement``,
``rollup_pages``, ``rollup_goals`` and, for filtered views, ``rollup_ftotals``,
``rollup_fdims``, ``rollup_visits`` (``collector.query.filtered``) and ``rollup_visit_goals``
(a goal's converting visits, written with the goal's rows) with the very SQL
fragments the raw queries use (``collector.query.sql``, ``collector.query.conversions``), and
records the build in ``rollup_days``:

- ``build``: the id of the day's rows. A rebuild writes new rows, then points the day at them,
  so a reader never sees half a day; superseded rows are deleted a few minutes later.
- ``stamp``: suppressions' ``max(version)`` when the build started. A query reads the day only
  while that is still the latest version, so a suppression, unsuppression or purge takes effect
  at once (the day is scanned raw) and the refresh it triggers rebuilds only the days the
  person has events on, then re-stamps the others.
- ``events``: the day's row count at build time; a refresh rebuilds a day whose count changed
  (rows written by ``seed``, or by a collector that died before marking the day).
- ``version``: the ReplacingMergeTree version. Ingest marks a closed day dirty (``build = 0``)
  after inserting late events into it, with a version later than any build that missed them.

Rollups hold no ids: visitors and sessions are uniq states (32-bit hashes), a visit a 64-bit
hash of its session and day.

The thread that refreshes it, and the listener that wakes it, are ``collector.query.refresher``.
A little over 300 lines: building a day writes ten tables, each statement beside the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from collector.ddl.tables import ROLLUP_BUILD_TABLES, VISIT_KEYS, uniq
from collector.query import filtered
from collector.query.conversions import COVERED, Measure, goal_kinds
from collector.query.engagement import (
    ENGAGEMENT_COLUMNS,
    ENGAGEMENT_TOTALS,
    PAGE_TABLE_COLUMNS,
    PAGE_TOTALS,
    page_rows,
)
from collector.query.goal_builds import (
    fgoal_rollup_sql,
    goal_rollup_sql,
    visit_goals_sql,
)
from collector.query.params import DIMENSIONS, day_bounds
from collector.query.run import active_suppression_types, stored_funnels, stored_goals
from collector.query.sql import (
    DETAIL_KINDS,
    INTERACTION_KINDS,
    SUBJECT_COLUMNS,
    VISIT_TOTALS,
    detail_rows,
    grouped_sql,
    property_sql,
    visits_sql,
)
from collector.store import INSERT_SETTINGS, MUTATION_SETTINGS, PRIVATE_SETTINGS, Store

log = logging.getLogger(__name__)

#: Every breakdown dimension but ``property`` (rolled up by its own ARRAY JOIN): those over
#: visits' page views and custom events, and those over the beacon's interactions (each
#: group scans only its own kinds of rows).
ROLLUP_DIMS = tuple(d for d in DIMENSIONS if d != "property")
VISIT_DIMS = tuple(d for d in ROLLUP_DIMS if not DIMENSIONS[d].interaction)
INTERACTION_DIMS = tuple(d for d in ROLLUP_DIMS if DIMENSIONS[d].interaction)
DAY_COLUMNS = ["tz", "day", "version", "build", "stamp", "events"]
#: Superseded builds are deleted once no query planned with them can still be running.
KEEP_SUPERSEDED_S = 300


class DayState(NamedTuple):
    build: int  # 0: dirty
    stamp: int
    events: int
    version: int


@dataclass(frozen=True, slots=True)
class RefreshReport:
    built: tuple[dt.date, ...]
    restamped: int
    collected: int
    seconds: float


class Rollup:
    """Builds and repairs one time zone's daily rollup; thread-safe, one refresh at a time."""

    def __init__(self, store: Store | Callable[[], Store], tz: str, *, grace: int = 900,
                 clock: Callable[[], float] = time.time,
                 per_value_cap: int = filtered.PER_VALUE_CAP) -> None:
        self._store_fn: Callable[[], Store] = store if callable(store) else (lambda: store)
        self.tz = tz
        self.zone = zoneinfo.ZoneInfo(tz)
        self.grace = grace
        self.clock = clock
        self.per_value_cap = per_value_cap
        self._lock = threading.Lock()
        self._last_id = 0
        self._today: tuple[float, float] = (0.0, 0.0)  # [start, end) of today, epoch seconds

    @property
    def store(self) -> Store:
        return self._store_fn()

    def _now_ns(self) -> int:
        # Builds and dirty marks order by this; strictly increasing within the process.
        self._last_id = max(self._last_id + 1, int(self.clock() * 1e9))
        return self._last_id

    # -- reading state ------------------------------------------------------------------

    def state(self) -> dict[dt.date, DayState]:
        rows = self.store.rows(
            "SELECT day, argMax(build, version), argMax(stamp, version), "
            "argMax(events, version), max(version) FROM rollup_days "
            "WHERE tz = {tz:String} GROUP BY day", {"tz": self.tz})
        return {r[0]: DayState(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    def _counts(self) -> dict[dt.date, int]:
        rows = self.store.rows("SELECT toDate(ts, {tz:String}) AS d, count() FROM events "
                               "GROUP BY d", {"tz": self.tz})
        return {r[0]: int(r[1]) for r in rows}

    def _last_closed_day(self) -> dt.date:
        now = dt.datetime.fromtimestamp(self.clock() - self.grace, self.zone)
        return now.date() - dt.timedelta(days=1)

    def _affected_days(self, since: int) -> set[dt.date]:
        """Days with events of anyone whose suppression changed after version ``since``.

        A purged person's id is emptied only after their rows are deleted, and deleting them
        changed those days' counts: the count check rebuilds them.
        """
        store = self.store
        changed = store.rows(
            "SELECT DISTINCT id_type, subject FROM suppressions WHERE version > {v:UInt64}",
            {"v": since}, settings=PRIVATE_SETTINGS)
        ids: dict[str, list[str]] = {c: [] for c in SUBJECT_COLUMNS["events"]}
        for id_type, subject in changed:
            if str(id_type) in ids and subject:
                ids[str(id_type)].append(str(subject))
        if not any(ids.values()):
            return set()
        where = " OR ".join(f"{c} IN {{{c}:Array(String)}}" for c in ids)
        rows = store.rows(f"SELECT DISTINCT toDate(ts, {{tz:String}}) FROM events WHERE {where}",
                          {"tz": self.tz, **ids}, settings=PRIVATE_SETTINGS)
        return {r[0] for r in rows}

    # -- building -----------------------------------------------------------------------

    def build_day(self, day: dt.date, stamp: int) -> int:
        """Aggregate one day into new rows and make them the day's current build."""
        store = self.store
        version = self._now_ns()  # before reading: a later dirty mark must win
        build = self._now_ns()
        t0, t1 = day_bounds(self.tz, day, day)
        span = {"t0": t0, "t1": t1}
        in_day = ("ts >= toDateTime64({t0:Int64}, 3, 'UTC') "
                  "AND ts < toDateTime64({t1:Int64}, 3, 'UTC')")
        events = int(store.scalar(f"SELECT count() FROM events WHERE {in_day}", span) or 0)
        active = active_suppression_types(store)
        where = detail_rows(in_day, active)
        everything = detail_rows(in_day, active, DETAIL_KINDS)
        interactions = detail_rows(in_day, active, INTERACTION_KINDS)
        params: dict[str, Any] = {"tz": self.tz, "day": day, "build": build,
                                  "cap": self.per_value_cap, **span}
        head = "SELECT {tz:String}, {day:Date}, {build:UInt64}"
        store.command(
            "INSERT INTO rollup_totals (tz, day, build, visitors, visits, pageviews, bounces, "
            f"sessions) {head}, {VISIT_TOTALS}, "
            f"{uniq('State')}(session_id) FROM ({visits_sql(where)})",
            params, settings=INSERT_SETTINGS)
        store.command(
            "INSERT INTO rollup_dims (tz, day, build, dim, key, visitors, events) "
            f"{head}, dim, key0, vs, n FROM ({grouped_sql(VISIT_DIMS, where)} "
            f"UNION ALL {property_sql(where)} "
            f"UNION ALL {grouped_sql(INTERACTION_DIMS, interactions)})",
            params, settings=INSERT_SETTINGS)
        store.command(
            f"INSERT INTO rollup_engagement (tz, day, build, {ENGAGEMENT_COLUMNS}) {head}, "
            f"{ENGAGEMENT_TOTALS} FROM ({visits_sql(everything)})", params,
            settings=INSERT_SETTINGS)
        store.command(
            f"INSERT INTO rollup_pages (tz, day, build, path, {PAGE_TABLE_COLUMNS}) "
            f"{head}, key0, {PAGE_TOTALS} FROM ({page_rows(everything)}) GROUP BY key0",
            params, settings=INSERT_SETTINGS)
        for statement in filtered.build_statements(where, everything, head):
            store.command(statement, params, settings=INSERT_SETTINGS)
        self.build_goals(day, build, self._measures(), everyone=True)
        store.insert("rollup_days", [[self.tz, day, version, build, stamp, events]],
                     DAY_COLUMNS)
        return build

    def _measures(self) -> list[Measure]:
        """What the rollup keeps per visit: every goal, and every step of every funnel
        within one visit (a funnel over days follows visitors across builds)."""
        goals = stored_goals(self.store)
        levels = [level for f in stored_funnels(self.store, goals) if f.days == 0
                  for level in f.levels()]
        # Two goals (or funnels) defined alike share one key: their rows are built once.
        measures: list[Measure] = [*goals, *levels]
        unique: dict[str, Measure] = {}
        for measure in measures:
            unique.setdefault(measure.rollup_key, measure)
        return list(unique.values())

    def build_goals(self, day: dt.date, build: int, goals: Sequence[Measure],
                    everyone: bool = False) -> None:
        """Add the figures of ``goals`` (goals, funnel steps) to ``build`` of ``day``: at
        build time for every one there is, and later for one defined since
        (:meth:`_backfill_goals`). ``everyone``: the day's visitors too, once per build."""
        if not goals and not everyone:
            return
        t0, t1 = day_bounds(self.tz, day, day)
        in_day = ("ts >= toDateTime64({t0:Int64}, 3, 'UTC') "
                  "AND ts < toDateTime64({t1:Int64}, 3, 'UTC')")
        chosen = tuple(goals)
        params: dict[str, Any] = {"tz": self.tz, "day": day, "build": build, "t0": t0,
                                  "t1": t1}
        active = active_suppression_types(self.store)
        where = detail_rows(in_day, active, goal_kinds(chosen))
        if chosen:
            # Before rollup_goals: its COVERED rows say the build has the goals' rows, these
            # included. A backfill that failed between the two left these without those, and
            # is retried: its rows go first, or the retry would count them twice.
            params["gkeys"] = [g.rollup_key for g in chosen]
            if not everyone:
                self._drop_leftovers(params)
            self.store.command(
                "INSERT INTO rollup_visit_goals (tz, day, build, goal_key, visit, vs, n, w, "
                f"{VISIT_KEYS}) SELECT {{tz:String}}, {{day:Date}}, {{build:UInt64}}, * "
                f"FROM ({visit_goals_sql(chosen, where, params)})", params,
                settings=INSERT_SETTINGS)
        by_value = fgoal_rollup_sql(chosen, where, detail_rows(in_day, active), params,
                                    everyone)
        self.store.command(
            "INSERT INTO rollup_fgoals (tz, day, build, fdim, fval, goal_key, dim, key, "
            "visitors, converted, conversions, converted_visits, value, valued) "
            "SELECT {tz:String}, {day:Date}, {build:UInt64}, fd, fv, gk, dim, key0, vs, cvs, "
            f"c, cv, val, wvs FROM ({by_value})", params, settings=INSERT_SETTINGS)
        self.store.command(
            "INSERT INTO rollup_goals (tz, day, build, goal_key, dim, key, visitors, "
            "converted, conversions, converted_visits, value, valued) SELECT {tz:String}, "
            "{day:Date}, {build:UInt64}, gk, dim, key0, vs, cvs, c, cv, val, wvs "
            f"FROM ({goal_rollup_sql(chosen, where, params, everyone)})", params,
            settings=INSERT_SETTINGS)

    def _drop_leftovers(self, params: dict[str, Any]) -> None:
        """Delete the rows of goals ``gkeys`` a failed backfill of ``build`` left behind.
        Costs a count per table; a delete only after such a failure."""
        for table in ("rollup_visit_goals", "rollup_fgoals"):
            where = ("tz = {tz:String} AND build = {build:UInt64} "
                     "AND goal_key IN {gkeys:Array(String)}")
            if self.store.scalar(f"SELECT count() FROM {table} WHERE {where}", params,
                                 settings=PRIVATE_SETTINGS):
                self.store.command(f"ALTER TABLE {table} DELETE WHERE {where}", params,
                                   settings=MUTATION_SETTINGS)

    def _backfill_goals(self, stamp: int) -> int:
        """Add a goal defined (or edited) since a current build was made to that build, so
        the goal's figures need no raw scan of closed days; the number of days done. Only
        builds stamped with the latest suppression version: their data is what a rebuild
        would read."""
        goals = self._measures()
        current = {s.build: d for d, s in self.state().items() if s.build and s.stamp == stamp}
        if not goals or not current:
            return 0
        rows = self.store.rows(
            f"SELECT build, groupUniqArray(goal_key) FROM rollup_goals WHERE tz = {{tz:String}} "
            f"AND dim = '{COVERED}' GROUP BY build", {"tz": self.tz})
        have = {int(r[0]): set(r[1]) for r in rows}
        done = 0
        for build, day in sorted(current.items(), key=lambda kv: kv[1]):
            missing = [g for g in goals if g.rollup_key not in have.get(build, set())]
            if missing:
                self.build_goals(day, build, missing)
                done += 1
        return done

    def refresh(self, stopping: Callable[[], bool] = lambda: False) -> RefreshReport:
        """Build closed days, rebuild changed ones, re-stamp the rest; then drop old builds.
        ``stopping``: asked between days; once true, the days left wait for the next refresh
        (dashboards scan them raw meanwhile), so a shutdown never waits for a month's build.
        A refresh stopped so also skips the re-stamping, the goals' backfill and the garbage
        collection: the next one does them, and a stale stamp only sends its day to a scan."""
        with self._lock:
            return self._refresh(stopping)

    def _refresh(self, stopping: Callable[[], bool]) -> RefreshReport:
        started = time.perf_counter()
        store = self.store
        stamp = int(store.scalar("SELECT max(version) FROM suppressions") or 0)
        state = self.state()
        counts = self._counts()
        last = self._last_closed_day()
        due = {d for d in counts if d <= last}
        # Built days whose events are all gone (retention, purge) must stop answering too.
        due |= {d for d, s in state.items() if s.build and d not in counts and s.events}
        stale = [d for d in due if d in state and state[d].build and state[d].stamp != stamp]
        affected = (self._affected_days(min(state[d].stamp for d in stale)) if stale
                    else set())
        todo = sorted(d for d in due if d not in state or not state[d].build
                      or state[d].events != counts.get(d, 0)
                      or (d in stale and d in affected))
        built: list[dt.date] = []
        for day in todo:
            if stopping():
                return RefreshReport(tuple(built), 0, 0, time.perf_counter() - started)
            self.build_day(day, stamp)
            built.append(day)
        # The other stale days were untouched by every change since their stamp: the stamp moves
        # on. The version rises by one only, so a dirty mark written meanwhile still wins.
        restamp = [[self.tz, d, state[d].version + 1, state[d].build, stamp, state[d].events]
                   for d in stale if d not in todo]
        if restamp:
            store.insert("rollup_days", restamp, DAY_COLUMNS)
        backfilled = self._backfill_goals(stamp)
        collected = self._collect_garbage()
        report = RefreshReport(tuple(todo), len(restamp), collected,
                               time.perf_counter() - started)
        if todo or restamp or backfilled:
            log.info("rollup %s: built %d day(s), re-stamped %d, goals added to %d in %.2f s",
                     self.tz, len(todo), len(restamp), backfilled, report.seconds)
        return report

    def _collect_garbage(self) -> int:
        """Delete rows of builds superseded more than KEEP_SUPERSEDED_S seconds ago."""
        store = self.store
        current = {s.build for s in self.state().values()}
        cutoff = int((self.clock() - KEEP_SUPERSEDED_S) * 1e9)
        old = [int(r[0]) for r in store.rows(
            "SELECT DISTINCT build FROM rollup_totals WHERE tz = {tz:String} "
            "AND build < {cutoff:UInt64}", {"tz": self.tz, "cutoff": cutoff})
            if int(r[0]) not in current]
        if old:
            # rollup_totals last: it is where old builds are found, so a delete that fails
            # leaves them to be found again by the next collection.
            for table in reversed(ROLLUP_BUILD_TABLES):
                store.command(f"ALTER TABLE {table} DELETE WHERE tz = {{tz:String}} "
                              "AND build IN {old:Array(UInt64)}", {"tz": self.tz, "old": old},
                              settings=MUTATION_SETTINGS)
        return len(old)

    # -- ingest hook --------------------------------------------------------------------

    def note_inserted(self, ts_ms: Sequence[int]) -> None:
        """Mark closed days dirty that an insert just added events to (late events).

        ``ts_ms`` is the insert's ts column as ingest writes it: epoch milliseconds.
        """
        if not ts_ms:
            return
        start, end = self._today
        now = self.clock()
        if not start <= now < end:
            today = dt.datetime.fromtimestamp(now, self.zone).date()
            start, end = (float(t) for t in day_bounds(self.tz, today, today))
            self._today = (start, end)
        cutoff = start * 1000
        if min(ts_ms) >= cutoff:  # the usual case: every event is from today
            return
        self.mark_dirty({dt.datetime.fromtimestamp(ms / 1000, self.zone).date()
                         for ms in ts_ms if ms < cutoff})

    def mark_dirty(self, days: Iterable[dt.date]) -> None:
        rows = [[self.tz, d, self._now_ns(), 0, 0, 0] for d in sorted(days)]
        if rows:
            self.store.insert("rollup_days", rows, DAY_COLUMNS)


def mark_range_dirty(store: Store, t0: float, t1: float) -> None:
    """For writers outside a collector (seed): mark every rolled-up day in [t0, t1] dirty."""
    zones = [str(r[0]) for r in store.rows("SELECT DISTINCT tz FROM rollup_days")]
    now = time.time_ns()
    rows: list[list[Any]] = []
    for tz in zones:
        zone = zoneinfo.ZoneInfo(tz)
        day = dt.datetime.fromtimestamp(t0, zone).date()
        last = dt.datetime.fromtimestamp(t1, zone).date()
        while day <= last:
            now += 1
            rows.append([tz, day, now, 0, 0, 0])
            day += dt.timedelta(days=1)
    if rows:
        store.insert("rollup_days", rows, DAY_COLUMNS)
