"""Retention: bring table TTLs in line with the configuration and apply them now.

ClickHouse applies TTLs only when it merges parts, so a shortened retention could otherwise
leave expired rows (and full IP addresses) on disk for a long time. ``MATERIALIZE TTL`` with
``mutations_sync=2`` rewrites every part under the current TTL, then ``OPTIMIZE ... FINAL``
merges so expired rows are gone when this returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.ddl.migrations import retention_statements
from collector.ddl.tables import DdlOptions, ident
from collector.store import MUTATION_SETTINGS, Store

log = logging.getLogger(__name__)

TABLES = ("events", "consent_records")


@dataclass(frozen=True, slots=True)
class RetentionReport:
    before: dict[str, int]
    after: dict[str, int]

    @property
    def removed(self) -> dict[str, int]:
        return {t: self.before[t] - self.after.get(t, 0) for t in self.before}


def local_tables(opts: DdlOptions) -> list[str]:
    """The tables holding data: the ``_local`` replicated ones in a cluster."""
    return [f"{t}_local" if opts.cluster else t for t in TABLES]


def apply_retention(store: Store, opts: DdlOptions) -> RetentionReport:
    """MODIFY TTL to ``opts``, MATERIALIZE TTL (waiting for every part), OPTIMIZE FINAL."""
    on = f" ON CLUSTER {ident(opts.cluster)}" if opts.cluster else ""
    tables = local_tables(opts)
    before = {t: int(store.scalar(f"SELECT count() FROM {t}")) for t in tables}
    for sql in retention_statements(opts):
        store.command(sql, settings=MUTATION_SETTINGS)
    for table in tables:
        store.command(f"ALTER TABLE {table}{on} MATERIALIZE TTL", settings=MUTATION_SETTINGS)
        store.command(f"OPTIMIZE TABLE {table}{on} FINAL", settings=MUTATION_SETTINGS)
    after = {t: int(store.scalar(f"SELECT count() FROM {t}")) for t in tables}
    report = RetentionReport(before, after)
    log.info("retention applied: removed %s", report.removed)
    return report
