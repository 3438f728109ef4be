"""DiskSpool: atomic files, oldest first, bounded, claimable across processes, restart-safe."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from consent_mw.capture.spool import DiskSpool, Dropped, MemorySpool


def record(i: int) -> dict[str, object]:
    return {"record_id": f"00000000-0000-4000-9000-{i:012d}", "ts": i, "event": "decided"}


def ev(i: int) -> dict[str, object]:
    return {"event_id": f"00000000-0000-4000-8000-{i:012d}", "ts": i, "kind": "anonymous",
            "consent": {}, "path": "/x" * 50}


def test_batches_come_back_oldest_first_with_their_ids_and_sent_at(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 1 << 20)
    for n in range(3):
        spool.put(f"batch-{n}", [ev(n)], [], sent_at=1_000 + n)
    assert spool.counts() == (3, 3, 0)
    seen = []
    while (batch := spool.claim_oldest()) is not None:
        seen.append((batch.batch_id, batch.sent_at, batch.events[0]["event_id"]))
        spool.done(batch)
    assert seen == [(f"batch-{n}", 1_000 + n, ev(n)["event_id"]) for n in range(3)]
    assert spool.counts() == (0, 0, 0)
    assert list(tmp_path.iterdir()) == []


def test_released_batch_is_offered_again(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 1 << 20)
    spool.put("b1", [ev(1)], [], sent_at=1)
    batch = spool.claim_oldest()
    assert batch is not None and spool.claim_oldest() is None  # claimed: not offered twice
    spool.release(batch)
    again = spool.claim_oldest()
    assert again is not None and again.batch_id == "b1" and again.events == [ev(1)]


def test_a_batchs_records_are_spooled_apart_and_come_back_first(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 1 << 20)
    spool.put("b1", [ev(1)], [record(1)], sent_at=7)
    assert spool.counts() == (2, 1, 1)
    first, second = spool.claim_oldest(), spool.claim_oldest()
    assert first is not None and second is not None
    assert (first.batch_id, first.events, first.records) == ("b1.r", [], [record(1)])
    assert (second.batch_id, second.events, second.records) == ("b1", [ev(1)], [])
    assert first.sent_at == second.sent_at == 7


def test_full_spool_drops_the_oldest_and_says_how_many(tmp_path: Path) -> None:
    probe = DiskSpool(tmp_path / "probe", 1 << 20)
    probe.put("p", [ev(i) for i in range(10)], [], sent_at=1)
    one = sum(f.stat().st_size for f in (tmp_path / "probe").iterdir())
    spool = DiskSpool(tmp_path / "s", int(one * 2.5))
    drops = [spool.put(f"b{n}", [ev(i) for i in range(10)], [], sent_at=1) for n in range(4)]
    assert [d.events for d in drops] == [0, 0, 10, 10]
    assert spool.counts()[0] == 2
    first = spool.claim_oldest()
    assert first is not None and first.batch_id == "b2"


def test_a_batch_larger_than_the_spool_is_dropped(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 100)
    assert spool.put("b", [ev(i) for i in range(50)], [], sent_at=1).events == 50
    assert spool.counts() == (0, 0, 0)


def test_claims_of_a_dead_process_and_temp_files_are_recovered(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 1 << 20)
    spool.put("b1", [ev(1)], [], sent_at=1)
    batch = spool.claim_oldest()
    assert batch is not None
    dead_pid = 2**22 + 12345  # above the default pid_max: never a live process
    claimed = Path(batch.handle)
    claimed.rename(claimed.with_name(claimed.name.replace(f"claim-{os.getpid()}",
                                                          f"claim-{dead_pid}")))
    (tmp_path / f".tmp-{dead_pid}-abc").write_bytes(b"half a batch")
    restarted = DiskSpool(tmp_path, 1 << 20)
    assert restarted.counts() == (1, 1, 0)
    assert not (tmp_path / f".tmp-{dead_pid}-abc").exists()


def test_unreadable_file_is_skipped_and_removed(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, 1 << 20)
    (tmp_path / "00000000000000000001-deadbeef-1-0-10.spool").write_bytes(b"not gzip")
    spool.put("good", [ev(1)], [], sent_at=1)
    batch = spool.claim_oldest()
    assert batch is not None and batch.batch_id == "good"
    assert [p.name for p in tmp_path.iterdir() if "deadbeef" in p.name] == []


def test_memory_spool_is_bounded_and_keeps_order() -> None:
    spool = MemorySpool(max_bytes=2000)
    dropped = [spool.put(f"b{n}", [ev(n)] * 3, [], sent_at=1).events for n in range(6)]
    assert sum(dropped) > 0
    batches, events, _ = spool.counts()
    assert events == 3 * batches
    first = spool.claim_oldest()
    assert first is not None
    spool.release(first)
    again = spool.claim_oldest()
    assert again is not None and again.batch_id == first.batch_id


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_records_survive_a_spool_too_small_for_the_events(tmp_path: Path, kind: str) -> None:
    spool: DiskSpool | MemorySpool = (DiskSpool(tmp_path, 6_000) if kind == "disk"
                                      else MemorySpool(6_000))
    dropped = Dropped()
    for n in range(40):  # every batch: ten page views and one consent record
        d = spool.put(f"b{n}", [ev(n * 10 + i) for i in range(10)], [record(n)], sent_at=n)
        dropped.add(d.events, d.records)
    _, events, records = spool.counts()
    assert records == 40 and dropped.records == 0  # every record kept
    assert dropped.events == 400 - events > 0  # the page views paid for the room
    kept = []
    while (batch := spool.claim_oldest()) is not None:
        kept += [e["ts"] for e in batch.events]
        spool.done(batch)
    assert kept == sorted(kept) and kept[-1] == 399  # the oldest page views went first


def test_records_push_out_only_older_records_once_no_page_view_is_left() -> None:
    spool = MemorySpool(300)
    spool.put("e", [ev(1)], [], sent_at=1)
    for n in range(6):
        spool.put(f"r{n}", [], [record(n)], sent_at=n)
    assert spool.counts()[1] == 0  # the page view went first
    assert spool.put("late", [ev(2)], [], sent_at=9).events == 1  # never in place of a record
    left = []
    while (batch := spool.claim_oldest()) is not None:
        left.append(batch.records[0]["ts"])
    assert left == sorted(left) and left[-1] == 5 and len(left) < 6


class FullDisk:
    """A writer for a disk with ``room`` bytes: a write past it leaves a partial file and
    raises ENOSPC, as a real full filesystem does."""

    def __init__(self, directory: Path, room: int) -> None:
        self.directory = directory
        self.room = room
        self.refused = 0

    def __call__(self, path: Path, data: bytes) -> None:
        used = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        if used + len(data) > self.room:
            path.write_bytes(data[: max(0, self.room - used)])
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        path.write_bytes(data)


def test_a_full_disk_evicts_the_oldest_page_views_and_leaves_no_temp_file(
        tmp_path: Path) -> None:
    disk = FullDisk(tmp_path, 8_000)
    spool = DiskSpool(tmp_path, 1 << 30, write=disk)  # a cap far larger than the disk
    dropped = Dropped()
    for n in range(30):
        d = spool.put(f"b{n}", [ev(n * 5 + i) for i in range(5)], [record(n)], sent_at=n)
        dropped.add(d.events, d.records)
    assert disk.refused > 0, "the disk never filled"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")] == []
    _, events, records = spool.counts()
    assert dropped.events == 150 - events > 0 and dropped.records == 0 and records == 30
    batch = None
    while (claimed := spool.claim_oldest()) is not None:
        batch = claimed if claimed.events else batch
        spool.done(claimed)
    assert batch is not None and batch.events[-1]["ts"] == 149  # the newest was kept
    # Room again: nothing more is lost.
    disk.room = 1 << 30
    assert spool.put("after", [ev(1000)], [record(1000)], sent_at=1) == Dropped()


def test_a_disk_that_counts_bytes_keeps_every_record_while_page_views_can_go(
        tmp_path: Path) -> None:
    """A quota (or a writer) that refuses by bytes, on a filesystem that counts blocks: the
    spool must free what the refused write needs, in bytes, not a block per small file, or
    it runs out of page views to evict and starts evicting records."""
    disk = FullDisk(tmp_path, 12_000)
    spool = DiskSpool(tmp_path, 1 << 30, write=disk)
    dropped = Dropped()
    for n in range(20):
        d = spool.put(f"b{n}", [ev(n * 20 + i) for i in range(20)], [], sent_at=n)
        dropped.add(d.events, d.records)
    for n in range(60):  # records alone: ~6 KB in all, half the disk
        d = spool.put(f"r{n}", [], [record(n)], sent_at=100 + n)
        dropped.add(d.events, d.records)
    assert disk.refused > 0, "the disk never filled"
    assert dropped.records == 0 and spool.counts()[2] == 60
    assert spool.counts()[1] > 0  # and not every page view had to go
