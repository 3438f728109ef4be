"""The dashboards' query catalogue: every query the collector runs for them, by name.

Dashboards never send SQL. They name a query from :data:`CATALOGUE` and pass parameters
(checked by ``collector.query.params``); each builder assembles the fixed fragments of
``collector.query.sql``, which carry the privacy rules (suppression, k-anonymity), with bound
parameters only; ``collector.query.run`` runs the result read-only. It lives below the
dashboards package because the collector runs it without importing them (collector ←
dashboards). Anonymous counts and consent records have no visitor: there ``k`` is a threshold
on the count (events or consent ids) instead of on distinct visitors.
About 420 lines: one builder per named query, which read best side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from collector.ddl.tables import uniq
from collector.query.annotations import q_annotations
from collector.query.conversions import (
    VISIT_GRAINS,
    q_goal_breakdown,
    q_goal_breakdowns,
    q_goal_list,
    q_goal_series,
    q_goals,
)
from collector.query.engagement import (
    q_engagement,
    q_engagement_previous,
    q_page_engagement,
)
from collector.query.funnels import Funnel, q_funnel, q_funnel_breakdown, q_funnel_list
from collector.query.goals import Goal
from collector.query.params import (
    ANONYMOUS_FILTERS,
    DIMENSIONS,
    GRAINS,
    Params,
    QueryError,
    parse_params,
)
from collector.query.realtime import q_realtime
from collector.query.segments import q_segments
from collector.query.sql import (
    RANGE,
    ROLLUP_GRAINS,
    SELECTED_VISITS,
    VISIT_STATES,
    VISIT_TOTALS,
    Sql,
    base_params,
    breakdown_kinds,
    compared,
    filters_sql,
    folded,
    grouped_sql,
    not_suppressed,
    property_sql,
    rollup_mode,
    rollup_table,
    rows_with_rollup,
    sources,
    union_with_events,
    visits_sql,
)


def q_kpis(p: Params) -> Sql:
    params = base_params(p)
    where, rolled = sources(p, params)
    source = f"SELECT {VISIT_TOTALS} FROM ({visits_sql(where)})"
    if rolled and rollup_mode(p) == "visits":
        source = union_with_events(source, where,
                                   f"SELECT {VISIT_TOTALS} FROM {SELECTED_VISITS} {rolled}")
    elif rolled:
        source = union_with_events(source, where, (
            "SELECT visitors AS vs, visits AS s_n, pageviews AS pv_n, bounces AS b_n "
            f"FROM {rollup_table(p, 'rollup_totals')} WHERE {rolled}"))
    text = f"""
SELECT
    if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
    if(v_n >= {{k:UInt32}}, s_n, NULL) AS visits,
    if(v_n >= {{k:UInt32}}, pv_n, NULL) AS pageviews,
    if(v_n >= {{k:UInt32}}, b_n, NULL) AS bounces,
    v_n < {{k:UInt32}} AS below_k
FROM (
    SELECT {uniq('Merge')}(vs) AS v_n, sum(s_n) AS s_n, sum(pv_n) AS pv_n, sum(b_n) AS b_n
    FROM ({source})
)"""
    return Sql(text, params)


def q_kpis_previous(p: Params) -> Sql:
    """The same KPIs over the compared period (:func:`compared`)."""
    return q_kpis(compared(p))


def q_timeseries(p: Params) -> Sql:
    params = base_params(p)
    if p.grain not in ROLLUP_GRAINS:
        p = dataclasses.replace(p, rollup=None)
    where, rolled = sources(p, params)
    source = (f"SELECT {GRAINS[p.grain]} AS b, {uniq('State')}(visitor_id) AS vs, "
              f"{uniq('State')}(session_id) AS ss, countIf(kind = 'pageview') AS pv "
              f"FROM events WHERE {where} GROUP BY b")
    if rolled and rollup_mode(p) == "visits":
        source = union_with_events(source, where, (
            f"SELECT {ROLLUP_GRAINS[p.grain]} AS b, vs, ss, toUInt64(pv) AS pv "
            f"FROM {SELECTED_VISITS} {rolled}"))
    elif rolled:
        source = union_with_events(source, where, (
            f"SELECT {ROLLUP_GRAINS[p.grain]} AS b, visitors AS vs, sessions AS ss, "
            f"pageviews AS pv FROM {rollup_table(p, 'rollup_totals')} WHERE {rolled}"))
    text = f"""
SELECT toString(b) AS bucket,
       if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
       if(v_n >= {{k:UInt32}}, s_n, NULL) AS visits,
       if(v_n >= {{k:UInt32}}, pv_n, NULL) AS pageviews
