"""Every table: its columns, engine, TTLs and indexes, for one node or a cluster.

What the tables are is declared here once; ``collector.ddl.migrations`` creates and changes
them, in versioned, append-only steps. The same definitions render for a single node (plain
MergeTree, the embedded chDB default) or for a cluster (``ON CLUSTER``, Replicated tables
behind a Distributed table). A little over 300 lines because it is nine tables' column
lists (thirteen tables), which read best whole and in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400
#: Retention defaults (``CollectorSettings`` takes its defaults from these).
EVENTS_TTL = 395 * DAY  # rows: 13 months
IP_TTL = 30 * DAY  # the full IP column is emptied after 30 days
RECORDS_TTL = 5 * 365 * DAY  # consent records: 5 years, proof of consent
REQUESTS_TTL = 3 * 365 * DAY  # privacy requests and their mails: 3 years, proof of handling


@dataclass(frozen=True, slots=True, kw_only=True)
class DdlOptions:
    """What varies between deployments: retention and the cluster shape."""

    events_ttl: int = EVENTS_TTL
    ip_ttl: int = IP_TTL
    records_ttl: int = RECORDS_TTL
    requests_ttl: int = REQUESTS_TTL
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
        on = f" ON CLUSTER {ident(opts.cluster)}"
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
                f"ENGINE = Distributed({ident(opts.cluster)}, currentDatabase(), {local}, "
                f"{opts.shard_key})"
            )
        return stmts


def ident(name: str) -> str:
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
        # Columns added later come by migration, after click_id_type: conversion (4),
        # INTERACTION_COLUMNS (6) and VALUE_COLUMNS (13). This CREATE is migration 1's and
        # is never edited.
        # Dashboards always filter a date range first, then split anonymous counts from
        # consented detail (kind), then group by page.
        tail=f"""PARTITION BY toYYYYMM(ts)
ORDER BY (toDate(ts), kind, path, ts)
TTL toDateTime(ts) + INTERVAL {o.events_ttl} SECOND
SETTINGS non_replicated_deduplication_window = 10000""",
    )


#: What an interaction event (kind "interaction", ``consent_mw.wire.INTERACTIONS``) adds to
#: the events table: where a link or form went and what it was, how far the page was
#: scrolled, how long it was in use. Empty or 0 on every other event. They follow the row's
#: retention: none of them names a person.
INTERACTION_COLUMNS = (
    "target_host String",  # an outbound or app link's host
    "target_path String",  # an allowlisted host's path, a download's, a form's action
    "target LowCardinality(String)",  # an app's name, a download's extension, a form's id
    "scroll_depth UInt8",  # in quarters: 0, 25, 50, 75, 100
    "engaged_seconds UInt32",
)
#: What a custom event is worth (``track(..., value=, currency=)``, migration 13), after the
#: interaction columns: the amount to the cent (0 when none was given) and its ISO currency.
VALUE_COLUMNS = (
    "value Float64",
    "currency LowCardinality(String)",
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


def rights_requests_table(o: DdlOptions) -> Table:
    # A privacy request is the timeline of what happened to it (collector.requests.model):
    # rows are only ever appended. email_key (a keyed hash of the person's mailbox) lets the
    # limits per address be counted without reading any e-mail. It holds what the person gave
    # (sealed: collector.requests.seal), so it has its own retention: long enough to prove
    # the handling, then gone.
    return Table(
        name="rights_requests",
        distributed=False,
        columns="""
    ref String,
    seq UInt32,
    at DateTime64(3, 'UTC'),
    actor String,
    action LowCardinality(String),
    email_key String,
    data String""",
        tail=f"ORDER BY (ref, seq)\nTTL toDateTime(at) + INTERVAL {o.requests_ttl} SECOND",
    )


def rights_mail_table(o: DdlOptions) -> Table:
    # The outbox of request mails (collector.requests.mail): one live row per mail, a newer
    # version for every try, so a failed send stays visible until it goes or is given up.
    # An export is attached when the mail is sent, never stored here.
    return Table(
        name="rights_mail",
        engine="ReplacingMergeTree",
        engine_args="version",
        distributed=False,
        columns="""
    mail_id String,
    ref String,
    template LowCardinality(String),
    lang LowCardinality(String),
    recipient String,
    subject String,
    body String,
    attach String,
    status LowCardinality(String),
    attempts UInt8,
    last_error String,
    created_at DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC'),
    version UInt64""",
        tail=f"ORDER BY mail_id\nTTL toDateTime(created_at) + INTERVAL {o.requests_ttl} SECOND",
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


#: Each month (partition) of a rollup table merged into one part once all its parts are five
#: minutes old. A day's build is an insert, and ClickHouse's own merges leave a month in 3-6
#: parts, which a query then reads as 3-6 runs of its keys, each in granules of other keys'
#: rows. One part a month made the goals page's p50 about 15 % faster on 10M events, its
#: breakdowns query 20 % (docs/benchmarks.md). Whole months only, and only once no build
#: has written to the month for five minutes, so a rebuild of many days is merged once,
#: after it. The merge runs in the engine's background pool, not under the store's lock, so
#: no query waits for it.
ROLLUP_MERGES = ("min_age_to_force_merge_seconds = 300, "
                 "min_age_to_force_merge_on_partition_only = 1")


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
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
SETTINGS {ROLLUP_MERGES}""",
    )


