"""DDL renders for one node and for a cluster; migrations are idempotent; OpenAPI covers routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.routing import Route
from starlette.testclient import TestClient

from collector.ddl.migrations import MIGRATIONS, apply_migrations, render_all
from collector.ddl.tables import INTERACTION_COLUMNS, DdlOptions
from collector.service import CollectorService
from collector.store import Store


def test_single_node_ddl_has_no_cluster_machinery() -> None:
    sql = "\n".join(render_all(DdlOptions()))
    assert "ON CLUSTER" not in sql
    assert "Replicated" not in sql
    assert "Distributed" not in sql
    assert "ENGINE = MergeTree" in sql


def test_cluster_ddl_uses_replicated_tables_behind_distributed_ones() -> None:
    statements = render_all(DdlOptions(cluster="analytics"))
    assert all(" ON CLUSTER `analytics`" in s for s in statements)
    assert all("ENGINE = MergeTree" not in s for s in statements)
    joined = "\n".join(statements)
    for table in ("events", "consent_records"):
        assert f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER" in joined
        assert (f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER `analytics` AS {table}_local "
                f"ENGINE = Distributed(`analytics`") in joined
    assert "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local'" in joined
    assert "ReplicatedReplacingMergeTree(" in joined  # suppressions


def test_migrations_are_idempotent(store: Store) -> None:
    assert apply_migrations(store, DdlOptions()) == []
    versions = [r[0] for r in store.rows("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == sorted(set(versions))


INTERACTION_TYPES = {"target_host": "String", "target_path": "String",
                     "target": "LowCardinality(String)", "scroll_depth": "UInt8",
                     "engaged_seconds": "UInt32"}


def event_columns(store: Store) -> dict[str, str]:
    """The events table's columns and their types, in table order."""
    return {str(name): str(kind) for name, kind in store.rows(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' ORDER BY position")}


def test_a_fresh_store_has_the_interaction_columns(store: Store) -> None:
    columns = event_columns(store)
    assert {c: columns.get(c) for c in INTERACTION_TYPES} == INTERACTION_TYPES
    names = list(columns)
    at = names.index("conversion") + 1
    assert names[at:at + 5] == [c.split()[0] for c in INTERACTION_COLUMNS]


def test_an_old_store_gains_the_interaction_columns_keeps_its_rows_and_its_ttl(
        store_dsn: str) -> None:
    old = Store(store_dsn)
    try:
        # The store as the release before interactions left it: migrations 1 to 5.
        assert apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 5]
                                ) == [1, 2, 3, 4, 5]
        assert not set(INTERACTION_TYPES) & set(event_columns(old))
        upto_6 = [m for m in MIGRATIONS if m.version <= 6]
        kept = uuid.uuid4()
        old.insert("events", [[kept, datetime.now(UTC), "pageview", "pageview", "/kept", "v1",
                               True]],
                   ["event_id", "ts", "kind", "name", "path", "visitor_id", "conversion"])
        ttl_before = old.scalar("SHOW CREATE TABLE events").split("TTL toDateTime(ts) + ")[-1]

        assert apply_migrations(old, DdlOptions(), upto_6) == [6]
        columns = event_columns(old)
        assert {c: columns.get(c) for c in INTERACTION_TYPES} == INTERACTION_TYPES
        rows = old.dicts("SELECT event_id, path, visitor_id, conversion, target_host, "
                         "target_path, target, scroll_depth, engaged_seconds FROM events")
        assert rows == [{"event_id": kept, "path": "/kept", "visitor_id": "v1",
                         "conversion": True, "target_host": "", "target_path": "",
                         "target": "", "scroll_depth": 0, "engaged_seconds": 0}]
        ddl = old.scalar("SHOW CREATE TABLE events")
        assert ddl.split("TTL toDateTime(ts) + ")[-1] == ttl_before  # the rows' retention

        # Twice is a no-op; so is a rerun of the step itself (a start that died after the
        # ALTER, before recording version 6).
        assert apply_migrations(old, DdlOptions(), upto_6) == []
        old.command("ALTER TABLE schema_migrations DELETE WHERE version = 6",
                    settings={"mutations_sync": 2})
        assert apply_migrations(old, DdlOptions(), upto_6) == [6]
        assert event_columns(old) == columns
        assert old.scalar("SELECT count() FROM events") == 1
    finally:
        old.close()


