"""The rollup for filtered views: what keeps a view with filters off the raw events.

A filter selects visits (``collector.query.sql.matched_sql``): a visit (a session's events
within one day) is in "channel = search" when one of its events has that channel, and then
all its events count. Over raw events a filtered view scans every event of the period twice
per panel: once to find the visits, once to count them. So each day's build also writes:

- per filter value (``rollup_ftotals``, ``rollup_fdims``): the day's totals and breakdowns
  once per value of each dimension in ``params.PER_VALUE_FILTERS``, over the visits that
  value selects. A view with one such filter, the common case (a campaign, a channel, a
  device, a landing page), reads only its own rows;
- per visit (``rollup_visits``): each visit's hash (``sql.VISIT``), visitor and session
  states, page views, custom events, duration and engaged seconds, and for every filterable
  dimension the values its events have. A view with any other filters reads its key figures,
  series and engagement figures from the visits its filters select. Engagement has no rows
  per value: a view of one value reads it from the visits too;
- per visit and visitor (``rollup_visit_keys``): the keys of every breakdown but a custom
  event's properties (``sql.KEYED_DIMS``) among their events, interactions included (each
  dimension's ``rows`` name their kind), and the events each counts. The
  breakdowns of a view with filters merge the rows of the visits it selects
  (``sql.rows_with_rollup``): a key's visitors are the union of the visitors of the rows that
  have it, which is the set a scan of those visits' events counts, since a row is one
  visitor's (a visit with several visitor ids has a row each). A custom event's
  properties scan the events of just those visits.
- per visit and page (``rollup_visit_pages``): what ``rollup_pages`` holds per page (views,
  exits, the beacon's engaged and scroll reports and who sent them), kept per visit: the page
  engagement of a view with filters merges the rows of the visits it selects.

Both are made of the unfiltered rollup's fragments (``visits_sql``, ``grouped_sql``,
``VISIT_TOTALS``) and of the filters' very expressions (``params.FILTERS``), so a day merges
to exactly what a filtered scan gives; a test compares them. Suppression and purge work as
for the unfiltered rollup: these rows are part of the day's build, current only while its
stamp is the latest suppression version. ``rollup_visits`` holds a 64-bit hash of a session
and day, no id; a purge changes the day's count, so the day is rebuilt and the old rows go
with the superseded build.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collector.ddl.tables import VISIT_KEY_COLUMNS, VISIT_KEYS, uniq
from collector.query.engagement import (
    PAGE_TABLE_COLUMNS,
    PAGE_TOTALS,
    VISIT_PAGES_TABLE,
    page_rows,
)
from collector.query.params import DIMENSIONS, FILTERS, PER_VALUE_BREAKDOWNS, PER_VALUE_FILTERS
from collector.query.sql import (
    ENGAGED,
    KEYED_DIMS,
    VISIT,
    VISIT_TOTALS,
    first_values,
    grouped_sql,
    visit_keys_sql,
    visits_sql,
)

#: At most this many values of one dimension get rows per value in a day's build, the
#: values of most visits. A value is what a visitor sends (a campaign name, a path): without a
#: cap, a flood of one-visit values would cost ~25 rollup rows a visit. A day whose values were
#: cut is marked (fdim '#', fval the dimension), and a view of a value cut on one of its days
#: reads the visits' rows instead, which are exact too (``per_value_covered``).
PER_VALUE_CAP = 1000
CUT = "#"
#: Catalogue queries a filtered view may answer from the rollup.
QUERIES = frozenset({"kpis", "kpis_previous", "timeseries", "timeseries_previous",
                     "kpis_series", "kpis_series_previous",
                     "breakdown", "breakdowns", "engagement", "engagement_previous",
                     "page_engagement", "goals", "goal_series", "goal_breakdown",
                     "goal_breakdowns", "funnel", "funnel_breakdown"})


def served(name: str) -> bool:
    """Whether a filtered view of query ``name`` reads the rollup for its closed days."""
    return name in QUERIES


def visit_filters_sql(where: str) -> str:
    """(session_id, fd, fv): each filter value the day's visits match, once per visit.

    ``where`` must hold one day and the rows a filter reads (``kinds_for``: page views and
    custom events, unsuppressed), as ``sql.detail_where``'s matching subquery does.
    """
    pairs = ", ".join(f"('{d}', toString({FILTERS[d]}))" for d in PER_VALUE_FILTERS)
    return f"""SELECT DISTINCT session_id, pair.1 AS fd, pair.2 AS fv
    FROM events ARRAY JOIN [{pairs}] AS pair WHERE {where}"""


def visit_rows_sql(everything: str) -> str:
    """One row per visit of the day: what ``rollup_visits`` holds.

    ``everything``: the day's unsuppressed page views, custom events and interactions. A
    visit's figures count its page views and custom events (as :func:`visits_sql`'s do), its
    duration and engaged seconds all its rows, interactions included (as there too), its
    first values (:func:`first_values`) its page views; each
    filter's values come from the rows that filter reads (``sql.kinds_for``), so ``has()`` on
    them selects what ``matched_sql`` selects.
    """
    visit_rows = "kind IN ('pageview', 'custom')"
    values = []
    for d in FILTERS:
        rows = "1" if DIMENSIONS[d].interaction else visit_rows
        values.append(f"groupUniqArrayIf(toString(assumeNotNull({FILTERS[d]})), "
                      f"{rows} AND ({FILTERS[d]}) IS NOT NULL)")
    return f"""SELECT {VISIT} AS visit, {uniq('StateIf')}(visitor_id, {visit_rows}) AS vs,
           {uniq('StateIf')}(session_id, {visit_rows}) AS ss,
           toUInt32(countIf(kind = 'pageview')) AS pv,
           toUInt32(countIf(kind = 'custom')) AS other,
           toUInt32(dateDiff('second', min(ts), max(ts))) AS dur,
           sumIf(engaged_seconds, {ENGAGED}) AS eng, {first_values(VISIT_KEY_COLUMNS)},
           {", ".join(values)}
    FROM events WHERE {everything}
    GROUP BY visit HAVING pv + other > 0"""


def build_statements(where: str, everything: str, head: str) -> list[str]:
    """The INSERTs of a day's rows for filtered views; ``head`` selects (tz, day, build);
    ``where``: the day's unsuppressed page views and custom events; ``everything``: the
    interactions too. The bound parameter ``cap`` is :data:`PER_VALUE_CAP` or a smaller
    one."""
    every = visit_filters_sql(where)
    # The cap's values: those of most visits, ties by value, so a rebuild keeps the same ones.
    kept = (f"SELECT fd, fv FROM ({every}) GROUP BY fd, fv "
            "ORDER BY count() DESC, fv LIMIT {cap:UInt32} BY fd")
    pairs = f"SELECT session_id, fd, fv FROM ({every}) WHERE (fd, fv) IN ({kept})"
    joined = f"events INNER JOIN ({pairs}) AS p ON events.session_id = p.session_id"
    columns = ", ".join(f"f_{d}" for d in FILTERS)
    return [
        "INSERT INTO rollup_ftotals (tz, day, build, fdim, fval, visitors, visits, pageviews, "
        f"bounces, sessions) {head}, fd, fv, {VISIT_TOTALS}, "
        f"{uniq('State')}(v.session_id) FROM ({visits_sql(where)}) AS v "
        f"INNER JOIN ({pairs}) AS p ON v.session_id = p.session_id GROUP BY fd, fv",
        "INSERT INTO rollup_fdims (tz, day, build, fdim, fval, dim, key, visitors, events) "
        f"{head}, fd, fv, dim, key0, vs, n FROM "
        f"({grouped_sql(PER_VALUE_BREAKDOWNS, where, by=('fd', 'fv'), source=joined)})",
        "INSERT INTO rollup_ftotals (tz, day, build, fdim, fval, visits) "
        f"{head}, '{CUT}', fd, uniqExact(fv) FROM ({every}) GROUP BY fd "
        "HAVING uniqExact(fv) > {cap:UInt32}",
        "INSERT INTO rollup_visit_keys (tz, day, build, visit, vs, dims, keys, ns) "
        f"{head}, visit, {uniq('State')}(visitor_id), groupArray(dim), groupArray(key0), "
        f"groupArray(toUInt32(n)) FROM ({visit_keys_sql(KEYED_DIMS, everything)}) "
        "GROUP BY visit, visitor_id",
        f"INSERT INTO rollup_visits (tz, day, build, visit, vs, ss, pv, other, dur, eng, "
        f"{VISIT_KEYS}, {columns}) "
        f"{head}, * FROM ({visit_rows_sql(everything)})",
        f"INSERT INTO {VISIT_PAGES_TABLE} (tz, day, build, visit, path, {PAGE_TABLE_COLUMNS}) "
        f"{head}, visit, key0, {PAGE_TOTALS} FROM ({page_rows(everything, by_visit=True)}) "
        "GROUP BY visit, key0",
    ]


def per_value_covered(rows: Sequence[Sequence[Any]]) -> bool:
    """Whether every planned day has the rows of a view's one filter value: ``rows`` are
    (build, cut, present) per build from :data:`COVERAGE_SQL`; a day whose values were cut
    and that lacks this one does not."""
    return not any(cut and not present for _, cut, present in rows)


#: Per planned build: whether its day's values of the filter's dimension were cut, and
#: whether the filter's value has rows.
COVERAGE_SQL = (f"SELECT build, countIf(fdim = '{CUT}') > 0, countIf(fdim != '{CUT}') > 0 "
                "FROM rollup_ftotals WHERE tz = {tz:String} AND build IN {builds:Array(UInt64)} "
                f"AND ((fdim = '{CUT}' AND fval = {{fd:String}}) "
                "OR (fdim = {fd:String} AND fval = {fv:String})) GROUP BY build")
