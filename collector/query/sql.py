"""SQL fragments every catalogue query is built from, with bound parameters only.

Privacy rules live here once, so no caller can forget them: :func:`not_suppressed` (people who
asked to be suppressed are left out) and, in :func:`folded` and the catalogue's outer queries,
k-anonymity (a group seen by fewer than k visitors is folded into "other" or dropped). The daily
rollup (``collector.query.rollup``) is built from these very fragments, so merged figures equal
a scan of the raw events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.ddl.tables import uniq
from collector.privacy.subjects import EVENT_SUBJECTS, RECORD_SUBJECTS
from collector.query.params import (
    DIMENSIONS,
    FILTERS,
    PER_VALUE_BREAKDOWNS,
    PER_VALUE_FILTERS,
    Params,
    day_bounds,
)

#: The columns of each table that name a person (``collector.privacy.subjects``).
SUBJECT_COLUMNS = {"events": EVENT_SUBJECTS, "consent_records": RECORD_SUBJECTS}
#: Which id types have active suppressions right now (one tiny query before each build).
ACTIVE_TYPES_SQL = ("SELECT DISTINCT id_type FROM suppressions FINAL "
                    "WHERE active AND subject != ''")


def not_suppressed(table: str, active: frozenset[str] | None = None) -> str:
    """Rows of people who asked to be suppressed never reach a dashboard: the one rule.

    A row is left out when any id it carries (``events``: visitor_id, user_id, consent_id;
    ``consent_records``: visitor_id, consent_id) is the subject of an active suppression.
    Every catalogue query and every rollup build applies it; nothing else may filter
    suppressed people its own way.

    ``active`` lists the id types with at least one active suppression; a condition for a
    type nobody is suppressed under is left out, because testing every row against an empty
    set still costs a hash per row. None (unknown) keeps every condition.
    """
    cols = [c for c in SUBJECT_COLUMNS[table] if active is None or c in active]
    # The column names are this module's constants, never input. subject is emptied after a
    # purge; '' must never match rows that simply lack the id.
    return " AND ".join(f"{c} NOT IN (SELECT subject FROM suppressions FINAL WHERE active "
                        f"AND id_type = '{c}' AND subject != '')" for c in cols) or "1"


RANGE = ("ts >= toDateTime64({t0:Int64}, 3, 'UTC') AND ts < toDateTime64({t1:Int64}, 3, 'UTC')")


@dataclass(slots=True)
class Sql:
    """A statement and its bound parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


def base_params(p: Params) -> dict[str, Any]:
    t0, t1 = p.bounds
    return {"t0": t0, "t1": t1, "tz": p.tz, "k": p.k, "lim": p.limit}


def compared(p: Params) -> Params:
    """The same parameters over the period a comparison looks at: ``shift_days`` back, the
    period just before or the same dates a year earlier. Its bounds are midnights of the
    site's time zone, as every period's are."""
    back = dt.timedelta(days=p.shift_days)
    return dataclasses.replace(p, start=p.start - back, end=p.end - back)


def filters_sql(p: Params, params: dict[str, Any], only: set[str] | None = None) -> str:
    parts = []
    for i, (key, value) in enumerate(p.filters):
        if only is not None and key not in only:
            continue
        params[f"f{i}"] = value
        parts.append(f" AND {FILTERS[key]} = {{f{i}:String}}")
    return "".join(parts)


def detail_where(p: Params, params: dict[str, Any], span: str = RANGE,
                 kinds: str | None = None) -> str:
    """Consented detail (``kinds``: :data:`VISIT_KINDS` by default) in ``span``,
    unsuppressed, filtered (:func:`matched_sql`)."""
    where = detail_rows(span, p.active_suppressions, kinds or VISIT_KINDS)
    if p.filters:
        where += f" AND {matched_sql(p, params, span)}"
    return where


