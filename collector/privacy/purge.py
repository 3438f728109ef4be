"""Purge (Art. 6): delete every row about a person, prove it, and issue a receipt.

Purges are queued (``collector.privacy.purge_queue``) and run in batches by :class:`Purger`:
one physical pass and one file scan serve every request waiting, so a flood of requests costs
one pass per batch, not one per request. Asking is cheap and immediate: :meth:`Purger.open`
suppresses the person at once (capture stops, dashboards hide them, web processes reset their
browser) and writes the ``started`` audit row; the receipt follows when the batch has run.

A batch, in steps that are each idempotent (an interrupted batch is simply run again, from the
audit trail and the suppression rows, which keep the raw ids until step 3;
``collector.privacy.purge_resume``):

1. resolve every person's ids again; a ``resolved`` audit row keeps their SHA-256;
2. wait for ingest calls that passed the suppression check before it;
3. one lightweight ``DELETE`` of their events, one anonymisation of their consent records (the
   decision kept as proof, the links cut), ``APPLY DELETED MASK`` to rewrite the parts, and the
   raw ids cleared from the suppression rows;
4. wait until the outdated parts (the pre-mutation copies) are gone from disk;
5. verify: zero rows by query for each person, and no file under the store directory holding
   any id, raw or inside LZ4 blocks (one scan for the batch);
6. a receipt per person (``purge_receipts``) and a closing audit row.

Mutation statements are written to disk by ClickHouse, so they match ids by hash
(:func:`collector.privacy.subjects.match_sql`), never by the id itself.

A little over 300 lines: the six steps above are one class, in the order they run, so the
idempotence of each can be checked against the others in one read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from collector.ddl.tables import PURGED_TABLES
from collector.errors import CollectorError
from collector.privacy import audit
from collector.privacy.disk_scan import ScanReport, scan_directory
from collector.privacy.subjects import (
    PersonScope,
    Subject,
    count_rows,
    match_sql,
    merged,
    now_utc,
    plain,
    resolve,
    sha256_hex,
)
from collector.store import MUTATION_SETTINGS, PRIVATE_SETTINGS, Store

if TYPE_CHECKING:
    from collector.privacy.operations import Privacy

log = logging.getLogger(__name__)

_MUTATE = {**MUTATION_SETTINGS, **PRIVATE_SETTINGS}
EMPTY_COUNTS = {"events": 0, "consent_records": 0, "suppressions": 0}


class ProgressFn(Protocol):
    def __call__(self, step: str) -> None: ...


def no_progress(step: str) -> None:
    return None


class PurgeFailed(CollectorError, RuntimeError):
    """A purge's batch failed; it stays pending in the audit trail and is resumed."""


@dataclass(slots=True, eq=False)
class PurgeJob:
    """One person's purge, from the request to its receipt."""

    root: Subject
    reason: str
    requested_by: str
    request_id: str
    requested_at: datetime
    before: dict[str, int]  # rows about the person when it was asked, for the receipt
    ids: int = 1  # how many ids the person resolved to: a batch's size is bounded by them
    attempts: int = 0  # batches this job was in (a failed batch is retried, then resumed)
    status: str = "queued"  # queued | running | completed | incomplete | failed
    receipt: dict[str, Any] | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def summary(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "status": self.status,
                "requested_at": plain(self.requested_at), "receipt": self.receipt,
                "error": self.error}


