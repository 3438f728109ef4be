"""Running catalogue queries: read-only, on the store, with the suppression and rollup plan.

Before building a query, :func:`run` asks the store which id types anyone is suppressed under
(a condition nobody can match is left out) and which rollup days are current (a day built
before the latest suppression change is never read). Every statement runs with
:data:`READONLY_SETTINGS`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from collector.query import filtered
from collector.query.catalogue import FUNNEL_QUERIES, GOAL_QUERIES, params_for, with_plan
from collector.query.conversions import COVERED, GOAL_ROLLUP_DIMS, GOALS_SQL
from collector.query.funnels import FUNNELS_SQL, Funnel, stored_funnel
from collector.query.goals import Goal, stored_goal
from collector.query.params import Params, QueryError
from collector.query.sql import (
    ACTIVE_TYPES_SQL,
    PREVIOUS_QUERIES,
    ROLLUP_GRAINS,
    ROLLUP_PLAN_SQL,
    ROLLUP_QUERIES,
    Sql,
)
from collector.store import Store

log = logging.getLogger(__name__)

#: Every catalogue query runs with these: no writes, no DDL, no settings changes, bounded.
READONLY_SETTINGS: dict[str, Any] = {
    "readonly": 1,
    "max_execution_time": 30,
    "max_result_rows": 100_000,
    "result_overflow_mode": "throw",
}


def active_suppression_types(store: Store) -> frozenset[str]:
    rows = store.query(ACTIVE_TYPES_SQL, settings=READONLY_SETTINGS).result_rows
    return frozenset(str(r[0]) for r in rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


READ_RE = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)


def run_readonly(store: Store, sql: Sql) -> list[dict[str, Any]]:
    """Run one SELECT with ``readonly=1``; rows come back as JSON-safe dicts.

    Anything but a SELECT is refused before it reaches the driver: besides being pointless
    under readonly, the chDB driver applies settings of non-SELECT statements with ``SET`` and
    cannot ``SET`` them back once ``readonly=1`` holds, which would leave the owner's session
    read-only. A SELECT gets the settings as its own ``SETTINGS`` clause.
    """
    if not READ_RE.match(sql.text):
        raise QueryError("read-only: only SELECT statements run here")
    result = store.query(sql.text, sql.params, settings=READONLY_SETTINGS)
    names = result.column_names
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)}
            for row in result.result_rows]


def rollup_plan(store: Store, name: str, p: Params, goals: Sequence[Goal] = (),
                funnels: Sequence[Funnel] = (), *, reads: Reads | None = None
                ) -> list[tuple[dt.date, int]]:
    """The current rollup days (and builds) a query may read; [] when it must scan events.

    Hourly series are finer than a day and cannot use daily aggregates; a filtered view can
    for its key figures, series and breakdowns (``collector.query.filtered``).
    A query about goals reads only the builds that cover each of its goals (``goals``: those
    there are); a funnel, those that cover its steps, and only a funnel within one visit (a
    visitor's days cross the day's build). ``reads``: the page's, when the caller has them.
    """
    if name not in ROLLUP_QUERIES or (p.filters and not filtered.served(name)) or (
            name in ("timeseries", "goal_series") and p.grain not in ROLLUP_GRAINS):
        return []
    if name in ("goal_breakdown", "funnel_breakdown") and p.dim not in GOAL_ROLLUP_DIMS:
        return []
    if name == "goal_breakdowns" and not set(p.dims) <= set(GOAL_ROLLUP_DIMS):
        return []
    funnel = next((f for f in funnels if f.funnel_id == p.funnel), None)
    if name in FUNNEL_QUERIES and (funnel is None or funnel.days):
        return []
    reads = reads if reads is not None else Reads(store)
    first = p.start - dt.timedelta(days=p.shift_days) if name in PREVIOUS_QUERIES else p.start
    plan = reads.plan(p.tz, first, p.end)
    if name in GOAL_QUERIES and plan:
        about = [g for g in goals if name == "goals" or g.goal_id == p.goal]
        plan = reads.covering(p.tz, plan, [g.rollup_key for g in about])
    if funnel is not None and name in FUNNEL_QUERIES and plan:
        plan = reads.covering(p.tz, plan, [level.rollup_key for level in funnel.levels()])
    return plan


def stored_goals(store: Store) -> list[Goal]:
    """The goals there are (``collector.goals`` writes them); one that no longer parses is
    left out, not an error for every page."""
    rows = store.query(GOALS_SQL, settings=READONLY_SETTINGS).result_rows
    goals = [stored_goal(str(r[0]), str(r[1]), str(r[2])) for r in rows]
    return [g for g in goals if g is not None]


def stored_funnels(store: Store, goals: Sequence[Goal]) -> list[Funnel]:
    """The funnels there are whose steps still parse (a step's goal may have been removed)."""
    rows = store.query(FUNNELS_SQL, settings=READONLY_SETTINGS).result_rows
    funnels = [stored_funnel(str(r[0]), str(r[1]), str(r[2]), goals) for r in rows]
    return [f for f in funnels if f is not None]


def run(store: Store, name: str, raw: Mapping[str, Any], *, reads: Reads | None = None
        ) -> list[dict[str, Any]]:
    """Validate, build and run a catalogue query. ``reads``: what the other queries of the
    same page read before theirs (:class:`Reads`); without it, this query reads its own."""
    params = params_for(name, raw)
    reads = reads if reads is not None else Reads(store)
    goals = reads.goals() if name in GOAL_QUERIES | FUNNEL_QUERIES else ()
    funnels = reads.funnels() if name in FUNNEL_QUERIES else ()
    # Suppressions first: the plan's query falls back to a raw scan when it fails, and a
    # store that fails reads must fail this query, not quietly slow it.
    active = reads.active()
    plan = rollup_plan(store, name, params, goals, funnels, reads=reads)
    return run_readonly(store, with_plan(name, params, active, plan, goals, funnels,
                                         per_value_covered(store, params, plan, reads=reads)))


def per_value_covered(store: Store, p: Params, plan: Sequence[tuple[dt.date, int]], *,
                      reads: Reads | None = None) -> bool:
    """Whether every day of ``plan`` has rows for ``p``'s one filter value; True when that
    does not matter (no plan, not one filter)."""
    if not plan or len(p.filters) != 1:
        return True
    (fd, fv), = p.filters
    return (reads if reads is not None else Reads(store)).per_value(
        p.tz, tuple(b for _, b in plan), fd, fv)


Plan = list[tuple[dt.date, int]]


class Reads:
    """What a query reads before its own SQL (the goals and funnels there are, the id types
    anyone is suppressed under, the current rollup days and what their builds cover), read
    once for all the queries of one page.

    A dashboard page runs 10–25 queries over the same period; each read these again, about a
    quarter of a warm page's time. Shared, the page's queries also answer from one moment:
    the same suppressions and the same builds. Keep one for a page, never longer: a day's
    superseded build is deleted minutes after it is replaced (``rollup.KEEP_SUPERSEDED_S``),
    and a plan read earlier would still name it. Not for concurrent use: a page's queries
    run one after another.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._goals: tuple[Goal, ...] | None = None
        self._funnels: tuple[Funnel, ...] | None = None
        self._active: frozenset[str] | None = None
        self._plans: dict[tuple[str, dt.date, dt.date], Plan] = {}
        self._covered: dict[tuple[str, tuple[int, ...], frozenset[str]], frozenset[int]] = {}
        self._per_value: dict[tuple[str, tuple[int, ...], str, str], bool] = {}

    def goals(self) -> tuple[Goal, ...]:
        if self._goals is None:
            self._goals = tuple(stored_goals(self.store))
        return self._goals

    def funnels(self) -> tuple[Funnel, ...]:
        if self._funnels is None:
            self._funnels = tuple(stored_funnels(self.store, self.goals()))
        return self._funnels

    def active(self) -> frozenset[str]:
        if self._active is None:
            self._active = active_suppression_types(self.store)
        return self._active

    def plan(self, tz: str, first: dt.date, last: dt.date) -> Plan:
        """The current build of each rollup day from ``first`` to ``last``; [] when the
        rollup cannot be read (e.g. a server user not granted its tables: scan events)."""
        key = (tz, first, last)
        plan = self._plans.get(key)
        if plan is None:
            try:
                rows = self.store.query(ROLLUP_PLAN_SQL, {"tz": tz, "d0": first, "d1": last},
                                        settings=READONLY_SETTINGS).result_rows
                plan = [(r[0], int(r[1])) for r in rows]
            except Exception as exc:
                log.debug("rollup unavailable, scanning events: %s", exc)
                plan = []
            self._plans[key] = plan
        return list(plan)

    def covering(self, tz: str, plan: Plan, keys: list[str]) -> Plan:
        """The days of ``plan`` whose build has the figures of every goal of ``keys``."""
        if not keys:
            return []
        builds = tuple(b for _, b in plan)
        key = (tz, builds, frozenset(keys))
        covered = self._covered.get(key)
        if covered is None:
            rows = self.store.query(
                f"SELECT build FROM rollup_goals WHERE tz = {{tz:String}} "
                f"AND dim = '{COVERED}' AND build IN {{builds:Array(UInt64)}} "
                "AND goal_key IN {keys:Array(String)} "
                "GROUP BY build HAVING uniqExact(goal_key) = {n:UInt32}",
                {"tz": tz, "builds": list(builds), "keys": keys, "n": len(set(keys))},
                settings=READONLY_SETTINGS).result_rows
            covered = self._covered[key] = frozenset(int(r[0]) for r in rows)
        return [(day, build) for day, build in plan if build in covered]

    def per_value(self, tz: str, builds: tuple[int, ...], fd: str, fv: str) -> bool:
        """Whether every build of ``builds`` has rows for the value ``fv`` of ``fd``."""
        key = (tz, builds, fd, fv)
        covered = self._per_value.get(key)
        if covered is None:
            rows = self.store.query(filtered.COVERAGE_SQL, {"tz": tz, "builds": list(builds),
                                                            "fd": fd, "fv": fv},
                                    settings=READONLY_SETTINGS).result_rows
            covered = self._per_value[key] = filtered.per_value_covered(rows)
        return covered
