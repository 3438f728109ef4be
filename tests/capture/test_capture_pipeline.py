"""Capture end to end with a recording transport: drops by reason, suppression, retries,
spooling and replay, partial success, non-retryable refusals."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from support.capture import VISITOR, RecordingTransport, down, failures, make_ctx, make_scope
from support.servers import wait_for

from consent_mw.capture.pipeline import Capture
from consent_mw.capture.spool import MemorySpool
from consent_mw.capture.transport import RetryPolicy, SendResult, Suppressions, TransportError
from consent_mw.consent.categories import DEFAULT_CATEGORIES, Category
from consent_mw.ids import hash_user_id, subject_hash
from consent_mw.settings import Settings
from consent_mw.state import ConsentState, RequestContext

FAST = RetryPolicy(base=0.001, cap=0.01, probe_every=0.01)
RECORD = {
    "record_id": "8d1e4a3c-5b6f-4d2e-9a1b-2c3d4e5f6a7b",
    "consent_id": "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d",
    "ts": 1_713_830_400_000, "event": "decided", "method": "accept_all", "component": "banner",
    "policy_version": "2024-04-23+abc", "policy_hash": "a" * 64,
    "categories": {"necessary": True, "analytics": True}, "gcm": {}, "gpc": False,
}


def pages(capture: Capture, settings: Settings, n: int,
          granted: tuple[str, ...] = ("analytics",)) -> None:
    ctx = make_ctx(settings, granted, capture=capture)
    for i in range(n):
        capture.page(ctx, make_scope(f"/p/{i}"), 200)


def wait_until(check: Callable[[], bool], capture: Capture, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        capture.force_flush(1)
        if check():
            return True
        time.sleep(0.02)
    return False


def test_full_queue_counts_queue_full_and_keeps_the_rest(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings(queue_size=5)
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 8)
    assert capture.stats()["queued"] == 5
    capture.shutdown(5)
    stats = capture.stats()
    assert stats["sent"] == 5 and stats["dropped"]["queue_full"] == 3


def test_events_over_max_event_bytes_are_dropped_as_too_large(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings(max_event_bytes=1024)
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.custom(ctx, "big", {f"k{i}": "x" * 200 for i in range(10)})
    capture.custom(ctx, "small", {"k": "v"})
    capture.shutdown(5)
    assert [e["name"] for e in transport.events] == ["small"]
    assert capture.stats()["dropped"]["too_large"] == 1


def test_events_after_shutdown_are_counted_as_shutdown(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    capture.start()
    pages(capture, settings, 3)
    capture.shutdown(5)
    pages(capture, settings, 2)
    capture.record(RECORD)
    stats = capture.stats()
    assert stats["sent"] == 3 and stats["dropped"]["shutdown"] == 3


def test_batches_are_cut_at_batch_size(make_settings: Callable[..., Settings],
                                       transport: RecordingTransport) -> None:
    settings = make_settings(batch_size=10)
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 25)
    assert capture.force_flush(5)
    assert [len(b.events) for b in transport.batches] == [10, 10, 5]
    assert len({b.batch_id for b in transport.batches}) == 3


def test_the_worker_builds_in_small_steps_but_sends_whole_batches(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    """Pages are built a few dozen at a time, so the worker never holds the GIL (and the
    queue its requests) for long, but the collector still gets large batches."""
    settings = make_settings(batch_size=500, flush_interval=30.0)
    capture = Capture(settings, transport=transport)
    capture.start()
    try:
        pages(capture, settings, 1200)
        wait_for(lambda: len(transport.events) == 1000, 10, "two full batches")
        stats = capture.stats()
        # Built and held for the next batch, or waiting for the next step: counted either way.
        assert stats["in_flight"] > 0 and stats["queued"] + stats["in_flight"] == 200
        assert [len(b.events) for b in transport.batches] == [500, 500]
        assert capture.force_flush(5)
        assert [len(b.events) for b in transport.batches] == [500, 500, 200]
    finally:
        capture.shutdown(5)


def test_consent_records_ride_in_the_same_batches(make_settings: Callable[..., Settings],
                                                 transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 2)
    capture.write(RECORD)
    capture.shutdown(5)
    assert len(transport.batches) == 1
    assert transport.records == [RECORD]
    assert capture.stats()["records_sent"] == 1


def test_worker_delivers_without_explicit_flush(make_settings: Callable[..., Settings],
                                                transport: RecordingTransport) -> None:
    settings = make_settings(flush_interval=0.05)
    capture = Capture(settings, transport=transport)
    capture.start()
    try:
        pages(capture, settings, 3)
        deadline = time.monotonic() + 10
        while len(transport.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(transport.events) == 3
    finally:
        capture.shutdown(5)


# -- suppression -----------------------------------------------------------------------------

def test_suppressed_visitor_is_dropped_at_enqueue(make_settings: Callable[..., Settings],
                                                  transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    capture.suppressions.add(subject_hash(settings.hash_key, "visitor_id", VISITOR))
    pages(capture, settings, 2)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.custom(ctx, "x", {})
    capture.record(RECORD)  # proof of consent is never suppressed
    capture.shutdown(5)
    assert transport.events == [] and transport.records == [RECORD]
    assert capture.stats()["dropped"]["suppressed"] == 3


def test_suppressed_account_is_dropped_on_identify(make_settings: Callable[..., Settings],
                                                   transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    stored = hash_user_id(settings.hash_key, "account-42")
    capture.suppressions.replace([subject_hash(settings.hash_key, "user_id", stored)], 7)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.identify(ctx, "account-42", {"age": 30})
    capture.identify(ctx, "account-43", {"age": 30})
    capture.shutdown(5)
    assert [e["user_id"] for e in transport.events] == [hash_user_id(settings.hash_key,
                                                                      "account-43")]
    assert capture.stats()["dropped"]["suppressed"] == 1


def test_suppression_arriving_while_queued_still_drops(make_settings: Callable[..., Settings],
                                                       transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 2)
    capture.suppressions.add(subject_hash(settings.hash_key, "visitor_id", VISITOR))
    capture.shutdown(5)
    assert transport.events == []
    assert capture.stats()["dropped"]["suppressed"] == 2


class SuppressingTransport(RecordingTransport):
    def __init__(self, answer: Suppressions | None) -> None:
        super().__init__()
        self.answer = answer
        self.fetches = 0

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        self.fetches += 1
        return self.answer


def test_worker_refreshes_suppressions_from_the_transport(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(suppression_refresh=0.1)
    h = subject_hash(settings.hash_key, "visitor_id", VISITOR)
    t = SuppressingTransport(Suppressions([h], 3, []))
    capture = Capture(settings, transport=t)
    capture.start()
    try:
        assert wait_until(lambda: h in capture.suppressions, capture)
        assert capture.suppressions.version == 3
        pages(capture, settings, 1)
        assert capture.force_flush(5)  # pages are checked against the list by the worker
        assert capture.stats()["dropped"]["suppressed"] == 1
        assert capture.stats()["sent"] == 0
    finally:
        capture.shutdown(5)


def test_collector_without_privacy_routes_keeps_the_local_list(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(suppression_refresh=0.1)
    t = SuppressingTransport(None)  # what HttpTransport answers on 404
    capture = Capture(settings, transport=t)
    capture.suppressions.add("local-hash")
    capture.start()
    try:
        assert wait_until(lambda: t.fetches >= 2, capture)
        assert "local-hash" in capture.suppressions
    finally:
        capture.shutdown(5)
    assert failures(capture) == 0


def test_a_failing_background_task_is_counted_and_the_worker_carries_on(
        make_settings: Callable[..., Settings]) -> None:
    class Broken(RecordingTransport):
        def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
            raise RuntimeError("bug in the transport")

    settings = make_settings(suppression_refresh=0.1, flush_interval=0.05)
    t = Broken()
    capture = Capture(settings, transport=t)
    capture.start()
    try:
        assert wait_until(lambda: capture.stats()["worker_errors"] >= 2, capture)
        pages(capture, settings, 2)
        assert wait_until(lambda: len(t.events) == 2, capture)  # delivery still works
    finally:
        capture.shutdown(5)
    assert capture.stats()["dropped"]["error"] == 0


# -- consent gating ---------------------------------------------------------------------------

@pytest.mark.parametrize(("granted", "conversion", "sent"), [
    ((), False, False),
    (("marketing",), False, False),
    (("marketing",), True, False),
    (("analytics",), False, True),
    (("analytics",), True, False),
    (("analytics", "marketing"), True, True),
])
def test_custom_events_need_analytics_and_conversions_also_marketing(
        make_settings: Callable[..., Settings], transport: RecordingTransport,
        granted: tuple[str, ...], conversion: bool, sent: bool) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    capture.custom(make_ctx(settings, granted, capture=capture), "booked", {},
                   conversion=conversion)
    capture.shutdown(5)
    assert len(transport.events) == (1 if sent else 0)
    assert capture.stats()["dropped"]["no_consent"] == (0 if sent else 1)


def test_excluded_paths_are_not_captured(make_settings: Callable[..., Settings],
                                         transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    for path in ("/_consent/preferences", "/static/app.css", "/dashboards/x", "/ok"):
        capture.page(ctx, make_scope(path), 200)
    capture.shutdown(5)
    assert [e["path"] for e in transport.events] == ["/ok"]


def test_capture_failures_never_reach_the_caller(make_settings: Callable[..., Settings],
                                                 transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    assert failures(capture) == 0
    capture.page(None, make_scope("/"), 200)  # type: ignore[arg-type]
    capture.custom(None, "x", {})  # type: ignore[arg-type]
    capture.identify(None, "u", {})  # type: ignore[arg-type]
    assert capture.stats()["dropped"]["error"] == 3 and failures(capture) == 3


def test_capture_without_a_transport_is_a_no_op(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    capture = Capture(settings)
    pages(capture, settings, 3)
    capture.start()
    assert capture.force_flush(1)
    capture.shutdown(1)
    assert capture.stats()["queued"] == 0 and capture.stats()["sent"] == 0


# -- delivery ---------------------------------------------------------------------------------

def test_outage_spools_in_memory_and_replays_after_recovery(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings(batch_size=5)
    state = {"up": False, "calls": 0}

    def fail() -> Exception | None:
        state["calls"] += 1
        return None if state["up"] else down(retry_after=0.01)

    transport.fail = fail
    capture = Capture(settings, transport=transport, retry=FAST)
    pages(capture, settings, 12)
    assert capture.force_flush(5)
    assert capture.stats()["spooled"] == 12 and transport.events == []
    state["up"] = True
    assert wait_until(lambda: capture.stats()["spooled"] == 0, capture)
    capture.shutdown(5)
    ids = [e["event_id"] for e in transport.events]
    assert len(ids) == 12 == len(set(ids))
    assert capture.stats()["sent"] == 12
    assert failures(capture) == 0  # an outage is retried and spooled, not a failure
    # Replays keep the sent_at the pipeline gave each batch: its newest item's time.
    assert all(b.sent_at == max(e["ts"] for e in b.events) for b in transport.batches)


def test_long_retry_after_spools_at_once_and_holds_further_sends(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    calls: list[int] = []

    def fail() -> Exception | None:
        calls.append(1)
        return down(retry_after=60)

    transport.fail = fail
    capture = Capture(settings, transport=transport, retry=FAST)
    pages(capture, settings, 3)
    assert capture.force_flush(5)
    pages(capture, settings, 3)
    assert capture.force_flush(5)
    assert len(calls) == 1  # no in-line retry, and nothing sent while Retry-After runs
    assert capture.stats()["spooled"] == 6


def test_partial_success_counts_rejected_and_is_not_retried(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    transport.result = SendResult(rejected=2, reasons=("ts: clock skew",) * 2)
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 5)
    capture.shutdown(5)
    stats = capture.stats()
    assert len(transport.batches) == 1
    assert stats["rejected"] == 2 and stats["sent"] == 3 and stats["spooled"] == 0
    assert failures(capture) == 0


@pytest.mark.parametrize("status", [401, 403, 400])
def test_refused_batches_are_counted_not_retried_not_spooled(
        make_settings: Callable[..., Settings], transport: RecordingTransport,
        status: int) -> None:
    settings = make_settings()
    calls: list[int] = []

    def fail() -> Exception | None:
        calls.append(1)
        return TransportError("no", retryable=False, status=status)

    transport.fail = fail
    capture = Capture(settings, transport=transport, retry=FAST)
    pages(capture, settings, 4)
    capture.shutdown(5)
    stats = capture.stats()
    assert len(calls) == 1
    assert stats["rejected"] == 4 and stats["spooled"] == 0
    assert failures(capture) == 0  # a refusal is counted as rejected, not as a failure


def test_payload_too_large_splits_the_batch(make_settings: Callable[..., Settings],
                                            transport: RecordingTransport) -> None:
    settings = make_settings()
    sizes: list[int] = []
    real_send = transport.send

    def send(events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        sizes.append(len(events))
        if len(events) > 3:
            raise TransportError("too big", retryable=False, status=413)
        return real_send(events, records, batch_id=batch_id, sent_at=sent_at)

    transport.send = send  # type: ignore[method-assign]
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 10)
    capture.shutdown(5)
    assert len(transport.events) == 10
    assert all(len(b.events) <= 3 for b in transport.batches)
    assert capture.stats()["rejected"] == 0 and failures(capture) == 0


def test_unexpected_transport_exception_is_counted_as_error(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    transport.fail = lambda: ValueError("bug")
    capture = Capture(settings, transport=transport)
    pages(capture, settings, 2)
    capture.shutdown(5)
    assert capture.stats()["dropped"]["error"] == 2


def test_memory_spool_left_at_shutdown_is_counted(make_settings: Callable[..., Settings],
                                                  transport: RecordingTransport) -> None:
    settings = make_settings()
    transport.fail = lambda: down(retry_after=60)
    capture = Capture(settings, transport=transport, retry=FAST)
    pages(capture, settings, 4)
    capture.shutdown(5)
    assert capture.stats()["dropped"]["shutdown"] == 4


def test_exclusions_match_whole_path_segments(make_settings: Callable[..., Settings],
                                              transport: RecordingTransport) -> None:
    settings = make_settings(exclude_paths=("/static/", "/dashboards"))
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    for path in ("/static/a.css", "/static", "/dashboards", "/dashboards/x", "/dashboardsale",
                 "/staticky"):
        capture.page(ctx, make_scope(path), 200)
    capture.shutdown(5)
    assert [e["path"] for e in transport.events] == ["/dashboardsale", "/staticky"]


def test_a_renamed_analytics_category_gates_by_its_consent_mode_signal(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    text = {"ja": "x", "en": "x"}
    measurement = Category(name="measurement", gcm=("analytics_storage",), label=text,
                           covers=text, purpose=text, retention=text)
    settings = make_settings(categories=(DEFAULT_CATEGORIES[0], measurement))
    capture = Capture(settings, transport=transport)
    for granted in ({"measurement": True}, {"measurement": False}):
        state = ConsentState(decided=True, categories={"necessary": True, **granted})
        ctx = RequestContext(settings=settings, state=state, locale="ja", visitor_id=VISITOR,
                             capture=capture)
        capture.page(ctx, make_scope("/"), 200)
    capture.shutdown(5)
    assert [e["kind"] for e in transport.events] == ["pageview", "anonymous"]


@pytest.mark.parametrize(("method", "status", "counted"), [
    ("GET", 200, True), ("GET", 204, True), ("GET", 301, False), ("GET", 404, False),
    ("POST", 200, False), ("HEAD", 200, False),
])
def test_anonymous_counts_only_successful_page_loads(
        make_settings: Callable[..., Settings], transport: RecordingTransport, method: str,
        status: int, counted: bool) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    capture.page(make_ctx(settings, (), capture=capture), make_scope("/x", method=method),
                 status)
    capture.shutdown(5)
    assert len(transport.events) == (1 if counted else 0)


def test_a_full_spool_drops_the_oldest_and_counts_spool_full(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings(batch_size=10)
    transport.fail = lambda: down(retry_after=60)
    capture = Capture(settings, transport=transport, retry=FAST, spool=MemorySpool(12_000))
    pages(capture, settings, 60)
    assert capture.force_flush(5)
    stats = capture.stats()
    assert stats["dropped"]["spool_full"] > 0
    assert stats["dropped"]["spool_full"] + stats["spooled"] == 60


def test_pageviews_past_the_wire_item_cap_go_out_in_several_batches(
        make_settings: Callable[..., Settings], transport: RecordingTransport,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from consent_mw import wire
    monkeypatch.setattr(wire, "MAX_BATCH_ITEMS", 40)
    settings = make_settings(batch_size=100, queue_size=200)
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    for i in range(90):
        capture.page(ctx, make_scope(f"/p{i}"), 200)
    capture.record({"record_id": "r1", "ts": 1})
    capture.shutdown(5)
    assert [(len(b.events), len(b.records)) for b in transport.batches] == [
        (40, 0), (40, 0), (10, 1)]
    assert sorted(e["path"] for e in transport.events) == sorted(f"/p{i}" for i in range(90))
    assert len({e["event_id"] for e in transport.events}) == 90


def test_a_pageview_is_dropped_as_too_large_only_when_its_real_size_is(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    from consent_mw.capture.fields import json_size

    base = "/deep" * 60  # a real size over the smallest max_event_bytes allowed
    probe = RecordingTransport()
    settings = make_settings()
    capture = Capture(settings, transport=probe)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.page(ctx, make_scope(base + "/short"), 200)
    capture.shutdown(5)
    real = json_size(probe.events[0])

    # The size bound the worker batches by is loose: an event under the limit is kept even
    # when its bound is over it; one a byte over the limit is dropped.
    settings = make_settings(max_event_bytes=real + len("/long") - len("/short"))
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.page(ctx, make_scope(base + "/long"), 200)
    capture.page(ctx, make_scope(base + "/longer"), 200)
    capture.shutdown(5)
    assert [e["path"] for e in transport.events] == [base + "/long"]
    assert capture.stats()["dropped"]["too_large"] == 1


def test_a_pageview_that_cannot_be_built_is_counted_and_the_rest_of_its_batch_is_sent(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    capture = Capture(settings, transport=transport)
    ctx = make_ctx(settings, ("analytics",), capture=capture)
    capture.page(ctx, make_scope("/a"), 200)
    capture.page(ctx, {**make_scope("/broken"), "headers": [None]}, 200)  # not header pairs
    capture.page(ctx, make_scope("/b"), 200)
    capture.shutdown(5)
    assert [e["path"] for e in transport.events] == ["/a", "/b"]
    assert capture.stats()["dropped"]["error"] == 1


def test_a_batch_that_cannot_be_handed_on_is_counted_not_lost_silently() -> None:
    from consent_mw.capture.batching import Exporter
    from consent_mw.capture.counters import Counters
    from consent_mw.capture.hits import HitBuilder
    from consent_mw.capture.suppression import SuppressionList

    def broken(events: Any, records: Any, size: int) -> None:
        raise RuntimeError("a bug past the exporter")

    counters = Counters()
    exporter = Exporter(HitBuilder(analytics=frozenset({"analytics"}), marketing=frozenset()),
                        SuppressionList(b"k" * 16), counters, broken, max_event_bytes=16_384,
                        batch_size=100)
    exporter([RECORD, dict(RECORD, record_id="r2")])
    exporter.flush()  # must not raise into the worker
    assert counters.snapshot()["dropped"]["error"] == 2 and exporter.held == 0


# -- a delivered batch ------------------------------------------------------------------------


class _Item:
    """A stand-in for an event that can be watched being freed."""


def test_a_delivered_batch_is_freed_in_steps_unless_someone_kept_its_list() -> None:
    import weakref

    from consent_mw.capture.delivery import Outgoing
    from consent_mw.capture.sender import RELEASE_STEP, _release

    items = [_Item() for _ in range(2 * RELEASE_STEP + 7)]
    watched = [weakref.ref(item) for item in items]
    batch = Outgoing("b", 0, items, [], 0)
    del items
    _release(batch)
    assert batch.events == []
    assert all(ref() is None for ref in watched)  # freed, every one of them

    kept = [_Item() for _ in range(2 * RELEASE_STEP + 7)]
    batch = Outgoing("c", 0, kept, [], 0)
    _release(batch)  # a transport (here: this test) still holds the list: left whole
    assert len(kept) == 2 * RELEASE_STEP + 7


def test_a_transport_that_keeps_the_lists_it_is_sent_gets_them_whole(
        make_settings: Callable[..., Settings]) -> None:
    class Keeping(RecordingTransport):
        def __init__(self) -> None:
            super().__init__()
            self.lists: list[list[dict[str, Any]]] = []

        def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
                 batch_id: str, sent_at: int) -> SendResult:
            self.lists.append(events)  # the list itself, as a host's queue might
            return super().send(events, records, batch_id=batch_id, sent_at=sent_at)

    transport = Keeping()
    settings = make_settings(flush_interval=0.05, batch_size=1_500)
    capture = Capture(settings, transport=transport)
    capture.start()  # the sender thread frees what it delivered
    try:
        pages(capture, settings, 3_000)
        assert wait_until(lambda: len(transport.events) == 3_000, capture)
        assert sum(map(len, transport.lists)) == 3_000
    finally:
        capture.shutdown(5)


def test_batches_spooled_by_the_sender_thread_keep_their_events_until_replayed(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    # The sender frees what it is done with; a batch the memory spool took is not done with.
    settings = make_settings(batch_size=1_200, flush_interval=0.05)
    state = {"up": False}
    transport.fail = lambda: None if state["up"] else down(retry_after=0.01)
    capture = Capture(settings, transport=transport, retry=FAST)
    capture.start()
    try:
        pages(capture, settings, 2_500)
        assert wait_until(lambda: capture.stats()["spooled"] == 2_500, capture)
        state["up"] = True
        assert wait_until(lambda: capture.stats()["sent"] == 2_500, capture)
        ids = [e["event_id"] for e in transport.events]
        assert len(ids) == 2_500 == len(set(ids))
    finally:
        capture.shutdown(5)
