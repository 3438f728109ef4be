"""BatchBuffer: bounded, never blocks emit, exports by size, by interval and on demand."""

from __future__ import annotations

import threading
import time
from collections import Counter

from consent_mw.capture.buffer import BatchBuffer

WAIT = 10.0  # generous upper bound for a background export; never a performance claim


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.drops: Counter[str] = Counter()
        self.exported = threading.Event()

    def export(self, items: list[int]) -> None:
        self.batches.append(items)
        self.exported.set()

    def drop(self, reason: str, n: int) -> None:
        self.drops[reason] += n


def make(sink: Sink, **kw: object) -> BatchBuffer[int]:
    options: dict[str, object] = {"max_queue": 100, "batch_size": 10, "interval": 60.0}
    options.update(kw)
    return BatchBuffer(sink.export, drop=sink.drop, **options)  # type: ignore[arg-type]


def test_full_queue_drops_without_blocking_and_counts_queue_full() -> None:
    sink = Sink()
    buf = make(sink, max_queue=3)
    results = [buf.emit(i) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert sink.drops == {"queue_full": 2}
    assert buf.force_flush(1)
    assert sink.batches == [[0, 1, 2]]


def test_worker_exports_when_a_batch_is_full_before_the_interval() -> None:
    sink = Sink()
    buf = make(sink, batch_size=10, interval=3600.0)
    buf.start()
    try:
        for i in range(10):
            buf.emit(i)
        assert sink.exported.wait(WAIT)
        assert sink.batches == [list(range(10))]
    finally:
        buf.shutdown(5)


def test_emit_never_waits_for_the_workers_lock_and_a_skipped_wake_is_made_up() -> None:
    """The worker holds its lock while it waits for the GIL, which the server's thread has:
    emit must not wait for it. A wake it had to skip is made up by the next step."""
    sink = Sink()
    buf = make(sink, batch_size=10, wake_every=5, interval=3600.0)
    buf.start()
    try:
        emitted = threading.Event()

        def emit_a_step() -> None:
            for i in range(5):  # the fifth wakes the worker
                buf.emit(i)
            emitted.set()

        deadline = time.monotonic() + WAIT
        while not buf._cv._waiters and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)  # until the worker waits for a wake (CPython's Condition)
        with buf._cv:  # as the worker does between waking and deciding
            emitter = threading.Thread(target=emit_a_step, daemon=True)
            emitter.start()
            assert emitted.wait(WAIT)  # the old notify blocked here until the lock was free
        assert not sink.exported.wait(0.2)  # that wake was skipped ...
        for i in range(5, 10):
            buf.emit(i)  # ... and the next step's wakes the worker
        assert sink.exported.wait(WAIT)
        assert sink.batches == [list(range(10))]
    finally:
        buf.shutdown(5)


def test_worker_exports_a_partial_batch_when_the_interval_passes() -> None:
    sink = Sink()
    buf = make(sink, batch_size=1000, interval=0.05)
    buf.start()
    try:
        buf.emit(1)
        buf.emit(2)
        assert sink.exported.wait(WAIT)
        assert sink.batches == [[1, 2]]
    finally:
        buf.shutdown(5)


def test_export_is_split_into_batch_size_chunks() -> None:
    sink = Sink()
    buf = make(sink, batch_size=4)
    for i in range(10):
        buf.emit(i)
    assert buf.force_flush(1)
    assert [len(b) for b in sink.batches] == [4, 4, 2]


def test_force_flush_with_a_running_worker_exports_everything_queued() -> None:
    sink = Sink()
    buf = make(sink, batch_size=1000, interval=3600.0)
    buf.start()
    try:
        for i in range(7):
            buf.emit(i)
        assert buf.force_flush(WAIT)
        assert sink.batches == [list(range(7))]
        assert len(buf) == 0
    finally:
        buf.shutdown(5)


def test_force_flush_reports_false_when_the_export_does_not_finish_in_time() -> None:
    release = threading.Event()
    drops: Counter[str] = Counter()

    def export(items: list[int]) -> None:
        release.wait(WAIT)

    buf: BatchBuffer[int] = BatchBuffer(export, batch_size=10, interval=3600.0,
                                        drop=lambda r, n: drops.update({r: n}))
    buf.start()
    try:
        buf.emit(1)
        assert buf.force_flush(0.05) is False
    finally:
        release.set()
        buf.shutdown(5)


def test_shutdown_flushes_then_counts_later_items_as_shutdown() -> None:
    sink = Sink()
    buf = make(sink)
    buf.start()
    for i in range(3):
        buf.emit(i)
    assert buf.shutdown(WAIT)
    assert sink.batches == [[0, 1, 2]]
    assert buf.emit(99) is False
    assert sink.drops == {"shutdown": 1}
    assert not buf.running


def test_an_exporter_failure_is_counted_as_error_and_the_worker_keeps_going() -> None:
    calls: list[list[int]] = []
    drops: Counter[str] = Counter()

    def export(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("boom")

    buf: BatchBuffer[int] = BatchBuffer(export, batch_size=10, interval=3600.0,
                                        drop=lambda r, n: drops.update({r: n}))
    buf.start()
    try:
        buf.emit(1)
        assert buf.force_flush(WAIT)
        buf.emit(2)
        assert buf.force_flush(WAIT)
        assert calls == [[1], [2]]
        assert drops == {"error": 1}
    finally:
        buf.shutdown(5)