#: A visit's name where filters select visits: a 64-bit hash of its session and day. Twice as
#: fast to look up as the pair; a wrong match needs a collision (~1e-7 per query at 10M events).
VISIT = "cityHash64(session_id, toDate(ts, {tz:String}))"
#: The same hash of a visit's row (``visits_sql``: its session and day ``d``).
VISIT_OF_ROW = "cityHash64(session_id, d)"


def matched_sql(p: Params, params: dict[str, Any], span: str) -> str:
    """The condition that a row's visit is selected by every filter, read from ``span``."""
    return f"{VISIT} IN ({matched_visits_sql(p, params, span)})"


def matched_visits_sql(p: Params, params: dict[str, Any], span: str) -> str:
    """The visits in ``span`` every filter selects (:data:`VISIT` hashes).

    Filters select visits: every event of a visit counts when, for each filter, one of its
    events matches it (so "channel = search" keeps the pages viewed after the search
    landing, and bounce and conversion keep their meaning; "channel = search, path = /price"
    is the search visits that saw the price page). A visit is a session's events within one
    day, as :func:`visits_sql` counts them, so the daily rollup (``collector.query.filtered``)
    is exact; and an event of someone suppressed selects nothing, as it counts for nothing.
    """
    parts = []
    for i, (key, value) in enumerate(p.filters):
        params[f"f{i}"] = value
        rows = detail_rows(span, p.active_suppressions, kinds_for([key]))
        parts.append(f"SELECT {VISIT} AS v FROM events WHERE {rows} "
                     f"AND {FILTERS[key]} = {{f{i}:String}}")
    # One set to look each row up in, however many filters: INTERSECT, not an IN per filter.
    return "SELECT v FROM (" + " INTERSECT ".join(parts) + ")"


def rollup_mode(p: Params, dims: Sequence[str] | None = None) -> str:
    """How a view planned with the rollup reads it: "" unfiltered (``rollup_totals``...),
    "value" for one filter with rows per value (``rollup_ftotals``, ``rollup_fdims``), else
    "visits": the day's visits (``rollup_visits``) with every filter's values. ``dims``: the
    breakdowns a query shows (None: it shows none)."""
    if not p.filters:
        return ""
    if (len(p.filters) == 1 and p.filters[0][0] in PER_VALUE_FILTERS and p.per_value
            and (dims is None or set(dims) <= set(PER_VALUE_BREAKDOWNS))):
        return "value"
    return "visits"


#: The events of visits: page views and the site's custom events. What counts visits,
#: visitors, page views and their breakdowns reads only these.
VISIT_KINDS = "kind IN ('pageview', 'custom')"
#: The same and the beacon's interactions, for the figures made of them (engagement, the
#: interaction breakdowns). Each figure picks its own rows among them (a dimension's ``rows``,
#: :func:`visits_sql`'s counts), so interactions never count as page views or make a visit.
#: Queries that need no interaction never read one: kind leads the sort key after the day,
#: so the rows a query skips are granules it never reads.
DETAIL_KINDS = "kind IN ('pageview', 'custom', 'interaction')"
INTERACTION_KINDS = "kind = 'interaction'"


def kinds_for(dims: Iterable[str]) -> str:
    """The kinds a filter on ``dims`` reads: a visit's page views and custom events, and the
    interactions when one of them is an interaction."""
    return DETAIL_KINDS if any(DIMENSIONS[d].interaction for d in dims) else VISIT_KINDS


def breakdown_kinds(dims: Iterable[str]) -> str:
    """The kinds a breakdown over ``dims`` reads: exactly those its rows are."""
    kinds = sorted({DIMENSIONS[d].kind for d in dims})
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def detail_rows(span: str, active: frozenset[str] | None, kinds: str = VISIT_KINDS) -> str:
    """Consented detail in ``span``, without the suppressed: raw queries and rollup builds."""
    return f"{span} AND {kinds} AND {not_suppressed('events', active)}"


