"""Engagement figures: how long visits last, how pages are read, where visits end.

What the interaction beacon reports when a page is left (``consent_mw.static.beacon.js``:
``scroll`` in quarters, ``engaged`` seconds the page was visible and in use) and what page
views already say (a visit's first and last event, its last page) become:

- :func:`q_engagement`: visit duration (median and mean), engaged time per visit, and the
  engaged-bounce rate: visits of one page view with under :data:`ENGAGED_BOUNCE_S` seconds
  engaged. Without the beacon (no JavaScript, or the site turned it off) a visit has 0
  engaged seconds, so a one-page visit then counts as an engaged bounce.
- :func:`q_page_engagement`: per page, its views, the mean engaged seconds and scroll depth of
  the reports about it, and how many visits ended there (the exit pages are these rows
  ordered by exits).

Like every catalogue query they are built from ``collector.query.sql``'s fragments (so
suppression, filters and visits are the one rule), answer only for k distinct visitors, and
read closed days from the rollup (``rollup_engagement``, ``rollup_pages``; with filters,
the visits' rows of ``rollup_visits`` for :func:`q_engagement`), built by
``collector.query.rollup`` from the fragments below: merged figures equal a raw scan's.
"""

from __future__ import annotations

from collector.ddl.tables import uniq
from collector.query.params import Params
from collector.query.sql import (
    DETAIL_KINDS,
    ENGAGED,
    ROLLUP_ROWS,
    SCROLLED,
    SELECTED_VISITS,
    VISIT,
    VISIT_OF_ROW,
    Sql,
    base_params,
    compared,
    sources,
    union_with_events,
    visits_sql,
)

#: A visit of one page view with fewer engaged seconds than this is an engaged bounce.
ENGAGED_BOUNCE_S = 10
#: The one median there is: of an even count, the upper middle value. Exact, so the rollup's
#: merged states give what a scan of the raw visits gives.
MEDIAN = "quantileExact(0.5)"

#: Per-visit rows (``visits_sql``) → one row of engagement totals; a rollup_engagement row.
ENGAGEMENT_TOTALS = (
    f"{uniq('MergeState')}(vs) AS vs, count() AS s_n, sum(dur) AS d_sum, "
    f"{MEDIAN.replace('(', 'State(', 1)}(dur) AS d_q, sum(eng) AS e_sum, "
    f"countIf(pv = 1 AND eng < {ENGAGED_BOUNCE_S}) AS eb_n")
ENGAGEMENT_COLUMNS = "visitors, visits, duration_sum, durations, engaged_sum, engaged_bounces"
#: Those columns read back, named as :data:`ENGAGEMENT_TOTALS` names them (the name a
#: UNION's first part gives, when the events part is left out).
ENGAGEMENT_READ = ", ".join(f"{c} AS {n}" for c, n in zip(
    ENGAGEMENT_COLUMNS.split(", "), ("vs", "s_n", "d_sum", "d_q", "e_sum", "eb_n"), strict=True))


def q_engagement(p: Params) -> Sql:
    params = base_params(p)
    where, rolled = sources(p, params, kinds=DETAIL_KINDS, by_visit=True)
    source = f"SELECT {ENGAGEMENT_TOTALS} FROM ({visits_sql(where)})"
    if rolled and p.filters:
        # The visits the filters select, each with its duration and engaged seconds.
        source = union_with_events(
            source, where, f"SELECT {ENGAGEMENT_TOTALS} FROM {SELECTED_VISITS} {rolled}")
    elif rolled:
        source = union_with_events(
            source, where, f"SELECT {ENGAGEMENT_READ} FROM rollup_engagement WHERE {rolled}")
    shown = "if(v_n >= {k:UInt32}, %s, NULL)"
    text = f"""
SELECT
    {shown % "s_n"} AS visits,
    {shown % "d_med"} AS duration_median,
    {shown % "d_sum / s_n"} AS duration_mean,
    {shown % "e_sum / s_n"} AS engaged_mean,
    {shown % "eb_n"} AS engaged_bounces,
    v_n < {{k:UInt32}} AS below_k
FROM (
    SELECT {uniq('Merge')}(vs) AS v_n, sum(s_n) AS s_n, sum(d_sum) AS d_sum,
           {MEDIAN.replace('(', 'Merge(', 1)}(d_q) AS d_med, sum(e_sum) AS e_sum,
           sum(eb_n) AS eb_n
    FROM ({source})
)"""
    return Sql(text, params)


def q_engagement_previous(p: Params) -> Sql:
    """The same figures over the compared period (``sql.compared``)."""
    return q_engagement(compared(p))


