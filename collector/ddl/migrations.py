"""Versioned migrations: creating and changing the tables, and bringing TTLs in line.

Migrations are append-only: a released migration is never edited, a change is a new one.
:func:`apply_migrations` records each applied version in ``schema_migrations`` and is safe to
run at every start; it then applies :func:`retention_statements`, because retention may have
changed in the configuration since the tables were created.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.ddl.tables import (
    INTERACTION_COLUMNS,
    PAGE_REPORTER_COLUMNS,
    PURGED_TABLES,
    ROLLUP_MERGES,
    ROLLUP_TABLES,
    VALUE_COLUMNS,
    VISIT_FIGURE_COLUMNS,
    DdlOptions,
    Table,
    bot_hits_table,
    consent_records_table,
    events_table,
    funnels_table,
    goals_table,
    ident,
    notes_table,
    policy_versions_table,
    privacy_requests_table,
    purge_receipts_table,
    rights_mail_table,
    rights_requests_table,
    rollup_days_table,
    rollup_dims_table,
    rollup_engagement_table,
    rollup_fgoals_table,
    rollup_filtered_tables,
    rollup_goals_table,
    rollup_pages_table,
    rollup_totals_table,
    rollup_visit_goals_table,
    rollup_visit_keys_table,
    rollup_visit_pages_table,
    rollup_visits_table,
    segments_table,
    suppressions_table,
)
from collector.store import MUTATION_SETTINGS, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[DdlOptions], list[str]]
    #: Statements that move rows, run after ``statements`` (with mutations waited for);
    #: not DDL, so not part of :func:`render_all`.
    data: Callable[[DdlOptions], list[str]] | None = None


def _tables(*factories: Callable[[DdlOptions], Table]) -> Callable[[DdlOptions], list[str]]:
    def render(o: DdlOptions) -> list[str]:
        return [sql for f in factories for sql in f(o).render(o)]
    return render


#: Outdated parts (the pre-mutation copies that still hold a purged person's rows) are removed
#: within about a second instead of after 8 minutes. The trade-off: ClickHouse keeps them to
#: survive a crash right after a merge on a disk without fsync; see docs/privacy.md.
PURGE_CLEANUP_SETTINGS = ("old_parts_lifetime = 0, cleanup_delay_period = 1, "
                          "max_cleanup_delay_period = 1, cleanup_delay_period_random_add = 0")
#: Lets a purge hide rows with a patch part (lightweight_delete_mode = 'lightweight_update'):
#: ~0.15 s on 10M events instead of a mutation of every part (~3 s), see docs/privacy.md.
PATCH_SETTINGS = "enable_block_number_column = 1, enable_block_offset_column = 1"


def _purge_cleanup(o: DdlOptions) -> list[str]:
    if o.cluster is not None:
        on = f" ON CLUSTER {ident(o.cluster)}"
        return [f"ALTER TABLE {t}{'_local' if t != 'suppressions' else ''}{on} "
                f"MODIFY SETTING {PURGE_CLEANUP_SETTINGS}"
                + (f", {PATCH_SETTINGS}" if t == "events" else "") for t in PURGED_TABLES]
    stmts: list[str] = []
    for t in PURGED_TABLES:
        stmts.append(f"ALTER TABLE {t} MODIFY SETTING {PURGE_CLEANUP_SETTINGS}"
                     + (f", {PATCH_SETTINGS}" if t == "events" else ""))
        # The cleanup thread only reads the new period after its current (30-40 s) sleep;
        # re-attaching restarts it now. Migrations run before the collector serves.
        stmts += [f"DETACH TABLE {t}", f"ATTACH TABLE {t}"]
    return stmts


#: A custom event the site sent as an ad conversion (``track(..., conversion=True)``, which
#: needs marketing consent). Added to existing stores; the Distributed front gets it too.
CONVERSION_COLUMN = "conversion Bool DEFAULT false"


def _conversion_column(o: DdlOptions) -> list[str]:
    add = f"ADD COLUMN IF NOT EXISTS {CONVERSION_COLUMN} AFTER click_id_type"
    if o.cluster is None:
        return [f"ALTER TABLE events {add}"]
    on = f" ON CLUSTER {ident(o.cluster)}"
    return [f"ALTER TABLE events_local{on} {add}", f"ALTER TABLE events{on} {add}"]


def _event_columns(columns: tuple[str, ...], after: str) -> Callable[[DdlOptions], list[str]]:
    """Statements adding ``columns`` to events after column ``after``, in declaration order,
    in one ALTER per table. ``IF NOT EXISTS`` makes a rerun (a start that died before
    recording the version) a no-op, and leaves a store that already has some of them with
    all of them."""

    def statements(o: DdlOptions) -> list[str]:
        previous = after
        clauses = []
        for column in columns:
            clauses.append(f"ADD COLUMN IF NOT EXISTS {column} AFTER {previous}")
            previous = column.split()[0]
        add = ", ".join(clauses)
        if o.cluster is None:
            return [f"ALTER TABLE events {add}"]
        on = f" ON CLUSTER {ident(o.cluster)}"
        # The Distributed front needs the columns too, or inserts and reads through it fail.
        return [f"ALTER TABLE events_local{on} {add}", f"ALTER TABLE events{on} {add}"]

    return statements


#: The one rule for what is a bot: consent_mw.useragent's classification, stored as
#: device_type by ingest before this migration (and never stored after it).
IS_BOT = "device_type = 'bot'"


def _bots_out_of_events(o: DdlOptions) -> list[str]:
    """Count the bot rows stored before ingest left them out, then delete them.

    The days they were on are marked dirty in every rolled-up time zone (a dirty mark is
    what ``collector.query.rollup`` writes for late events: a version above the day's
    current one, build 0), so its next refresh rebuilds them from what remains. UTC days
    around each bot row cover every time zone's day. A rerun finds no bot rows left, so it
    neither counts nor marks anything again.
    """
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    local = "events_local" if o.cluster else "events"
    return [
        "INSERT INTO bot_hits (hour, kind, hits) SELECT toStartOfHour(ts), kind, count() "
        f"FROM events WHERE {IS_BOT} GROUP BY toStartOfHour(ts), kind",
        "INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
        "SELECT tz, day, max(version) + 1, 0, 0, 0 FROM rollup_days WHERE day IN ("
        "SELECT DISTINCT toDate(ts) + d FROM events ARRAY JOIN [-1, 0, 1] AS d "
        f"WHERE {IS_BOT}) GROUP BY tz, day",
        f"ALTER TABLE {local}{on} DELETE WHERE {IS_BOT}",
    ]


def _rebuild_rollups(o: DdlOptions) -> list[str]:
    """Mark every rolled-up day dirty, so the next refresh rebuilds it with the new tables
    (until then the dashboards scan those days raw). A rerun marks them again: harmless."""
    return ["INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
            "SELECT tz, day, max(version) + 1, 0, 0, 0 FROM rollup_days GROUP BY tz, day"]


def _state_precision(o: DdlOptions) -> list[str]:
    """The rollup's build tables again, with visitor states at the current precision
    (``tables.UNIQ_PRECISION``). States of one precision neither merge into nor convert to
    another, and the tables hold only what the events give again, so they are dropped and
    created anew; ``_rebuild_rollups`` then marks every day dirty, and the dashboards scan
    those days raw until the next refresh has rebuilt them. (``rollup_days`` stays: it is
    where the dirty marks go.)"""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    statements = []
    for factory in (rollup_totals_table, rollup_dims_table, rollup_engagement_table,
                    rollup_pages_table, rollup_goals_table):
        table = factory(o)
        statements.append(f"DROP TABLE IF EXISTS {table.name}{on} SYNC")
        statements += table.render(o)
    return statements + _page_reporters(o)  # the columns migration 11 added to rollup_pages


def _page_reporters(o: DdlOptions) -> list[str]:
    """The reporter states of rollup_pages, then every rolled-up day rebuilt to fill them."""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    add = ", ".join(f"ADD COLUMN IF NOT EXISTS {c}" for c in PAGE_REPORTER_COLUMNS)
    return [f"ALTER TABLE rollup_pages{on} {add}"]


def _filtered_rollup(o: DdlOptions) -> list[str]:
    """The build tables anew with granules of 256 rows (``tables.ROLLUP_GRANULES``: a
    granule's setting is fixed when its table is created), and the per-filter-value twins
    of the totals and breakdowns. Every day is then marked dirty, so each current build has
    the twins once rebuilt: a plan never reads a build made before they existed."""
    return _state_precision(o) + [s for table in rollup_filtered_tables(o)
                                  for s in table.render(o)]


def _goal_totals_first(o: DdlOptions) -> list[str]:
    """``rollup_goals`` anew, sorted by dimension first (a table's sort key is fixed when it is
    created); every day is then marked dirty and rebuilt, as for the tables before it."""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    table = rollup_goals_table(o)
    return [f"DROP TABLE IF EXISTS {table.name}{on} SYNC", *table.render(o)]


def _visit_figures(o: DdlOptions) -> list[str]:
    """Each visit's duration, engaged seconds and first values in ``rollup_visits``
    (``tables.VISIT_FIGURE_COLUMNS``), and its conversions per goal in
    ``rollup_visit_goals``: a view with filters reads its engagement and goals from the
    visits it selects, as it reads its key figures. The rows built before lack them: every
    day is then marked dirty and rebuilt, and until then scanned raw."""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    after = ["other", *(c.split()[0] for c in VISIT_FIGURE_COLUMNS)]
    add = ", ".join(f"ADD COLUMN IF NOT EXISTS {c} AFTER {a}"
                    for c, a in zip(VISIT_FIGURE_COLUMNS, after, strict=False))
    return [f"ALTER TABLE rollup_visits{on} {add}", *rollup_visit_goals_table(o).render(o)]


#: The rollup tables a store has when migration 24 runs; a later one is created with
#: ``tables.ROLLUP_MERGES`` (and does not exist yet when a store older than 24 upgrades).
MERGED_BY_24 = ROLLUP_TABLES[:ROLLUP_TABLES.index("rollup_visit_keys") + 1]


def _rollup_merges(o: DdlOptions) -> list[str]:
    """The merge settings of ``tables.ROLLUP_MERGES`` on the rollup tables a store has (a new
    store creates them so: setting them again changes nothing). No rebuild: the rows stay,
    and the engine merges each month once its parts are old enough."""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    return [f"ALTER TABLE {t}{on} MODIFY SETTING {ROLLUP_MERGES}" for t in MERGED_BY_24]


#: A policy version's first record, from consent records (``source``): what the view that
#: keeps ``policy_versions`` selects from every insert, and the backfill from what is there.
POLICY_FIRST_SEEN = ("SELECT policy_version, min(ts) AS first_seen FROM {source} "
                     "WHERE policy_version != '' GROUP BY policy_version")


def _policy_versions(o: DdlOptions) -> list[str]:
    """``policy_versions`` and the view that fills it from every insert of consent records
    (on a cluster, each shard's local table: the target is replicated to every node)."""
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    source = "consent_records_local" if o.cluster else "consent_records"
    return [*policy_versions_table(o).render(o),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS policy_versions_mv{on} TO policy_versions "
            f"AS {POLICY_FIRST_SEEN.format(source=source)}"]


def _policy_versions_backfill(o: DdlOptions) -> list[str]:
    """The versions recorded before the view existed. A record inserted meanwhile is counted
    by both: a first moment is a minimum, so twice is the same."""
    return [f"INSERT INTO policy_versions {POLICY_FIRST_SEEN.format(source='consent_records')}"]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events and consent records", _tables(events_table, consent_records_table)),
    Migration(2, "visitor rights: suppressions, audit trail, purge receipts",
              _tables(suppressions_table, privacy_requests_table, purge_receipts_table)),
    Migration(3, "purge: remove outdated parts promptly", _purge_cleanup),
    Migration(4, "events: the conversion flag of custom events", _conversion_column),
    Migration(5, "daily rollups for the dashboards",
              _tables(rollup_days_table, rollup_totals_table, rollup_dims_table)),
    Migration(6, "events: what interaction events report",
              _event_columns(INTERACTION_COLUMNS, "conversion")),
    Migration(7, "bots: counted in bot_hits, never stored in events",
              _tables(bot_hits_table), data=_bots_out_of_events),
    Migration(8, "engagement: visit durations and page reading in the daily rollup",
              _tables(rollup_engagement_table, rollup_pages_table), data=_rebuild_rollups),
    Migration(9, "dashboards: staff notes on the time axis", _tables(notes_table)),
    Migration(10, "dashboards: saved filter sets (segments)", _tables(segments_table)),
    Migration(11, "rollup: who reported each page's engaged time and scroll depth",
              _page_reporters, data=_rebuild_rollups),
    Migration(12, "dashboards: goals, what counts as a conversion, and their daily rollup",
              _tables(goals_table, rollup_goals_table)),
    Migration(13, "events: what a custom event is worth",
              _event_columns(VALUE_COLUMNS, "engaged_seconds")),
    Migration(14, "dashboards: funnels", _tables(funnels_table)),
    Migration(15, "annotations: the first moment of each policy version, kept as records arrive",
              _policy_versions, data=_policy_versions_backfill),
    Migration(16, "privacy requests: their timelines and their mail",
              _tables(rights_requests_table, rights_mail_table)),
    Migration(17, "rollup: visitor states at precision 12, three times faster to merge",
              _state_precision, data=_rebuild_rollups),
    Migration(18, "rollup: each day per filter value too, in granules of 256 rows",
              _filtered_rollup, data=_rebuild_rollups),
    Migration(19, "rollup: each day's visits with their filter values, for views with filters",
              _tables(rollup_visits_table), data=_rebuild_rollups),
    Migration(20, "rollup: every goal's daily totals side by side, for the goals page",
              _goal_totals_first, data=_rebuild_rollups),
    Migration(21, "rollup: each visit's engagement and conversions, for views with filters",
              _visit_figures, data=_rebuild_rollups),
    Migration(22, "rollup: each goal per filter value, for the goals page with one filter",
              _tables(rollup_fgoals_table), data=_rebuild_rollups),
    Migration(23, "rollup: each visit's breakdown keys, for breakdowns with filters",
              _tables(rollup_visit_keys_table), data=_rebuild_rollups),
    Migration(24, "rollup: each month merged into one part once its builds are five minutes old",
              _rollup_merges),
    Migration(25, "rollup: each visit's pages as they were read, for engagement with filters",
              _tables(rollup_visit_pages_table), data=_rebuild_rollups),
)


def _migrations_table(o: DdlOptions) -> str:
    on = f" ON CLUSTER {ident(o.cluster)}" if o.cluster else ""
    engine = (
        "ReplicatedMergeTree('/clickhouse/tables/{database}/schema_migrations', "
        "'{replica}')" if o.cluster else "MergeTree"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS schema_migrations{on} (version UInt32, name String, "
        f"applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = {engine} ORDER BY version"
    )


def render_all(opts: DdlOptions, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Every statement, in order, for documentation and the DDL rendering test."""
    return [_migrations_table(opts)] + [s for m in migrations for s in m.statements(opts)]


def retention_statements(opts: DdlOptions) -> list[str]:
    """Bring the TTLs of existing tables in line with the configured retention."""
    on = f" ON CLUSTER {ident(opts.cluster)}" if opts.cluster else ""
    suffix = "_local" if opts.cluster else ""
    return [
        f"ALTER TABLE events{suffix}{on} MODIFY TTL toDateTime(ts) + INTERVAL "
        f"{opts.events_ttl} SECOND",
        f"ALTER TABLE events{suffix}{on} MODIFY COLUMN ip String TTL toDateTime(ts) + INTERVAL "
        f"{opts.ip_ttl} SECOND",
        f"ALTER TABLE consent_records{suffix}{on} MODIFY TTL toDateTime(ts) + INTERVAL "
        f"{opts.records_ttl} SECOND",
    ] + [f"ALTER TABLE {t}{on} MODIFY TTL toDateTime(day) + INTERVAL {opts.events_ttl} SECOND"
         for t in ROLLUP_TABLES] + [
        f"ALTER TABLE bot_hits{on} MODIFY TTL hour + INTERVAL {opts.events_ttl} SECOND",
        f"ALTER TABLE rights_requests{on} MODIFY TTL toDateTime(at) + INTERVAL "
        f"{opts.requests_ttl} SECOND",
        f"ALTER TABLE rights_mail{on} MODIFY TTL toDateTime(created_at) + INTERVAL "
        f"{opts.requests_ttl} SECOND"]


def apply_migrations(
    store: Store, opts: DdlOptions, migrations: Sequence[Migration] = MIGRATIONS
) -> list[int]:
    """Apply what is missing, record it, and return the versions applied now."""
    store.command(_migrations_table(opts))
    done = {int(r[0]) for r in store.rows("SELECT version FROM schema_migrations")}
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for sql in migration.statements(opts):
            store.command(sql)
        for sql in migration.data(opts) if migration.data else ():
            store.command(sql, settings=MUTATION_SETTINGS)
        store.insert("schema_migrations", [[migration.version, migration.name]],
                     ["version", "name"])
        log.info("applied migration %s: %s", migration.version, migration.name)
        applied.append(migration.version)
    # Retention may have changed in config since the tables were created. Only tables that
    # exist: a caller may apply some of the migrations only (tests build older stores).
    tables = {str(r[0]) for r in store.rows(
        "SELECT name FROM system.tables WHERE database = currentDatabase()")}
    for sql in retention_statements(opts):
        if sql.split()[2] in tables:
            store.command(sql)
    return applied
