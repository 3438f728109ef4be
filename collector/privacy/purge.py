"""Purge (Art. 6): delete every row about a person, prove it, and issue a receipt.

Purges are queued and run in batches (:class:`PurgeQueue`): one physical pass and one file scan
serve every request waiting, so a flood of requests costs one pass per batch, not one per
request. Asking is cheap and immediate: :meth:`PurgeQueue.submit` suppresses the person at once
(capture stops, dashboards hide them, web processes reset their browser) and writes the
``started`` audit row; the receipt follows when the batch has run.

A batch, in steps that are each idempotent (an interrupted batch is simply run again, from the
audit trail and the suppression rows, which keep the raw ids until step 3):

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
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

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
    from collector.metrics import CollectorMetrics
    from collector.privacy.operations import Privacy

log = logging.getLogger("consent_mw.collector.purge")

_MUTATE = {**MUTATION_SETTINGS, **PRIVATE_SETTINGS}
_EVENT_ID_COLUMNS = ("visitor_id", "user_id", "consent_id")
_PURGE_TABLES = ("events", "consent_records", "suppressions")
#: Ids one batch may carry: each adds ~90 characters to the mutations' text, and ClickHouse
#: parses at most 256 KiB of it by default.
MAX_BATCH_IDS = 1_500
EMPTY_COUNTS = {"events": 0, "consent_records": 0, "suppressions": 0}
MAX_ATTEMPTS = 3  # batches a purge is tried in before it is left to the next start


class ProgressFn(Protocol):
    def __call__(self, step: str) -> None: ...


def _no_progress(step: str) -> None:
    return None


class PurgeQueueFull(RuntimeError):
    """More purges are waiting than the queue holds; answered 503 with Retry-After."""


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

    def run(self, jobs: Sequence[PurgeJob], progress: ProgressFn = _no_progress) -> None:
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
        tables = list(_PURGE_TABLES)
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

    # -- interrupted purges -------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        """Purges that started and never closed (interrupted or still queued)."""
        return self.store.dicts(
            "SELECT id_type, subject_hash, toString(argMaxIf(request_id, seq, "
            "outcome = 'started')) AS request_id, argMaxIf(requested_by, seq, "
            "outcome = 'started') AS requested_by, argMaxIf(reason, seq, outcome = 'started') "
            "AS reason, minIf(ts, outcome = 'started') AS requested_at "
            "FROM privacy_requests WHERE operation = 'purge' GROUP BY id_type, subject_hash "
            "HAVING maxIf(seq, outcome = 'started') > "
            "maxIf(seq, outcome IN ('completed', 'incomplete')) "
            "ORDER BY subject_hash")

    def resume(self, skip: set[str] | None = None) -> list[PurgeJob]:
        """Run every interrupted purge again (those in ``skip``, request ids still queued in
        this process, are left to the queue); returns their jobs, receipts attached.

        The raw id comes back from the person's own suppression row, which keeps it until
        the batch's deletion step. Past that step only the SHA-256 values in the request's
        ``resolved`` audit row remain: the deletions are finished and verified by query on
        them, without a file scan (there is no raw id left to look for).
        """
        with_ids: list[PurgeJob] = []
        by_sha: list[tuple[PurgeJob, dict[str, Any]]] = []
        for row in self.pending():
            if skip and row["request_id"] in skip:
                continue
            raw = self.store.rows(
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
            self.run(with_ids)
        for job, row in by_sha:
            with self.lock:
                self._finish_by_sha(job, row)
        return with_ids + [job for job, _ in by_sha]

    def _finish_by_sha(self, job: PurgeJob, pending: Mapping[str, Any]) -> None:
        store = self.store
        started = store.rows(
            "SELECT details FROM privacy_requests WHERE request_id = {r:UUID} AND "
            "outcome IN ('started', 'resolved') ORDER BY seq", {"r": pending["request_id"]})
        details = json.loads(started[-1][0]) if started else {}
        shas = [h for h in details.get("sha256", []) if isinstance(h, str) and h.isalnum()]
        subject_hashes = details.get("subject_hashes") or [job.root.hash]
        t0 = time.perf_counter()
        self.rewrite_events()
        self.clear_subjects(subject_hashes)
        self.wait_outdated_parts()
        listed = ", ".join(f"'{h}'" for h in shas) or "''"

        def count_by_sha(table: str, columns: Sequence[str]) -> int:
            pred = " OR ".join(f"lower(hex(SHA256({c}))) IN ({listed})" for c in columns)
            return int(store.scalar(f"SELECT count() FROM {table} WHERE {pred}") or 0)

        after = {"events": count_by_sha("events", _EVENT_ID_COLUMNS),
                 "consent_records": count_by_sha("consent_records",
                                                 ("visitor_id", "consent_id")),
                 "suppressions": count_by_sha("suppressions", ("subject",))}
        job.receipt = self.close(
            job, subject_hashes=list(subject_hashes), deleted=dict(EMPTY_COUNTS), after=after,
            scan=None, scope=None, timings={"verified_s": time.perf_counter() - t0},
            verification="resumed after the raw ids were erased: count() = 0 by query on "
            "SHA-256 of every id; no file scan (no raw id left to look for)")
        job.status = "completed" if job.receipt["remaining"] == 0 else "incomplete"
        job.done.set()


class PurgeQueue:
    """Purges waiting for the next batch, and the thread that runs them.

    Bounded: at most ``max_waiting`` requests wait (beyond, :class:`PurgeQueueFull`), and a
    batch takes at most ``max_batch`` of them and :data:`MAX_BATCH_IDS` ids. The outcome of the
    last ``keep`` requests stays in memory for status pages; older ones are read back from the
    audit trail and the receipts.
    """

    def __init__(self, purger: Purger, *, max_waiting: int = 1_000, max_batch: int = 200,
                 linger: float = 0.5, interval: float = 30.0, keep: int = 10_000,
                 metrics: CollectorMetrics | None = None) -> None:
        self.purger = purger
        self.max_waiting = max_waiting
        self.max_batch = max_batch
        self.linger = linger
        #: At least this long between the starts of two batches: each rewrites and scans the
        #: whole store, so a flood of requests costs at most one pass per interval.
        self.interval = interval
        self._reserved = 0  # submits past the size check, not yet queued
        self.keep = keep
        self.metrics = metrics
        self._waiting: deque[PurgeJob] = deque()
        self._jobs: OrderedDict[str, PurgeJob] = OrderedDict()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __len__(self) -> int:
        return len(self._waiting)

    def waiting(self) -> list[PurgeJob]:
        with self._cond:
            return list(self._waiting)

    def submit(self, root: Subject, reason: str, requested_by: str) -> PurgeJob:
        """Ask for a purge; the person is suppressed before this returns."""
        with self._cond:
            if len(self._waiting) + self._reserved >= self.max_waiting:
                if self.metrics is not None:
                    self.metrics.purges.labels("rejected_queue_full").inc()
                raise PurgeQueueFull(f"{len(self._waiting)} purges are waiting; try later")
            self._reserved += 1  # concurrent submits cannot overshoot the bound
        try:
            job = self.purger.open(root, reason, requested_by)
        finally:
            with self._cond:
                self._reserved -= 1
        with self._cond:
            self._waiting.append(job)
            self._remember(job)
            self._gauge()
            self._cond.notify_all()
        if self.metrics is not None:
            self.metrics.purges.labels("queued").inc()
        return job

    def _remember(self, job: PurgeJob) -> None:
        self._jobs[job.request_id] = job
        while len(self._jobs) > self.keep:
            self._jobs.popitem(last=False)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.purge_queue.set(len(self._waiting))

    def wait(self, job: PurgeJob, timeout: float | None = None) -> PurgeJob:
        """Block until ``job`` has run; without a running worker, run the queue here."""
        if not self.running:
            self.run_waiting()
        job.done.wait(timeout)
        return job

    def run_waiting(self, progress: ProgressFn = _no_progress) -> int:
        """Run everything waiting, batch after batch, in the calling thread."""
        done = 0
        while batch := self._take():
            self._run(batch, progress)
            done += len(batch)
        return done

    def _take(self) -> list[PurgeJob]:
        with self._cond:
            batch: list[PurgeJob] = []
            ids = 0
            while self._waiting and len(batch) < self.max_batch:
                job = self._waiting[0]
                cost = job.ids
                if batch and ids + cost > MAX_BATCH_IDS:
                    break
                batch.append(self._waiting.popleft())
                ids += cost
            self._gauge()
            return batch

    def _run(self, batch: list[PurgeJob], progress: ProgressFn = _no_progress) -> None:
        started = time.perf_counter()
        for job in batch:
            job.attempts += 1
        try:
            self.purger.run(batch, progress)
        except Exception:
            # One bad moment (the store busy, a file vanishing) must not strand everyone in
            # the batch: their jobs wait for the next one, up to MAX_ATTEMPTS; after that they
            # stay in the audit trail and the next start resumes them.
            again = [job for job in batch if job.attempts < MAX_ATTEMPTS]
            for job in again:
                job.status, job.error = "queued", None
                job.done.clear()
            with self._cond:
                self._waiting.extendleft(reversed(again))
                self._gauge()
            raise
        finally:
            self.batches += 1
            m = self.metrics
            if m is not None:
                m.purge_batch_seconds.observe(time.perf_counter() - started)
                m.purge_batch_size.observe(len(batch))
                for job in batch:
                    m.purges.labels(job.status).inc()

    def status(self, request_id: str) -> dict[str, Any] | None:
        """Where a purge is: queued, running, completed (with its receipt) or failed."""
        job = self._jobs.get(request_id)
        if job is not None:
            return job.summary()
        return self._stored_status(request_id)

    def _stored_status(self, request_id: str) -> dict[str, Any] | None:
        try:
            uuid.UUID(request_id)
        except ValueError:
            return None
        store = self.purger.store
        rows = store.rows("SELECT outcome, toString(ts) FROM privacy_requests WHERE "
                          "operation = 'purge' AND request_id = {r:UUID} ORDER BY seq",
                          {"r": request_id})
        if not rows:
            return None
        outcome = str(rows[-1][0])
        receipt = None
        if outcome in ("completed", "incomplete"):
            found = store.dicts(
                "SELECT * FROM purge_receipts WHERE JSONExtractString(details, 'request_id') "
                "= {r:String} ORDER BY verified_at DESC LIMIT 1", {"r": request_id})
            receipt = {k: plain(v) for k, v in found[0].items()} if found else None
        status = outcome if outcome in ("completed", "incomplete") else "queued"
        return {"request_id": request_id, "status": status, "requested_at": rows[0][1],
                "receipt": receipt, "error": None}

    # -- the worker -------------------------------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self.running:
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="collector-purge",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Finish the batch in progress; requests still waiting stay in the audit trail and
        are resumed at the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        last_start = float("-inf")
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    self._cond.wait()
                # Let requests arriving together share the batch, and let the previous
                # batch's interval pass.
                ready = max(time.monotonic() + self.linger, last_start + self.interval)
                while not self._stopping and (remaining := ready - time.monotonic()) > 0:
                    self._cond.wait(remaining)
                if self._stopping:
                    return
            last_start = time.monotonic()
            batch = self._take()
            if not batch:
                continue
            try:
                self._run(batch)
            except Exception:  # the jobs carry the error; the next start resumes them
                log.exception("purge batch of %d failed", len(batch))