#: The columns every rollup build table starts with: which zone's day, and which build of it.
ROLLUP_KEY = """
    tz LowCardinality(String),
    day Date,
    build UInt64,"""
#: Rollup rows carry visitor states of up to ~2.5 KiB; a query reads a few hundred rows of one
#: key (a filter value, a goal, a dimension), and with the default 8,192-row granules it would
#: decompress ~20 MiB around each. Granules of 256 rows made a filtered page's breakdowns read
#: in a third of the time (docs/benchmarks.md).
ROLLUP_GRANULES = f"SETTINGS index_granularity = 256, {ROLLUP_MERGES}"


def rollup_totals_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build): the day's visit figures. Visitor and session states are
    # uniq states (hashes, never ids), so days merge into exact period figures. reservations
    # and converted are written 0 since goals (migration 12): no event name is special.
    return Table(
        name="rollup_totals",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
    visitors AggregateFunction({uniq()}, String),
    sessions AggregateFunction({uniq()}, String),
    visits UInt64,
    pageviews UInt64,
    bounces UInt64,
    reservations UInt64,
    converted UInt64""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, day, build)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def rollup_dims_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build, dimension, key): distinct visitors (uniq state) and events.
    return Table(
        name="rollup_dims",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
    dim LowCardinality(String),
    key String,
    visitors AggregateFunction({uniq()}, String),
    events UInt64""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, dim, day, build, key)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def rollup_filtered_tables(o: DdlOptions) -> list[Table]:
    # A day's visit figures and breakdowns once more per filter value (fdim = fval), over the
    # visits that filter selects (collector.query.filtered): what a view with one filter
    # reads instead of the raw events. Keyed by the filter first: such a view reads its own
    # rows only.
    head = f"""{ROLLUP_KEY}
    fdim LowCardinality(String),
    fval String,"""
    tail = f"TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND\n{ROLLUP_GRANULES}"
    return [
        Table(name="rollup_ftotals", distributed=False, columns=f"""{head}
    visitors AggregateFunction({uniq()}, String),
    sessions AggregateFunction({uniq()}, String),
    visits UInt64,
    pageviews UInt64,
    bounces UInt64""", tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, fdim, fval, day, build)
{tail}"""),
        Table(name="rollup_fdims", distributed=False, columns=f"""{head}
    dim LowCardinality(String),
    key String,
    visitors AggregateFunction({uniq()}, String),
    events UInt64""", tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, fdim, fval, dim, day, build, key)
{tail}"""),
    ]


#: The filterable dimensions (``collector.query.params.FILTERS``, in its order), each a column
#: of ``rollup_visits`` holding the values a visit's events have. A dimension made filterable
#: later needs a migration that adds its column and rebuilds the days (a test checks).
VISIT_FILTER_COLUMNS = (
    "path", "channel", "referrer_host", "utm_source", "utm_medium", "utm_campaign",
    "click_id_type", "search_terms", "device_type", "browser", "os", "language",
    "network_type", "country", "region", "city", "event", "interaction", "outbound", "app",
    "tel_page", "mailto_page", "download", "form", "not_found")


#: The dimensions the goals page breaks conversions down by (``conversions.GOAL_ROLLUP_DIMS``):
#: each a column ``k_<dim>`` of ``rollup_visits`` and ``rollup_visit_goals``, the visit's
#: first value (what a raw scan of the visit attributes its conversions to).
VISIT_KEY_COLUMNS = ("channel", "referrer_host", "utm_source", "utm_medium", "utm_campaign",
                     "entry_path", "device_type")