# --- the daily rollup --------------------------------------------------------------------
# Unfiltered panels read closed days from rollup tables that collector.query.rollup builds with the
# very fragments below, and only the other days from events; both sides carry uniq states,
# so merged figures equal a raw scan's. Which days are current is decided per query
# (:func:`rollup_plan`): a day counts only if its build excluded every suppression there is.

#: How a view with filters reads the visits' rows: ``{SELECTED_VISITS} {rolled}``. PREWHERE, so
#: the visitor states are read only for the visits the filters select: ClickHouse does not
#: move ``has()`` there by itself, and a view with two filters read every visit's state
#: (~723,000 over 30 days on 10M events: 92–96 ms for the key figures, 68–76 with this).
SELECTED_VISITS = "rollup_visits PREWHERE"

#: Which rollup days are current: built, not dirtied since, and built after the latest
#: suppression change (suppressions' max(version) is the stamp a build records).
ROLLUP_PLAN_SQL = """
SELECT day, b FROM (
    SELECT day, argMax(build, version) AS b, argMax(stamp, version) AS st
    FROM rollup_days
    WHERE tz = {tz:String} AND day >= {d0:Date} AND day <= {d1:Date}
    GROUP BY day
)
WHERE b != 0 AND st = (SELECT max(version) FROM suppressions)"""
ROLLUP_QUERIES = frozenset({"kpis", "kpis_previous", "timeseries", "timeseries_previous",
                            "kpis_series", "kpis_series_previous",
                            "breakdown", "breakdowns", "engagement", "engagement_previous",
                            "page_engagement", "goals", "goal_breakdown", "goal_breakdowns",
                            "goal_series",
                            "funnel", "funnel_breakdown"})
#: Queries over the compared period, before the one asked for (their plan covers both).
PREVIOUS_QUERIES = frozenset({"kpis_previous", "timeseries_previous", "engagement_previous",
                              "kpis_series_previous"})
ROLLUP_GRAINS = {"day": "day", "week": "toMonday(day)"}
ROLLUP_ROWS = ("tz = {tz:String} AND day >= {rd0:Date} AND day <= {rd1:Date} "
               "AND build IN {builds:Array(UInt64)}")


ENGAGED = "kind = 'interaction' AND name = 'engaged'"


#: What a visit row can carry (:func:`visits_sql`), by column name.
VISIT_FIGURES = {
    "vs": f"{uniq('State')}(visitor_id)",
    "ss": f"{uniq('State')}(session_id)",
    "pv": "countIf(kind = 'pageview')",
    "other": "countIf(kind = 'custom')",
    "dur": "toUInt32(dateDiff('second', min(ts), max(ts)))",
    "eng": f"sumIf(engaged_seconds, {ENGAGED})",
    "exit_path": "argMaxIf(path, (ts, path), kind = 'pageview')",
}
#: The columns most readers want. Key figures with their series need only the states and
#: counts (``catalogue.kpis_series``): the rest would be computed per visit for nothing.
VISIT_ROW = ("vs", "pv", "other", "dur", "eng", "exit_path")
VISIT_STATES = ("vs", "ss", "pv", "other")


def visits_sql(where: str, columns: Sequence[str] = VISIT_ROW) -> str:
    """One row per visit: a session's events within one day of the site's time zone.

    Visits end at midnight, so a day's figures sum to the period's (and a rollup of days is
    exact). ``vs`` is the visit's visitor as a uniq state, so visitors stay event-level
    (``ss`` its session, for counts of distinct sessions). A visit needs a page view or a
    custom event: the beacon's reports alone (a page hidden after midnight) make none.
    ``dur`` runs from the visit's first event to its last, the beacon's reports included
    (they come when a page is left); ``eng`` adds up the seconds its pages were visible and
    in use, ``exit_path`` is its last page viewed (of two in the same millisecond, the
    greater path: the one answer a rebuild gives again). ``columns`` names which of
    :data:`VISIT_FIGURES` a row carries, besides ``session_id`` and the day ``d``.
    """
    figures = ", ".join(f"{VISIT_FIGURES[c]} AS {c}" for c in columns)
    return f"""SELECT session_id, toDate(ts, {{tz:String}}) AS d, {figures}
    FROM events WHERE {where} GROUP BY session_id, d HAVING pv + other > 0"""