FROM (
    SELECT b, {uniq('Merge')}(vs) AS v_n, {uniq('Merge')}(ss) AS s_n, sum(pv) AS pv_n
    FROM ({source})
    GROUP BY b
)
ORDER BY b"""
    return Sql(text, params)


def q_timeseries_previous(p: Params) -> Sql:
    """The series over the compared period, in its own dates (the chart lays it over)."""
    return q_timeseries(compared(p))


def q_kpis_series(p: Params) -> Sql:
    """``kpis`` and ``timeseries`` in one scan, for the grains the rollup keeps (day, week).

    The rows of ``timeseries``, then one with an empty ``bucket``: the key figures, with
    ``bounces`` and ``below_k`` (there ``visits`` counts visits, as ``kpis`` does; in a
    bucket, distinct sessions, as ``timeseries`` does). Every figure is merged from the
    same rows the two queries read, so each equals theirs (a bucket's, read raw, from its
    visits' states: at exactly 128 distinct visitors the count may then differ by one, the
    edge every merged count has, ``ddl.tables.EXACT_UP_TO``); a page showing both pays for
    one read of the period (``dashboards.pagedata``).
    """
    if p.grain not in ROLLUP_GRAINS:
        raise QueryError("grain: key figures with their series come by day or week")
    params = base_params(p)
    where, rolled = sources(p, params)
    # Each row: a bucket, its visitors and sessions as states, and visits, page views and
    # bounces counted (a visit's row counts one visit; a day's totals row, the day's).
    visit = ("vs, ss, toUInt64(1) AS s, toUInt64(pv) AS pvs, "
             "toUInt64(pv = 1 AND other = 0) AS bn")
    source = (f"SELECT {VISIT_GRAINS[p.grain]} AS b, {visit} "
              f"FROM ({visits_sql(where, VISIT_STATES)})")
    if rolled and rollup_mode(p) == "visits":
        source = union_with_events(source, where, f"SELECT {ROLLUP_GRAINS[p.grain]} AS b, "
                                   f"{visit} FROM {SELECTED_VISITS} {rolled}")
    elif rolled:
        source = union_with_events(source, where, (
            f"SELECT {ROLLUP_GRAINS[p.grain]} AS b, visitors AS vs, sessions AS ss, "
            "toUInt64(visits) AS s, toUInt64(pageviews) AS pvs, toUInt64(bounces) AS bn "
            f"FROM {rollup_table(p, 'rollup_totals')} WHERE {rolled}"))
    text = f"""
SELECT if(total, '', toString(b)) AS bucket,
       if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
       if(v_n >= {{k:UInt32}}, if(total, s_n, ss_n), NULL) AS visits,
       if(v_n >= {{k:UInt32}}, pv_n, NULL) AS pageviews,
       if(v_n >= {{k:UInt32}} AND total, b_n, NULL) AS bounces,
       v_n < {{k:UInt32}} AS below_k
FROM (
    SELECT b, grouping(b) = 1 AS total, {uniq('Merge')}(vs) AS v_n, {uniq('Merge')}(ss) AS ss_n,
           sum(s) AS s_n, sum(pvs) AS pv_n, sum(bn) AS b_n
    FROM ({source})
    GROUP BY GROUPING SETS ((b), ())
)
ORDER BY total, b"""
    return Sql(text, params)


def q_kpis_series_previous(p: Params) -> Sql:
    """The same over the compared period (:func:`compared`)."""
    return q_kpis_series(compared(p))


def q_breakdown(p: Params) -> Sql:
    """Top rows of one dimension, small groups folded into "other" (k distinct visitors)."""
    params = base_params(p)
    where, rolled = sources(p, params, kinds=breakdown_kinds([p.dim]), dims=[p.dim])
    # No distinct visit count here: it would double the cost of every breakdown.
    source = (property_sql(where) if p.dim == "property"
              else grouped_sql([p.dim], f"{where} AND {DIMENSIONS[p.dim].rows}"))
    rows = rows_with_rollup(source, where, rolled, [p.dim], params,
                            rollup_table(p, "rollup_dims", [p.dim]))
    return Sql(f"SELECT key, is_other, visitors, events FROM ({folded(rows)})", params)


def q_breakdowns(p: Params) -> Sql:
    """Several breakdowns in one scan (GROUPING SETS), each folded like :func:`q_breakdown`."""
    if not p.dims:
        raise QueryError("dims: at least one dimension")
    params = base_params(p)
    where, rolled = sources(p, params, kinds=breakdown_kinds(p.dims), dims=p.dims)
    rows = rows_with_rollup(grouped_sql(p.dims, where), where, rolled, p.dims, params,
                            rollup_table(p, "rollup_dims", p.dims))
    return Sql(folded(rows), params)


def _anonymous_where(p: Params, params: dict[str, Any]) -> str:
    return f"{RANGE} AND kind = 'anonymous'" + filters_sql(p, params, ANONYMOUS_FILTERS)


def q_coverage(p: Params) -> Sql:
    """Per day: anonymous counts (no consent) vs consented pageviews; k on counts.

    Both sides filter views (not visits) and only by what anonymous counts carry (path,
    device type); any other filter empties the panel rather than compare unlike things.
    """
    params = base_params(p)
    blocked = any(k not in ANONYMOUS_FILTERS for k, _ in p.filters)
    consented = (f"{RANGE} AND kind = 'pageview' AND "
                 f"{not_suppressed('events', p.active_suppressions)}"
                 + filters_sql(p, params, ANONYMOUS_FILTERS))
    text = f"""
