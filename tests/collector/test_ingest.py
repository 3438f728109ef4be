"""The ingest pipeline on the real engine: what is stored, altered, rejected or dropped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from support.wire import IPHONE_UA, make_event, make_record, now_ms

from collector.ingest.validate import check_event
from collector.service import CollectorService
from consent_mw.ids import subject_hash
from consent_mw.wire import MAX_PATH

SKEW = 86400 * 1000


def stored(service: CollectorService, event_id: str) -> dict[str, Any]:
    rows = service.store.dicts("SELECT * FROM events WHERE event_id = {id:UUID}",
                               {"id": event_id})
    assert len(rows) == 1
    return rows[0]


@dataclass(frozen=True)
class Ago:
    """A time relative to the test's own clock reading (negative: in the future)."""

    ms: int


@pytest.mark.parametrize(
    ("fields", "reason_starts"),
    [
        ({"kind": "click"}, "kind:"),
        ({"status": "200"}, "status:"),
        ({"consent": {"analytics": "yes"}}, "consent.analytics:"),
        ({"phone": "090-1234-5678"}, "(item):"),
        ({"visitor_id": "has spaces"}, "visitor_id:"),
        ({"ts": Ago(2 * SKEW)}, "ts:"),
        ({"ts": Ago(-(SKEW + 60_000))}, "ts:"),
        ({"event_id": "not-a-uuid"}, "event_id:"),
        ({"traits": {"email": "x@example.com"}}, "traits:"),
        ({"value": -5}, "value:"),
        ({"value": "29800"}, "value:"),
        ({"value": 10 ** 13}, "value:"),
        ({"currency": "yen"}, "currency:"),
    ],
)
def test_invalid_events_are_rejected_with_the_field_named(
    fields: dict[str, Any], reason_starts: str
) -> None:
    now = now_ms()  # when the test runs, not when the module was imported
    fields = {k: now - v.ms if isinstance(v, Ago) else v for k, v in fields.items()}
    checked = check_event(make_event(**fields), now_ms=now, skew_ms=SKEW)
    assert checked.item is None
    assert checked.reason.startswith(reason_starts), checked.reason


def test_missing_required_field_is_rejected() -> None:
    event = make_event()
    del event["consent"]
    checked = check_event(event, now_ms=now_ms(), skew_ms=SKEW)
    assert checked.item is None and "consent" in checked.reason


def test_oversized_strings_are_truncated_and_counted() -> None:
    checked = check_event(make_event(path="/" + "a" * 5000, search_terms="b" * 600,
                                     properties={"note": "c" * 600}),
                          now_ms=now_ms(), skew_ms=SKEW)
    assert checked.item is not None
    assert len(checked.item["path"]) == MAX_PATH
    assert len(checked.item["search_terms"]) == 512
    assert len(checked.item["properties"]["note"]) == 512
    assert checked.truncated == 3


def test_invalid_ip_is_dropped_and_the_event_kept() -> None:
    checked = check_event(make_event(ip="300.1.2.3"), now_ms=now_ms(), skew_ms=SKEW)
    assert checked.item is not None and checked.item["ip"] is None
    assert checked.notes == ["invalid_ip"]
    mapped = check_event(make_event(ip="::ffff:81.2.69.142"), now_ms=now_ms(), skew_ms=SKEW)
    assert mapped.item is not None and mapped.item["ip"] == "81.2.69.142"


DAY = 86400 * 1000


def test_a_spooled_batch_replayed_days_later_is_accepted(service: CollectorService) -> None:
    # The web process's collector was down for three days; its spool now replays the batch.
    built = now_ms() - 3 * DAY
    events = [make_event(ts=built - 60_000), make_event(ts=built - 1000)]
    result = service.ingest.process(events, [make_record(ts=built - 5000)], sent_at=built)
    assert (result.accepted, result.rejected) == (3, [])
    assert service.store.scalar("SELECT count() FROM events") == 2
    assert service.store.scalar("SELECT count() FROM consent_records") == 1


def test_in_process_transport_passes_sent_at_on(service: CollectorService) -> None:
    built = now_ms() - 2 * DAY
    service.transport.send([make_event(ts=built)], [], batch_id=str(uuid.uuid4()),
                           sent_at=built)
    assert service.store.scalar("SELECT count() FROM events") == 1


