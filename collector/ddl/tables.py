"""Every table, its TTLs and its indexes, in one place, as versioned migrations.

Migrations are append-only: a released migration is never edited, a change is a new one.
``apply_migrations`` records each applied version in ``schema_migrations`` and is safe to run at
every start. The same migrations render for a single node (plain MergeTree, the embedded chDB
default) or for a cluster (``ON CLUSTER``, Replicated tables behind a Distributed table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.store import Store

log = logging.getLogger("consent_mw.collector.ddl")

DAY = 86400


@dataclass(frozen=True, slots=True, kw_only=True)
class DdlOptions:
    """What varies between deployments: retention and the cluster shape."""

    events_ttl: int = 395 * DAY  # rows: 13 months
    ip_ttl: int = 30 * DAY  # the full IP column is emptied after 30 days
    records_ttl: int = 5 * 365 * DAY  # consent records: 5 years, proof of consent
    cluster: str | None = None  # render ON CLUSTER + Replicated + Distributed
    shard_key: str = "cityHash64(visitor_id)"


@dataclass(frozen=True, slots=True)
class Table:
    """A logical table: its columns, engine tail (ORDER BY, TTL...) and indexes."""

    name: str
    columns: str
    tail: str
    engine: str = "MergeTree"
    engine_args: str = ""
    distributed: bool = True  # in a cluster, put a Distributed table in front

    def render(self, opts: DdlOptions) -> list[str]:
        if opts.cluster is None:
            return [
                f"CREATE TABLE IF NOT EXISTS {self.name} (\n{self.columns}\n) "
                f"ENGINE = {self.engine}({self.engine_args})\n{self.tail}"
            ]
        on = f" ON CLUSTER {_ident(opts.cluster)}"
        local = f"{self.name}_local" if self.distributed else self.name
        # Sharded data tables replicate within their shard; the small admin tables (no
        # Distributed front) replicate to every node, so any collector sees every suppression.
        shard = "{shard}/" if self.distributed else ""
        zk_path = f"'/clickhouse/tables/{shard}{{database}}/{local}', '{{replica}}'"
        args = zk_path + (f", {self.engine_args}" if self.engine_args else "")
        stmts = [
            f"CREATE TABLE IF NOT EXISTS {local}{on} (\n{self.columns}\n) "
            f"ENGINE = Replicated{self.engine}({args})\n{self.tail}"
        ]
        if self.distributed:
            stmts.append(
                f"CREATE TABLE IF NOT EXISTS {self.name}{on} AS {local} "
                f"ENGINE = Distributed({_ident(opts.cluster)}, currentDatabase(), {local}, "
                f"{opts.shard_key})"
            )
        return stmts


def _ident(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"invalid identifier {name!r}")
    return f"`{name}`"


def events_table(o: DdlOptions) -> Table:
    return Table(
        name="events",
        columns=f"""
    event_id UUID,
    ts DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    kind LowCardinality(String),
    name LowCardinality(String),
    consent Map(LowCardinality(String), Bool),
    gpc Bool DEFAULT false,
    host LowCardinality(String),
    path String,
    method LowCardinality(String),
    status UInt16,
    search_terms String,
    referrer_host String,
    channel LowCardinality(String),
    language LowCardinality(String),
    network_type LowCardinality(String),
    save_data Nullable(Bool),
    browser LowCardinality(String),
    browser_version String,
    os LowCardinality(String),
    os_version String,
    device_type LowCardinality(String),
    device_brand LowCardinality(String),
    device_model String,
    visitor_id String,
    session_id String,
    consent_id String,
    user_id String,
    ip String TTL toDateTime(ts) + INTERVAL {o.ip_ttl} SECOND,
    ip_prefix String,
    country LowCardinality(String),
    region String,
    city String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_term String,
    utm_content String,
    click_id_type LowCardinality(String),
    properties Map(String, String),
    traits Map(LowCardinality(String), String),
    INDEX idx_visitor visitor_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user user_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_consent consent_id TYPE bloom_filter(0.001) GRANULARITY 1""",
        # Dashboards always filter a date range first, then split anonymous counts from
        # consented detail (kind), then group by page.
        tail=f"""PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), kind, path, ts)