SELECT toString(d) AS day,
       if(a_n >= {{k:UInt32}}, a_n, NULL) AS anonymous,
       if(c_n >= {{k:UInt32}}, c_n, NULL) AS consented
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, countIf(kind = 'anonymous') AS a_n,
           countIf(kind = 'pageview') AS c_n
    FROM events
    WHERE (({_anonymous_where(p, params)}) OR ({consented})){" AND 0" if blocked else ""}
    GROUP BY d
)
ORDER BY d"""
    return Sql(text, params)


def q_anonymous_pages(p: Params) -> Sql:
    """Anonymous counts by page; a row needs at least k counted views."""
    params = base_params(p)
    block = any(k not in ANONYMOUS_FILTERS for k, _ in p.filters)
    text = f"""
SELECT key, is_other, v_n AS views FROM (
    SELECT if(n >= {{k:UInt32}}, path, '') AS key, n < {{k:UInt32}} AS is_other,
           sum(n) AS v_n
    FROM (SELECT path, count() AS n FROM events WHERE {_anonymous_where(p, params)}
          {"AND 0" if block else ""} GROUP BY path)
    GROUP BY key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY is_other, v_n DESC, key
LIMIT {{lim:UInt32}}"""
    return Sql(text, params)


def _records_where(p: Params) -> str:
    return f"{RANGE} AND {not_suppressed('consent_records', p.active_suppressions)}"


def q_consent_funnel(p: Params) -> Sql:
    """Banner shown, then decisions by method; k on distinct consent ids per row."""
    params = base_params(p)
    text = f"""
SELECT step, m AS method, n AS consents FROM (
    SELECT event AS step, method AS m, uniq(consent_id) AS n
    FROM consent_records
    WHERE {_records_where(p)} AND event IN ('shown', 'decided', 'updated', 'withdrawn')
    GROUP BY step, m
)
WHERE n >= {{k:UInt32}}
ORDER BY step = 'shown' DESC, n DESC"""
    return Sql(text, params)


def q_optin(p: Params) -> Sql:
    """Per day and category: share of decisions that granted it (k decisions a day)."""
    params = base_params(p)
    text = f"""
SELECT toString(d) AS day, category,
       if(n >= {{k:UInt32}}, g / n, NULL) AS rate,
       if(n >= {{k:UInt32}}, n, NULL) AS decisions
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, cat.1 AS category,
           countIf(cat.2) AS g, count() AS n
    FROM consent_records ARRAY JOIN categories AS cat
    WHERE {_records_where(p)} AND event IN ('decided', 'updated') AND cat.1 != 'necessary'
    GROUP BY d, category
)
ORDER BY d, category"""
    return Sql(text, params)


def q_gpc(p: Params) -> Sql:
    """Per day: share of banner impressions from browsers sending GPC."""
    params = base_params(p)
    text = f"""
SELECT toString(d) AS day, if(n >= {{k:UInt32}}, g / n, NULL) AS gpc_share,
       if(n >= {{k:UInt32}}, n, NULL) AS shown
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, countIf(gpc) AS g, count() AS n
    FROM consent_records
    WHERE {_records_where(p)} AND event = 'shown'
    GROUP BY d
)
ORDER BY d"""
    return Sql(text, params)


def q_bot_hits(p: Params) -> Sql:
    """Per day: hits of known bots, which no other figure holds (they are never stored as
    events). Counts of no one, so no k; filters cannot apply to them and are ignored."""
    params = base_params(p)
    text = """
SELECT toString(toDate(hour, {tz:String})) AS day,
       sumIf(n, kind != 'anonymous') AS consented, sumIf(n, kind = 'anonymous') AS anonymous,
       sum(n) AS hits
FROM (SELECT hour, kind, hits AS n FROM bot_hits)
WHERE hour >= toDateTime({t0:Int64}, 'UTC') AND hour < toDateTime({t1:Int64}, 'UTC')
GROUP BY day
ORDER BY day"""
    return Sql(text, params)


def q_suppression_stats(p: Params) -> Sql:
    """How many people are suppressed or purged (counts only; for privacy staff)."""
    return Sql("""