def test_retention_from_settings_reaches_the_table_ttl(collector_settings: Any) -> None:
    svc = CollectorService(collector_settings(events_ttl=100 * 86400, ip_ttl=7 * 86400))
    svc.start()
    try:
        ddl = svc.store.scalar("SHOW CREATE TABLE events")
        assert "toIntervalSecond(8640000)" in ddl
        assert "toIntervalSecond(604800)" in ddl
    finally:
        svc.stop()


def routed(app: Any) -> set[tuple[str, str]]:
    pairs = set()
    for route in app.routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        for method in route.methods or ():
            if method != "HEAD":
                pairs.add((route.path, method.lower()))
    return pairs


def test_openapi_describes_every_route_and_only_routes(collector_settings: Any) -> None:
    svc = CollectorService(collector_settings())
    doc = TestClient(svc.app).get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert described == routed(svc.app)
    assert {"/v1/events", "/healthz", "/metrics", "/openapi.json"} <= set(doc["paths"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method.upper()} {path} has no responses"


def test_openapi_refs_resolve(collector_settings: Any) -> None:
    doc = TestClient(CollectorService(collector_settings()).app).get("/openapi.json").json()
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs
    for ref in refs:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)


def test_migration_7_moves_stored_bot_rows_into_bot_hits_once(store_dsn: str) -> None:
    old = Store(store_dsn)
    try:
        upto_6 = [m for m in MIGRATIONS if m.version <= 6]
        upto_7 = [m for m in MIGRATIONS if m.version <= 7]
        assert apply_migrations(old, DdlOptions(), upto_6) == [1, 2, 3, 4, 5, 6]
        ts = datetime(2026, 6, 20, 3, 17, tzinfo=UTC)
        rows = [[uuid.uuid4(), ts, kind, device, visitor]
                for kind, device, visitor in [("pageview", "bot", "b1"), ("pageview", "bot", "b2"),
                                              ("anonymous", "bot", ""),
                                              ("pageview", "mobile", "p1"),
                                              ("anonymous", "desktop", "")]]
        old.insert("events", rows, ["event_id", "ts", "kind", "device_type", "visitor_id"])

        assert apply_migrations(old, DdlOptions(), upto_7) == [7]
        hits = [(h, str(k), int(n)) for h, k, n in old.rows(
            "SELECT hour, kind, sum(hits) FROM bot_hits GROUP BY hour, kind ORDER BY kind")]
        hour = datetime(2026, 6, 20, 3, tzinfo=UTC).replace(tzinfo=None)
        assert [(h.replace(tzinfo=None), k, n) for h, k, n in hits] == [
            (hour, "anonymous", 1), (hour, "pageview", 2)]
        people = old.rows("SELECT kind, device_type FROM events ORDER BY kind")
        assert people == [("anonymous", "desktop"), ("pageview", "mobile")]

        # Twice is a no-op; so is a rerun of the step itself: no bot row is left to count.
        assert apply_migrations(old, DdlOptions(), upto_7) == []
        old.command("ALTER TABLE schema_migrations DELETE WHERE version = 7",
                    settings={"mutations_sync": 2})
        assert apply_migrations(old, DdlOptions(), upto_7) == [7]
        assert old.scalar("SELECT sum(hits) FROM bot_hits") == 3
        assert old.rows("SELECT kind, device_type FROM events ORDER BY kind") == people
    finally:
        old.close()