def first_values(dims: Sequence[str]) -> str:
    """``k_<dim>``: a visit's first value of each of ``dims`` among the rows it counts (''
    when none): what its conversions are attributed to, raw (``conversions.per_visit``) and
    rolled up alike. Of two in the same millisecond, the lesser value: scans of different
    rows (a visit's, its conversions') then name the same one."""
    return ", ".join(f"argMinIf({DIMENSIONS[d].expr}, (ts, {DIMENSIONS[d].expr}), "
                     f"{DIMENSIONS[d].rows}) AS k_{d}" for d in dims)


SCROLLED = "kind = 'interaction' AND name = 'scroll'"


#: Per-visit rows → (visitors state, visits, pageviews, bounces). Conversions are goals'
#: (collector.query.conversions): no event name is special here.
VISIT_TOTALS = (f"{uniq('MergeState')}(vs) AS vs, count() AS s_n, sum(pv) AS pv_n, "
                "countIf(pv = 1 AND other = 0) AS b_n")


def _grouping(dims: Sequence[str], by: Sequence[str]) -> tuple[str, str, str, str]:
    """(``by`` as a select list's head, the key columns, the dim and key expressions, the
    GROUPING SETS) of ``dims``, each set grouped by ``by`` too: one copy of how a
    breakdown's rows are keyed."""
    keys = ", ".join(f"if({DIMENSIONS[d].rows}, {DIMENSIONS[d].expr}, NULL) AS k{i}"
                     for i, d in enumerate(dims))
    which = ", ".join(f"grouping(k{i}) = 0, '{d}'" for i, d in enumerate(dims))
    value = ", ".join(f"grouping(k{i}) = 0, k{i}" for i, d in enumerate(dims))
    outer = "".join(f"{c}, " for c in by)
    labels = (f"multiIf({which}, '') AS dim, multiIf({value}, NULL) AS nkey, "
              "toString(assumeNotNull(nkey)) AS key0")
    return outer, keys, labels, ", ".join(f"({outer}k{i})" for i in range(len(dims)))


def grouped_sql(dims: Sequence[str], where: str, *, by: Sequence[str] = (),
                source: str = "events") -> str:
    """(dim, key0, vs, n) for several dimensions in one scan (GROUPING SETS).

    Each dimension's key is NULL on rows that dimension does not count (e.g. non-landing
    pageviews for channels); those NULL groups are dropped. ``by``: columns of ``source``
    every set is grouped by too, and selected first (the filtered rollup's filter values).
    """
    outer, keys, labels, sets = _grouping(dims, by)
    return f"""SELECT {outer}dim, key0, vs, n FROM (
        SELECT {outer}{labels}, {uniq('State')}(visitor_id) AS vs, count() AS n
        FROM (SELECT {outer}visitor_id, {keys} FROM {source} WHERE {where})
        GROUP BY GROUPING SETS ({sets})
        HAVING nkey IS NOT NULL)"""


def visit_keys_sql(dims: Sequence[str], where: str) -> str:
    """(visit, visitor_id, dim, key0, n): :func:`grouped_sql`'s rows per visit (:data:`VISIT`)
    and visitor, so the rows of visits a view selects merge to what a scan of their events
    gives (``collector.query.filtered``). Per visitor too: a visit whose events carry two
    visitor ids (those without a session id share one a day) counts each for its own keys."""
    outer, keys, labels, sets = _grouping(dims, ("visit", "visitor_id"))
    return f"""SELECT {outer}dim, key0, n FROM (
        SELECT {outer}{labels}, count() AS n
        FROM (SELECT {VISIT} AS visit, visitor_id, {keys} FROM events WHERE {where})
        GROUP BY GROUPING SETS ({sets})
        HAVING nkey IS NOT NULL)"""


