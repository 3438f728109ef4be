"""What the dashboards mark on their time axis: staff notes, and every new consent-banner and
policy version.

Staff notes come from ``dashboard_notes`` (``collector.notes``). A version change needs no one
to write it down: the day a version's first consent record arrived is the day the site began
showing it, kept from ``consent_records`` as they arrive (``policy_versions``, migration 15:
a few rows to read instead of every record), so an opt-in rate that moves can be read
against the banner that moved it. A purge leaves a version's first moment as it was: a date
of the site's banner, not of the person. Neither names a person; no k applies (nothing is counted).
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
    FROM (SELECT policy_version, toDate(min(first_seen), {tz:String}) AS first
          FROM policy_versions GROUP BY policy_version)
    WHERE first >= {d0:Date} AND first <= {d1:Date}
)
ORDER BY day, kind = 'note', text
LIMIT 500"""
    return Sql(text, params)