def test_a_store_from_before_migration_15_keeps_its_policy_marks(store_dsn: str) -> None:
    """The versions recorded before ``policy_versions`` existed are found by its backfill,
    and a purge of the first record leaves the version's first day as it was."""
    from collector.query import run as query_run

    def annotations(store: Store) -> list[tuple[str, str, str]]:
        return [(r["day"], r["kind"], r["text"]) for r in query_run.run(
            store, "annotations", {"start": "2026-06-17", "end": "2026-06-30"})]

    old = Store(store_dsn)
    try:
        assert apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 14])
        columns = ["record_id", "consent_id", "visitor_id", "ts", "event", "method",
                   "component", "policy_version"]
        for day in (18, 21):
            old.insert("consent_records", [[
                uuid.uuid4(), f"c{day}", "", datetime(2026, 6, day, 1, 0, tzinfo=UTC),
                "shown", "none", "banner", f"2026-06-{day}+abc"]], columns)
        assert apply_migrations(old, DdlOptions())[0] == 15
        assert annotations(old) == [("2026-06-18", "policy", "2026-06-18+abc"),
                                    ("2026-06-21", "policy", "2026-06-21+abc")]
        old.command("ALTER TABLE consent_records DELETE WHERE consent_id = 'c18'",
                    settings={"mutations_sync": 2})
        assert annotations(old)[0] == ("2026-06-18", "policy", "2026-06-18+abc")
    finally:
        old.close()


def test_a_rollup_at_the_old_precision_is_rebuilt_at_the_new_one(
        store_dsn: str, monkeypatch: Any) -> None:
    """Migration 17: a store whose rollup holds uniqCombined(14) states gets its build tables
    anew at the current precision, every rolled-up day marked dirty, and the next refresh
    rolls them up again, equal to a raw scan."""
    from collector.ddl import tables
    from collector.query import run as query_run
    from collector.query.rollup import Rollup

    old = Store(store_dsn)
    try:
        monkeypatch.setattr(tables, "UNIQ_PRECISION", 14)
        apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 16])
        day = datetime(2026, 6, 18, 3, 0, tzinfo=UTC)
        old.insert("events", [[uuid.uuid4(), day, "pageview", "pageview", "/p", f"v{n}",
                               f"s{n}"] for n in range(7)],
                   ["event_id", "ts", "kind", "name", "path", "visitor_id", "session_id"])
        # What a refresh at precision 14 left: a current build of the day.
        old.command("INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
                    "VALUES ('Asia/Tokyo', '2026-06-18', 1, 1, 0, 7)")
        old.command("INSERT INTO rollup_totals (tz, day, build, visitors, sessions, visits, "
                    "pageviews) SELECT 'Asia/Tokyo', '2026-06-18', 1, "
                    "uniqCombinedState(14)(toString(number)), "
                    "uniqCombinedState(14)(toString(number)), 7, 7 FROM numbers(7)")
        monkeypatch.undo()
        rollup = Rollup(lambda: old, "Asia/Tokyo", grace=0)

        assert apply_migrations(old, DdlOptions()) == [17, 18, 19, 20, 21, 22, 23, 24, 25]
        types = {str(r[0]) for r in old.rows(
            "SELECT DISTINCT type FROM system.columns WHERE database = currentDatabase() "
            "AND table LIKE 'rollup_%' AND type LIKE 'AggregateFunction(uniq%'")}
        assert types == {f"AggregateFunction({tables.uniq()}, String)"}
        assert old.scalar("SELECT count() FROM rollup_totals") == 0
        assert {"engaged_visitors", "scroll_visitors"} <= {str(r[0]) for r in old.rows(
            "SELECT name FROM system.columns WHERE table = 'rollup_pages' "
            "AND database = currentDatabase()")}
        params = {"start": "2026-06-18", "end": "2026-06-18", "k": 2}
        assert query_run.rollup_plan(
            old, "kpis", query_run.params_for("kpis", params)) == []  # dirty: scanned raw
        raw = query_run.run(old, "kpis", params)
        assert rollup.refresh().built
        assert query_run.rollup_plan(old, "kpis", query_run.params_for("kpis", params))
        assert query_run.run(old, "kpis", params) == raw
        assert raw[0]["visitors"] == 7
        # The rows for filtered views (migrations 18, 19) are in the rebuilt day too.
        for filters in ({"path": "/p"}, {"path": "/p", "channel": ""}):
            one = {**params, "filters": filters}
            assert query_run.rollup_plan(old, "kpis", query_run.params_for("kpis", one))
            assert query_run.run(old, "kpis", one) == raw

    finally:
        old.close()


