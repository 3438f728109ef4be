"""Fault drills against a real uvicorn web process (httptools, uvloop) and a real
``consent-mw collector`` process on chDB: every page view has a path of its own and is traced
from its 200 to its stored row (``bench/drills.py``; ``bench/bench_drills.py`` runs the same
drills at ~320 and ~1,250 requests a second for docs/benchmarks.md).

The web process runs with a queue of 2,000 items, so at 320 requests a second a collector that
held the worker for 20 s would overflow it: only the spool can keep what the stall holds up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.drills import (
    DrillResult,
    can_mount_tmpfs,
    collector_kills,
    disk_full,
    stall,
    web_kill,
)

pytestmark = pytest.mark.slow
RATE = 320
SMALL_QUEUE = {"CONSENT_MW_QUEUE_SIZE": "2000"}


def assert_served_without_blocking(result: DrillResult) -> None:
    """No web request failed or took a second, whatever the collector did."""
    assert result.failed == 0 and result.blocked == 0, result.summary()
    assert result.p99_ms < 250, f"p99 during the fault: {result.p99_ms} ms"
    assert result.achieved_rate > 0.9 * RATE


def test_a_20_s_collector_stall_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    result = stall(RATE, seconds=20, before=2, after=3, web_env=SMALL_QUEUE,
                   workdir=tmp_path)
    assert result.drained, result.summary()
    assert result.extra["peak_spooled"] > 2000, "the stall did not outlast the queue"
    assert result.sent > 20 * RATE
    assert (result.lost, result.duplicated) == (0, 0), result.lost_paths[:10]
    assert sum(result.dropped.values()) == 0
    assert_served_without_blocking(result)


def test_two_collector_kills_one_during_the_replay_lose_and_duplicate_nothing(
        tmp_path: Path) -> None:
    result = collector_kills(RATE, down=4, before=2, after=3, web_env=SMALL_QUEUE,
                             workdir=tmp_path)
    assert result.drained, result.summary()
    assert result.extra["replay"]["during_replay"], result.extra["replay"]
    assert (result.lost, result.duplicated) == (0, 0), result.lost_paths[:10]
    assert sum(result.dropped.values()) == 0
    assert_served_without_blocking(result)


@pytest.mark.parametrize("disk", ["tmpfs", "quota"])
def test_a_full_disk_drops_the_oldest_page_views_and_keeps_every_consent_record(
        tmp_path: Path, disk: str) -> None:
    """A real small filesystem where this process may mount one (root), and a writer that
    fails with ENOSPC as a full disk does (every machine)."""
    if disk == "tmpfs" and not can_mount_tmpfs():
        pytest.skip("this machine lets no tmpfs be mounted; the quota writer covers it")
    result = disk_full(RATE, fs_bytes=160 * 1024, before=2, full_for=4, after=4,
                       decision_every=50, web_env=SMALL_QUEUE, workdir=tmp_path,
                       tmpfs=disk == "tmpfs")
    assert result.drained, result.summary()
    extra = result.extra
    assert extra["disk"] == disk
    assert extra["overflowed_after_s"] is not None, "the disk never filled"
    # Drops are counted as what they are, and only page views were dropped. Every page lost
    # was counted; a count may exceed the loss by the batch the collector stored as it was
    # killed: unanswered, it was spooled, and later evicted from the full spool.
    full = result.dropped.get("spool_full", 0)
    assert 0 < result.lost <= full <= result.lost + 2 * RATE, result.dropped
    assert {r for r, n in result.dropped.items() if n} == {"spool_full"}
    assert result.duplicated == 0
    records = extra["records"]
    assert records["decisions"] > 10 and records["lost"] == 0 and records["duplicated"] == 0
    assert extra["tmp_files"] == []  # no half-written batch left on the full disk
    # Oldest first: the lost pages are one run (whole batches), and newer pages were kept.
    order = extra["eviction_order"]
    assert order["kept_inside"] == 0 and order["after"] > 0, order
    assert_served_without_blocking(result)


def test_a_web_process_killed_with_the_collector_down_loses_only_its_memory(
        tmp_path: Path) -> None:
    result = web_kill(RATE, seconds=6, web_env=SMALL_QUEUE, workdir=tmp_path)
    assert result.drained, result.summary()
    extra = result.extra
    assert extra["on_disk"] > 0 and extra["tmp_files"] == []
    # Everything on disk arrives exactly once; what was lost was only ever in memory.
    assert extra["on_disk_stored_once"] == extra["on_disk"]
    assert extra["on_disk_duplicated"] == 0 and result.duplicated == 0
    assert result.lost == extra["lost_in_memory_only"]
    assert result.lost <= 2 * RATE  # at most about a flush interval of traffic, and a batch
