"""The in-process transport answers exactly what the HTTP transport gets from the collector.

Each scenario runs twice on one collector, once through ``HttpTransport`` posting to the
collector's app and once through ``CollectorService.transport``, with fresh ids each time; what
the sender learns (the send result or the error), what is stored and what is counted must be
the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.wire import TOKEN, make_event, make_record, now_ms

from collector.service import CollectorService
from collector.store import StoreError
from consent_mw.capture.transport import HttpTransport, SendResult, Suppressions, TransportError

DAY = 86_400_000
Send = Callable[..., SendResult | None]
Outcome = tuple[Any, ...]


def transports(service: CollectorService) -> dict[str, Any]:
    client = TestClient(service.app, raise_server_exceptions=False)
    return {"http": HttpTransport("http://testserver", TOKEN, client=client),
            "in-process": service.transport}


def stored(service: CollectorService) -> tuple[int, int]:
    return (int(service.store.scalar("SELECT count() FROM events")),
            int(service.store.scalar("SELECT count() FROM consent_records")))


def counted(service: CollectorService) -> dict[str, float]:
    registry = service.metrics.registry
    names = [("consent_mw_collector_batches_total", "outcome", o)
             for o in ("ok", "partial", "store_error", "error")]
    names += [("consent_mw_collector_rejected_total", "reason", r)
              for r in ("schema", "clock_skew", "bad_batch")]
    return {f"{n}{{{label}={value}}}": registry.get_sample_value(n, {label: value}) or 0.0
            for n, label, value in names}


def outcome(service: CollectorService, transport: Any,
            scenario: Callable[[Any], Any]) -> Outcome:
    """What the sender saw, and what the store and the metrics gained."""
    rows, metrics = stored(service), counted(service)
    try:
        result = scenario(transport)
        seen: Any = SendResult() if result is None else result
    except TransportError as exc:
        seen = ("TransportError", exc.retryable, exc.retry_after, exc.status)
    after, metrics_after = stored(service), counted(service)
    gained = tuple(b - a for a, b in zip(rows, after, strict=True))
    return seen, gained, {k: metrics_after[k] - metrics[k] for k in metrics}


def same_both_ways(service: CollectorService, scenario: Callable[[Any], Any]) -> Outcome:
    seen = {name: outcome(service, t, scenario) for name, t in transports(service).items()}
    assert seen["http"] == seen["in-process"]
    return seen["http"]


def test_a_good_batch(service: CollectorService) -> None:
    def send(t: Any) -> Any:
        return t.send([make_event(), make_event()], [make_record()],
                      batch_id=str(uuid.uuid4()), sent_at=now_ms())

    result, gained, _ = same_both_ways(service, send)
    assert (result, gained) == (SendResult(accepted=3), (2, 1))


def test_items_rejected_are_counted_and_the_rest_stored(service: CollectorService) -> None:
    sent_at = now_ms()  # one time for both, so both reasons name the same ts

    def send(t: Any) -> Any:
        return t.send([make_event(), make_event(kind="nope"),
                       make_event(ts=sent_at - 3 * DAY)], [make_record(event="nope")],
                      batch_id=str(uuid.uuid4()), sent_at=sent_at)

    result, gained, metrics = same_both_ways(service, send)
    assert (result.rejected, result.accepted, gained) == (3, 1, (1, 0))
    assert "the batch's sent_at" in result.reasons[1]
    assert metrics["consent_mw_collector_batches_total{outcome=partial}"] == 1


def test_a_batch_replayed_days_later_is_judged_by_its_sent_at(
        service: CollectorService) -> None:
    def send(t: Any) -> Any:
        built = now_ms() - 2 * DAY  # the spool kept it while the collector was down
        return t.send([make_event(ts=built - 1000)], [make_record(ts=built - 2000)],
                      batch_id=str(uuid.uuid4()), sent_at=built)

    result, gained, _ = same_both_ways(service, send)
    assert (result, gained) == (SendResult(accepted=2), (1, 1))


def test_a_replay_is_accepted_and_stored_once(service: CollectorService) -> None:
    def send(t: Any) -> Any:
        events, sent_at = [make_event()], now_ms()
        t.send(events, [], batch_id=str(uuid.uuid4()), sent_at=sent_at)
        return t.send(events, [], batch_id=str(uuid.uuid4()), sent_at=sent_at)

    result, gained, _ = same_both_ways(service, send)
    assert (result, gained) == (SendResult(accepted=1), (1, 0))


def test_a_batch_that_is_not_the_wire_shape_is_refused_for_good(
        service: CollectorService) -> None:
    def send(t: Any) -> Any:
        return t.send([make_event()], [], batch_id="b" * 65, sent_at=now_ms())

    seen, gained, metrics = same_both_ways(service, send)
    assert seen == ("TransportError", False, None, 400) and gained == (0, 0)
    assert metrics["consent_mw_collector_rejected_total{reason=bad_batch}"] == 1


def test_a_failing_store_is_a_retryable_error(service: CollectorService,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> int:
        raise StoreError("disk full")

    monkeypatch.setattr(service.store, "insert", broken)

    def send(t: Any) -> Any:
        return t.send([make_event()], [], batch_id=str(uuid.uuid4()), sent_at=now_ms())

    seen, _, metrics = same_both_ways(service, send)
    assert seen == ("TransportError", True, 5.0, 503)
    assert metrics["consent_mw_collector_batches_total{outcome=store_error}"] == 1


def test_a_stopped_collector_is_a_retryable_error(service: CollectorService) -> None:
    both = transports(service)
    service.stop()
    seen = {}
    for name, t in both.items():
        with pytest.raises(TransportError) as info:
            t.send([make_event()], [], batch_id=str(uuid.uuid4()), sent_at=now_ms())
        seen[name] = (info.value.retryable, info.value.retry_after, info.value.status)
    assert seen["http"] == seen["in-process"] == (True, 5.0, 503)


def test_suppressions_are_the_same_list_with_the_same_versions(
        service: CollectorService) -> None:
    both = transports(service)

    def fetched(since: int | None = None) -> Suppressions | None:
        answers = {name: t.fetch_suppressions(since) for name, t in both.items()}
        assert answers["http"] == answers["in-process"]
        return answers["http"]

    empty = fetched()
    assert empty is not None and (empty.hashes, empty.purged) == ([], [])
    service.privacy.suppress(visitor_id=uuid.uuid4().hex, reason="test", requested_by="test")
    listed = fetched(empty.version)
    assert listed is not None and len(listed.hashes) == 1 and not listed.unchanged
    unchanged = fetched(listed.version)
    assert unchanged is not None and unchanged.unchanged
    service.privacy.request_purge(visitor_id=uuid.uuid4().hex, reason="test",
                                  requested_by="test")
    purged = fetched(listed.version)
    assert purged is not None and len(purged.hashes) == 2 and len(purged.purged) == 1