def test_goal_rollup_sorted_by_goal_first_is_made_anew_and_rebuilt(store_dsn: str) -> None:
    """Migration 20: a store whose ``rollup_goals`` is sorted by goal first (as migrations
    12 to 19 made it) gets the table sorted by dimension first, and its days rebuilt, so
    the goals read from the rollup again and equal a raw scan."""
    from collector.ddl.tables import rollup_goals_table
    from collector.goals import Goals
    from collector.query import run as query_run
    from collector.query.rollup import Rollup

    old = Store(store_dsn)
    try:
        # Every other migration, so today's refresh can build the day (it writes the tables
        # migration 21 makes); only rollup_goals has the old sort key.
        apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version != 20])
        table = rollup_goals_table(DdlOptions())
        old.command("DROP TABLE rollup_goals SYNC")
        for statement in table.render(DdlOptions()):
            old.command(statement.replace("ORDER BY (tz, dim, goal_key,",
                                          "ORDER BY (tz, goal_key, dim,"))
        sorting = "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() " \
                  "AND name = 'rollup_goals'"
        assert str(old.scalar(sorting)).startswith("tz, goal_key")
        day = datetime(2026, 6, 18, 3, 0, tzinfo=UTC)
        old.insert("events", [[uuid.uuid4(), day, "pageview", "pageview",
                               "/reservation" if n % 2 else "/", f"v{n}", f"s{n}"]
                              for n in range(8)],
                   ["event_id", "ts", "kind", "name", "path", "visitor_id", "session_id"])
        Goals(old).add("予約", {"kind": "page", "path": "/reservation"}, "test")
        rollup = Rollup(lambda: old, "Asia/Tokyo", grace=0)
        assert rollup.refresh().built
        params = {"start": "2026-06-18", "end": "2026-06-18", "k": 2}
        raw = query_run.run(old, "goals", params)
        assert raw[0]["conversions"] == 4 and raw[0]["visitors"] == 8

        assert apply_migrations(old, DdlOptions()) == [20]
        assert str(old.scalar(sorting)).startswith("tz, dim, goal_key")
        goals = query_run.params_for("goals", params)
        stored = query_run.stored_goals(old)
        assert query_run.rollup_plan(old, "goals", goals, stored) == []  # dirty: scanned raw
        assert query_run.run(old, "goals", params) == raw
        assert rollup.refresh().built
        assert query_run.rollup_plan(old, "goals", goals, stored)
        assert old.scalar("SELECT count() FROM rollup_goals WHERE dim = ''") > 0
        assert query_run.run(old, "goals", params) == raw
    finally:
        old.close()


