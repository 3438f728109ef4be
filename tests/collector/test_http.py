"""POST /v1/events end to end on the real chDB engine: auth, limits, partial batches, replays."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from support.wire import AUTH, TOKEN, batch_body, make_event, make_record, now_ms

from collector.service import CollectorService


def count(service: CollectorService, table: str) -> int:
    return int(service.store.scalar(f"SELECT count() FROM {table}"))


def test_valid_batch_is_stored_and_answered_200(client: TestClient,
                                               service: CollectorService) -> None:
    events = [make_event(), make_event(path="/about")]
    r = client.post("/v1/events", content=batch_body(events, [make_record()]), headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "duplicates": 0, "suppressed": 0, "anonymised": 0, "bots": 0,
                        "rejected": []}
    assert count(service, "events") == 2
    assert count(service, "consent_records") == 1


def test_missing_or_wrong_token_is_401(client: TestClient, service: CollectorService) -> None:
    body = batch_body([make_event()])
    no_auth = {k: v for k, v in AUTH.items() if k != "Authorization"}
    assert client.post("/v1/events", content=body, headers=no_auth).status_code == 401
    wrong = {**AUTH, "Authorization": f"Bearer {TOKEN}x"}
    assert client.post("/v1/events", content=body, headers=wrong).status_code == 401
    assert count(service, "events") == 0


def test_without_a_configured_token_only_loopback_may_post(collector_settings) -> None:  # type: ignore[no-untyped-def]
    from consent_mw.config import Secret

    svc = CollectorService(collector_settings(collector_token=Secret("")))
    svc.start()
    try:
        remote = TestClient(svc.app, client=("203.0.113.9", 5000))
        local = TestClient(svc.app, client=("127.0.0.1", 5000))
        assert remote.post("/v1/events", content=batch_body([make_event()]),
                           headers=AUTH).status_code == 401
        assert local.post("/v1/events", content=batch_body([make_event()]),
                          headers=AUTH).status_code == 200
    finally:
        svc.stop()


def test_partial_batch_stores_good_items_and_names_the_bad(client: TestClient,
                                                          service: CollectorService) -> None:
    good = [make_event(), make_event()]
    bad_kind = make_event(kind="nonsense")
    unknown_field = make_event(email="someone@example.com")
    wrong_type = make_event(status="200")
    far_future = make_event(ts=now_ms() + 2 * 86400 * 1000)
    events = [good[0], bad_kind, unknown_field, wrong_type, far_future, "not an object", good[1]]
    bad_record = make_record(policy_hash="nothex")
    r = client.post("/v1/events", content=batch_body(events, [make_record(), bad_record]),
                    headers=AUTH)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 3
    rejected = {(x["type"], x["index"]): x for x in body["rejected"]}
    assert set(rejected) == {("event", 1), ("event", 2), ("event", 3), ("event", 4),
                             ("event", 5), ("record", 1)}
    assert rejected[("event", 1)]["event_id"] == bad_kind["event_id"]
    assert rejected[("event", 1)]["reason"].startswith("kind:")
    assert "email" in rejected[("event", 2)]["reason"]
    assert rejected[("event", 3)]["reason"].startswith("status:")
    assert rejected[("event", 4)]["reason"].startswith("ts:")
    assert rejected[("event", 5)]["event_id"] is None
    assert rejected[("record", 1)]["record_id"] == bad_record["record_id"]
    stored = {str(r[0]) for r in service.store.rows("SELECT event_id FROM events")}
    assert stored == {good[0]["event_id"], good[1]["event_id"]}
    assert count(service, "consent_records") == 1


def test_invalid_json_and_bad_batch_shape_are_400(client: TestClient) -> None:
    r = client.post("/v1/events", content=gzip.compress(b"{not json"), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    r = client.post("/v1/events", content=gzip.compress(b"[1,2]"), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "bad_batch"
    body = json.dumps({"schema": "other/9", "events": []}).encode()
    r = client.post("/v1/events", content=gzip.compress(body), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "bad_batch"
    r = client.post("/v1/events", content=b"\x1f\x8bnot gzip at all", headers=AUTH)
    assert r.status_code == 400


def test_identity_encoding_is_accepted(client: TestClient, service: CollectorService) -> None:
    raw = gzip.decompress(batch_body([make_event()]))
    headers = {**AUTH, "Content-Encoding": "identity"}
    assert client.post("/v1/events", content=raw, headers=headers).status_code == 200
    assert count(service, "events") == 1


def test_body_over_the_compressed_limit_is_413(collector_settings) -> None:  # type: ignore[no-untyped-def]
    svc = CollectorService(collector_settings(max_body_bytes=1000))
    svc.start()
    try:
        client = TestClient(svc.app)
        events = [make_event(path=f"/{uuid.uuid4()}") for _ in range(50)]
        raw = gzip.decompress(batch_body(events))
        r = client.post("/v1/events", content=raw, headers={**AUTH, "Content-Encoding": "identity"})
        assert r.status_code == 413
        assert count(svc, "events") == 0
    finally:
        svc.stop()


def test_a_plain_body_is_held_to_the_decompressed_limit_too(collector_settings) -> None:  # type: ignore[no-untyped-def]
    # Web processes on this host send plain JSON: the smaller cap is what memory allows.
    svc = CollectorService(collector_settings(max_decompressed_bytes=64 * 1024))
    svc.start()
    try:
        client = TestClient(svc.app)
        raw = gzip.decompress(batch_body([make_event(path=f"/{uuid.uuid4()}")
                                          for _ in range(300)]))
        assert 64 * 1024 < len(raw) < svc.settings.max_body_bytes
        plain = {**AUTH, "Content-Encoding": "identity"}
        r = client.post("/v1/events", content=raw, headers=plain)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        assert client.post("/v1/events", content=raw[:64 * 1024 - 1] + b"}",
                           headers=plain).status_code != 413  # under it: read (and refused)
        assert count(svc, "events") == 0
    finally:
        svc.stop()


def test_gzip_bomb_is_413_without_inflating_it(collector_settings) -> None:  # type: ignore[no-untyped-def]
    svc = CollectorService(collector_settings(max_decompressed_bytes=1024 * 1024))
    svc.start()
    try:
        client = TestClient(svc.app)
        # 1 GiB of zeros compresses to ~1 MiB; stream-compress so the test itself stays small.
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = b"\0" * (1 << 20)
        bomb = b"".join(comp.compress(zeros) for _ in range(64)) + comp.flush()
        assert len(bomb) < 200_000
        r = client.post("/v1/events", content=bomb, headers=AUTH)
        assert r.status_code == 413
        assert r.json()["error"] == "too_large"
    finally:
        svc.stop()


def test_same_batch_posted_twice_is_stored_once(client: TestClient,
                                                service: CollectorService) -> None:
    body = batch_body([make_event(), make_event()], [make_record()])
    first = client.post("/v1/events", content=body, headers=AUTH)
    second = client.post("/v1/events", content=body, headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicates"] == 3
    assert count(service, "events") == 2
    assert count(service, "consent_records") == 1


def test_replay_after_restart_is_dropped_by_the_remembered_ids(
    collector_settings,  # type: ignore[no-untyped-def]
) -> None:
    # A new process remembers the ids its store received lately, so the replay is dropped.
    events = [make_event(), make_event()]
    settings = collector_settings()
    for _ in range(2):
        svc = CollectorService(settings)
        svc.start()
        try:
            svc.ingest.process(events, [], batch_id="batch-1")
            total = count(svc, "events")
        finally:
            svc.stop()
    assert total == 2


def test_an_old_batch_is_checked_against_its_sent_at(client: TestClient,
                                                    service: CollectorService) -> None:
    built = now_ms() - 2 * 86400 * 1000
    old = make_event(ts=built - 1000)
    r = client.post("/v1/events", content=batch_body([old], sent_at=built), headers=AUTH)
    assert r.status_code == 200, r.text
    ahead = now_ms() + 2 * 86400 * 1000
    r = client.post("/v1/events", content=batch_body([make_event(ts=ahead)], sent_at=ahead),
                    headers=AUTH)
    assert r.status_code == 400
    assert r.json()["rejected"][0]["reason"].startswith("sent_at:")
    assert count(service, "events") == 1


def test_healthz_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.post("/v1/events", content=batch_body([make_event(), make_event(kind="x")]),
                headers=AUTH)
    text = client.get("/metrics").text
    assert 'consent_mw_collector_received_total{type="event"} 2.0' in text
    assert 'consent_mw_collector_inserted_total{table="events"} 1.0' in text
    assert 'consent_mw_collector_rejected_total{reason="schema"} 1.0' in text
    assert "consent_mw_collector_insert_seconds_bucket" in text
    assert "consent_mw_collector_queue_depth 0.0" in text


def test_healthz_is_503_when_stopped(collector_settings) -> None:  # type: ignore[no-untyped-def]
    svc = CollectorService(collector_settings())
    client = TestClient(svc.app)
    assert client.get("/healthz").status_code == 503
    r = client.post("/v1/events", content=batch_body([make_event()]), headers=AUTH)
    assert r.status_code == 503


def test_standalone_lifespan_starts_and_stops_the_service(collector_settings) -> None:  # type: ignore[no-untyped-def]
    svc = CollectorService(collector_settings())
    with TestClient(svc.app) as client:
        assert svc.started
        assert client.get("/healthz").status_code == 200
    assert not svc.started


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {}, optional={k: json_values for k in ("event_id", "ts", "kind", "consent", "ip", "ua",
                                           "path", "properties", "traits", "status")})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event_like | json_values, max_size=5),
       records=st.lists(json_values, max_size=3), batch_id=json_values)
def test_arbitrary_json_never_causes_a_server_error(
    client: TestClient, events: list[object], records: list[object], batch_id: object
) -> None:
    body = {"schema": "consent-mw/1", "batch_id": batch_id, "events": events,
            "consent_records": records}
    r = client.post("/v1/events", content=gzip.compress(json.dumps(body).encode()),
                    headers=AUTH)
    assert r.status_code in (200, 400), r.text


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), gzip_it=st.booleans())
def test_arbitrary_bytes_never_cause_a_server_error(
    client: TestClient, raw: bytes, gzip_it: bool
) -> None:
    r = client.post("/v1/events", content=gzip.compress(raw) if gzip_it else raw, headers=AUTH)
    assert r.status_code == 400, r.text


def _gzipped(raw: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return comp.compress(raw) + comp.flush()


def test_a_body_of_millions_of_empty_objects_is_counted_and_refused_before_parsing(
        client: TestClient, service: CollectorService) -> None:
    # Under the decompressed-size cap, but more objects than any batch holds (finding 5:
    # json.loads of this took the collector from 0.5 to 1.4 GiB before answering 400).
    raw = b'{"schema":"consent-mw/1","events":[' + b"{}," * 2_000_000 + b'{}]}'
    body = _gzipped(raw)
    assert len(body) < 40_000 and len(raw) < service.settings.max_decompressed_bytes
    r = client.post("/v1/events", content=body, headers=AUTH)
    assert r.status_code == 413 and r.json()["error"] == "too_many_items"
    assert 'rejected_total{reason="too_many_items"} 1.0' in client.get("/metrics").text


def test_a_body_of_millions_of_values_is_refused_too(client: TestClient) -> None:
    raw = b'{"schema":"consent-mw/1","events":[' + b'"ab",' * 1_500_000 + b'"ab"]}'
    r = client.post("/v1/events", content=_gzipped(raw), headers=AUTH)
    assert r.status_code == 413 and r.json()["error"] == "too_many_items"


@pytest.mark.parametrize("raw", [
    b"[" * 5000 + b"]" * 5000,  # past the parser's depth limit
    b'{"schema": "consent-mw/1", "sent_at": ' + b"9" * 5000 + b"}",  # past int limits
    b"\xff\xfe{}",  # not UTF-8
])
def test_json_the_parser_refuses_is_a_400_with_a_reason(client: TestClient,
                                                         raw: bytes) -> None:
    r = client.post("/v1/events", content=_gzipped(raw), headers=AUTH)
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    assert r.json()["message"]
