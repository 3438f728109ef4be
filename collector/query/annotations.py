"""What the dashboards mark on their time axis: staff notes, and every new consent-banner and
policy version.

Staff notes come from ``dashboard_notes`` (``collector.notes``). A version change needs no one
to write it down: the day a version's first consent record arrived is the day the site began
showing it, found from ``consent_records`` itself, so an opt-in rate that moves can be read
against the banner that moved it. Neither names a person; no k applies (nothing is counted).
"""

from __future__ import annotations

from collector.query.params import Params
from collector.query.sql import Sql, base_params


def q_annotations(p: Params) -> Sql:
    """(day, kind, text, author, note_id) in the range: kind ``note`` or ``policy``."""
    params = {**base_params(p), "d0": p.start, "d1": p.end}
    text = """
SELECT toString(day) AS day, kind, text, author, note_id FROM (
    SELECT day, 'note' AS kind, text, created_by AS author, note_id
    FROM dashboard_notes FINAL
    WHERE NOT deleted AND day >= {d0:Date} AND day <= {d1:Date}
    UNION ALL
    SELECT first AS day, 'policy' AS kind, policy_version AS text, '' AS author, '' AS note_id
    FROM (SELECT policy_version, toDate(min(ts), {tz:String}) AS first
          FROM consent_records WHERE policy_version != '' GROUP BY policy_version)
    WHERE first >= {d0:Date} AND first <= {d1:Date}
)
ORDER BY day, kind = 'note', text
LIMIT 500"""
    return Sql(text, params)
