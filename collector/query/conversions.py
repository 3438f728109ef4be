"""Goal conversions: per goal, by a visit's channel, source, campaign, landing or device, and
over time.

How a conversion is counted (``collector.query.goals`` defines the goals):

- a **conversion** is one matching page view, custom event or beacon report; an engaged-time
  goal converts a visit once;
- a **converting visit** holds at least one, a **converting visitor** has such a visit;
- the **conversion rate** is converting visitors over all visitors (of the period, the
  group or the day);
- a visit is attributed to the first value of the dimension among its rows: the channel,
  source and campaign of its landing, its entry page, its device.

k applies twice: a group seen by fewer than k visitors folds into "other", and a goal's
figures (conversions, converting visitors, rate, value) are shown only when at least k
visitors converted, in the period, the group or the day; otherwise they are NULL ("–"). Rows
are ordered by what is shown, never by a hidden figure. Like every catalogue query these
read only unsuppressed, consented rows and select visits by the view's filters.

Unfiltered figures read closed days from ``rollup_goals`` (built by ``collector.query.rollup``
with :func:`goal_rollup_sql`, from the same per-visit rows), so merged figures equal a raw
scan's; a day whose build does not cover a goal yet is scanned raw. A view of one filter
value with rows per value reads that value's rows (``rollup_fgoals``, the same figures over
the visits it selects). Other filtered figures read the closed days' visits their filters
select: everyone's visitors from ``rollup_visits``, the conversions of those visits from
``rollup_visit_goals`` (``goal_builds.visit_goals_sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from collector.ddl.tables import VISIT_KEY_COLUMNS, uniq
from collector.query.goals import Goal
from collector.query.params import DIMENSIONS, PER_VALUE_GOAL_FILTERS, Params, QueryError
from collector.query.sql import (
    DETAIL_KINDS,
    ROLLUP_GRAINS,
    ROLLUP_ROWS,
    SELECTED_VISITS,
    VISIT_KINDS,
    Sql,
    base_params,
    first_values,
    rollup_mode,
    sources,
    union_with_events,
)

#: What the goals table holds: every goal there is, by name (the runner reads them).
GOALS_SQL = """
SELECT goal_id, name, definition, created_by FROM dashboard_goals FINAL
WHERE NOT deleted
ORDER BY name, goal_id
LIMIT 100"""
#: Series buckets of a visit, by when it started.
VISIT_GRAINS = {
    "hour": "toStartOfHour(t0, {tz:String})",
    "day": "d",
    "week": "toMonday(d)",
}
#: Dimensions a goal's conversions are broken down by: what a visit has one of.
GOAL_DIMS = frozenset(d for d, dim in DIMENSIONS.items()
                      if dim.kind == "pageview" and not dim.guarded and d != "path")
#: Those the daily rollup keeps per goal (the goals page's); others are scanned raw.
GOAL_ROLLUP_DIMS = VISIT_KEY_COLUMNS
#: The rollup's row that says a build covers a goal.
COVERED = "#"


class Measure(Protocol):
    """What a visit is counted for: a goal, or a step of a funnel within one visit
    (``collector.query.funnels.Level``). The rollup files its figures under its key."""

    @property
    def rollup_key(self) -> str: ...

    @property
    def reads_interactions(self) -> bool: ...

    def count_sql(self, i: int | str, params: dict[str, Any]) -> str:
        """Per visit: how many times it counts (an aggregate over the visit's rows)."""
        ...

    def worth_sql(self, i: int | str, params: dict[str, Any]) -> str:
        """Per visit: what those were worth, in the clinic's currency."""
        ...


def goal_kinds(goals: Sequence[Measure]) -> str:
    return DETAIL_KINDS if any(g.reads_interactions for g in goals) else VISIT_KINDS


def per_visit(goals: Sequence[Measure], where: str, params: dict[str, Any],
              keys: tuple[str, ...] = ()) -> str:
    """One row per visit (a session within one day): its visitor ``v``, when it started
    ``t0``, how many conversions of each goal ``n{i}`` it holds, and per dimension of
    ``keys`` its first value among its rows, ``k_<dim>``."""
    counts = "".join(f", {g.count_sql(i, params)} AS n{i}, {g.worth_sql(i, params)} AS w{i}"
                     for i, g in enumerate(goals))
    keyed = f", {first_values(keys)}" if keys else ""
    return f"""SELECT session_id, toDate(ts, {{tz:String}}) AS d, any(visitor_id) AS v,
           min(ts) AS t0{keyed}{counts}
    FROM events WHERE {where}
    GROUP BY session_id, d
    HAVING countIf({VISIT_KINDS}) > 0"""


def per_goal(goals: Sequence[Measure], everyone: bool = True) -> str:
    """ARRAY JOIN turning a visit row into one row per goal, ``pos`` 1 to n with its
    conversions ``n`` and their worth ``w``; and (``everyone``) one row ``pos`` 0 for the
    visit itself, which alone carries its visitor (:data:`VISITS_ROWS`)."""
    counts = ", ".join(["0"] * everyone + [f"n{i}" for i in range(len(goals))])
    worth = ", ".join(["0"] * everyone + [f"w{i}" for i in range(len(goals))])
    first = 0 if everyone else 1
    return (f"ARRAY JOIN [{counts}] AS n, [{worth}] AS w, "
            f"range({first}, {len(goals) + 1}) AS pos")


#: A visit's rows once it is joined per goal (:func:`per_goal`): ``vs``, the visitors, only
#: in row 0 (every goal's denominator is everyone's visitors; a state per goal would cost as
#: many merges, each ~0.1 ms once past 512 visitors), ``cvs`` and the counts in the others.
VISITS_ROWS = (f"{uniq('StateIf')}(v, pos = 0) AS vs, "
               f"{uniq('StateIf')}(v, pos > 0 AND n > 0) AS cvs, "
               "sum(n) AS c, countIf(n > 0) AS cv, sum(w) AS val, "
               f"{uniq('StateIf')}(v, pos > 0 AND w > 0) AS wvs")


def goal_rows(goals: Sequence[Measure], p: Params, params: dict[str, Any],
              key: str | None = None, bucket: str | None = None,
              keys: tuple[str, ...] = ()) -> str:
    """(pos, key0, vs, cvs, c, cv, val) per goal (``pos`` 1 to n) and ``key`` (or series
    ``bucket``): converting visitors as a uniq state, conversions, converting visits, their
    worth; and ``pos`` 0, everyone's visitors (``vs``, empty in the other rows). From the
    raw events of the days the rollup does not cover, and the rollup's rows of the others
    (goal_key '' holds pos 0). With ``keys``, rows of several dimensions in one scan, each
    named by a ``dim`` column."""
    if keys:
        return _rows_by(goals, p, params, keys)
    where, rolled = sources(p, params, kinds=goal_kinds(goals), by_visit=not _by_value(p))
    key0 = f"k_{key}" if key else (VISIT_GRAINS[bucket] if bucket else "''")
    raw = f"""SELECT pos, {key0} AS key0, {VISITS_ROWS}
    FROM ({per_visit(goals, where, params, (key,) if key else ())}) {per_goal(goals)}
    GROUP BY pos, key0"""
    if not rolled:
        return raw
    params["gkeys"] = [g.rollup_key for g in goals]
    if p.filters and not _by_value(p):
        visit_key = f"k_{key}" if key else (ROLLUP_GRAINS[bucket] if bucket else "''")
        return union_with_events(raw, where, _selected_visits(
            rolled, visit_key, columns=(visit_key,) if key else ()))
    params["gdim"] = key or ""
    rolled_key = ROLLUP_GRAINS[bucket] if bucket else "key"
    positions = _EVERY_POSITION if _by_value(p) else _POSITIONS
    return union_with_events(raw, where, f"""
    SELECT {positions} AS pos, {rolled_key} AS key0,
           visitors AS vs, converted AS cvs, conversions AS c, converted_visits AS cv,
           value AS val, valued AS wvs
    FROM {_goal_table(p)}
    WHERE {rolled} AND dim = {{gdim:String}}
      AND (goal_key IN {{gkeys:Array(String)}} OR goal_key = '')""")


def _rows_by(goals: Sequence[Measure], p: Params, params: dict[str, Any],
             keys: tuple[str, ...]) -> str:
    """(dim, pos, key0, vs, cvs, c, cv, val) of :func:`goal_rows` for every dimension of
    ``keys``: the raw days in one GROUPING SETS scan, the rolled-up ones from their rows."""
    where, rolled = sources(p, params, kinds=goal_kinds(goals), by_visit=not _by_value(p))
    columns = [f"k_{d}" for d in keys]
    which = ", ".join(f"grouping({c}) = 0, '{d}'" for c, d in zip(columns, keys, strict=True))
    value = ", ".join(f"grouping({c}) = 0, {c}" for c in columns)
    sets = ", ".join(f"(pos, {c})" for c in columns)
    raw = f"""SELECT multiIf({which}, '') AS dim, pos, multiIf({value}, '') AS key0,
           {VISITS_ROWS}
    FROM ({per_visit(goals, where, params, keys)}) {per_goal(goals)}
    GROUP BY GROUPING SETS ({sets})"""
    if not rolled:
        return raw
    params["gkeys"] = [g.rollup_key for g in goals]
    params["gdims"] = list(keys)
    if p.filters and not _by_value(p):
        # A row per visit and dimension, named by ``dim``, keyed by the visit's first value.
        by_dim = (f"ARRAY JOIN {{gdims:Array(String)}} AS dim, [{', '.join(columns)}] "
                  "AS key0")
        return union_with_events(raw, where, _selected_visits(rolled, "key0", by_dim, columns))
    return union_with_events(raw, where, f"""
    SELECT dim, {_POSITIONS} AS pos, key AS key0,
           visitors AS vs, converted AS cvs, conversions AS c, converted_visits AS cv,
           value AS val, valued AS wvs
    FROM {_goal_table(p)}
    WHERE {rolled} AND dim IN {{gdims:Array(String)}}
      AND (goal_key IN {{gkeys:Array(String)}} OR goal_key = '')""")


def _by_value(p: Params) -> bool:
    """Whether a filtered view's goals read the rows of its one filter value: a value with
    rows (``sql.rollup_mode``) of a dimension that has goal rows per value
    (``params.PER_VALUE_GOAL_FILTERS``). Other filtered views read the visits they select."""
    return (rollup_mode(p) == "value"
            and p.filters[0][0] in PER_VALUE_GOAL_FILTERS)


def _goal_table(p: Params) -> str:
    """Where a view's goal rows are: per filter value (:func:`_by_value`; ``rollup_fgoals``
    then holds the rows ``rollup_goals`` would hold for just the visits that value selects,
    but of converting visits only, so a total puts everyone's visitors at every position:
    :data:`_EVERY_POSITION`), else the day's."""
    return "rollup_fgoals" if _by_value(p) else "rollup_goals"


def _selected_visits(rolled: str, key: str, by_dim: str = "",
                     columns: Sequence[str] = ()) -> str:
    """The rows of :func:`goal_rows` from the closed days' visits a view's filters select
    (``rolled``: their condition on ``rollup_visits``): everyone's visitors (``pos`` 0) from
    the visits' rows, each goal's conversions from ``rollup_visit_goals``' rows of the same
    visits. ``key``: what a row is grouped by (a first value, ``day``), of ``day`` and
    ``columns`` (the first values read); ``by_dim``: an ARRAY JOIN of several dimensions'
    first values, each row then named by its ``dim``."""
    empty = f"{uniq('StateIf')}('', 0)"
    dim, dim_key = ("dim, ", "dim, ") if by_dim else ("", "")
    read = ", ".join(["vs", "day", *columns])
    # Everyone's visitors at every position, as a raw scan's per-visit rows put them (so a
    # goal nobody reached still has its row); one state merged several times counts once.
    positions = "0" if by_dim else "arrayJoin(range(0, length({gkeys:Array(String)}) + 1))"
    return f"""SELECT {dim}{positions} AS pos, key0, vs, cvs, c, cv, val, wvs FROM (
        SELECT {dim}{key} AS key0, {uniq('MergeState')}(vs) AS vs, {empty} AS cvs,
               toUInt64(0) AS c, toUInt64(0) AS cv, toFloat64(0) AS val, {empty} AS wvs
        FROM (SELECT {read} FROM {SELECTED_VISITS} {rolled}) {by_dim}
        GROUP BY {dim_key}key0)
    UNION ALL
    SELECT {dim}{_POSITIONS} AS pos, key0, nobody AS vs, cvs, c, cv, val, wvs FROM (
        SELECT {dim}goal_key, {key} AS key0, {empty} AS nobody, {uniq('MergeState')}(vs) AS cvs,
               sum(n) AS c,
               count() AS cv, sum(w) AS val, {uniq('MergeStateIf')}(vs, w > 0) AS wvs
        FROM (SELECT goal_key, {read}, n, w FROM rollup_visit_goals
              PREWHERE {ROLLUP_ROWS} AND goal_key IN {{gkeys:Array(String)}}
                  AND visit IN (SELECT visit FROM {SELECTED_VISITS} {rolled})) {by_dim}
        GROUP BY {dim_key}goal_key, key0)"""


#: Which goals a rollup row belongs to: every position whose goal has that key (two goals
#: may be defined alike, and share their rows), or 0 for the visitors of every visit.
_POSITIONS = ("arrayJoin(if(goal_key = '', [0], arrayFilter(i -> {gkeys:Array(String)}[i] "
              "= goal_key, arrayEnumerate({gkeys:Array(String)}))))")
#: :data:`_POSITIONS`, but everyone's visitors (goal_key '') at every position, as
#: ``_selected_visits`` puts them: ``rollup_fgoals`` has no row for a goal where it did not
#: convert, and a goal nobody reached must still have its row.
_EVERY_POSITION = ("arrayJoin(if(goal_key = '', range(0, length({gkeys:Array(String)}) + 1), "
                   "arrayFilter(i -> {gkeys:Array(String)}[i] = goal_key, "
                   "arrayEnumerate({gkeys:Array(String)}))))")
#: What conversions were worth, in total, per conversion and per visitor (of the period or
#: group): only when at least k visitors' conversions carried a value (``wv_n``; so no one
#: buyer's amount is ever the total), and nothing for a goal worth nothing.
_VALUES = """if(wv_n >= {k:UInt32} AND val_n > 0, round(val_n, 2), NULL) AS value,
       if(wv_n >= {k:UInt32} AND val_n > 0, round(val_n / c_n, 2), NULL)
           AS value_per_conversion,
       if(wv_n >= {k:UInt32} AND val_n > 0, round(val_n / v_n, 2), NULL)
           AS value_per_visitor"""


def chosen(p: Params) -> Goal:
    """The goal ``p.goal`` names, among those the runner read."""
    for goal in p.goals or ():
        if goal.goal_id == p.goal:
            return goal
    raise QueryError("goal: no such goal")


def q_goals(p: Params) -> Sql:
    """Every goal: (goal_id, name, conversions, converted_visits, converted_visitors,
    visitors, rate, value, value_per_conversion, value_per_visitor); a goal's figures NULL
    under k converting visitors, its value figures NULL when it is worth nothing."""
    params = base_params(p)
    goals = p.goals or ()
    if not goals:
        return Sql("SELECT '' AS goal_id, '' AS name, 0 AS conversions WHERE 0", params)
    params.update(gids=[g.goal_id for g in goals], gnames=[g.name for g in goals])
    text = f"""
SELECT {{gids:Array(String)}}[pos] AS goal_id, {{gnames:Array(String)}}[pos] AS name,
       if(cv_n >= {{k:UInt32}}, c_n, NULL) AS conversions,
       if(cv_n >= {{k:UInt32}}, cvis, NULL) AS converted_visits,
       if(cv_n >= {{k:UInt32}}, cv_n, NULL) AS converted_visitors,
       if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
       if(cv_n >= {{k:UInt32}}, cv_n / v_n, NULL) AS rate,
       {_VALUES}
FROM (SELECT arrayJoin(arrayEnumerate({{gids:Array(String)}})) AS pos) AS listed
LEFT JOIN (
    SELECT pos, max(everyone) OVER () AS v_n, cv_n, c_n, cvis, val_n, wv_n
    FROM (SELECT pos, {uniq('Merge')}(vs) AS everyone, {uniq('Merge')}(cvs) AS cv_n,
                 sum(c) AS c_n, sum(cv) AS cvis, sum(val) AS val_n,
                 {uniq('Merge')}(wvs) AS wv_n
          FROM ({goal_rows(goals, p, params)})
          GROUP BY pos)
) AS figures USING pos
ORDER BY pos"""
    return Sql(text, params)


def q_goal_breakdown(p: Params) -> Sql:
    """One goal's conversions by ``p.dim``: (key, is_other, visitors, conversions,
    converted_visitors, rate, value, value_per_conversion, value_per_visitor)."""
    if p.dim not in GOAL_DIMS:
        raise QueryError(f"dim: goals break down by {', '.join(sorted(GOAL_DIMS))}")
    folded = _goal_folded(p, (p.dim,))
    return Sql(f"SELECT * EXCEPT dim FROM ({folded.text})", folded.params)


def q_goal_breakdowns(p: Params) -> Sql:
    """One goal by several dimensions in one scan (``p.dims``): the rows of
    :func:`q_goal_breakdown` with their ``dim``, each dimension folded by k on its own."""
    if not p.dims or any(d not in GOAL_DIMS for d in p.dims):
        raise QueryError(f"dims: goals break down by {', '.join(sorted(GOAL_DIMS))}")
    return _goal_folded(p, p.dims)


def _goal_folded(p: Params, dims: tuple[str, ...]) -> Sql:
    goal = chosen(p)
    params = base_params(p)
    text = f"""
SELECT dim, key, is_other, v_n AS visitors,
       if(cv_n >= {{k:UInt32}}, c_n, NULL) AS conversions,
       if(cv_n >= {{k:UInt32}}, cv_n, NULL) AS converted_visitors,
       if(cv_n >= {{k:UInt32}}, cv_n / v_n, NULL) AS rate,
       {_VALUES}
FROM (
    SELECT dim, if(finalizeAggregation(vs) >= {{k:UInt32}}, key0, '') AS key,
           finalizeAggregation(vs) < {{k:UInt32}} AS is_other,
           {uniq('Merge')}(vs) AS v_n, {uniq('Merge')}(cvs) AS cv_n, sum(c) AS c_n,
           sum(val) AS val_n, {uniq('Merge')}(wvs) AS wv_n
    FROM (SELECT dim, key0, {uniq('MergeState')}(vs) AS vs,
                 {uniq('MergeState')}(cvs) AS cvs, sum(c) AS c, sum(val) AS val,
                 {uniq('MergeState')}(wvs) AS wvs
          FROM ({goal_rows((goal,), p, params, keys=dims)}) GROUP BY dim, key0)
    GROUP BY dim, key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY dim, is_other, if(cv_n >= {{k:UInt32}}, cv_n, 0) DESC, v_n DESC, key
LIMIT {{lim:UInt32}} BY dim"""
    return Sql(text, params)


def q_goal_series(p: Params) -> Sql:
    """One goal over time: (bucket, visitors, conversions, converted_visitors, rate) by
    when visits started."""
    goal = chosen(p)
    params = base_params(p)
    text = f"""
SELECT toString(b) AS bucket,
       if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
       if(cv_n >= {{k:UInt32}}, c_n, NULL) AS conversions,
       if(cv_n >= {{k:UInt32}}, cv_n, NULL) AS converted_visitors,
       if(cv_n >= {{k:UInt32}}, cv_n / v_n, NULL) AS rate
FROM (
    SELECT key0 AS b, {uniq('Merge')}(vs) AS v_n, {uniq('Merge')}(cvs) AS cv_n, sum(c) AS c_n
    FROM ({goal_rows((goal,), p, params, bucket=p.grain)})
    GROUP BY b
)
ORDER BY b"""
    return Sql(text, params)


def q_goal_list(p: Params) -> Sql:
    """(goal_id, name, definition JSON, created_by): the goals there are, for the page that
    lists and edits them."""
    return Sql(GOALS_SQL)
