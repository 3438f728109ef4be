"""Retention on the real engine: the IP column TTL empties `ip`, the row TTL removes old rows."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from support.wire import make_event, make_record, now_ms

from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions
from collector.ingest.rows import EVENT_COLUMNS
from collector.privacy.audit import ms_to_datetime
from collector.privacy.gate import SuppressionGate
from collector.retention import apply_retention
from collector.store import Store

HOUR_MS = 3_600_000
DAY = 86400


def insert_old_event(store: Store, age_days: int) -> None:
    # Straight into the table: ingest rejects timestamps this far from now.
    row: dict[str, Any] = {c: "" for c in EVENT_COLUMNS}
    row.update(event_id="00000000-0000-4000-8000-000000000001",
               ts=ms_to_datetime(now_ms() - age_days * DAY * 1000), kind="pageview",
               consent={}, gpc=False, status=200, save_data=None, properties={}, traits={},
               ip="81.2.69.142", scroll_depth=0, engaged_seconds=0, value=0.0)
    store.insert("events", [[row[c] for c in EVENT_COLUMNS]], EVENT_COLUMNS)


def test_short_ip_ttl_empties_the_ip_column_but_keeps_the_row(store: Store) -> None:
    from collector.enrich.geo import GeoLookup
    from collector.ingest.pipeline import Ingest
    from collector.metrics import CollectorMetrics
    from collector.settings import CollectorSettings

    ingest = Ingest(CollectorSettings(store=store.dsn), CollectorMetrics(), SuppressionGate(b""))
    ingest.bind(store, GeoLookup(None))
    ingest.process([make_event(ts=now_ms() - 2 * HOUR_MS, ip="81.2.69.142"),
                    make_event(ip="81.2.69.160")])
    apply_retention(store, DdlOptions(ip_ttl=HOUR_MS // 1000))
    rows = sorted(store.rows("SELECT ip, ip_prefix FROM events"))
    assert rows == [("", "81.2.69.0/24"), ("81.2.69.160", "81.2.69.0/24")]


def test_row_ttl_removes_rows_older_than_retention(store: Store) -> None:
    insert_old_event(store, age_days=10)
    insert_old_event(store, age_days=1)
    report = apply_retention(store, DdlOptions(events_ttl=5 * DAY, ip_ttl=DAY))
    assert report.before["events"] == 2
    assert report.removed["events"] == 1
    assert store.scalar("SELECT count() FROM events") == 1


def test_retention_command_applies_ttls_to_the_store(store_dsn: str,
                                                     monkeypatch: Any) -> None:
    from collector.cli_server import retention

    s = Store(store_dsn)
    apply_migrations(s, DdlOptions())
    insert_old_event(s, age_days=40)
    s.close()
    monkeypatch.setenv("CONSENT_MW_EVENTS_TTL", "30d")
    result = CliRunner().invoke(retention, ["--apply", "--store", store_dsn])
    assert result.exit_code == 0, result.output
    assert "events: 1 rows before, 1 removed" in result.output
    s = Store(store_dsn)
    try:
        assert s.scalar("SELECT count() FROM events") == 0
    finally:
        s.close()


def test_retention_command_without_apply_only_shows_the_ttls(store_dsn: str) -> None:
    from collector.cli_server import retention

    result = CliRunner().invoke(retention, ["--store", store_dsn])
    assert result.exit_code == 0
    assert "MODIFY TTL" in result.output and "dry run" in result.output


def test_retention_command_reports_a_bad_setting_and_fails(monkeypatch: Any) -> None:
    from collector.cli_server import retention

    monkeypatch.setenv("CONSENT_MW_IP_TTL", "soon")
    result = CliRunner().invoke(retention, ["--apply"])
    assert result.exit_code != 0
    assert "ip_ttl" in result.output


def test_consent_records_outlive_events(store: Store) -> None:
    from collector.enrich.geo import GeoLookup
    from collector.ingest.pipeline import Ingest
    from collector.metrics import CollectorMetrics
    from collector.settings import CollectorSettings

    ingest = Ingest(CollectorSettings(store=store.dsn), CollectorMetrics(), SuppressionGate(b""))
    ingest.bind(store, GeoLookup(None))
    ingest.process([], [make_record(ts=now_ms() - 2 * HOUR_MS)])
    apply_retention(store, DdlOptions(events_ttl=HOUR_MS // 1000, ip_ttl=60))
    assert store.scalar("SELECT count() FROM consent_records") == 1
