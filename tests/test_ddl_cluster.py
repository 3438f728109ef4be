"""Cluster rendering of the DDL: sharded data, cluster-wide admin tables."""

from __future__ import annotations

import re

from collector.ddl.migrations import render_all
from collector.ddl.tables import DdlOptions

ADMIN = ("schema_migrations", "suppressions", "privacy_requests", "purge_receipts")


def _engine_of(table: str, statements: list[str]) -> str:
    for sql in statements:
        if re.match(rf"CREATE TABLE IF NOT EXISTS {table}\b", sql):
            return sql[sql.index("ENGINE"):]
    raise AssertionError(f"no CREATE for {table}")


def test_admin_tables_replicate_to_every_node_not_per_shard() -> None:
    # A suppression written through one collector must reach the shards every other
    # collector writes to; a {shard} in the Keeper path would keep it in one shard.
    statements = render_all(DdlOptions(cluster="main"))
    for table in ADMIN:
        engine = _engine_of(table, statements)
        assert engine.startswith("ENGINE = Replicated"), table
        assert "{shard}" not in engine.split(")")[0], table


def test_data_tables_are_sharded_behind_a_distributed_table() -> None:
    statements = render_all(DdlOptions(cluster="main"))
    for table in ("events", "consent_records"):
        assert "{shard}" in _engine_of(f"{table}_local", statements)
        assert f"Distributed(`main`, currentDatabase(), {table}_local" in _engine_of(
            table, statements)


def test_interaction_columns_reach_the_shards_and_the_distributed_front() -> None:
    statements = [s for s in render_all(DdlOptions(cluster="main"))
                  if "ADD COLUMN IF NOT EXISTS target_host String" in s]
    assert [s.split(" ADD")[0] for s in statements] == [
        "ALTER TABLE events_local ON CLUSTER `main`", "ALTER TABLE events ON CLUSTER `main`"]
    for sql in statements:
        for column in ("target_path String", "target LowCardinality(String)",
                       "scroll_depth UInt8", "engaged_seconds UInt32"):
            assert f"ADD COLUMN IF NOT EXISTS {column} AFTER" in sql


def test_bot_hits_replicate_to_every_node_and_bots_leave_every_shard() -> None:
    """bot_hits holds no ids and is small: one replicated table every node holds; the
    migration's delete of stored bot rows reaches every shard's local table."""
    from collector.ddl.migrations import MIGRATIONS

    opts = DdlOptions(cluster="main")
    engine = _engine_of("bot_hits", render_all(opts))
    assert engine.startswith("ENGINE = ReplicatedSummingMergeTree")
    assert "{shard}" not in engine.split(")")[0]
    (bots,) = [m for m in MIGRATIONS if m.version == 7]
    assert bots.data is not None
    data = bots.data(opts)
    deletes = [s for s in data if s.startswith("ALTER TABLE")]
    assert deletes == ["ALTER TABLE events_local ON CLUSTER `main` DELETE WHERE "
                       "device_type = 'bot'"]
    single = bots.data(DdlOptions())
    assert [s for s in single if s.startswith("ALTER TABLE")] == [
        "ALTER TABLE events DELETE WHERE device_type = 'bot'"]