#: Those columns, as a statement lists them.
VISIT_KEYS = ", ".join(f"k_{c}" for c in VISIT_KEY_COLUMNS)
#: What migration 21 added to ``rollup_visits``, after ``other``: the visit's duration and
#: engaged seconds, and its first value of each of :data:`VISIT_KEY_COLUMNS`.
VISIT_FIGURE_COLUMNS = ("dur UInt32", "eng UInt64",
                        *(f"k_{c} LowCardinality(String)" for c in VISIT_KEY_COLUMNS))


def _per_visit_table(o: DdlOptions, name: str, columns: str,
                     order: str = "tz, day, build, visit") -> Table:
    """A table with rows per visit of a day's build (``collector.query.filtered``): one shape,
    so the three share their key, partitions and retention."""
    return Table(
        name=name,
        distributed=False,
        columns=f"""{ROLLUP_KEY}
{columns}""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY ({order})
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
SETTINGS {ROLLUP_MERGES}""",
    )


def rollup_visits_table(o: DdlOptions) -> Table:
    # One row per visit of a day's build (collector.query.filtered): a hash of its session and
    # day (no id), its visitor and session as uniq states, its page views and custom events,
    # its duration, engaged seconds and first values (migration 21: a filtered view's
    # engagement and goals), and every filter's values among its events: what a view with
    # filters selects visits by.
    # LowCardinality: has() over them reads keys, not strings (a quarter faster).
    filters = ",\n".join(f"    f_{c} Array(LowCardinality(String))"
                          for c in VISIT_FILTER_COLUMNS)
    figures = "".join(f"\n    {c}," for c in VISIT_FIGURE_COLUMNS)
    return _per_visit_table(o, "rollup_visits", f"""    visit UInt64,
    vs AggregateFunction({uniq()}, String),
    ss AggregateFunction({uniq()}, String),
    pv UInt32,
    other UInt32,{figures}
{filters}""")


def rollup_visit_goals_table(o: DdlOptions) -> Table:
    # One row per goal and visit that converted, of a day's build (migration 21): the
    # visit's hash (as in rollup_visits), its visitor as a uniq state, its conversions, what
    # they were worth, and its first values. A view with filters reads the conversions of the
    # visits they select here, and everyone's visitors from rollup_visits. Goal first: a
    # view reads a few goals' rows of every day.
    keys = "".join(f",\n    k_{c} LowCardinality(String)" for c in VISIT_KEY_COLUMNS)
    return _per_visit_table(o, "rollup_visit_goals", f"""    goal_key LowCardinality(String),
    visit UInt64,
    vs AggregateFunction({uniq()}, String),
    n UInt32,
    w Float64{keys}""", order="tz, goal_key, day, build, visit")


def rollup_visit_keys_table(o: DdlOptions) -> Table:
    # One row per visit and visitor of a day's build (migration 23): the visit's hash (as in
    # rollup_visits), the visitor as a uniq state, and the breakdowns' keys among their
    # events with the events each counts (dims[i], keys[i], ns[i]). A view with filters
    # merges the rows of the visits it selects instead of scanning their events: on 10M
    # events, two filters' breakdowns read 370,000 events scattered over every granule.
    # LowCardinality keys: half the room of plain strings (114 against 223 MiB for 90 days
    # on the bench) and a fifth faster to read.
    return _per_visit_table(o, "rollup_visit_keys", f"""    visit UInt64,
    vs AggregateFunction({uniq()}, String),
    dims Array(LowCardinality(String)),
    keys Array(LowCardinality(String)),
    ns Array(UInt32)""")


def rollup_visit_pages_table(o: DdlOptions) -> Table:
    # One row per visit and page of a day's build (migration 25): what rollup_pages holds per
    # page, kept per visit (its hash, as in rollup_visits), so a view with filters merges the
    # rows of the visits it selects instead of scanning their events twice (its page views
    # and reports, and each visit's last page): on 10M events with one filter, ~2 s.
    # LowCardinality paths, as rollup_visit_keys' keys.
    return _per_visit_table(o, "rollup_visit_pages", f"""    visit UInt64,
    path LowCardinality(String),
{_page_figures()},
    {PAGE_REPORTER_COLUMNS[0]},
    {PAGE_REPORTER_COLUMNS[1]}""")


