"""Interrupted purges: finding them in the audit trail, and finishing them.

A purge whose process died between its ``started`` audit row and its receipt is found by
:func:`pending` and run again by :func:`resume`, at the next start. Each step of a batch is
idempotent, so running it again is safe; past the step that erased the raw ids, only their
SHA-256 in the ``resolved`` audit row remain, and the purge is finished and verified on those.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from collector.privacy.purge import EMPTY_COUNTS, PurgeJob, Purger
from collector.privacy.subjects import EVENT_SUBJECTS, RECORD_SUBJECTS, Subject
from collector.store import PRIVATE_SETTINGS, Store


def pending(store: Store) -> list[dict[str, Any]]:
    """Purges that started and never closed (interrupted or still queued)."""
    return store.dicts(
        "SELECT id_type, subject_hash, toString(argMaxIf(request_id, seq, "
        "outcome = 'started')) AS request_id, argMaxIf(requested_by, seq, "
        "outcome = 'started') AS requested_by, argMaxIf(reason, seq, outcome = 'started') "
        "AS reason, minIf(ts, outcome = 'started') AS requested_at "
        "FROM privacy_requests WHERE operation = 'purge' GROUP BY id_type, subject_hash "
        "HAVING maxIf(seq, outcome = 'started') > "
        "maxIf(seq, outcome IN ('completed', 'incomplete')) "
        "ORDER BY subject_hash")

def resume(purger: Purger, skip: set[str] | None = None) -> list[PurgeJob]:
    """Run every interrupted purge again (those in ``skip``, request ids still queued in
    this process, are left to the queue); returns their jobs, receipts attached.

    The raw id comes back from the person's own suppression row, which keeps it until
    the batch's deletion step. Past that step only the SHA-256 values in the request's
    ``resolved`` audit row remain: the deletions are finished and verified by query on
    them, without a file scan (there is no raw id left to look for).
    """
    with_ids: list[PurgeJob] = []
    by_sha: list[tuple[PurgeJob, dict[str, Any]]] = []
    store = purger.store
    for row in pending(store):
        if skip and row["request_id"] in skip:
            continue
        raw = store.rows(
            "SELECT subject FROM suppressions FINAL WHERE subject_hash = {h:String} "
            "AND subject != ''", {"h": row["subject_hash"]}, settings=PRIVATE_SETTINGS)
        job = PurgeJob(root=Subject(row["id_type"], str(raw[0][0]) if raw else "",
                                    row["subject_hash"]),
                       reason=row["reason"] or "resume of an interrupted purge",
                       requested_by=row["requested_by"] or "resume",
                       request_id=row["request_id"], requested_at=row["requested_at"],
                       before=dict(EMPTY_COUNTS))
        if raw:
            with_ids.append(job)
        else:
            by_sha.append((job, row))
    if with_ids:
        purger.run(with_ids)
    for job, row in by_sha:
        with purger.lock:
            _finish_by_sha(purger, job, row)
    return with_ids + [job for job, _ in by_sha]

def _finish_by_sha(purger: Purger, job: PurgeJob, pending: Mapping[str, Any]) -> None:
    store = purger.store
    started = store.rows(
        "SELECT details FROM privacy_requests WHERE request_id = {r:UUID} AND "
        "outcome IN ('started', 'resolved') ORDER BY seq", {"r": pending["request_id"]})
    details = json.loads(started[-1][0]) if started else {}
    shas = [h for h in details.get("sha256", []) if isinstance(h, str) and h.isalnum()]
    subject_hashes = details.get("subject_hashes") or [job.root.hash]
    t0 = time.perf_counter()
    purger.rewrite_events()
    purger.clear_subjects(subject_hashes)
    purger.wait_outdated_parts()
    listed = ", ".join(f"'{h}'" for h in shas) or "''"

    def count_by_sha(table: str, columns: Sequence[str]) -> int:
        pred = " OR ".join(f"lower(hex(SHA256({c}))) IN ({listed})" for c in columns)
        return int(store.scalar(f"SELECT count() FROM {table} WHERE {pred}") or 0)

    after = {"events": count_by_sha("events", EVENT_SUBJECTS),
             "consent_records": count_by_sha("consent_records", RECORD_SUBJECTS),
             "suppressions": count_by_sha("suppressions", ("subject",))}
    job.receipt = purger.close(
        job, subject_hashes=list(subject_hashes), deleted=dict(EMPTY_COUNTS), after=after,
        scan=None, scope=None, timings={"verified_s": time.perf_counter() - t0},
        verification="resumed after the raw ids were erased: count() = 0 by query on "
        "SHA-256 of every id; no file scan (no raw id left to look for)")
    job.status = "completed" if job.receipt["remaining"] == 0 else "incomplete"
    job.done.set()