def test_without_sent_at_an_old_event_is_still_clock_skew(service: CollectorService) -> None:
    result = service.ingest.process([make_event(ts=now_ms() - 3 * DAY)])
    assert [r.reason.startswith("ts:") for r in result.rejected] == [True]
    assert "collector's clock" in result.rejected[0].reason


def test_an_event_far_from_its_batch_sent_at_is_rejected(service: CollectorService) -> None:
    sent = now_ms() - 3 * DAY
    near, far = make_event(ts=sent - 1000), make_event(ts=now_ms())
    result = service.ingest.process([near, far], sent_at=sent)
    assert [(r.index, r.id) for r in result.rejected] == [(1, far["event_id"])]
    assert result.rejected[0].reason.startswith("ts:")
    assert "sent_at" in result.rejected[0].reason
    assert 'rejected_total{reason="clock_skew"} 1.0' in service.metrics.render().decode()
    assert service.store.scalar("SELECT count() FROM events") == 1


def test_a_batch_sent_from_the_future_is_rejected_whole(service: CollectorService) -> None:
    sent = now_ms() + SKEW + 60_000
    result = service.ingest.process([make_event(ts=sent), make_event(ts=sent)],
                                    [make_record(ts=sent)], sent_at=sent)
    assert result.accepted == 0 and len(result.rejected) == 3
    assert all(r.reason.startswith("sent_at:") for r in result.rejected)
    assert service.store.scalar("SELECT count() FROM events") == 0


def test_a_batch_older_than_the_events_ttl_loses_its_events_not_its_records(
    service: CollectorService,
) -> None:
    sent = now_ms() - service.settings.events_ttl * 1000 - DAY
    result = service.ingest.process([make_event(ts=sent)], [make_record(ts=sent)],
                                    sent_at=sent)
    assert [(r.type, r.reason.startswith("sent_at:")) for r in result.rejected] == [
        ("event", True)]
    assert "TTL" in result.rejected[0].reason
    assert service.store.scalar("SELECT count() FROM consent_records") == 1


def test_event_is_enriched_and_the_raw_ua_never_stored(service: CollectorService) -> None:
    e = make_event(ip="81.2.69.142", consent={"analytics": True, "location": True},
                   properties={"plan": "basic", "n": 2, "ok": True}, traits={"age_band": "30-39"},
                   utm_source="news", channel="ad")
    service.ingest.process([e])
    row = stored(service, e["event_id"])
    assert (row["browser"], row["os"], row["device_type"]) == ("Mobile Safari", "iOS", "mobile")
    assert (row["country"], row["region"], row["city"]) == ("GB", "ENG", "London")
    assert row["ip"] == "81.2.69.142" and row["ip_prefix"] == "81.2.69.0/24"
    assert row["properties"] == {"plan": "basic", "n": "2", "ok": "true"}
    assert row["traits"] == {"age_band": "30-39"}
    assert row["utm_source"] == "news" and row["channel"] == "ad"
    ms = service.store.scalar("SELECT toUnixTimestamp64Milli(ts) FROM events")
    assert ms == e["ts"]
    assert IPHONE_UA not in {str(v) for v in row.values()}


def test_a_ts_sent_as_a_whole_float_is_stored_at_that_time(service: CollectorService) -> None:
    ts = now_ms()
    e = make_event(ts=float(ts))  # JSON 1.7e12 parses to a float; the schema allows it
    assert service.ingest.process([e]).inserted_events == 1
    assert service.store.scalar("SELECT toUnixTimestamp64Milli(ts) FROM events") == ts


def test_geo_is_skipped_without_location_consent(service: CollectorService) -> None:
    e = make_event(ip="81.2.69.142", consent={"analytics": True, "location": False})
    service.ingest.process([e])
    row = stored(service, e["event_id"])
    assert (row["country"], row["region"], row["city"]) == ("", "", "")
    assert row["ip_prefix"] == "81.2.69.0/24"


def test_anonymous_count_keeps_its_wire_device_type(service: CollectorService) -> None:
    e = {"event_id": str(uuid.uuid4()), "ts": now_ms() // 3_600_000 * 3_600_000,
         "kind": "anonymous", "consent": {}, "path": "/clinic", "device_type": "tablet"}
    result = service.ingest.process([e])
    assert result.accepted == 1 and not result.rejected
    row = stored(service, e["event_id"])
    assert row["device_type"] == "tablet" and row["visitor_id"] == "" and row["ip"] == ""