SELECT id_type, countIf(active) AS active, countIf(purged) AS purged
FROM suppressions FINAL GROUP BY id_type ORDER BY id_type""")


def q_data_version(p: Params) -> Sql:
    """Fingerprints of the data, for exact result caching.

    ``version`` changes with any insert, delete, mutation or merge. ``privacy_version``
    changes with every suppression change, every staff note, segment, goal or funnel and every
    delete/mutation (a
    purge) on events or consent records, but not with inserts of new events.
    """
    return Sql("""
SELECT
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', name))))
     FROM system.parts
     WHERE active AND database = currentDatabase()
       AND table IN ('events', 'consent_records', 'suppressions', 'bot_hits',
                     'dashboard_notes', 'dashboard_segments', 'dashboard_goals',
                     'dashboard_funnels')) AS version,
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', name))))
     FROM system.parts
     WHERE active AND database = currentDatabase()
       AND table IN ('suppressions', 'dashboard_notes', 'dashboard_segments',
                     'dashboard_goals', 'dashboard_funnels'))
    || '-' ||
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', mutation_id))))
     FROM system.mutations
     WHERE database = currentDatabase()
       AND table IN ('events', 'consent_records', 'suppressions')) AS privacy_version""")


#: Name → builder. The collector runs nothing else.
CATALOGUE: dict[str, Callable[[Params], Sql]] = {
    "kpis": q_kpis,
    "kpis_previous": q_kpis_previous,
    "timeseries": q_timeseries,
    "timeseries_previous": q_timeseries_previous,
    "kpis_series": q_kpis_series,
    "kpis_series_previous": q_kpis_series_previous,
    "breakdown": q_breakdown,
    "breakdowns": q_breakdowns,
    "coverage": q_coverage,
    "anonymous_pages": q_anonymous_pages,
    "consent_funnel": q_consent_funnel,
    "optin": q_optin,
    "gpc": q_gpc,
    "bot_hits": q_bot_hits,
    "engagement": q_engagement,
    "engagement_previous": q_engagement_previous,
    "page_engagement": q_page_engagement,
    "realtime": q_realtime,
    "annotations": q_annotations,
    "segments": q_segments,
    "goals": q_goals,
    "goal_breakdown": q_goal_breakdown,
    "goal_breakdowns": q_goal_breakdowns,
    "goal_series": q_goal_series,
    "goal_list": q_goal_list,
    "funnel": q_funnel,
    "funnel_breakdown": q_funnel_breakdown,
    "funnel_list": q_funnel_list,
    "suppression_stats": q_suppression_stats,
    "data_version": q_data_version,
}
#: Queries that need no date range.
UNDATED = {"suppression_stats", "data_version", "realtime", "segments", "goal_list",
           "funnel_list"}
#: Queries about goals: the runner reads the goals there are first; about funnels, the goals
#: and the funnels.
GOAL_QUERIES = frozenset({"goals", "goal_breakdown", "goal_breakdowns", "goal_series"})
FUNNEL_QUERIES = frozenset({"funnel", "funnel_breakdown", "funnel_list"})



def params_for(name: str, raw: Mapping[str, Any]) -> Params:
    """Validated parameters of a catalogue query, or QueryError (unknown name, bad values)."""
    if not isinstance(name, str) or name not in CATALOGUE:
        raise QueryError(f"unknown query {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    if name in UNDATED:
        today = dt.date.today().isoformat()
        raw = {"start": today, "end": today, **dict(raw or {})}
    return parse_params(raw or {})


def build(name: str, raw: Mapping[str, Any],
          active_suppressions: frozenset[str] | None = None,
          rollup: Sequence[tuple[dt.date, int]] | None = None,
          goals: Sequence[Goal] = (), funnels: Sequence[Funnel] = ()) -> Sql:
    """The SQL for a catalogue query, or QueryError for an unknown name or bad parameters.

    ``active_suppressions`` (from :func:`active_suppression_types`) only drops conditions
    that cannot match anything; None keeps them all. ``rollup`` (from :func:`rollup_plan`)
    lists the current rollup days and their builds; None scans events only. ``goals``: the
    goals there are (``collector.query.goals``), for the queries about goals; ``funnels``,
    for those about funnels.
    """
    return with_plan(name, params_for(name, raw), active_suppressions, rollup, goals, funnels)


def with_plan(name: str, p: Params, active_suppressions: frozenset[str] | None,
              rollup: Sequence[tuple[dt.date, int]] | None,
              goals: Sequence[Goal] = (), funnels: Sequence[Funnel] = (),
              per_value: bool = True) -> Sql:
    return CATALOGUE[name](dataclasses.replace(p, active_suppressions=active_suppressions,
                                               rollup=tuple(rollup) if rollup else None,
                                               goals=tuple(goals), funnels=tuple(funnels),
                                               per_value=per_value))