def property_sql(where: str) -> str:
    """(dim, key0, vs, n) of custom-event properties (one row per event and property)."""
    d = DIMENSIONS["property"]
    return f"""SELECT 'property' AS dim, toString({d.expr}) AS key0,
           {uniq('State')}(visitor_id) AS vs, count() AS n
    FROM events ARRAY JOIN properties AS prop WHERE {where} AND {d.rows} GROUP BY key0"""


def split_days(p: Params, start: dt.date, end: dt.date) -> tuple[list[int], list[tuple[int, int]]]:
    """The builds of rolled-up days in [start, end], and the epoch spans left to scan."""
    fresh = dict(p.rollup or ())
    builds: list[int] = []
    spans: list[tuple[int, int]] = []
    day, run = start, None
    while day <= end:
        if day in fresh:
            builds.append(fresh[day])
            if run is not None:
                spans.append(day_bounds(p.tz, run, day - dt.timedelta(days=1)))
                run = None
        elif run is None:
            run = day
        day += dt.timedelta(days=1)
    if run is not None:
        spans.append(day_bounds(p.tz, run, end))
    return builds, spans


def span_sql(spans: Sequence[tuple[int, int]], params: dict[str, Any]) -> str:
    parts = []
    for i, (a, b) in enumerate(spans):
        params[f"s{i}a"], params[f"s{i}b"] = a, b
        parts.append(f"(ts >= toDateTime64({{s{i}a:Int64}}, 3, 'UTC') "
                     f"AND ts < toDateTime64({{s{i}b:Int64}}, 3, 'UTC'))")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


#: The events part of a view whose every day is rolled up (:func:`sources`): it matches no
#: row, and a builder leaves that part out (:func:`union_with_events`). ClickHouse takes
#: ~20 ms to plan a goal query's events part even when it reads nothing; a compared
#: period, and any period that ended before today, have no other days.
NO_EVENTS = "0"


def sources(p: Params, params: dict[str, Any], start: dt.date | None = None,
            end: dt.date | None = None, kinds: str = VISIT_KINDS,
            dims: Sequence[str] | None = None, by_visit: bool = False
            ) -> tuple[str, str | None]:
    """(where for the events part, where for the rollup part or None when unused).

    A filtered view (:func:`rollup_mode`) reads the rows of its filter's value, or the
    visits of closed days its filters select: then its breakdowns (``dims``) scan every day's
    events of just those visits, and its other figures read the visits' own rows.
    ``by_visit``: figures only the visits' rows hold (engagement), read from them even for
    one filter with rows per value.
    """
    if p.rollup is None:
        return detail_where(p, params, kinds=kinds), None
    start, end = start or p.start, end or p.end
    builds, spans = split_days(p, start, end)
    if not builds:
        return detail_where(p, params, span_sql([day_bounds(p.tz, start, end)], params),
                            kinds), None
    params.update(builds=builds, rd0=start, rd1=end)
    rolled = ROLLUP_ROWS
    mode = rollup_mode(p, dims)
    if by_visit and mode == "value":
        mode = "visits"
    open_days = span_sql(spans, params)
    if mode == "value":
        (params["rfd"], params["rfv"]), = p.filters
        rolled += " AND fdim = {rfd:String} AND fval = {rfv:String}"
    elif mode == "visits":
        rolled += "".join(f" AND has(f_{key}, {{f{i}:String}})"
                          for i, (key, _) in enumerate(p.filters))
        if dims is not None and not set(dims) <= VISIT_KEY_DIMS:
            params["w0"], params["w1"] = day_bounds(p.tz, start, end)
            whole = ("ts >= toDateTime64({w0:Int64}, 3, 'UTC') "
                     "AND ts < toDateTime64({w1:Int64}, 3, 'UTC')")
            return (f"{detail_rows(whole, p.active_suppressions, kinds)} AND {VISIT} IN "
                    f"(SELECT visit FROM {SELECTED_VISITS} {rolled} UNION ALL "
                    f"{matched_visits_sql(p, params, open_days)})"), None
    where = detail_where(p, params, open_days, kinds)  # binds the filters' parameters
    return (NO_EVENTS if not spans else where), rolled


