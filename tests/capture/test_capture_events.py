"""Pure event building: query allow-list, channels, language, hints, traits, properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from capture_support import (
    SESSION,
    VISITOR,
    RecordingTransport,
    consent_state,
    make_ctx,
    make_scope,
)

from consent_mw.capture.events import (
    Snapshot,
    age_band,
    build_event,
    channel,
    clean_properties,
    clean_traits,
    primary_language,
    query_params,
    referrer_host,
    zip3,
)
from consent_mw.capture.pipeline import Capture
from consent_mw.settings import DEFAULT_CLICK_ID_PARAMS, DEFAULT_SEARCH_PARAMS, Settings

FLAGS = {"necessary": True, "analytics": True, "location": False, "marketing": False}


def pageview(path: str = "/", query: str = "", marketing: bool = False,
             **headers: str) -> dict[str, Any]:
    snap = Snapshot(kind="page", ts=1_713_830_400_123, consent=FLAGS, analytics=True,
                    marketing=marketing, path=path, query=query, method="GET", status=200,
                    headers={k.replace("_", "-"): v for k, v in headers.items()})
    event = build_event(snap, "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d",
                        search_params=DEFAULT_SEARCH_PARAMS,
                        click_id_params=DEFAULT_CLICK_ID_PARAMS)
    assert event is not None
    return event


def test_query_string_is_dropped_except_allow_listed_params() -> None:
    event = pageview("/search", "q=implant&session=abc123&tel=0312345678&pg=77&utm_source=x",
                     marketing=True)
    text = json.dumps(event)
    assert event["path"] == "/search"
    assert event["search_terms"] == "implant"
    assert event["utm_source"] == "x"
    for leaked in ("abc123", "0312345678", "pg", "77", "session", "tel"):
        assert leaked not in text


def test_search_terms_use_the_first_allow_listed_param_and_are_scrubbed() -> None:
    assert pageview("/", "keyword=%E6%AD%AF%E7%A7%91")["search_terms"] == "歯科"
    event = pageview("/", "s=taro%40example.jp+%E4%BA%88%E7%B4%84")
    assert event["search_terms"] == "[email] 予約"
    assert "search_terms" not in pageview("/", "q=")


def test_path_and_referrer_are_scrubbed() -> None:
    event = pageview("/members/taro@example.jp/tel/090-1234-5678",
                     referer="https://mail.example.com/u/0/?to=hanako@example.jp")
    assert event["path"] == "/members/[email]/tel/[phone]"
    assert event["referrer_host"] == "mail.example.com"


def test_campaign_fields_need_marketing() -> None:
    event = pageview("/", "utm_source=google&gclid=abc", marketing=False)
    assert not {"utm_source", "click_id_type"} & set(event)
    assert event["channel"] == "ad"  # the channel is analytics: it says "ad", no more


def test_campaign_values_are_scrubbed_and_click_id_value_never_sent() -> None:
    event = pageview("/", "utm_campaign=spring+taro%40example.jp&fbclid=IwAR0secret",
                     marketing=True)
    assert event["utm_campaign"] == "spring [email]"
    assert event["click_id_type"] == "fbclid"
    assert "IwAR0secret" not in json.dumps(event)


@pytest.mark.parametrize(("referer", "query", "expected"), [
    (None, "", "direct"),
    ("https://www.google.com/", "", "search"),
    ("https://www.google.co.jp/search?q=x", "", "search"),
    ("https://search.yahoo.co.jp/search?p=x", "", "search"),
    ("https://www.bing.com/", "", "search"),
    ("https://t.co/abc", "", "social"),
    ("https://www.instagram.com/", "", "social"),
    ("https://line.me/R/", "", "social"),
    ("https://clinic.example.jp/treatments", "", "internal"),
    ("https://www.clinic.example.jp/", "", "internal"),
    ("https://blog.example.org/post", "", "referral"),
    ("https://googleusercontent.example.org/", "", "referral"),
    ("https://blog.example.org/post", "utm_source=newsletter", "ad"),
    (None, "yclid=123", "ad"),
])
def test_channel(referer: str | None, query: str, expected: str) -> None:
    ref = referrer_host(referer)
    assert channel(ref, "clinic.example.jp", query_params(query), DEFAULT_CLICK_ID_PARAMS) == (
        expected)


@pytest.mark.parametrize(("header", "expected"), [
    ("ja-JP,ja;q=0.9,en;q=0.8", "ja"),
    ("en-US,en;q=0.9", "en"),
    ("fr;q=0.5, de-CH;q=0.9", "de"),
    ("*", None),
    ("", None),
    (None, None),
    ("zh-Hant-TW", "zh"),
    ("x;q=abc, ko", "ko"),
])
def test_primary_language(header: str | None, expected: str | None) -> None:
    assert primary_language(header) == expected


def test_network_hints_only_take_known_values() -> None:
    assert pageview(ect="3g", save_data="on")["network_type"] == "3g"
    event = pageview(ect="fast-as-light")
    assert "network_type" not in event and "save_data" not in event
    assert pageview(save_data="off")["save_data"] is False


@pytest.mark.parametrize(("value", "expected"), [
    (34, "30-39"), (30, "30-39"), (9, "0-9"), (17, "10-19"), (95, "90+"), ("42", "40-49"),
    ("20-29", "20-29"), (-1, None), (200, None), (True, None), ("thirty", None), (None, None),
    (45.9, "40-49"),
])
def test_age_band(value: object, expected: str | None) -> None:
    assert age_band(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("170-0013", "170"), ("〒１７０－００１３", "170"), ("1700013", "170"), (1700013, "170"),
    ("06", None), (None, None), ("060-0001", "060"),
])
def test_zip3(value: object, expected: str | None) -> None:
    assert zip3(value) == expected


def test_traits_are_allow_listed() -> None:
    traits = clean_traits({"age": 51, "zip": "170-0013", "gender": "male", "occupation": "教員",
                           "name": "山田太郎", "email": "t@example.jp", "phone": "0312345678",
                           "birthday": "1973-01-01"})
    assert traits == {"age_band": "50-59", "zip3": "170", "gender": "male", "occupation": "教員"}


def test_properties_keep_scalars_scrub_strings_and_cap_count() -> None:
    props: dict[str, Any] = {f"k{i}": i for i in range(40)}
    assert len(clean_properties(props)) == 32
    cleaned = clean_properties({"email": "a.b@example.com", "n": 1.5, "nan": float("nan"),
                                "list": [1, 2], "none": None, "ok": True})
    assert cleaned == {"email": "[email]", "n": 1.5, "none": None, "ok": True}


def test_custom_and_identify_snapshots_without_analytics_build_nothing() -> None:
    for kind in ("custom", "identify"):
        snap = Snapshot(kind=kind, ts=1, consent=FLAGS, analytics=False, marketing=True)
        assert build_event(snap, "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d") is None


def test_raw_utf8_query_bytes_are_read_as_utf8(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    transport = RecordingTransport()
    capture = Capture(settings, transport=transport)
    scope = make_scope("/search")
    scope["query_string"] = "q=インプラント".encode()  # a client that did not percent-encode
    capture.page(make_ctx(settings, ("analytics",), capture=capture), scope, 200)
    capture.shutdown(5)
    assert transport.events[0]["search_terms"] == "インプラント"


def test_event_ids_are_unique_rfc9562_uuids() -> None:
    import uuid

    from consent_mw.ids import new_event_id

    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 8 and parsed.variant == uuid.RFC_4122


def test_a_reused_request_build_matches_a_fresh_one_and_keeps_per_event_fields() -> None:
    from consent_mw.capture.events import Snapshot, _request_fields, build_event_sized, json_size

    def snap(visitor: str, referer: bytes) -> Snapshot:
        return Snapshot(kind="page", ts=1_700_000_000_000, consent={"analytics": True},
                        analytics=True, marketing=True, path="/a", method="GET", status=200,
                        query="q=hi+me@example.com&utm_source=x",
                        raw_headers=((b"host", b"clinic.example"), (b"referer", referer)),
                        visitor_id=visitor, session_id="s1", peer="203.0.113.9")

    first, size = build_event_sized(snap("v1", b"https://www.google.com/"), "e1",
                                    search_params=("q",))
    again, _ = build_event_sized(snap("v2", b"https://www.google.com/"), "e2",
                                 search_params=("q",))
    other, _ = build_event_sized(snap("v1", b"https://t.co/x"), "e3", search_params=("q",))
    assert first is not None and again is not None and other is not None
    fresh = _request_fields(snap("v1", b"https://www.google.com/"), ("q",), (), ())
    assert {k: first[k] for k in fresh} == fresh
    assert first["search_terms"] == "hi [email]" and first["utm_source"] == "x"
    assert (first["visitor_id"], again["visitor_id"]) == ("v1", "v2")
    assert (first["event_id"], again["event_id"]) == ("e1", "e2")
    assert (first["channel"], other["channel"]) == ("ad", "ad")
    assert (first["referrer_host"], other["referrer_host"]) == ("www.google.com", "t.co")
    assert json_size(first) <= size  # the bound the worker batches by is never short


def test_event_ids_draw_a_new_prefix_instead_of_wrapping_the_counter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools
    import uuid

    from consent_mw.ids import _EventIds

    ids = _EventIds()
    before = ids()
    monkeypatch.setattr(ids, "_counter", itertools.count(_EventIds._LAST))
    last = ids()
    after = ids()
    assert last.endswith("-ffffffffffff") and last[:24] == before[:24]
    assert after[:24] != before[:24] and after.endswith("-000000000000")
    assert uuid.UUID(after).version == 8


def test_a_queued_hit_builds_the_same_pageview_as_a_snapshot_and_new_ports_reuse_it() -> None:
    from consent_mw.capture.events import HitBuilder, PageHit, json_size

    state = consent_state(("analytics", "marketing"))
    headers = ((b"host", b"clinic.example"), (b"cookie", b"cmw_vid=secret"),
               (b"referer", b"https://www.google.com/"), (b"user-agent", b"Mozilla/5.0"))
    build = HitBuilder(marketing=("marketing",), search_params=("q",))

    def hit(port: int) -> PageHit:
        return (1_700_000_000_000, state, "/a", "GET", 200, b"q=implant&gclid=1",
                headers, VISITOR, SESSION, ("203.0.113.9", port))

    event, size = build(hit(50000), "e1")
    again, _ = build(hit(50001), "e2")  # the same browser on a new connection
    snap = Snapshot(kind="page", ts=1_700_000_000_000, consent=state.categories,
                    analytics=True, marketing=True, gpc=False, path="/a", method="GET",
                    status=200, query="q=implant&gclid=1",
                    raw_headers=tuple(h for h in headers if h[0] != b"cookie"),
                    visitor_id=VISITOR, session_id=SESSION, consent_id=state.consent_id,
                    peer="203.0.113.9")
    assert event == build_event(snap, "e1", search_params=("q",))
    assert event["search_terms"] == "implant" and event["channel"] == "search"
    assert "cmw_vid=secret" not in json.dumps(event)  # the worker keeps analytics headers only
    assert {**again, "event_id": "e1"} == event
    assert build.misses == 1
    assert json_size(event) <= size