TTL toDateTime(ts) + INTERVAL {o.events_ttl} SECOND
SETTINGS non_replicated_deduplication_window = 10000""",
    )


def consent_records_table(o: DdlOptions) -> Table:
    return Table(
        name="consent_records",
        columns="""
    record_id UUID,
    consent_id String,
    visitor_id String,
    previous_record_id String,
    ts DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    event LowCardinality(String),
    method LowCardinality(String),
    component LowCardinality(String),
    policy_version LowCardinality(String),
    policy_hash String,
    locale LowCardinality(String),
    categories Map(LowCardinality(String), Bool),
    services Map(LowCardinality(String), Bool),
    gcm Map(LowCardinality(String), LowCardinality(String)),
    gpc Bool,
    gpc_conflict Bool DEFAULT false,
    host LowCardinality(String),
    path String,
    ua_family LowCardinality(String),
    expires_at Nullable(DateTime64(3, 'UTC')),
    anonymised Bool DEFAULT false,
    INDEX idx_consent consent_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_visitor visitor_id TYPE bloom_filter(0.001) GRANULARITY 1""",
        tail=f"""PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), event, ts)
TTL toDateTime(ts) + INTERVAL {o.records_ttl} SECOND
SETTINGS non_replicated_deduplication_window = 10000""",
    )


def suppressions_table(o: DdlOptions) -> Table:
    # One live row per person (ReplacingMergeTree on version; read with FINAL).
    # `subject` is the id as events store it (visitor_id, or the keyed user_id hash) while
    # the person's rows exist; after a purge it is emptied and only `subject_hash` remains.
    # `root_hash` is the subject_hash of the request that caused the row (a user_id request
    # also suppresses each linked visitor_id), so an interrupted purge can find them again.
    return Table(
        name="suppressions",
        engine="ReplacingMergeTree",
        engine_args="version",
        distributed=False,
        columns="""
    id_type LowCardinality(String),
    subject String,
    subject_hash String,
    active Bool,
    purged Bool DEFAULT false,
    root_hash String DEFAULT '',
    reason String,
    requested_by String,
    updated_at DateTime64(3, 'UTC'),
    version UInt64""",
        tail="ORDER BY (id_type, subject_hash)",
    )


def privacy_requests_table(o: DdlOptions) -> Table:
    # Append-only, hash-chained audit trail: row_hash = sha256(prev_hash || canonical row).
    return Table(
        name="privacy_requests",
        distributed=False,
        columns="""
    seq UInt64,
    request_id UUID,
    ts DateTime64(3, 'UTC'),
    operation LowCardinality(String),
    id_type LowCardinality(String),
    subject_hash String,
    requested_by String,
    reason String,
    outcome LowCardinality(String),
    details String,
    prev_hash String,
    row_hash String""",
        tail="ORDER BY seq",
    )


def purge_receipts_table(o: DdlOptions) -> Table:
    return Table(
        name="purge_receipts",
        distributed=False,
        columns="""
    receipt_id UUID,
    requested_at DateTime64(3, 'UTC'),
    verified_at DateTime64(3, 'UTC'),
    requested_by String,
    reason String,
    id_type LowCardinality(String),
    subject_hashes Array(String),
    rows_deleted Map(String, UInt64),
    remaining UInt64,
    files_checked UInt64,
    details String""",
        tail="ORDER BY (requested_at, receipt_id)",
    )


def rollup_days_table(o: DdlOptions) -> Table:
    # Which daily rollup build is current for each (time zone, day); the newest version wins.
    # build = 0 marks a day dirty (events arrived after it was built). stamp is the
    # suppressions' max(version) the build excluded; events is the day's row count then.
    return Table(
        name="rollup_days",
        engine="ReplacingMergeTree",
        engine_args="version",
        distributed=False,
        columns="""
    tz LowCardinality(String),
    day Date,
    version UInt64,
    build UInt64,
    stamp UInt64,
    events UInt64,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)""",
        tail=f"""ORDER BY (tz, day)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND""",
    )


def rollup_totals_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build): the day's visit figures. Visitor and session states are
    # uniq states (hashes, never ids), so days merge into exact period figures.
    return Table(
        name="rollup_totals",
        distributed=False,
        columns=f"""
    tz LowCardinality(String),
    day Date,
    build UInt64,
    visitors AggregateFunction({uniq()}, String),
    sessions AggregateFunction({uniq()}, String),
    visits UInt64,
    pageviews UInt64,
    bounces UInt64,
    reservations UInt64,
    converted UInt64""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, day, build)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND""",
    )


def rollup_dims_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build, dimension, key): distinct visitors (uniq state) and events.
    return Table(
        name="rollup_dims",
        distributed=False,
        columns=f"""
    tz LowCardinality(String),
    day Date,
    build UInt64,
    dim LowCardinality(String),
    key String,
    visitors AggregateFunction({uniq()}, String),
    events UInt64""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, dim, day, build, key)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND""",
    )


ROLLUP_TABLES = ("rollup_days", "rollup_totals", "rollup_dims")
#: Distinct visitors, sessions and consent ids are counted with uniqCombined(14) everywhere.
#: Its states merge across days (what lets the rollup answer exactly what a scan of the raw
#: events answers) in at most 12 KiB. A count, even of merged states, is exact up to
#: EXACT_UP_TO (so k-anonymity decisions are exact), then a HyperLogLog estimate (~0.8 %).
# Changing it changes the rollup tables' column type: that needs a new migration that drops
# and recreates them (the next refresh rebuilds every day).
UNIQ_PRECISION = 14
EXACT_UP_TO = 2 ** (UNIQ_PRECISION - 5)


def uniq(combinator: str = "") -> str:
    """``uniqCombined<combinator>(14)``, e.g. uniq("State") for a state to merge later."""
    return f"uniqCombined{combinator}({UNIQ_PRECISION})"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[DdlOptions], list[str]]


def _tables(*factories: Callable[[DdlOptions], Table]) -> Callable[[DdlOptions], list[str]]:
    def render(o: DdlOptions) -> list[str]:
        return [sql for f in factories for sql in f(o).render(o)]
    return render


#: Outdated parts (the pre-mutation copies that still hold a purged person's rows) are removed
#: within about a second instead of after 8 minutes. The trade-off: ClickHouse keeps them to
#: survive a crash right after a merge on a disk without fsync; see docs/privacy.md.
PURGE_CLEANUP_SETTINGS = ("old_parts_lifetime = 0, cleanup_delay_period = 1, "
                          "max_cleanup_delay_period = 1, cleanup_delay_period_random_add = 0")
PURGED_TABLES = ("events", "consent_records", "suppressions")
#: Lets a purge hide rows with a patch part (lightweight_delete_mode = 'lightweight_update'):
#: ~0.15 s on 10M events instead of a mutation of every part (~3 s), see docs/privacy.md.
PATCH_SETTINGS = "enable_block_number_column = 1, enable_block_offset_column = 1"


def _purge_cleanup(o: DdlOptions) -> list[str]:
    if o.cluster is not None:
        on = f" ON CLUSTER {_ident(o.cluster)}"
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
    on = f" ON CLUSTER {_ident(o.cluster)}"
    return [f"ALTER TABLE events_local{on} {add}", f"ALTER TABLE events{on} {add}"]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events and consent records", _tables(events_table, consent_records_table)),
    Migration(2, "visitor rights: suppressions, audit trail, purge receipts",
              _tables(suppressions_table, privacy_requests_table, purge_receipts_table)),
    Migration(3, "purge: remove outdated parts promptly", _purge_cleanup),
    Migration(4, "events: the conversion flag of custom events", _conversion_column),
    Migration(5, "daily rollups for the dashboards",
              _tables(rollup_days_table, rollup_totals_table, rollup_dims_table)),
)


def _migrations_table(o: DdlOptions) -> str:
    on = f" ON CLUSTER {_ident(o.cluster)}" if o.cluster else ""
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
    on = f" ON CLUSTER {_ident(opts.cluster)}" if opts.cluster else ""
    suffix = "_local" if opts.cluster else ""
    return [
        f"ALTER TABLE events{suffix}{on} MODIFY TTL toDateTime(ts) + INTERVAL "
        f"{opts.events_ttl} SECOND",
        f"ALTER TABLE events{suffix}{on} MODIFY COLUMN ip String TTL toDateTime(ts) + INTERVAL "
        f"{opts.ip_ttl} SECOND",
        f"ALTER TABLE consent_records{suffix}{on} MODIFY TTL toDateTime(ts) + INTERVAL "
        f"{opts.records_ttl} SECOND",
    ] + [f"ALTER TABLE {t}{on} MODIFY TTL toDateTime(day) + INTERVAL {opts.events_ttl} SECOND"
         for t in ROLLUP_TABLES]


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
        store.insert("schema_migrations", [[migration.version, migration.name]],
                     ["version", "name"])
        log.info("applied migration %s: %s", migration.version, migration.name)
        applied.append(migration.version)
    # Retention may have changed in config since the tables were created.
    for sql in retention_statements(opts):
        store.command(sql)
    return applied
