"""capture's figures as Prometheus families: what stats() reports, read at each scrape, and
nothing it does not report."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from consent_mw.capture.counters import DROP_REASONS
from consent_mw.consent.metrics import StatsCollector


def samples(text: str) -> dict[str, float]:
    """Every sample, as ``name{label=value,...}`` (or the bare name): the text parsed by the
    client's own parser, so a malformed exposition fails here."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_figures_capture_adds_later_are_exported_when_present() -> None:
    stats: dict[str, Any] = {"errors": {"capture": 2}, "capture": {
        "queued": 3, "sent": 7, "dropped": {"queue_full": 4, "a_new_reason": 1},
        "spool_bytes": 4096, "last_sent_at": 1_700_000_000.5, "collector": "down"}}
    registry = CollectorRegistry()
    registry.register(StatsCollector(lambda: stats, counter=CounterMetricFamily,
                                     gauge=GaugeMetricFamily))
    found = samples(generate_latest(registry).decode())
    assert found["consent_mw_errors_total{place=capture}"] == 2
    assert found["consent_mw_capture_queued"] == 3
    assert found["consent_mw_capture_sent_total"] == 7
    assert found["consent_mw_capture_spool_bytes"] == 4096
    assert found["consent_mw_capture_last_sent_timestamp_seconds"] == 1_700_000_000.5
    assert found["consent_mw_capture_collector_up"] == 0
    assert found["consent_mw_capture_dropped_total{reason=queue_full}"] == 4
    assert found["consent_mw_capture_dropped_total{reason=a_new_reason}"] == 1
    assert all(f"consent_mw_capture_dropped_total{{reason={r}}}" in found for r in DROP_REASONS)
    assert "consent_mw_capture_rejected_total" not in found  # not reported: not made up

    stats["capture"].update(last_sent_at=None, collector="up")  # never sent yet
    del stats["capture"]["spool_bytes"]
    found = samples(generate_latest(registry).decode())  # read again at this scrape
    assert "consent_mw_capture_last_sent_timestamp_seconds" not in found
    assert "consent_mw_capture_spool_bytes" not in found
    assert found["consent_mw_capture_collector_up"] == 1
