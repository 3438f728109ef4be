"""The middleware's HTTP transport against the real collector app: late replays are stored."""

from __future__ import annotations

import contextlib
import time

from starlette.testclient import TestClient
from support.wire import TOKEN, make_event, make_record

from collector.service import CollectorService
from consent_mw.capture.transport import HttpTransport, TransportError, batch_time

DAY_MS = 86_400_000


def test_a_batch_replayed_two_days_late_is_stored_not_rejected_as_clock_skew(
    service: CollectorService,
) -> None:
    built = int(time.time() * 1000) - 2 * DAY_MS  # spooled while the collector was down
    events = [make_event(ts=built - 1000), make_event(ts=built)]
    records = [make_record(ts=built - 500)]
    transport = HttpTransport("http://testserver", TOKEN,
                              client=TestClient(service.app, raise_server_exceptions=False))

    sent_at = batch_time(events, records)  # what the capture pipeline sends it with
    transport.send(events, records, batch_id="replayed-batch", sent_at=sent_at)
    transport.send(events, records, batch_id="replayed-batch", sent_at=sent_at)  # a retry

    assert service.store.scalar("SELECT count() FROM events") == 2
    assert service.store.scalar("SELECT count() FROM consent_records") == 1


def test_batch_time_is_the_newest_item_and_the_same_on_every_replay() -> None:
    events = [make_event(ts=1_000), make_event(ts=3_000)]
    records = [make_record(ts=2_000)]
    assert batch_time(events, records) == 3_000
    assert batch_time(events, records) == batch_time(list(events), list(records))


def test_a_batch_from_a_clock_two_days_ahead_is_still_refused(
    service: CollectorService,
) -> None:
    ahead = int(time.time() * 1000) + 2 * DAY_MS
    client = TestClient(service.app, raise_server_exceptions=False)
    transport = HttpTransport("http://testserver", TOKEN, client=client)
    # The transport reports the refusal (its own way); what matters is nothing stored.
    with contextlib.suppress(TransportError):
        transport.send([make_event(ts=ahead)], [], batch_id="future-batch", sent_at=ahead)
    assert service.store.scalar("SELECT count() FROM events") == 0


def test_batch_time_counts_only_int_stamps_whatever_else_a_batch_holds() -> None:
    # The usual batch takes one C-level pass; anything unusual falls back to reading each.
    assert batch_time([{"ts": 5}, {"ts": 9}], [{"ts": 7}]) == 9
    assert batch_time([{"ts": 5}, {"ts": 9.5}], []) == 5  # a float is not a stamp
    assert batch_time([{"ts": 5}, {"ts": 1.5}], []) == 5
    assert batch_time([{"ts": 5}, {"ts": "99"}], []) == 5
    assert batch_time([{"ts": 5}, {"kind": "x"}], []) == 5
    before = int(time.time() * 1000)
    assert batch_time([], []) >= before  # nothing stamped: now
    assert batch_time([{"ts": "x"}], []) >= before
