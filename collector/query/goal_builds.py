"""What a day's build keeps of goals: per goal, its totals and breakdowns (``rollup_goals``),
and its converting visits (``rollup_visit_goals``), both from the per-visit rows the raw
queries count (``collector.query.conversions``), so merged figures equal a raw scan's.
``collector.query.rollup`` inserts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.ddl.tables import VISIT_KEYS, uniq
from collector.query import filtered
from collector.query.conversions import (
    COVERED,
    GOAL_ROLLUP_DIMS,
    VISITS_ROWS,
    Measure,
    per_goal,
    per_visit,
)
from collector.query.params import PER_VALUE_GOAL_FILTERS
from collector.query.sql import VISIT_OF_ROW


def visit_goals_sql(goals: Sequence[Measure], where: str, params: dict[str, Any]) -> str:
    """(goal_key, visit, vs, n, w, k_<dim>...) per goal and visit of one day that converted:
    the visit's hash (``sql.VISIT``), visitor state, conversions, their worth and first values.
    What ``collector.query.rollup`` inserts into ``rollup_visit_goals``, from the very rows
    :func:`goal_rollup_sql` counts."""
    params["gkeys"] = [g.rollup_key for g in goals]
    return f"""SELECT {{gkeys:Array(String)}}[pos] AS gk, {VISIT_OF_ROW} AS visit,
           arrayReduce('{uniq('State')}', [v]) AS vs, toUInt32(n) AS n, w, {VISIT_KEYS}
    FROM ({per_visit(goals, where, params, GOAL_ROLLUP_DIMS)}) {per_goal(goals, False)}
    WHERE n > 0"""


def goal_rollup_sql(goals: Sequence[Measure], where: str, params: dict[str, Any],
                    everyone: bool = True) -> str:
    """(goal_key, dim, key0, vs, cvs, c, cv, val, wvs) of one day's visits, per goal: the total
    (dim '') and each of :data:`GOAL_ROLLUP_DIMS` (GROUPING SETS, one scan), then a
    :data:`COVERED` row per goal. What ``collector.query.rollup`` inserts into
    ``rollup_goals``. ``everyone``: also the visitors of every visit (goal_key ''), which a
    build holds once; goals added to a build later need not write them again."""
    params["gkeys"] = [g.rollup_key for g in goals]
    empty = f"{uniq('StateIf')}('', 0)"
    return f"""{_grouped(per_visit(goals, where, params, GOAL_ROLLUP_DIMS), goals, everyone)}
    UNION ALL
    SELECT arrayJoin({{gkeys:Array(String)}}), '{COVERED}', '', {empty}, {empty},
           toUInt64(0), toUInt64(0), toFloat64(0), {empty}, 0"""


def fgoal_rollup_sql(goals: Sequence[Measure], where: str, visit_where: str,
                     params: dict[str, Any], everyone: bool = True) -> str:
    """(fd, fv, goal_key, dim, key0, vs, cvs, c, cv, val, wvs): :func:`goal_rollup_sql`'s rows
    once per filter value, over the visits that value selects, for the values of
    ``params.PER_VALUE_GOAL_FILTERS`` the build's ``rollup_ftotals`` has rows for (so such a
    value has goal rows exactly where it has the rest).
    What ``collector.query.rollup`` inserts into ``rollup_fgoals`` (bound ``build``).
    ``visit_where``: the day's rows a filter reads (``filtered.visit_filters_sql``).

    Only converting visits make rows for a goal: a visit counts once per filter value it
    has, and a goal row of a visit that did not convert would cost the build a row per goal
    and value and add nothing to a merge. A reader puts everyone's visitors at every goal's
    position instead (``conversions._goal_table``), as a raw scan has them."""
    params["gkeys"] = [g.rollup_key for g in goals]
    dims = ", ".join(f"'{d}'" for d in PER_VALUE_GOAL_FILTERS)
    kept = ("SELECT fdim, fval FROM rollup_ftotals WHERE tz = {tz:String} "
            f"AND build = {{build:UInt64}} AND fdim IN ({dims})")
    pairs = (f"SELECT session_id, fd, fv FROM ({filtered.visit_filters_sql(visit_where)}) "
             f"WHERE (fd, fv) IN ({kept})")
    visits = (f"SELECT * FROM ({per_visit(goals, where, params, GOAL_ROLLUP_DIMS)}) AS v "
              f"INNER JOIN ({pairs}) AS p USING session_id")
    return _grouped(visits, goals, everyone, by=("fd", "fv"), rows="pos = 0 OR n > 0")


def _grouped(visits: str, goals: Sequence[Measure], everyone: bool,
             by: Sequence[str] = (), rows: str = "1") -> str:
    """``visits`` (:func:`per_visit` rows) per goal, grouped by its total and by each of
    :data:`GOAL_ROLLUP_DIMS`; ``by``: columns of ``visits`` every set is grouped by too, and
    selected first; ``rows``: which rows per visit and goal count. Also selects ``pos``,
    last."""
    keys = [f"k_{d}" for d in GOAL_ROLLUP_DIMS]
    which = ", ".join(f"grouping({k}) = 0, '{d}'" for k, d in zip(keys, GOAL_ROLLUP_DIMS,
                                                                 strict=True))
    value = ", ".join(f"grouping({k}) = 0, {k}" for k in keys)
    outer = "".join(f"{c}, " for c in by)
    sets = ", ".join([f"({outer}pos)", *(f"({outer}pos, {k})" for k in keys)])
    return f"""SELECT {outer}if(pos = 0, '', {{gkeys:Array(String)}}[pos]) AS gk,
           multiIf({which}, '') AS dim, multiIf({value}, '') AS key0, {VISITS_ROWS}, pos
    FROM ({visits}) {per_goal(goals, everyone)}
    WHERE {rows}
    GROUP BY GROUPING SETS ({sets})"""
