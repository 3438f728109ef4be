"""DiskSpool: atomic files, oldest first, bounded, claimable across processes, restart-safe."""

from __future__ import annotations

import os
from pathlib import Path

from consent_mw.capture.spool import DiskSpool, MemorySpool


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
    spool.put("b1", [ev(1)], [{"record_id": "r"}], sent_at=1)
    batch = spool.claim_oldest()
    assert batch is not None and spool.claim_oldest() is None  # claimed: not offered twice
    spool.release(batch)
    again = spool.claim_oldest()
    assert again is not None and again.batch_id == "b1" and again.records == [{"record_id": "r"}]


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
