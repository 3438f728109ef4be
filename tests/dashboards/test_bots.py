"""The demo keeps bots out of every figure and shows how many hits it left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.dashboards import RANGE, event, insert_events, seeded_dsn

from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions

from .test_rollup import assert_all_equal_raw, figures, rollup


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def test_the_demo_lists_no_bot_device_and_shows_the_bot_hits_it_left_out(
        store: Any, login: Any) -> None:
    assert store.scalar("SELECT count() FROM events WHERE device_type = 'bot'") == 0
    client = login("marketing")
    devices = client.get("/dashboards/api/bd_device_type", params=RANGE).json()["rows"]
    assert "bot" not in {r["key"] for r in devices}
    rows = client.get("/dashboards/api/bot_hits", params=RANGE).json()["rows"]
    total = store.scalar("SELECT sum(hits) FROM bot_hits")
    assert len(rows) == 14 and sum(r["hits"] for r in rows) == total > 0
    page = client.get("/dashboards/consent", params=RANGE).text
    assert "除外したボットのアクセス" in page and f"{total:,}" in page


def test_migration_7_on_a_store_with_bot_rows_rebuilds_the_rollup(store: Any) -> None:
    def people(store: Any) -> dict[str, Any]:
        return {k: v for k, v in figures(store).items() if not k.startswith("bot_hits")}

    r = rollup(store)
    r.refresh()
    before = people(store)
    hits = int(store.scalar("SELECT sum(hits) FROM bot_hits"))
    # What ingest stored before migration 7: bots as visitors, on days already rolled up.
    bots = [event(device_type="bot", browser="Googlebot", visitor_id=f"bot{i}",
                  session_id=f"bot{i}", path="/treatments") for i in range(40)]
    insert_events(store, bots)
    assert people(store) != before
    store.command("ALTER TABLE schema_migrations DELETE WHERE version = 7",
                  settings={"mutations_sync": 2})
    assert apply_migrations(store, DdlOptions()) == [7]
    assert store.scalar("SELECT sum(hits) FROM bot_hits") == hits + 40
    assert store.scalar("SELECT count() FROM events WHERE device_type = 'bot'") == 0
    assert r.refresh().built  # the days it marked are rebuilt from what remains
    assert people(store) == before
    assert_all_equal_raw(store)
