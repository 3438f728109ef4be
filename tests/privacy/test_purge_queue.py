"""Purges are queued and batched, and purged stays purged whatever arrives later."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.privacy import (
    ADMIN,
    KEY,
    insert_events,
    insert_record,
    vid,
    why,
    wire_event,
    wire_record,
)

from collector.privacy import disk_scan, purge
from collector.privacy.disk_scan import scan_directory
from collector.privacy.operations import Privacy
from collector.privacy.purge_queue import PurgeQueueFull
from consent_mw.ids import subject_hash


def test_waiting_purges_share_one_physical_pass_and_one_file_scan(
        privacy: Privacy, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = [vid() for _ in range(5)]
    other = vid()
    for n, target in enumerate(targets, start=1):
        insert_events(store, n, visitor_id=target, consent_id="cid-" + target)
        insert_record(store, visitor_id=target, consent_id="cid-" + target)
    insert_events(store, 4, visitor_id=other)
    scans: list[int] = []
    real_scan = disk_scan.scan_directory

    def counting_scan(root: Any, ids: Any) -> Any:
        ids = list(ids)
        scans.append(len(ids))
        return real_scan(root, ids)

    monkeypatch.setattr(purge, "scan_directory", counting_scan)
    jobs = [privacy.request_purge(visitor_id=t, reason="batch", requested_by="dpo")
            for t in targets]
    assert all(privacy.is_suppressed("visitor_id", t) for t in targets)  # at once
    assert privacy.purges.run_waiting() == 5
    assert privacy.purges.batches == 1 and len(scans) == 1 and scans[0] == 10
    for n, job in enumerate(jobs, start=1):
        assert job.status == "completed" and job.receipt is not None
        assert job.receipt["rows_deleted"]["events"] == n
        assert job.receipt["rows_deleted"]["consent_records"] == 1
        assert job.receipt["remaining"] == 0
        assert privacy.purge_status(job.request_id)["status"] == "completed"  # type: ignore[index]
    assert store.scalar("SELECT count() FROM events") == 4
    assert store.path is not None
    assert scan_directory(store.path, targets + ["cid-" + t for t in targets]).matches == []


def test_the_status_of_a_finished_purge_is_read_back_from_the_store(
        privacy: Privacy, store: Any) -> None:
    target = vid()
    insert_events(store, 2, visitor_id=target)
    job = privacy.request_purge(visitor_id=target, requested_by="dpo")
    privacy.purges.run_waiting()
    fresh = Privacy(store, KEY)  # a restarted collector knows nothing in memory
    found = fresh.purge_status(job.request_id)
    assert found is not None and found["status"] == "completed"
    assert found["receipt"]["remaining"] == 0
    assert fresh.purge_status("not-a-uuid") is None
    assert fresh.purge_status("00000000-0000-4000-8000-000000000000") is None


def test_the_queue_is_bounded(privacy: Privacy, store: Any) -> None:
    privacy.purges.max_waiting = 2
    privacy.request_purge(visitor_id=vid())
    privacy.request_purge(visitor_id=vid())
    with pytest.raises(PurgeQueueFull):
        privacy.request_purge(visitor_id=vid())
    assert privacy.purges.run_waiting() == 2


def test_a_purge_asked_for_before_a_crash_is_finished_at_the_next_start(
        privacy: Privacy, store: Any) -> None:
    target = vid()
    insert_events(store, 3, visitor_id=target)
    privacy.request_purge(visitor_id=target, reason="asked", requested_by="sato")
    # The process dies before the batch runs: the queue is gone, the audit trail is not.
    fresh = Privacy(store, KEY, cleanup_timeout=30)
    fresh.load()
    assert fresh.is_suppressed("visitor_id", target)
    assert len(fresh.pending_purges()) == 1
    receipts = fresh.resume_pending()
    assert [r["remaining"] for r in receipts] == [0]
    assert receipts[0]["requested_by"] == "sato" and receipts[0]["reason"] == "asked"
    assert store.scalar("SELECT count() FROM events") == 0


def test_a_purged_persons_late_events_are_dropped_and_records_stored_without_ids(
        service: Any) -> None:
    target = vid()
    cid = "cid-" + target
    service.ingest.process([wire_event(visitor_id=target, consent_id=cid)],
                           [wire_record(visitor_id=target, consent_id=cid)])
    receipt = service.privacy.purge(visitor_id=target, reason="r", requested_by="dpo")
    assert receipt["remaining"] == 0
    # What a web process's spool replays after the purge: the page and the record.
    result = service.ingest.process([wire_event(visitor_id=target, consent_id=cid)],
                                    [wire_record(visitor_id=target, consent_id=cid),
                                     wire_record(consent_id=cid)])
    assert result.suppressed == 1 and result.anonymised == 2
    store = service.store
    assert store.scalar("SELECT count() FROM events") == 0
    assert store.scalar("SELECT count() FROM consent_records WHERE anonymised AND "
                        "visitor_id = '' AND consent_id = ''") == 3
    assert store.path is not None
    assert scan_directory(store.path, [target, cid]).matches == []


def test_a_purged_person_cannot_be_unsuppressed(privacy: Privacy, store: Any) -> None:
    target = vid()
    insert_events(store, 1, visitor_id=target)
    privacy.purge(visitor_id=target, requested_by="dpo")
    privacy.unsuppress(visitor_id=target, requested_by="dpo")
    assert privacy.is_suppressed("visitor_id", target)


def test_the_api_queues_a_purge_and_reports_it(client: Any, service: Any) -> None:
    target = vid()
    service.ingest.process([wire_event(visitor_id=target)])
    auth = {"Authorization": f"Bearer {ADMIN}"}
    queued = client.post("/v1/privacy/purges", json={"visitor_id": target, "reason": "r",
                                                      "requested_by": "sato"}, headers=auth)
    assert queued.status_code == 202
    url = queued.json()["status_url"]
    deadline = time.monotonic() + 60
    status = client.get(url, headers=auth)
    while status.json()["status"] not in ("completed", "incomplete"):  # the worker's batch
        assert time.monotonic() < deadline
        time.sleep(0.1)
        status = client.get(url, headers=auth)
    assert status.json()["receipt"]["remaining"] == 0
    assert client.get("/v1/privacy/purges/" + vid(), headers=auth).status_code == 404
    service.privacy.purges.max_waiting = 0
    full = client.post("/v1/privacy/purges", json=why(visitor_id=vid()), headers=auth)
    assert full.status_code == 503 and full.headers["retry-after"] == "60"
    metrics = client.get("/metrics").text
    assert 'purges_total{outcome="rejected_queue_full"} 1.0' in metrics
    assert 'purges_total{outcome="completed"} 1.0' in metrics


def test_suppressing_a_purged_person_stores_no_raw_id_and_cannot_lift_the_purge(
        privacy: Privacy, store: Any) -> None:
    target = vid()
    insert_events(store, 1, visitor_id=target)
    privacy.purge(visitor_id=target, requested_by="dpo")
    privacy.suppress(visitor_id=target, reason="again", requested_by="dpo")
    assert store.scalar("SELECT count() FROM suppressions WHERE subject = {v:String}",
                        {"v": target}) == 0
    privacy.unsuppress(visitor_id=target, reason="lift", requested_by="dpo")
    assert privacy.is_suppressed("visitor_id", target)
    assert subject_hash(KEY, "visitor_id", target) in privacy.gate.purged
    assert store.path is not None
    assert scan_directory(store.path, [target]).matches == []


def test_batches_start_at_most_once_per_interval(privacy: Privacy, store: Any) -> None:
    privacy.purges.interval = 3.0
    privacy.purges.linger = 0
    privacy.purges.start()
    try:
        started = time.monotonic()
        first = privacy.request_purge(visitor_id=vid(), requested_by="dpo")
        privacy.purges.wait(first, 60)
        second = privacy.request_purge(visitor_id=vid(), requested_by="dpo")
        third = privacy.request_purge(visitor_id=vid(), requested_by="dpo")
        privacy.purges.wait(third, 60)
        assert second.status == third.status == "completed"
        assert privacy.purges.batches == 2  # the two waiting shared the next pass,
        assert time.monotonic() - started >= 3.0  # which waited out the interval
    finally:
        privacy.purges.stop()


def test_a_batch_that_fails_once_is_retried_not_stranded(
        privacy: Privacy, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    target = vid()
    insert_events(store, 2, visitor_id=target)
    real_scan = disk_scan.scan_directory
    calls: list[int] = []

    def flaky(root: Any, ids: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # the store removed a tmp_merge directory mid-walk, say
            raise FileNotFoundError("tmp_merge_all_1_1_0")
        return real_scan(root, ids)

    monkeypatch.setattr(purge, "scan_directory", flaky)
    job = privacy.request_purge(visitor_id=target, requested_by="dpo")
    with pytest.raises(FileNotFoundError):
        privacy.purges.run_waiting()
    assert job.status == "queued" and privacy.purges.waiting() == [job]
    assert privacy.purges.run_waiting() == 1
    assert job.status == "completed" and job.receipt is not None
    assert job.receipt["remaining"] == 0 and job.attempts == 2


def test_the_file_scan_skips_what_vanishes_while_it_walks(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "data.bin").write_bytes(b"id-123")
    gone = tmp_path / "tmp_merge_1"
    gone.mkdir()
    (gone / "part.bin").write_bytes(b"x")
    listed = disk_scan._files(tmp_path)
    assert len(listed) == 2
    (gone / "part.bin").unlink()  # a merge finishing between the listing and the reading
    gone.rmdir()
    monkeypatch.setattr(disk_scan, "_files", lambda root: listed)
    report = disk_scan.scan_directory(tmp_path, ["id-123"])
    assert report.matches == ["kept/data.bin"]