class Purger:
    """Runs batches of purges against the privacy operations' store; one batch at a time."""

    def __init__(self, privacy: Privacy, *, cleanup_timeout: float = 90.0) -> None:
        self.privacy = privacy
        self.cleanup_timeout = cleanup_timeout
        self.lock = threading.Lock()  # APPLY DELETED MASK is table-wide: one pass at a time

    @property
    def store(self) -> Store:
        return self.privacy.store

    # -- asking ---------------------------------------------------------------------------

    def open(self, root: Subject, reason: str, requested_by: str) -> PurgeJob:
        """Suppress the person now (purged: web processes reset their browser) and write the
        ``started`` audit row; the rows go in the next batch."""
        privacy = self.privacy
        scope = resolve(self.store, root)
        subjects = scope.subjects(privacy.key) or [root]
        before = count_rows(self.store, [scope])[0]  # before our own suppression rows
        job = PurgeJob(root=root, reason=reason, requested_by=requested_by,
                       request_id=str(uuid.uuid4()), requested_at=now_utc(), before=before,
                       ids=max(1, len(scope.needles)))
        audit.append(self.store, operation="purge", id_type=root.id_type,
                     subject_hash=root.hash, requested_by=requested_by, reason=reason,
                     outcome="started", request_id=job.request_id)
        privacy.write_suppressions(subjects, active=True, purged=True, root=root,
                                   reason=reason, requested_by=requested_by)
        return job

    # -- a batch ----------------------------------------------------------------------------

    def run(self, jobs: Sequence[PurgeJob], progress: ProgressFn = no_progress) -> None:
        """One physical pass for ``jobs``; each gets its receipt (or its error)."""
        with self.lock:
            try:
                self._run(list(jobs), progress)
            except Exception as exc:
                for job in jobs:
                    if not job.done.is_set():
                        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
                        job.done.set()
                raise

    def _run(self, jobs: list[PurgeJob], progress: ProgressFn) -> None:
        store, privacy = self.store, self.privacy
        t0 = time.perf_counter()
        for job in jobs:
            job.status = "running"
        progress("resolving")
        scopes = [resolve(store, job.root) for job in jobs]
        subjects = [scope.subjects(privacy.key) or [job.root]
                    for job, scope in zip(jobs, scopes, strict=True)]
        for job, scope, subs in zip(jobs, scopes, subjects, strict=True):
            # If the process dies after the raw ids left the store, a resume can still verify
            # by these (SHA-256 of random or already keyed ids: not reversible).
            audit.append(store, operation="purge", id_type=job.root.id_type,
                         subject_hash=job.root.hash, requested_by=job.requested_by,
                         reason=job.reason, outcome="resolved", request_id=job.request_id,
                         details={"sha256": [sha256_hex(n) for n in scope.needles],
                                  "subject_hashes": sorted(s.hash for s in subs)})
        progress("suppressing")
        for job, subs in zip(jobs, subjects, strict=True):  # ids found since it was asked
            privacy.write_suppressions(subs, active=True, purged=True, root=job.root,
                                       reason=job.reason, requested_by=job.requested_by)
        if not privacy.gate.drain():
            log.warning("purge batch: ingest calls still running after 30 s")
        union = merged(scopes)
        counts = count_rows(store, scopes)
        deleted = [{**job.before, "events": c["events"], "consent_records": c["consent_records"]}
                   for job, c in zip(jobs, counts, strict=True)]
        timings: dict[str, float] = {}
        for attempt in range(1, 4):
            progress("hiding")
            if any(c["events"] for c in counts):
                self._hide_events(union)
            timings.setdefault("hidden_s", time.perf_counter() - t0)
            progress("anonymising consent records")
            if any(c["consent_records"] for c in counts):
                pred = " OR ".join([match_sql(store, "visitor_id", union.visitors),
                                    match_sql(store, "consent_id", union.consent_ids)])
                store.command("ALTER TABLE consent_records UPDATE visitor_id = '', "
                              f"consent_id = '', anonymised = true WHERE {pred}",
                              settings=_MUTATE)
            progress("rewriting parts")
            self.rewrite_events()
            # The suppression stays (by hash) so late events keep being dropped; the raw id goes.
            for job, subs in zip(jobs, subjects, strict=True):
                privacy.write_suppressions(subs, active=True, purged=True, root=job.root,
                                           reason=job.reason, requested_by=job.requested_by,
                                           keep_subject=False)
            self.clear_subjects([s.hash for subs in subjects for s in subs])
            progress("removing outdated parts")
            self.wait_outdated_parts()
            timings["physical_s"] = time.perf_counter() - t0
            progress("verifying")
            after = count_rows(store, scopes)
            if not any(any(a.values()) for a in after) or attempt >= 3:
                break
            log.warning("purge batch: rows reappeared (%s); deleting again", after)
            for d, a in zip(deleted, after, strict=True):
                d["events"] += a["events"]
                d["consent_records"] += a["consent_records"]
            counts = after
        scan = (scan_directory(store.path, union.needles)
                if store.embedded and store.path is not None else None)
        timings["verified_s"] = time.perf_counter() - t0
        timings["batch_size"] = len(jobs)
        verification = ("count() = 0 by query on events, consent_records and suppressions; "
                        + ("no file under the store directory holds an id, raw or in LZ4 "
                           "blocks" if scan else "no file scan: the store is a server"))
        for job, scope, subs, d, a in zip(jobs, scopes, subjects, deleted, after, strict=True):
            job.receipt = self.close(
                job, subject_hashes=sorted(s.hash for s in subs), deleted=d, after=a,
                scan=scan, scope=scope, timings=timings, verification=verification)
            job.status = "completed" if job.receipt["remaining"] == 0 else "incomplete"
            job.done.set()
        progress("done")

    def _hide_events(self, union: PersonScope) -> None:
        """Lightweight delete: a patch part when the table supports it, else a mask mutation.

        A patch part is written like an insert (~0.15 s on 10M rows); the mask mutation touches
        every part (seconds). Parts written before migration 3 may refuse the patch mode.
        """
        store = self.store
        pred = " OR ".join(match_sql(store, c, values) for c, values in (
            ("visitor_id", union.visitors), ("user_id", union.users),
            ("consent_id", union.consent_ids)))
        try:
            store.command(f"DELETE FROM events WHERE {pred}", settings={
                **_MUTATE, "lightweight_delete_mode": "lightweight_update"})
        except Exception as exc:
            log.info("patch-part delete unavailable (%s); using a mask mutation", exc)
            store.command(f"DELETE FROM events WHERE {pred}", settings=_MUTATE)

    def rewrite_events(self) -> None:
        """Fold patch parts and deleted masks into the parts (also leftovers of a dead run)."""
        store = self.store
        if store.scalar("SELECT count() FROM system.parts WHERE database = currentDatabase() "
                        "AND table = 'events' AND active AND startsWith(name, 'patch-')"):
            store.command("ALTER TABLE events APPLY PATCHES", settings=_MUTATE)
        if store.scalar("SELECT count() FROM system.parts WHERE database = currentDatabase() "
                        "AND table = 'events' AND active AND has_lightweight_delete"):
            store.command("ALTER TABLE events APPLY DELETED MASK", settings=_MUTATE)

    def clear_subjects(self, subject_hashes: Sequence[str]) -> None:
        """Empty the raw id in every version of these suppression rows."""
        if not subject_hashes:
            return
        params = {"h": sorted(set(subject_hashes))}
        where = "subject_hash IN {h:Array(String)} AND subject != ''"
        if self.store.scalar(f"SELECT count() FROM suppressions WHERE {where}", params):
            self.store.command(f"ALTER TABLE suppressions UPDATE subject = '' WHERE {where}",
                               params, settings=_MUTATE)

    def wait_outdated_parts(self) -> None:
        """Wait until the parts that were outdated when the mutations ended are removed."""
        tables = list(PURGED_TABLES)
        sql = ("SELECT table, name FROM system.parts WHERE database = currentDatabase() "
               "AND table IN {t:Array(String)} AND NOT active")
        pending = {(str(a), str(b)) for a, b in self.store.rows(sql, {"t": tables})}
        deadline = time.monotonic() + self.cleanup_timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending &= {(str(a), str(b)) for a, b in self.store.rows(sql, {"t": tables})}
        if pending:
            log.warning("outdated parts still on disk after %.0f s: %d", self.cleanup_timeout,
                        len(pending))

    def close(self, job: PurgeJob, *, subject_hashes: list[str], deleted: dict[str, int],
              after: dict[str, int], scan: ScanReport | None, scope: PersonScope | None,
              timings: Mapping[str, float], verification: str) -> dict[str, Any]:
        """Write the receipt and the closing audit row; return the receipt."""
        store = self.store
        needles = scope.needles if scope is not None else []
        matches = scan.matches_for(needles) if scan is not None else []
        remaining = sum(after.values()) + len(matches)
        verified_at = now_utc()
        receipt = {
            "receipt_id": str(uuid.uuid4()),
            "request_id": job.request_id,
            "requested_by": job.requested_by,
            "reason": job.reason,
            "requested_at": plain(job.requested_at),
            "verified_at": plain(verified_at),
            "id_type": job.root.id_type,
            "subject_hash": job.root.hash,
            "subject_hashes": subject_hashes,
            "rows_deleted": deleted,
            "remaining_by_query": after,
            "file_scan": scan.as_dict(needles) if scan else None,
            "files_checked": scan.files if scan else 0,
            "remaining": remaining,
            "verification": verification,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        store.insert(
            "purge_receipts",
            [[uuid.UUID(receipt["receipt_id"]), job.requested_at, verified_at, job.requested_by,
              job.reason, job.root.id_type, subject_hashes, deleted, remaining,
              receipt["files_checked"],
              json.dumps({k: receipt[k] for k in ("request_id", "remaining_by_query",
                                                  "file_scan", "verification", "timings")},
                         sort_keys=True)]],
            ["receipt_id", "requested_at", "verified_at", "requested_by", "reason", "id_type",
             "subject_hashes", "rows_deleted", "remaining", "files_checked", "details"])
        audit.append(store, operation="purge", id_type=job.root.id_type,
                     subject_hash=job.root.hash, requested_by=job.requested_by,
                     reason=job.reason, outcome="completed" if remaining == 0 else "incomplete",
                     request_id=job.request_id,
                     details={"receipt_id": receipt["receipt_id"], "rows_deleted": deleted,
                              "remaining": remaining})
        return receipt
