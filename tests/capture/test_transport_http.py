"""HttpTransport: the request it makes and how it classifies each collector answer."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from consent_mw import wire
from consent_mw.capture.transport import (
    HttpTransport,
    InMemoryTransport,
    SendResult,
    TransportError,
    is_retryable,
    parse_retry_after,
)
from consent_mw.config import SettingsError

EVENT = {"event_id": "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d", "ts": 1, "kind": "anonymous",
         "consent": {}}


def transport_answering(handler: Callable[[httpx.Request], httpx.Response],
                        seen: list[httpx.Request] | None = None, *,
                        url: str = "https://collector.example/",
                        compression: str = "auto") -> HttpTransport:
    def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(record))
    return HttpTransport(url, "tok-123", client=client, compression=compression)


def batch_of(request: httpx.Request) -> dict[str, Any]:
    """The batch a request carries, read as the collector reads it (by Content-Encoding)."""
    gzipped = request.headers["content-encoding"] == "gzip"
    body: dict[str, Any] = json.loads(gzip.decompress(request.content) if gzipped
                                      else request.content)
    return body


@pytest.mark.parametrize(("url", "compression", "encoding"), [
    ("https://collector.example/", "auto", "gzip"),
    ("http://10.0.0.7:8100", "auto", "gzip"),
    ("http://localhost.example.com:8100", "auto", "gzip"),
    ("http://127.0.0.1:8100", "auto", "identity"),
    ("http://127.8.0.1:8100", "auto", "identity"),
    ("http://[::1]:8100", "auto", "identity"),
    ("http://LOCALHOST:8100", "auto", "identity"),
    ("http://collector.localhost:8100", "auto", "identity"),
    ("http://127.0.0.1:8100", "gzip", "gzip"),
    ("https://collector.example/", "identity", "identity"),
])
def test_batches_are_gzipped_unless_the_collector_is_on_this_host(
        url: str, compression: str, encoding: str) -> None:
    seen: list[httpx.Request] = []
    t = transport_answering(lambda r: httpx.Response(200, json={"rejected": []}), seen,
                            url=url, compression=compression)
    assert t.send([EVENT], [], batch_id="b", sent_at=1) == SendResult(accepted=1)
    (request,) = seen
    assert request.headers["content-encoding"] == encoding
    assert batch_of(request)["events"] == [EVENT]


def test_a_collector_refusing_a_plain_batch_as_too_large_gets_it_gzipped_from_then_on() -> None:
    seen: list[httpx.Request] = []

    def small_limit(request: httpx.Request) -> httpx.Response:
        if request.headers["content-encoding"] != "gzip":
            return httpx.Response(413, json={"error": "too_large"})
        return httpx.Response(200, json={"rejected": []})

    t = transport_answering(small_limit, seen, url="http://127.0.0.1:8100")
    assert t.send([EVENT] * 3, [], batch_id="b1", sent_at=1) == SendResult(accepted=3)
    assert t.send([EVENT], [], batch_id="b2", sent_at=2) == SendResult(accepted=1)
    assert [(r.headers["content-encoding"], batch_of(r)["batch_id"]) for r in seen] == [
        ("identity", "b1"), ("gzip", "b1"), ("gzip", "b2")]


def test_a_gzipped_batch_refused_as_too_large_is_not_sent_again() -> None:
    seen: list[httpx.Request] = []
    t = transport_answering(lambda r: httpx.Response(413), seen, url="http://127.0.0.1:8100")
    with pytest.raises(TransportError) as info:
        t.send([EVENT], [], batch_id="b", sent_at=1)
    assert info.value.status == 413 and info.value.retryable is False
    assert [r.headers["content-encoding"] for r in seen] == ["identity", "gzip"]


@pytest.mark.parametrize(("compression", "answer"), [
    ("auto", {"error": "too_many_items", "message": "over 5000 events"}),  # counted inflated
    ("identity", {"error": "too_large", "message": "body over 1000 bytes"}),  # asked for
])
def test_a_plain_batch_is_not_gzipped_again_when_that_cannot_help_or_was_not_asked(
        compression: str, answer: dict[str, str]) -> None:
    seen: list[httpx.Request] = []
    t = transport_answering(lambda r: httpx.Response(413, json=answer), seen,
                            url="http://127.0.0.1:8100", compression=compression)
    with pytest.raises(TransportError) as info:
        t.send([EVENT], [], batch_id="b", sent_at=1)
    assert info.value.status == 413  # the sender halves the batch (delivery)
    assert [r.headers["content-encoding"] for r in seen] == ["identity"] and not t.gzip


def test_an_unknown_compression_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="collector_compression"):
        HttpTransport("http://127.0.0.1:8100", compression="zstd")


def test_posts_a_gzip_batch_with_bearer_token() -> None:
    seen: list[httpx.Request] = []
    t = transport_answering(lambda r: httpx.Response(200, json={"accepted": 1, "rejected": []}),
                            seen)
    assert t.send([EVENT], [], batch_id="b-1", sent_at=1_713_830_400_000) == SendResult(accepted=1)
    (request,) = seen
    assert request.url == "https://collector.example/v1/events"
    assert request.headers["authorization"] == "Bearer tok-123"
    assert request.headers["content-encoding"] == "gzip"
    body: dict[str, Any] = json.loads(gzip.decompress(request.content))
    assert body["schema"] == wire.SCHEMA_ID and body["batch_id"] == "b-1"
    assert body["sent_at"] == 1_713_830_400_000  # as the pipeline computed it, not its own
    assert body["events"] == [EVENT] and body["consent_records"] == []


def test_400_with_per_item_reasons_is_a_partial_success() -> None:
    answer = {"accepted": 3, "rejected": [{"index": 1, "type": "event", "event_id": "x",
                                           "reason": "ts: clock skew"}]}
    t = transport_answering(lambda r: httpx.Response(400, json=answer))
    assert t.send([EVENT] * 4, [], batch_id="b", sent_at=1) == SendResult(
        rejected=1, reasons=("ts: clock skew",), accepted=3)


def test_400_without_item_reasons_refuses_the_whole_batch() -> None:
    t = transport_answering(lambda r: httpx.Response(400, json={"error": "invalid_json"}))
    with pytest.raises(TransportError) as info:
        t.send([EVENT], [], batch_id="b", sent_at=1)
    assert info.value.retryable is False


@pytest.mark.parametrize(("status", "retryable"), [
    (401, False), (403, False), (413, False), (404, False), (429, True), (500, True),
    (502, True), (503, True), (504, True),
])
def test_status_classification(status: int, retryable: bool) -> None:
    t = transport_answering(lambda r: httpx.Response(status, headers={"Retry-After": "7"}))
    with pytest.raises(TransportError) as info:
        t.send([EVENT], [], batch_id="b", sent_at=1)
    assert info.value.retryable is retryable and info.value.status == status
    if retryable:
        assert info.value.retry_after == 7.0


@pytest.mark.parametrize(("status", "retryable"), [
    (408, True), (425, True), (429, True), (500, True), (503, True), (400, False),
    (401, False), (404, False), (413, False),
])
def test_is_retryable_names_the_answers_worth_sending_again(status: int,
                                                            retryable: bool) -> None:
    assert is_retryable(status) is retryable


def test_unreachable_collector_is_retryable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    t = transport_answering(refuse)
    with pytest.raises(TransportError) as info:
        t.send([EVENT], [], batch_id="b", sent_at=1)
    assert info.value.retryable is True


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_suppressions_are_fetched_with_the_token_and_404_means_unsupported() -> None:
    seen: list[httpx.Request] = []
    t = transport_answering(lambda r: httpx.Response(200, json={"hashes": ["a", "b", 3],
                                                                "purged": ["b", 4],
                                                                "version": 9}), seen)
    assert t.fetch_suppressions() == (["a", "b"], 9, ["b"], False)
    assert seen[0].url.path == "/v1/privacy/suppressions"
    assert seen[0].headers["authorization"] == "Bearer tok-123"
    assert transport_answering(lambda r: httpx.Response(404)).fetch_suppressions() is None
    with pytest.raises(TransportError):
        transport_answering(lambda r: httpx.Response(200, json=[1])).fetch_suppressions()


def test_both_transports_count_the_same_batch_alike() -> None:
    """What capture counts must not depend on which transport it was given."""
    http = transport_answering(lambda r: httpx.Response(200, json={"accepted": 2}))
    memory = InMemoryTransport()
    batch: dict[str, Any] = {"batch_id": "b", "sent_at": 7}
    assert (http.send([EVENT, EVENT], [], **batch)
            == memory.send([EVENT, EVENT], [], **batch) == SendResult(accepted=2))
    assert memory.batches[0].sent_at == 7  # the pipeline's sent_at, as Http sends it
