"""Pure event building: query allow-list, channels, language, hints, traits, properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from support.capture import (
    SESSION,
    VISITOR,
    RecordingTransport,
    consent_state,
    make_ctx,
    make_scope,
)

from consent_mw.capture.events import clean_properties
from consent_mw.capture.fields import (
    PageRequest,
    channel,
    json_size,
    primary_language,
    query_params,
    referrer_host,
    request_fields,
)
from consent_mw.capture.hits import HitBuilder, PageHit
from consent_mw.capture.pipeline import Capture
from consent_mw.capture.traits import age_band, clean_traits, zip3
from consent_mw.settings import DEFAULT_CLICK_ID_PARAMS, DEFAULT_SEARCH_PARAMS, Settings


def builder(search_params: tuple[str, ...] = DEFAULT_SEARCH_PARAMS) -> HitBuilder:
    return HitBuilder(analytics=("analytics",), marketing=("marketing",),
                      search_params=search_params, click_id_params=DEFAULT_CLICK_ID_PARAMS)


def hit(path: str = "/", query: bytes = b"", headers: Any = (), *,
        granted: tuple[str, ...] = ("analytics",), client: Any = None,
        ip: str | None = None, visitor: str | None = VISITOR, method: str = "GET") -> PageHit:
    return PageHit(1_713_830_400_123, consent_state(granted), path, method, 200, query,
                   list(headers), visitor, visitor and SESSION, client, ip)


def pageview(path: str = "/", query: str = "", marketing: bool = False,
             **headers: str) -> dict[str, Any]:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    granted = ("analytics", "marketing") if marketing else ("analytics",)
    event, _ = builder()(hit(path, query.encode(), raw, granted=granted, visitor=None),
                         "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d")
    assert event["kind"] == "pageview"
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
    build = builder(search_params=("q",))
    headers = [(b"host", b"clinic.example"), (b"referer", b"https://www.google.com/")]
    query = b"q=hi+me@example.com&utm_source=x"
    granted = ("analytics", "marketing")

    def one(visitor: str, referer: bytes, event_id: str) -> tuple[dict[str, Any], int]:
        raw = [headers[0], (b"referer", referer)]
        return build(hit("/a", query, raw, granted=granted, visitor=visitor,
                         client=("203.0.113.9", 1)), event_id)

    first, size = one("v1", b"https://www.google.com/", "e1")
    again, _ = one("v2", b"https://www.google.com/", "e2")
    other, _ = one("v1", b"https://t.co/x", "e3")
    assert build.misses == 2  # the second visitor's page reused the first one's template
    fresh = request_fields(
        PageRequest("/a", query, tuple(headers), "GET", 200, "203.0.113.9", None, True),
        search_params=("q",), click_id_params=DEFAULT_CLICK_ID_PARAMS, trusted_proxies=())
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


def test_a_new_connection_reuses_the_template_and_the_cookie_never_leaves() -> None:
    headers = ((b"host", b"clinic.example"), (b"cookie", b"cmw_vid=secret"),
               (b"referer", b"https://www.google.com/"), (b"user-agent", b"Mozilla/5.0"))
    build = builder(search_params=("q",))

    def on_port(port: int, event_id: str) -> dict[str, Any]:
        event, size = build(hit("/a", b"q=implant&gclid=1", headers,
                                granted=("analytics", "marketing"),
                                client=("203.0.113.9", port)), event_id)
        assert json_size(event) <= size
        return event

    event = on_port(50000, "e1")
    again = on_port(50001, "e2")  # the same browser on a new connection
    assert event["search_terms"] == "implant" and event["channel"] == "ad"
    assert event["ip"] == "203.0.113.9" and event["click_id_type"] == "gclid"
    assert "cmw_vid=secret" not in json.dumps(event)  # the worker reads analytics headers only
    assert {**again, "event_id": "e1"} == event
    assert build.misses == 1


def test_a_page_without_analytics_builds_an_hourly_anonymous_count() -> None:
    ua = (b"user-agent", b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148")
    event, size = builder()(hit("/tel/090-1234-5678", b"q=x", [(b"cookie", b"a=b"), ua],
                                granted=("marketing",), client=("203.0.113.9", 1)), "e1")
    assert event == {"event_id": "e1", "ts": 1_713_830_400_123 - 1_713_830_400_123 % 3_600_000,
                     "kind": "anonymous", "name": "pageview", "path": "/tel/[phone]",
                     "device_type": "mobile", "consent": consent_state(("marketing",)).categories}
    assert json_size(event) <= size


def test_behind_a_unix_socket_the_proxys_chain_names_the_pageviews_ip() -> None:
    # No peer address (scope["client"] is None): the local proxy's chain names the client,
    # as consent_mw.clientip reads it for the rest of the middleware.
    event, _ = builder()(hit("/", b"", [(b"x-forwarded-for", b"198.51.100.23")]), "e1")
    assert event["ip"] == "198.51.100.23"
    resolved, _ = builder()(hit("/", b"", [], ip="192.0.2.1"), "e2")  # the site resolved it
    assert resolved["ip"] == "192.0.2.1"


def test_held_events_are_invisible_to_the_garbage_collector_until_handed_on() -> None:
    """The exporter holds up to a batch of built events for a second: tracked, they were
    promoted to the oldest generation and set off the web process's full collections."""
    import gc
    import sys

    from consent_mw.capture.batching import Exporter
    from consent_mw.capture.counters import Counters
    from consent_mw.capture.suppression import SuppressionList

    handed: list[list[dict[str, Any]]] = []
    exporter = Exporter(builder(), SuppressionList(b"k" * 16), Counters(),
                        lambda events, records, size: handed.append(events),
                        max_event_bytes=16_384, batch_size=100)
    headers = [(b"user-agent", b"Mozilla/5.0 (iPhone)"), (b"referer", b"https://a.example/")]
    exporter([hit("/a", b"q=1", headers), hit("/b", headers=headers, granted=())])
    held = exporter._events
    assert len(held) == 2 and all("consent" not in event for event in held)
    if sys.version_info < (3, 14):  # 3.14 tracks every dict from its creation (gh-127010)
        assert not any(gc.is_tracked(event) for event in held)
    exporter.flush()
    (events,) = handed
    assert [e["kind"] for e in events] == ["pageview", "anonymous"]
    assert events[0]["consent"]["analytics"] is True
    assert events[1]["consent"]["analytics"] is False