def page_rows(where: str, by_visit: bool = False) -> str:
    """(key0, vs, views, exits, e_n, e_sum, s_n, s_sum, ev, sv) per page; a rollup_pages
    row. ``by_visit``: per visit (``visit`` first, :data:`sql.VISIT`) and page, a
    rollup_visit_pages row: the rows of any set of visits merge to what this gives over
    just their events.

    ``vs`` counts the page's viewers only; ``ev`` and ``sv`` who reported its engaged time and
    scroll depth: a mean of fewer than k people's reports is not shown. A page's exits are the
    visits whose last page view it was; their visitors viewed it in that visit, so the exit
    side adds no state. It reads the page views alone: a visit with none has no exit, and its
    last page view is the same, so it skips the custom events and beacon reports (on 10M
    events with one filter, a third of that side's time).
    """
    state = uniq('StateIf')
    visit, exit_visit, keys = (f"{VISIT} AS visit, ", f"{VISIT_OF_ROW} AS visit, ",
                               "visit, key0") if by_visit else ("", "", "key0")
    return f"""SELECT {visit}path AS key0, {state}(visitor_id, kind = 'pageview') AS vs,
           countIf(kind = 'pageview') AS views, toUInt64(0) AS exits,
           countIf({ENGAGED}) AS e_n, sumIf(engaged_seconds, {ENGAGED}) AS e_sum,
           countIf({SCROLLED}) AS s_n, sumIf(scroll_depth, {SCROLLED}) AS s_sum,
           {state}(visitor_id, {ENGAGED}) AS ev, {state}(visitor_id, {SCROLLED}) AS sv
    FROM events WHERE {where} AND (kind = 'pageview' OR {ENGAGED} OR {SCROLLED})
    GROUP BY {keys}
    UNION ALL
    SELECT {exit_visit}exit_path AS key0, {state}('', 0) AS vs, 0, count(), 0, 0, 0, 0,
           {state}('', 0), {state}('', 0)
    FROM ({visits_sql(f"{where} AND kind = 'pageview'", ("pv", "other", "exit_path"))})
    GROUP BY {keys}"""


#: Per visit and page: what a view with filters reads its page rows from.
VISIT_PAGES_TABLE = "rollup_visit_pages"
#: What rollup_pages and rollup_visit_pages store of :func:`page_rows`, and how its rows
#: merge into one of theirs.
PAGE_TABLE_COLUMNS = ("visitors, views, exits, engaged_n, engaged_sum, scroll_n, scroll_sum, "
                      "engaged_visitors, scroll_visitors")
PAGE_TOTALS = (f"{uniq('MergeState')}(vs), sum(views), sum(exits), sum(e_n), sum(e_sum), "
               f"sum(s_n), sum(s_sum), {uniq('MergeState')}(ev), {uniq('MergeState')}(sv)")
PAGE_COLUMNS = ("path AS key0, visitors AS vs, views, exits, engaged_n AS e_n, "
                "engaged_sum AS e_sum, scroll_n AS s_n, scroll_sum AS s_sum, "
                "engaged_visitors AS ev, scroll_visitors AS sv")


def q_page_engagement(p: Params) -> Sql:
    """Per page: visitors, views, exits, mean engaged seconds and scroll depth; by views."""
    params = base_params(p)
    where, rolled = sources(p, params, kinds=DETAIL_KINDS, by_visit=True)
    source = page_rows(where)
    if rolled and p.filters:
        # The pages of the visits the filters select (``filtered``).
        source = union_with_events(
            source, where, f"SELECT {PAGE_COLUMNS} FROM {VISIT_PAGES_TABLE} PREWHERE "
            f"{ROLLUP_ROWS} AND visit IN (SELECT visit FROM {SELECTED_VISITS} {rolled})")
    elif rolled:
        source = union_with_events(
            source, where, f"SELECT {PAGE_COLUMNS} FROM rollup_pages WHERE {rolled}")
    # Pages seen by fewer than k visitors fold into one "other" row, as in every breakdown.
    text = f"""
SELECT key, is_other, v_n AS visitors, views, exits,
       if(views > 0, exits / views, NULL) AS exit_rate,
       if(ev_n >= {{k:UInt32}} AND e_n > 0, e_sum / e_n, NULL) AS engaged_mean,
       if(sv_n >= {{k:UInt32}} AND s_n > 0, s_sum / s_n, NULL) AS scroll_mean
FROM (
    SELECT if(finalizeAggregation(vs) >= {{k:UInt32}}, key0, '') AS key,
           finalizeAggregation(vs) < {{k:UInt32}} AS is_other, {uniq('Merge')}(vs) AS v_n,
           sum(views) AS views, sum(exits) AS exits, sum(e_n) AS e_n, sum(e_sum) AS e_sum,
           sum(s_n) AS s_n, sum(s_sum) AS s_sum, {uniq('Merge')}(ev) AS ev_n,
           {uniq('Merge')}(sv) AS sv_n
    FROM (
        SELECT key0, {uniq('MergeState')}(vs) AS vs, sum(views) AS views,
               sum(exits) AS exits, sum(e_n) AS e_n, sum(e_sum) AS e_sum, sum(s_n) AS s_n,
               sum(s_sum) AS s_sum, {uniq('MergeState')}(ev) AS ev,
               {uniq('MergeState')}(sv) AS sv
        FROM ({source})
        GROUP BY key0
    )
    GROUP BY key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY is_other, views DESC, key
LIMIT {{lim:UInt32}}"""
    return Sql(text, params)