def _goal_figures() -> str:
    """A goal row's key and figures (``rollup_goals``, ``rollup_fgoals``); a function, since
    the states' precision is read when a table is made."""
    return f"""    goal_key LowCardinality(String),
    dim LowCardinality(String),
    key String,
    visitors AggregateFunction({uniq()}, String),
    converted AggregateFunction({uniq()}, String),
    conversions UInt64,
    converted_visits UInt64,
    value Float64,
    valued AggregateFunction({uniq()}, String)"""


def rollup_goals_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build, goal, dimension, key): a goal's visitors, converting
    # visitors (uniq states), conversions, converting visits, what the conversions were worth
    # and who carried a value (collector.query.conversions).
    # goal_key is a hash of the goal's definition, so an edited goal is a new key; dim '' is
    # the day's total, '#' marks that the build covers the goal (a day without visits too).
    # dim leads the key (migration 20): the goals page reads the totals (dim '') of every goal
    # at once, which then lie side by side instead of one short run per goal, each in
    # granules of breakdown rows with their large states (19–21 → 10–13 ms on 10M events).
    return Table(
        name="rollup_goals",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
{_goal_figures()}""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, dim, goal_key, day, build, key)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def rollup_fgoals_table(o: DdlOptions) -> Table:
    # rollup_goals' rows once more per filter value (fdim = fval: the values rollup_ftotals
    # has rows for, of the dimensions in params.PER_VALUE_GOAL_FILTERS), over the converting
    # visits that value selects (migration 22): what the goals and funnels pages read with
    # one such filter, instead of matching every converting visit against the selected ones.
    # Keyed by the filter first, as rollup_ftotals is.
    return Table(
        name="rollup_fgoals",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
    fdim LowCardinality(String),
    fval String,
{_goal_figures()}""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, fdim, fval, dim, goal_key, day, build, key)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def rollup_engagement_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build): the day's visit durations and engaged time
    # (collector.query.engagement). The durations are an exact quantile state: the median of
    # merged days is the median of their visits, as a raw scan finds it.
    return Table(
        name="rollup_engagement",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
    visitors AggregateFunction({uniq()}, String),
    visits UInt64,
    duration_sum UInt64,
    durations AggregateFunction(quantileExact(0.5), UInt32),
    engaged_sum UInt64,
    engaged_bounces UInt64""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, day, build)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def _page_figures() -> str:
    """A page's figures (``rollup_pages``, ``rollup_visit_pages``); a function, since the
    state's precision is read when a table is made."""
    return f"""    visitors AggregateFunction({uniq()}, String),
    views UInt64,
    exits UInt64,
    engaged_n UInt64,
    engaged_sum UInt64,
    scroll_n UInt64,
    scroll_sum UInt64"""


def rollup_pages_table(o: DdlOptions) -> Table:
    # One row per (tz, day, build, path): how the page was read (the beacon's scroll and
    # engaged reports) and how many visits ended on it.
    return Table(
        name="rollup_pages",
        distributed=False,
        columns=f"""{ROLLUP_KEY}
    path String,
{_page_figures()}""",
        tail=f"""PARTITION BY toYYYYMM(day)
ORDER BY (tz, day, build, path)
TTL toDateTime(day) + INTERVAL {o.events_ttl} SECOND
{ROLLUP_GRANULES}""",
    )


def _staff_table(name: str, id_column: str, content: str) -> Table:
    """A table of things staff write for the dashboards (collector.notes.StaffItems): an id,
    two content columns, who wrote it and who last changed it. A change or a deletion is a
    newer version (ReplacingMergeTree), so every change is kept. Small and about the site,
    not a person: replicated to every node."""
    return Table(
        name=name,
        engine="ReplacingMergeTree",
        engine_args="version",
        distributed=False,
        columns=f"""
    {id_column} String,
{content}
    created_by String,
    updated_by String,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    deleted Bool DEFAULT false,
    version UInt64""",
        tail=f"ORDER BY {id_column}",
    )


def notes_table(o: DdlOptions) -> Table:
    # Staff notes on the dashboards' time axis (a campaign launch, a TV mention, a site
    # change): collector.notes.
    return _staff_table("dashboard_notes", "note_id", "    day Date,\n    text String,")


