"""The rollup per filter value: what keeps a view with one filter off the raw events.

A filter selects visits: a visit (a session's events within one day) is in "channel = search"
when one of its events has that channel, and then all its events count. Marketing looks at
one filter far more than at two (a campaign, a channel, a device, a landing page), and a
filtered view over raw events scans every event of the period twice (once to find the visits,
once to count them). So each day's build also writes its totals and breakdowns once per
value of each dimension in :data:`FILTERED_DIMS`, over the visits that value selects:

- :func:`visit_filters_sql`: (session_id, fd, fv), the filter values each visit matches,
  with :data:`collector.query.params.FILTERS`' very expressions;
- :func:`build_statements`: the INSERTs into ``rollup_ftotals`` and ``rollup_fdims``, made of
  the unfiltered rollup's fragments (``visits_sql``, ``grouped_sql``, ``VISIT_TOTALS``)
  joined to those pairs, so a filtered day merges to exactly what a filtered scan gives.

A view with one such filter then reads its own rows of those tables for its closed days and
scans only the open ones (``collector.query.sql.sources``); a view with two filters, or one on
another dimension, scans raw as before. Suppression and purge work as for the unfiltered
rollup: the rows are part of the day's build, and the build is current only while its stamp
is the latest suppression version.
"""

from __future__ import annotations

from collector.ddl.tables import uniq
from collector.query.params import DIMENSIONS, FILTERS, Params
from collector.query.sql import VISIT_TOTALS, grouped_sql, visits_sql

#: The dimensions whose values get their own rows: what marketing filters by (the issue's
#: campaign, channel, device and landing page, and their neighbours). Dimensions with a value
#: per visitor rather than per campaign (search terms, region, city) would multiply the rows
#: for views nobody keeps open; they, the custom events and the beacon's interactions are
#: filtered by a raw scan.
FILTERED_DIMS = ("channel", "referrer_host", "utm_source", "utm_medium", "utm_campaign",
                 "click_id_type", "device_type", "browser", "os", "language", "network_type",
                 "country", "path")
assert all(d in FILTERS and not DIMENSIONS[d].guarded and not DIMENSIONS[d].interaction
           for d in FILTERED_DIMS)
#: The breakdowns a filtered build keeps: every dimension over visits' page views and custom
#: events but ``property`` (an ARRAY JOIN of its own).
FILTERED_BREAKDOWNS = tuple(d for d in DIMENSIONS
                            if d != "property" and not DIMENSIONS[d].interaction)
#: Catalogue queries that may read the filtered rollup.
QUERIES = frozenset({"kpis", "kpis_previous", "timeseries", "timeseries_previous",
                     "breakdown", "breakdowns"})


def served(name: str, p: Params) -> bool:
    """Whether the filtered rollup answers query ``name`` with ``p`` (which has filters)."""
    if name not in QUERIES or len(p.filters) != 1 or p.filters[0][0] not in FILTERED_DIMS:
        return False
    if name == "breakdown":
        return p.dim in FILTERED_BREAKDOWNS
    if name == "breakdowns":
        return set(p.dims) <= set(FILTERED_BREAKDOWNS)
    return True


def visit_filters_sql(where: str) -> str:
    """(session_id, fd, fv): each filter value the day's visits match, once per visit.

    ``where`` must hold one day and the rows a filter reads (``kinds_for``: page views and
    custom events, unsuppressed), as ``sql.detail_where``'s matching subquery does.
    """
    pairs = ", ".join(f"('{d}', toString({FILTERS[d]}))" for d in FILTERED_DIMS)
    return f"""SELECT DISTINCT session_id, pair.1 AS fd, pair.2 AS fv
    FROM events ARRAY JOIN [{pairs}] AS pair WHERE {where}"""


def build_statements(where: str, head: str) -> list[str]:
    """The INSERTs of a day's filtered rows; ``head`` selects (tz, day, build)."""
    pairs = visit_filters_sql(where)
    joined = f"events INNER JOIN ({pairs}) AS p ON events.session_id = p.session_id"
    return [
        "INSERT INTO rollup_ftotals (tz, day, build, fdim, fval, visitors, visits, pageviews, "
        f"bounces, sessions) {head}, fd, fv, {VISIT_TOTALS}, "
        f"{uniq('State')}(v.session_id) FROM ({visits_sql(where)}) AS v "
        f"INNER JOIN ({pairs}) AS p ON v.session_id = p.session_id GROUP BY fd, fv",
        "INSERT INTO rollup_fdims (tz, day, build, fdim, fval, dim, key, visitors, events) "
        f"{head}, fd, fv, dim, key0, vs, n FROM "
        f"({grouped_sql(FILTERED_BREAKDOWNS, where, by=('fd', 'fv'), source=joined)})",
    ]
