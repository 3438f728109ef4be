"""The wire contract from the middleware side: each consent combination yields exactly the
fields the data inventory allows, and every event validates against wire.EVENT_SCHEMA."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from support.capture import CONSENT_ID, SESSION, VISITOR, RecordingTransport, make_ctx, make_scope

from consent_mw.capture.hits import HOUR_MS
from consent_mw.capture.pipeline import Capture
from consent_mw.settings import Settings
from consent_mw.wire import ENCODE_STEP, EVENT_SCHEMA

VALIDATOR = Draft202012Validator(EVENT_SCHEMA)
UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
      "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
CLICK_ID = "Cj0KCQjw-secret-click-id-value"
QUERY = (f"q=%E3%83%9B%E3%83%AF%E3%82%A4%E3%83%88%E3%83%8B%E3%83%B3%E3%82%B0&utm_source=google"
         f"&utm_medium=cpc&utm_campaign=spring&utm_term=whitening&utm_content=ad1"
         f"&gclid={CLICK_ID}&name=Taro+Yamada&email=taro%40example.jp")
HEADERS = {
    "host": "clinic.example.jp",
    "user-agent": UA,
    "referer": "https://www.google.co.jp/search?q=secret+query",
    "accept-language": "ja-JP,ja;q=0.9,en;q=0.8",
    "ect": "4g",
    "save-data": "on",
    "sec-ch-ua-model": '"iPhone"',
    "sec-ch-ua-platform": '"iOS"',
    "cookie": "cmw_vid=should-never-be-read",
}

ANONYMOUS = {"event_id", "ts", "kind", "consent", "name", "path", "device_type"}
PAGEVIEW = {
    "event_id", "ts", "kind", "consent", "name", "host", "path", "method", "status",
    "search_terms", "referrer_host", "channel", "language", "network_type", "save_data", "ua",
    "ch_ua_model", "ch_ua_platform", "visitor_id", "session_id", "consent_id", "ip", "gpc",
}
MARKETING = {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
             "click_id_type"}

# (label, granted categories, decided, expected kind, expected keys)
COMBINATIONS = [
    ("undecided", (), False, "anonymous", ANONYMOUS),
    ("refused", (), True, "anonymous", ANONYMOUS),
    ("analytics", ("analytics",), True, "pageview", PAGEVIEW),
    ("analytics+location", ("analytics", "location"), True, "pageview", PAGEVIEW),
    ("analytics+marketing", ("analytics", "marketing"), True, "pageview", PAGEVIEW | MARKETING),
    ("all", ("analytics", "location", "marketing"), True, "pageview", PAGEVIEW | MARKETING),
    ("marketing_only", ("marketing",), True, "anonymous", ANONYMOUS),
    ("location_only", ("location",), True, "anonymous", ANONYMOUS),
]


def capture_one(settings: Settings, granted: tuple[str, ...], decided: bool,
                path: str = "/treatments/whitening", query: str = QUERY) -> dict[str, Any]:
    transport = RecordingTransport()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, granted, decided=decided, capture=capture)
    capture.page(ctx, make_scope(path, query, HEADERS), 200)
    assert capture.force_flush(5)
    capture.shutdown(5)
    assert len(transport.events) == 1
    return transport.events[0]


@pytest.mark.parametrize(("label", "granted", "decided", "kind", "keys"), COMBINATIONS,
                         ids=[c[0] for c in COMBINATIONS])
def test_wire_contract_fields_per_consent(make_settings: Callable[..., Settings], label: str,
                                          granted: tuple[str, ...], decided: bool, kind: str,
                                          keys: set[str]) -> None:
    event = capture_one(make_settings(), granted, decided)
    assert event["kind"] == kind
    assert {k for k, v in event.items() if v is not None} == keys
    assert list(VALIDATOR.iter_errors(event)) == []
    assert event["consent"] == {c: c in {"necessary", *granted} for c in
                                ("necessary", "analytics", "location", "marketing")}
    text = json.dumps(event, ensure_ascii=False)
    # never on the wire, whatever the consent: the click id value, unlisted params, the cookie
    for secret in (CLICK_ID, "Taro", "taro@example.jp", "should-never-be-read", "secret query"):
        assert secret not in text


@pytest.mark.parametrize("granted", [(), ("marketing",), ("location",)])
def test_wire_contract_anonymous_count_is_coarse(make_settings: Callable[..., Settings],
                                                 granted: tuple[str, ...]) -> None:
    event = capture_one(make_settings(), granted, True)
    assert event["ts"] % HOUR_MS == 0
    assert event["path"] == "/treatments/whitening"
    assert event["device_type"] == "mobile"
    assert UA not in json.dumps(event)


def test_wire_contract_pageview_values(make_settings: Callable[..., Settings]) -> None:
    event = capture_one(make_settings(), ("analytics", "marketing"), True)
    assert event == {
        **{k: event[k] for k in ("event_id", "ts")},
        "kind": "pageview", "name": "pageview",
        "consent": {"necessary": True, "analytics": True, "location": False, "marketing": True},
        "host": "clinic.example.jp", "path": "/treatments/whitening", "method": "GET",
        "status": 200, "search_terms": "ホワイトニング", "referrer_host": "www.google.co.jp",
        "channel": "ad", "language": "ja", "network_type": "4g", "save_data": True,
        "ua": UA, "ch_ua_model": '"iPhone"', "ch_ua_platform": '"iOS"',
        "visitor_id": VISITOR, "session_id": SESSION, "consent_id": CONSENT_ID,
        "ip": "203.0.113.7", "gpc": False,
        "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring",
        "utm_term": "whitening", "utm_content": "ad1", "click_id_type": "gclid",
    }
    assert abs(event["ts"] - time.time() * 1000) < 600_000  # ms since the epoch, not seconds


def test_wire_contract_custom_identify_and_conversion(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    transport = RecordingTransport()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics", "marketing"), capture=capture)
    scope = make_scope("/reserve/done", headers=HEADERS)
    capture.custom(ctx, "booking_completed", {"clinic": "shinjuku", "slots": 2, "paid": True,
                                              "note": "call 090-1234-5678", "obj": object()},
                   scope=scope)
    capture.custom(ctx, "ad_booking", {"value": 3000.5}, conversion=True, scope=scope)
    capture.identify(ctx, "account-42", {"age": 34, "zip": "〒170-0013", "gender": "female",
                                         "occupation": "nurse", "name": "Hanako"})
    capture.shutdown(5)
    custom, conversion, identify = transport.events
    for event in (custom, conversion, identify):
        assert list(VALIDATOR.iter_errors(event)) == []
    assert custom["properties"] == {"clinic": "shinjuku", "slots": 2, "paid": True,
                                    "note": "call [phone]"}
    assert custom["path"] == "/reserve/done" and custom["host"] == "clinic.example.jp"
    assert "conversion" not in custom and conversion["conversion"] is True
    assert set(custom) == {"event_id", "ts", "kind", "consent", "name", "properties", "host",
                           "path", "visitor_id", "session_id", "consent_id", "gpc"}
    assert identify["traits"] == {"age_band": "30-39", "zip3": "170", "gender": "female",
                                  "occupation": "nurse"}
    assert identify["user_id"] != "account-42" and len(identify["user_id"]) == 32
    assert "ip" not in identify and "ua" not in identify


def test_wire_contract_event_ids_are_unique_uuids(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    transport = RecordingTransport()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    for _ in range(50):
        capture.page(ctx, make_scope("/"), 200)
    capture.shutdown(5)
    ids = [e["event_id"] for e in transport.events]
    assert len(ids) == 50 == len(set(ids))


def test_wire_contract_location_needs_analytics_for_geo(
        make_settings: Callable[..., Settings]) -> None:
    # Decision (docs/capture.md): geolocation attaches to a measured visit. Location alone
    # sends no IP, so the collector has nothing to look up; with analytics it gets the IP and
    # the flag that allows the lookup.
    alone = capture_one(make_settings(), ("location",), True)
    assert "ip" not in alone and alone["consent"]["location"] is True
    both = capture_one(make_settings(), ("analytics", "location"), True)
    assert both["ip"] == "203.0.113.7"
    assert both["consent"]["location"] is True and both["consent"]["analytics"] is True
    without = capture_one(make_settings(), ("analytics",), True)
    assert without["consent"]["location"] is False


def test_batches_decode_to_the_events_sent_including_what_orjson_refuses(
        make_settings: Callable[..., Settings]) -> None:
    import gzip

    from consent_mw.wire import encode_batch

    settings = make_settings()
    transport = RecordingTransport()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics", "marketing"), capture=capture)
    capture.page(ctx, make_scope("/ホワイトニング", QUERY, HEADERS), 200)
    capture.custom(ctx, "booking", {"value": 3000, "huge": 10**30, "ratio": 0.25,
                                    "note": "予約 \"quoted\" \\ </script>"})
    capture.shutdown(5)
    events = transport.events
    body = encode_batch(events, [], batch_id="b1", sent_at=1)
    decoded = json.loads(gzip.decompress(body))  # as the collector reads it
    assert decoded["events"] == json.loads(json.dumps(events))
    assert decoded["events"][1]["properties"]["huge"] == 10**30


@pytest.mark.parametrize("n", [0, 1, ENCODE_STEP - 1, ENCODE_STEP, ENCODE_STEP + 1, 1234])
def test_a_batch_encoded_in_steps_is_the_one_json_document(n: int) -> None:
    import gzip

    from consent_mw.wire import SCHEMA_ID, encode_batch

    events = [{"event_id": str(i), "path": f"/p/{i}", "big": 10**30 if i == 7 else i}
              for i in range(n)]
    records = [{"record_id": "r1"}]
    decoded = json.loads(gzip.decompress(encode_batch(events, records, batch_id="b",
                                                      sent_at=5)))
    assert decoded == {"schema": SCHEMA_ID, "sent_at": 5, "batch_id": "b", "events": events,
                       "consent_records": records}
