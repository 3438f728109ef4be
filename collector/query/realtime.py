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
    none under k), ``path`` the pages viewed now, ``channel`` the present visits' sources.

    One scan of the last :data:`SESSION_S` seconds: a row is "now" when it is in the last
    :data:`WINDOW_S`, and its session is present when any of its rows is (a window over the
    session). The landings of present sessions give the sources. Reading the same rows once
    per figure, as this once did, cost ~120 ms of every overview page on 10M events (the
    month's events in one merged part); one read costs ~50.
    """
    params = base_params(p)
    rows = f"""
        SELECT x.1 AS dim, x.2 AS key0, {uniq('State')}(visitor_id) AS vs, count() AS n
        FROM (
            SELECT visitor_id, path, channel, kind, ts >= now64(3) - INTERVAL {WINDOW_S} SECOND
                   AS recent,
                   session_id != '' AND max(recent) OVER (PARTITION BY session_id) AS here
            FROM events
            WHERE {_since(SESSION_S)} AND {DETAIL_KINDS}
              AND {not_suppressed('events', p.active_suppressions)}
        )
        ARRAY JOIN arrayFilter(r -> r.3, [
            ('now', '', recent),
            ('path', path, recent AND kind = 'pageview'),
            ('channel', channel, here AND kind = 'pageview' AND channel != 'internal')
        ]) AS x
        GROUP BY dim, key0"""
    # Under k visitors now, no row at all: not the pages, not the sources either. The "now"
    # row is there only when at least k are (folded drops it otherwise).
    return Sql(f"""
SELECT dim, key, is_other, visitors, events FROM (
    SELECT *, maxIf(visitors, dim = 'now') OVER () AS present FROM ({folded(rows)})
)
WHERE present >= {{k:UInt32}}
ORDER BY dim, is_other, visitors DESC, events DESC, key""", params)