def union_with_events(events: str, where: str, rolled: str) -> str:
    """``events`` (a part reading ``where``) UNION ALL ``rolled``, or ``rolled`` alone when
    ``where`` reads nothing (:data:`NO_EVENTS`)."""
    return rolled if where == NO_EVENTS else f"{events}\n    UNION ALL\n{rolled}"


#: The rollup's per-filter-value twins (``collector.query.filtered``): a filtered view planned
#: with the rollup reads these instead, with its filter's condition (:func:`sources`).
FILTERED_TWINS = {"rollup_totals": "rollup_ftotals", "rollup_dims": "rollup_fdims"}


#: The breakdowns a view with filters reads from its visits' rows (``rollup_visit_keys``):
#: all but a custom event's properties (a row per property, many per event), which scan the
#: events of the visits it selects.
KEYED_DIMS = tuple(d for d in DIMENSIONS if d != "property")
VISIT_KEY_DIMS = frozenset(KEYED_DIMS)
VISIT_KEYS_TABLE = "rollup_visit_keys"


def rollup_table(p: Params, name: str, dims: Sequence[str] | None = None) -> str:
    """The rollup table ``p`` reads: ``name``, its per-filter-value twin, or for breakdowns
    (``dims``) by visit, the visits' keys."""
    mode = rollup_mode(p, dims)
    if mode == "value":
        return FILTERED_TWINS[name]
    return VISIT_KEYS_TABLE if mode == "visits" and name == "rollup_dims" else name


def rows_with_rollup(source: str, where: str, rolled: str | None, dims: Sequence[str],
                      params: dict[str, Any], table: str = "rollup_dims") -> str:
    """(dim, key0, vs, n) from events (``source``, reading ``where``), merged with the
    rollup's rows of ``dims`` if used."""
    if not rolled:
        return source
    params["rdims"] = list(dims)
    if table == VISIT_KEYS_TABLE:
        # ``rolled`` selects visits (their filters' values); each of their rows adds its keys.
        part = f"""SELECT dim, key0, vs, toUInt64(n) AS n FROM {table}
            ARRAY JOIN dims AS dim, keys AS key0, ns AS n
            PREWHERE {ROLLUP_ROWS} AND visit IN (SELECT visit FROM {SELECTED_VISITS} {rolled})
            WHERE dim IN {{rdims:Array(String)}}"""
    else:
        part = f"""SELECT dim, key AS key0, visitors AS vs,
            events AS n FROM {table} WHERE {rolled} AND dim IN {{rdims:Array(String)}}"""
    rows = union_with_events(source, where, part)
    return f"""SELECT dim, key0, {uniq('MergeState')}(vs) AS vs, sum(n) AS n FROM (
        {rows})
    GROUP BY dim, key0"""


def folded(rows: str) -> str:
    """Fold keys seen by fewer than k visitors into one "other" row per dimension."""
    return f"""
SELECT dim, key, is_other, v_n AS visitors, e_n AS events
FROM (
    SELECT dim, if(finalizeAggregation(vs) >= {{k:UInt32}}, key0, '') AS key,
           finalizeAggregation(vs) < {{k:UInt32}} AS is_other,
           {uniq('Merge')}(vs) AS v_n, sum(n) AS e_n
    FROM ({rows})
    GROUP BY dim, key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY dim, is_other, v_n DESC, e_n DESC, key
LIMIT {{lim:UInt32}} BY dim"""