def test_visit_rows_without_engagement_gain_it_and_are_rebuilt(store_dsn: str) -> None:
    """Migrations 21 and 22: ``rollup_visits`` as migrations 19 and 20 left it (no duration,
    engaged seconds or first values) gets those columns, and ``rollup_visit_goals`` and
    ``rollup_fgoals`` are made; the days are scanned raw until rebuilt, and then a filtered
    view's engagement and goals are read from the visits' rows (two filters) or from the
    rows of its one filter's value, equal to a raw scan."""
    from collector.ddl.tables import VISIT_FIGURE_COLUMNS
    from collector.goals import Goals
    from collector.query import catalogue
    from collector.query import run as query_run
    from collector.query.rollup import Rollup

    old = Store(store_dsn)
    try:
        apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 20])
        dropped = [c.split()[0] for c in VISIT_FIGURE_COLUMNS]
        old.command("ALTER TABLE rollup_visits "
                    + ", ".join(f"DROP COLUMN {c}" for c in dropped))
        assert old.scalar("SELECT count() FROM system.tables WHERE database = "
                          "currentDatabase() AND name IN ('rollup_visit_goals', "
                          "'rollup_fgoals')") == 0
        start = datetime(2026, 6, 18, 3, 0, tzinfo=UTC)
        rows = []
        for n in range(6):
            rows.append([uuid.uuid4(), start, "pageview", "pageview", "/", f"v{n}", f"s{n}",
                         0, "mobile"])
            rows.append([uuid.uuid4(), start.replace(minute=n + 1), "interaction", "engaged",
                         "/", f"v{n}", f"s{n}", 10 * n + 5, "mobile"])
        old.insert("events", rows, ["event_id", "ts", "kind", "name", "path", "visitor_id",
                                    "session_id", "engaged_seconds", "device_type"])
        # A current build of the day, made before: its visit rows carry no engagement.
        old.command("INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
                    "VALUES ('Asia/Tokyo', '2026-06-18', 1, 1, 0, 12)")
        old.command("INSERT INTO rollup_visits (tz, day, build, visit, vs, ss, pv, other, "
                    "f_path) SELECT 'Asia/Tokyo', '2026-06-18', 1, number, "
                    "uniqCombinedState(12)(toString(number)), "
                    "uniqCombinedState(12)(toString(number)), 1, 0, ['/'] "
                    "FROM numbers(6) GROUP BY number")

        assert apply_migrations(old, DdlOptions()) == [21, 22, 23, 24, 25]
        columns = [str(r[0]) for r in old.rows(
            "SELECT name FROM system.columns WHERE table = 'rollup_visits' "
            "AND database = currentDatabase() ORDER BY position")]
        # Where a fresh store has them: right after the visit's counts.
        assert columns[columns.index("other") + 1:][:len(dropped)] == dropped
        Goals(old).add("長く読む", {"kind": "engaged", "seconds": 20}, "test")
        params = {"start": "2026-06-18", "end": "2026-06-18", "k": 2,
                  "filters": {"path": "/"}}
        plan = query_run.params_for("engagement", params)
        assert query_run.rollup_plan(old, "engagement", plan) == []  # dirty: scanned raw
        raw = query_run.run(old, "engagement", params)
        assert raw[0]["visits"] == 6 and raw[0]["engaged_mean"] == 30.0
        assert Rollup(lambda: old, "Asia/Tokyo", grace=0).refresh().built
        assert query_run.rollup_plan(old, "engagement", plan)
        assert old.scalar("SELECT sum(eng) FROM rollup_visits") == 180
        assert query_run.run(old, "engagement", params) == raw
        # Visits 2 to 5 were engaged for 25 s or more: 4 conversions, read from their rows
        # with two filters, from the rows of the value with one.
        assert old.scalar("SELECT sum(n) FROM rollup_visit_goals") == 4
        assert old.scalar("SELECT sum(conversions) FROM rollup_fgoals WHERE "
                          "fdim = 'device_type' AND fval = 'mobile' AND dim = ''") == 4
        assert old.scalar("SELECT count() FROM rollup_fgoals WHERE fdim = 'path'") == 0
        for filters in ({"device_type": "mobile"}, {"path": "/"},
                        {"path": "/", "device_type": "mobile"}):
            view = {**params, "filters": filters}
            goals = query_run.run(old, "goals", view)
            assert query_run.rollup_plan(old, "goals", query_run.params_for("goals", view),
                                         query_run.stored_goals(old))
            assert (goals[0]["conversions"], goals[0]["visitors"]) == (4, 6)
            scanned = query_run.run_readonly(old, catalogue.build(
                "goals", view, query_run.active_suppression_types(old), None,
                query_run.stored_goals(old)))
            assert goals == scanned
    finally:
        old.close()