def segments_table(o: DdlOptions) -> Table:
    # Saved filter sets the marketing team shares (collector.segments): a name and the
    # dashboards' filters as JSON.
    return _staff_table("dashboard_segments", "segment_id",
                        "    name String,\n    filters String,")


def goals_table(o: DdlOptions) -> Table:
    # What counts as a conversion (collector.goals): a name and the goal's definition as JSON
    # (collector.query.goals).
    return _staff_table("dashboard_goals", "goal_id", "    name String,\n    definition String,")


def funnels_table(o: DdlOptions) -> Table:
    # Ordered steps the marketing team follows visitors through (collector.funnels): a name
    # and the steps (goal ids or page patterns) and window as JSON.
    return _staff_table("dashboard_funnels", "funnel_id",
                        "    name String,\n    definition String,")


def policy_versions_table(o: DdlOptions) -> Table:
    # The first moment each consent-banner and policy version was recorded, which the
    # dashboards mark on their time axis (collector.query.annotations). Kept by a materialized
    # view as consent records arrive (migrations.POLICY_FIRST_SEEN), so a page reads a few
    # rows instead of every consent record. A version and a date: about the site, no one.
    return Table(
        name="policy_versions",
        engine="AggregatingMergeTree",
        distributed=False,
        columns="""
    policy_version String,
    first_seen SimpleAggregateFunction(min, DateTime64(3, 'UTC'))""",
        tail="ORDER BY policy_version",
    )


def bot_hits_table(o: DdlOptions) -> Table:
    # Known bots (``consent_mw.useragent``'s device_type "bot") are no people and give no
    # consent: their events are never stored, only counted here per hour (UTC; hours, not
    # days, so any time zone's days add up) and event kind, so the exclusion stays visible.
    # No ids, so no purge concerns it; one small replicated table on a cluster.
    return Table(
        name="bot_hits",
        engine="SummingMergeTree",
        distributed=False,
        columns="""
    hour DateTime('UTC'),
    kind LowCardinality(String),
    hits UInt64""",
        tail=f"""PARTITION BY toYYYYMM(hour)
ORDER BY (hour, kind)
TTL hour + INTERVAL {o.events_ttl} SECOND""",
    )


ROLLUP_TABLES = ("rollup_days", "rollup_totals", "rollup_dims", "rollup_engagement",
                 "rollup_pages", "rollup_goals", "rollup_ftotals", "rollup_fdims",
                 "rollup_visits", "rollup_visit_goals", "rollup_fgoals", "rollup_visit_keys",
                 "rollup_visit_pages")
#: The tables of a day's build (rollup_days says which build is current).
ROLLUP_BUILD_TABLES = ROLLUP_TABLES[1:]
#: Distinct visitors, sessions and consent ids are counted with uniqCombined(12) everywhere.
#: Its states merge across days (what lets the rollup answer exactly what a scan of the raw
#: events answers) in at most 3 KiB. A count, even of merged states, is exact up to
#: EXACT_UP_TO (so k-anonymity decisions are exact), then a HyperLogLog estimate (~1.6 %).
#: Precision 14 (exact to 512, ~0.8 %) made a page's breakdowns three times slower to merge;
#: merging states is what a rolled-up page spends its time on (docs/benchmarks.md).
# Changing it changes the rollup tables' column types: migration 17 is the pattern (create
# the build tables anew, mark every day dirty for the next refresh).
UNIQ_PRECISION = 12
# At exactly 2^(12-5) = 128 distinct values the count depends on how states were merged: a
# group of 128 visitors counted 128 from rollup states and 127 from a raw GROUPING SETS scan.
# Below it, every path agrees.
EXACT_UP_TO = 2 ** (UNIQ_PRECISION - 5) - 1


def uniq(combinator: str = "") -> str:
    """``uniqCombined<combinator>(12)``, e.g. uniq("State") for a state to merge later."""
    return f"uniqCombined{combinator}({UNIQ_PRECISION})"


#: The tables that hold rows about a person: what a purge deletes from and verifies.
PURGED_TABLES = ("events", "consent_records", "suppressions")


#: Who reported how a page was read (migration 11): distinct visitors behind its engaged-time
#: and scroll reports, so a mean is shown only when at least k people stand behind it.
PAGE_REPORTER_COLUMNS = (
    f"engaged_visitors AggregateFunction({uniq()}, String)",
    f"scroll_visitors AggregateFunction({uniq()}, String)",
)
