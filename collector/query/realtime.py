"""Realtime: who is on the site now, on which pages, from where.

"Now" is the last :data:`WINDOW_S` seconds of the collector's clock: a visitor is on the site
when any consented event of theirs (a page view, a custom event, a beacon report) arrived in
it. Their pages are the page views in the window; their sources are the channels their
visits arrived by (the visit's landing, up to :data:`SESSION_S` back). Like every catalogue
query it leaves suppressed people out and answers only for k distinct visitors: under k
visitors now, nothing at all is shown (the total row is dropped), and a page or source seen by
fewer than k of them folds into "other". Anonymous counts cannot take part: they are kept by
the hour.

The answer depends on the clock, not only on the data: it is never cached (:data:`CLOCKED`).
"""

from __future__ import annotations

from collector.ddl.tables import uniq
from collector.query.params import Params
from collector.query.sql import DETAIL_KINDS, Sql, base_params, folded, not_suppressed

WINDOW_S = 300  # "now": the last five minutes
SESSION_S = 1800  # how far back a present visit's landing is looked for (the session timeout)
#: Catalogue queries whose answer changes with the clock alone.
CLOCKED = frozenset({"realtime"})


def _since(seconds: int) -> str:
    # An event stamped in the future (a wrong client clock) is not "now".
    return (f"ts >= now64(3) - INTERVAL {seconds} SECOND "
            "AND ts <= now64(3) + INTERVAL 60 SECOND")


def q_realtime(p: Params) -> Sql:
    """Rows (dim, key, is_other, visitors, events): dim ``now`` is the total (one row, or
    none under k), ``path`` the pages viewed now, ``channel`` the present visits' sources."""
    params = base_params(p)
    recent = (f"{_since(WINDOW_S)} AND {DETAIL_KINDS} AND "
              f"{not_suppressed('events', p.active_suppressions)}")
    landings = (f"{_since(SESSION_S)} AND kind = 'pageview' AND channel != 'internal' AND "
                f"session_id != '' AND {not_suppressed('events', p.active_suppressions)}")
    state = f"{uniq('State')}(visitor_id)"
    rows = f"""
        SELECT 'now' AS dim, '' AS key0, {state} AS vs, count() AS n
        FROM events WHERE {recent}
        UNION ALL
        SELECT 'path', path, {state}, count()
        FROM events WHERE {recent} AND kind = 'pageview' GROUP BY path
        UNION ALL
        SELECT 'channel', channel, {state}, count()
        FROM events WHERE {landings}
          AND session_id IN (SELECT session_id FROM events WHERE {recent} AND session_id != '')
        GROUP BY channel"""
    # Under k visitors now, no row at all: not the pages, not the sources either.
    present = f"(SELECT {uniq()}(visitor_id) FROM events WHERE {recent})"
    return Sql(f"SELECT * FROM ({folded(rows)}) WHERE {present} >= {{k:UInt32}}", params)
