"""The saved segments the dashboards offer (``collector.segments`` writes them)."""

from __future__ import annotations

from collector.query.params import Params
from collector.query.sql import Sql


def q_segments(p: Params) -> Sql:
    """(segment_id, name, filters JSON, created_by), by name: the team's list."""
    return Sql("""
SELECT segment_id, name, filters, created_by FROM dashboard_segments FINAL
WHERE NOT deleted
ORDER BY name, segment_id
LIMIT 200""")