def test_consent_record_maps_to_columns(service: CollectorService) -> None:
    expires = now_ms() + 182 * 86400 * 1000
    rec = make_record(services={"ga4": False}, expires_at=expires, gpc=True, gpc_conflict=True)
    service.ingest.process([], [rec])
    row = service.store.dicts("SELECT * FROM consent_records")[0]
    assert str(row["record_id"]) == rec["record_id"]
    assert row["categories"] == {"necessary": True, "analytics": True}
    assert row["services"] == {"ga4": False}
    assert row["gcm"] == {"analytics_storage": "granted"}
    assert row["gpc"] is True and row["gpc_conflict"] is True
    assert service.store.scalar(
        "SELECT toUnixTimestamp64Milli(expires_at) FROM consent_records") == expires


def test_a_replay_is_recognised_whatever_the_spelling_of_its_ids(
    service: CollectorService,
) -> None:
    event_id = str(uuid.uuid4())
    spellings = [event_id, event_id.upper(), event_id.replace("-", ""),
                 event_id.upper().replace("-", "")]
    results = [service.ingest.process([make_event(event_id=s)]) for s in spellings]
    assert [r.duplicates for r in results] == [0, 1, 1, 1]
    assert str(service.store.scalar("SELECT event_id FROM events")) == event_id


def test_in_process_transport_stores_like_http(service: CollectorService) -> None:
    events = [make_event(), make_event()]
    service.transport.send(events, [make_record()], batch_id=str(uuid.uuid4()))
    service.transport.send(events, [], batch_id=str(uuid.uuid4()))  # replayed under a new id
    assert service.store.scalar("SELECT count() FROM events") == 2
    assert service.store.scalar("SELECT count() FROM consent_records") == 1


def test_a_conversion_is_stored_as_such_and_other_events_are_not(
        service: CollectorService) -> None:
    consent = {"necessary": True, "analytics": True, "marketing": True}
    service.transport.send([
        make_event(kind="custom", name="ad_booking", consent=consent, conversion=True),
        make_event(kind="custom", name="reservation", consent=consent),
        make_event(),
    ], [], batch_id=str(uuid.uuid4()))
    rows = service.store.rows("SELECT name, conversion FROM events ORDER BY name")
    assert [tuple(r) for r in rows] == [("ad_booking", True), ("pageview", False),
                                        ("reservation", False)]


def test_a_value_is_stored_with_its_currency_and_never_without_one(
        service: CollectorService) -> None:
    consent = {"necessary": True, "analytics": True}
    service.transport.send([
        make_event(kind="custom", name="paid", consent=consent, value=29800.5,
                   currency="JPY"),
        make_event(kind="custom", name="no_currency", consent=consent, value=100),
        make_event(kind="custom", name="plain", consent=consent),
    ], [], batch_id=str(uuid.uuid4()))
    rows = service.store.rows("SELECT name, value, currency FROM events ORDER BY name")
    assert [tuple(r) for r in rows] == [("no_currency", 0.0, ""), ("paid", 29800.5, "JPY"),
                                        ("plain", 0.0, "")]


def test_in_process_transport_raises_a_retryable_error_when_stopped(
    service: CollectorService,
) -> None:
    service.stop()
    with pytest.raises(Exception) as info:
        service.transport.send([make_event()], [], batch_id="b")
    assert getattr(info.value, "retryable", None) is True


def test_suppressed_ids_are_dropped_and_counted(service: CollectorService) -> None:
    blocked = uuid.uuid4().hex
    service.gate.change([subject_hash(service.gate.key, "visitor_id", blocked)], active=True,
                        purged=False, version=1)
    result = service.ingest.process([make_event(visitor_id=blocked), make_event()])
    assert result.accepted == 2 and result.suppressed == 1
    assert service.store.scalar("SELECT count() FROM events") == 1
    assert 'dropped_total{reason="suppressed"} 1.0' in service.metrics.render().decode()


def test_start_and_stop_are_idempotent(service: CollectorService) -> None:
    store = service.store
    service.start()
    assert service.store is store
    service.stop()
    service.stop()
    assert not service.started
    service.start()
    assert service.store.scalar("SELECT 1") == 1