def test_builds_without_visit_keys_are_scanned_raw_until_rebuilt(store_dsn: str) -> None:
    """Migration 23: a store whose current builds predate ``rollup_visit_keys`` gets the
    table and every day marked dirty. Until the refresh, a two-filter view's breakdowns
    scan the events (a plan that read the old builds would find no keys and show nothing);
    after it, they are read from the visits' keys and equal that scan, a visit whose events
    carry two visitor ids included."""
    from collector.query import catalogue
    from collector.query import run as query_run
    from collector.query.rollup import Rollup

    old = Store(store_dsn)
    try:
        apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 22])
        start = datetime(2026, 6, 18, 3, 0, tzinfo=UTC)
        rows = []
        for n in range(8):
            device = "mobile" if n % 4 else "desktop"
            for i, path in enumerate(("/", f"/p{n % 3}", "/price")):
                rows.append([uuid.uuid4(), start.replace(minute=n * 5 + i), "pageview",
                             "pageview", path, f"v{n}", f"s{n}", 0, device, "search"])
        # Two visitors in one visit: events without a session id share one a day.
        for n, path in ((8, "/"), (9, "/price"), (9, "/price")):
            rows.append([uuid.uuid4(), start.replace(minute=50 + n), "pageview", "pageview",
                         path, f"v{n}", "", 0, "mobile", "search"])
        old.insert("events", rows, ["event_id", "ts", "kind", "name", "path", "visitor_id",
                                    "session_id", "engaged_seconds", "device_type", "channel"])
        old.command("INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
                    "VALUES ('Asia/Tokyo', '2026-06-18', 1, 1, 0, 27)")

        assert apply_migrations(old, DdlOptions()) == [23, 24, 25]
        params = {"start": "2026-06-18", "end": "2026-06-18", "k": 2,
                  "dims": ["path", "device_type", "channel"],
                  "filters": {"channel": "search", "device_type": "mobile"}}
        plan = query_run.params_for("breakdowns", params)
        assert query_run.rollup_plan(old, "breakdowns", plan) == []  # dirty: scanned raw
        raw = query_run.run(old, "breakdowns", params)
        paths = {r["key"]: (r["visitors"], r["events"]) for r in raw if r["dim"] == "path"}
        assert paths["/price"] == (7, 8) and paths["/"] == (7, 7)

        assert Rollup(lambda: old, "Asia/Tokyo", grace=0).refresh().built
        assert query_run.rollup_plan(old, "breakdowns", plan)
        # One row per visit and visitor: six single-visitor visits, and two in the shared one.
        assert old.scalar("SELECT count() FROM rollup_visit_keys") == 10
        built = catalogue.build("breakdowns", params, query_run.active_suppression_types(old),
                                query_run.rollup_plan(old, "breakdowns", plan))
        assert "rollup_visit_keys" in built.text and "FROM events" not in built.text
        assert query_run.run(old, "breakdowns", params) == raw
    finally:
        old.close()


def merge_settings(store: Store, tables: tuple[str, ...]) -> dict[str, bool]:
    """Whether each of ``tables`` merges its months once they are old (``ROLLUP_MERGES``)."""
    engines = dict(store.rows("SELECT name, engine_full FROM system.tables "
                              "WHERE database = currentDatabase()"))
    return {t: "min_age_to_force_merge_seconds = 300" in str(engines[t])
            and "min_age_to_force_merge_on_partition_only = 1" in str(engines[t])
            for t in tables}


def test_rollup_tables_merge_each_month_once_its_builds_are_old(store_dsn: str) -> None:
    """Migration 24: a fresh store creates every rollup table with the forced merge of a
    month (``tables.ROLLUP_MERGES``), and a store made before gets it, its rows kept. A
    table made after migration 24 (``MERGED_BY_24`` leaves it out) is created with it."""
    from collector.ddl.migrations import MERGED_BY_24
    from collector.ddl.tables import ROLLUP_TABLES

    old = Store(store_dsn)
    try:
        apply_migrations(old, DdlOptions(), [m for m in MIGRATIONS if m.version <= 23])
        assert set(merge_settings(old, MERGED_BY_24).values()) == {True}  # created so
        # What a store made before this migration has: the engine's own merges only.
        for table in MERGED_BY_24:
            old.command(f"ALTER TABLE {table} RESET SETTING min_age_to_force_merge_seconds, "
                        "min_age_to_force_merge_on_partition_only")
        old.command("INSERT INTO rollup_days (tz, day, version, build, stamp, events) "
                    "VALUES ('Asia/Tokyo', '2026-06-18', 1, 1, 0, 7)")
        assert set(merge_settings(old, MERGED_BY_24).values()) == {False}

        assert apply_migrations(old, DdlOptions()) == [24, 25]
        assert set(merge_settings(old, ROLLUP_TABLES).values()) == {True}
        assert old.scalar("SELECT count() FROM rollup_days WHERE build = 1") == 1
        assert apply_migrations(old, DdlOptions()) == []
    finally:
        old.close()


def test_every_filter_has_its_column_in_the_visits_rollup() -> None:
    from collector.ddl.tables import VISIT_FILTER_COLUMNS
    from collector.query.params import FILTERS
    assert tuple(FILTERS) == VISIT_FILTER_COLUMNS
