"""Visitor rights as provable operations: suppress (Art. 7), purge (Art. 6), export (Art. 5).

A person is named by ``visitor_id`` or ``user_id`` and resolved to every id they have in the
store (``collector.privacy.subjects``). Suppression state lives in the one
:class:`~collector.privacy.gate.SuppressionGate` ingest checks; purges run in batches
(``collector.privacy.purge``). Every operation is appended to the hash-chained audit trail
(``collector.privacy.audit``), and names who asked for it.

Statements that carry an id run with ``PRIVATE_SETTINGS`` (kept out of query logs).

A little over 300 lines: this is the one facade the admin API, the staff page, the CLI and
the in-process rights call, and each operation keeps its audit and suppression steps together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from collector.privacy import audit, purge_resume
from collector.privacy.gate import SuppressionGate, SuppressionListener
from collector.privacy.purge import ProgressFn, PurgeFailed, PurgeJob, Purger, no_progress
from collector.privacy.purge_queue import PurgeQueue
from collector.privacy.subjects import (
    PersonScope,
    Subject,
    count_rows,
    now_utc,
    parse_subject,
    plain,
    plain_rows,
    resolve,
)
from collector.store import PRIVATE_SETTINGS, Store

if TYPE_CHECKING:
    from collector.metrics import CollectorMetrics

log = logging.getLogger(__name__)

SUPPRESSION_COLUMNS = ["id_type", "subject", "subject_hash", "active", "purged", "root_hash",
                       "reason", "requested_by", "updated_at", "version"]


class Privacy:
    """Suppress, unsuppress, purge and export against one store (owned by this process)."""

    def __init__(self, store: Store | Callable[[], Store], key: bytes, *,
                 gate: SuppressionGate | None = None, cleanup_timeout: float = 90.0,
                 purge_interval: float = 30.0,
                 metrics: CollectorMetrics | None = None) -> None:
        self._store_fn: Callable[[], Store] = store if callable(store) else (lambda: store)
        self.key = key
        self.gate = gate if gate is not None else SuppressionGate(key)
        self._lock = threading.RLock()  # suppression writes and their versions
        self.purger = Purger(self, cleanup_timeout=cleanup_timeout)
        self.purges = PurgeQueue(self.purger, interval=purge_interval, metrics=metrics)

    @property
    def store(self) -> Store:
        return self._store_fn()

    @property
    def version(self) -> int:
        return self.gate.version

    def subject(self, *, visitor_id: str | None = None, user_id: str | None = None) -> Subject:
        return parse_subject(self.key, visitor_id=visitor_id, user_id=user_id)

    def resolve(self, root: Subject) -> PersonScope:
        return resolve(self.store, root)

    # -- suppression state --------------------------------------------------------------

    def load(self) -> None:
        """Read the active suppressions into the gate (at start; the table is the truth)."""
        rows = self.store.rows(
            "SELECT subject_hash, purged FROM suppressions FINAL WHERE active")
        top = self.store.scalar("SELECT max(version) FROM suppressions")
        self.gate.set((str(r[0]) for r in rows), (str(r[0]) for r in rows if r[1]),
                      int(top or 0))

    def attach(self, listener: SuppressionListener) -> None:
        """Keep an in-process capture's suppression list (or any listener) in step."""
        self.gate.attach(listener)

    def is_suppressed(self, id_type: str, stored_id: str) -> bool:
        return self.gate.is_suppressed(id_type, stored_id)

    def suppression_list(self) -> dict[str, Any]:
        """What web processes poll: subject hashes, the purged ones, a version."""
        return self.gate.snapshot()

    def suppressions_since(self, since: int | None) -> dict[str, Any]:
        """What a web process holding version ``since`` is told: ``{"version", "unchanged":
        true}`` while that is still current (the list only grows with purges, and every web
        process asks every few seconds), else :meth:`suppression_list`. The HTTP route and
        the in-process transport both answer with this."""
        version = self.version
        if since is not None and since == version:
            return {"version": version, "unchanged": True}
        return self.suppression_list()

    def write_suppressions(self, subjects: Sequence[Subject], *, active: bool, purged: bool,
                           root: Subject, reason: str, requested_by: str,
                           keep_subject: bool = True) -> None:
        """Rows in ``suppressions``, then the gate: ingest obeys them from the next item."""
        if not subjects:
            return
        with self._lock:
            version = max(self.gate.version + 1, time.time_ns() // 1000)
            now = now_utc()
            kept = self._purged_subjects(subjects) if active and not purged else None
            rows = []
            for s in subjects:
                row_purged, subject = purged, s.stored if keep_subject else ""
                if kept is not None and s.hash in self.gate.purged:
                    # A purged subject stays purged whatever is written later: a suppression
                    # after the purge must not make it liftable, nor store its id again (a
                    # purge still running keeps the id it needs until its last step).
                    row_purged, subject = True, subject if s.hash in kept else ""
                rows.append([s.id_type, subject, s.hash, active, row_purged, root.hash, reason,
                             requested_by, now, version])
            self.store.insert("suppressions", rows, SUPPRESSION_COLUMNS,
                              settings=PRIVATE_SETTINGS)
            self.gate.change((s.hash for s in subjects), active=active, purged=purged,
                             version=version)

    def _purged_subjects(self, subjects: Sequence[Subject]) -> set[str]:
        """Of ``subjects`` whose purge was asked for, the hashes whose raw id the store still
        keeps (their purge has not reached its last step)."""
        gone = [s.hash for s in subjects if s.hash in self.gate.purged]
        if not gone:
            return set()
        return {str(r[0]) for r in self.store.rows(
            "SELECT subject_hash FROM suppressions FINAL WHERE subject_hash IN "
            "{h:Array(String)} AND subject != ''", {"h": gone}, settings=PRIVATE_SETTINGS)}

    # -- suppress / unsuppress ----------------------------------------------------------

    def suppress(self, *, visitor_id: str | None = None, user_id: str | None = None,
                 reason: str = "", requested_by: str = "") -> dict[str, Any]:
        """Stop capture and hide existing rows from dashboards and partner exports."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        subjects = self.resolve(root).subjects(self.key) or [root]
        self.write_suppressions(subjects, active=True, purged=False, root=root, reason=reason,
                                requested_by=requested_by)
        hashes = sorted(s.hash for s in subjects)
        row = audit.append(self.store, operation="suppress", id_type=root.id_type,
                           subject_hash=root.hash, requested_by=requested_by, reason=reason,
                           outcome="done", details={"subject_hashes": hashes})
        return {"request_id": row["request_id"], "operation": "suppress",
                "id_type": root.id_type, "subject_hash": root.hash, "subject_hashes": hashes,
                "active": True, "version": self.version}

    def unsuppress(self, *, visitor_id: str | None = None, user_id: str | None = None,
                   reason: str = "", requested_by: str = "") -> dict[str, Any]:
        """Lift a suppression (rows were kept, so dashboards show them again).

        A purged person stays suppressed: their rows are gone, and lifting it would let a
        returning browser's spooled events bring their ids back.
        """
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        rows = self.store.rows(
            "SELECT id_type, subject, subject_hash FROM suppressions FINAL "
            "WHERE active AND NOT purged AND (subject_hash = {h:String} OR "
            "root_hash = {h:String})", {"h": root.hash}, settings=PRIVATE_SETTINGS)
        subjects = [Subject(str(r[0]), str(r[1]), str(r[2])) for r in rows]
        self.write_suppressions(subjects, active=False, purged=False, root=root,
                                reason=reason, requested_by=requested_by)
        hashes = sorted(s.hash for s in subjects)
        row = audit.append(self.store, operation="unsuppress", id_type=root.id_type,
                           subject_hash=root.hash, requested_by=requested_by, reason=reason,
                           outcome="done" if subjects else "not_suppressed",
                           details={"subject_hashes": hashes})
        return {"request_id": row["request_id"], "operation": "unsuppress",
                "id_type": root.id_type, "subject_hash": root.hash, "subject_hashes": hashes,
                "active": False, "version": self.version}

    # -- purge --------------------------------------------------------------------------

    def request_purge(self, *, visitor_id: str | None = None, user_id: str | None = None,
                      reason: str = "", requested_by: str = "") -> PurgeJob:
        """Queue a purge: the person is suppressed when this returns, the rows go in the
        next batch (``purge_status`` follows it)."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        return self.purges.submit(root, reason, requested_by)

    def purge(self, *, visitor_id: str | None = None, user_id: str | None = None,
              reason: str = "", requested_by: str = "",
              progress: ProgressFn = no_progress) -> dict[str, Any]:
        """Delete every row about the person, prove it, and return the receipt (waits for
        the batch; without a running queue worker, runs it in this thread)."""
        job = self.request_purge(visitor_id=visitor_id, user_id=user_id, reason=reason,
                                 requested_by=requested_by)
        if not self.purges.running:
            self.purges.run_waiting(progress)
        self.purges.wait(job)
        if job.receipt is None:
            raise PurgeFailed(job.error or "the purge did not finish")
        return job.receipt

    def purge_status(self, request_id: str) -> dict[str, Any] | None:
        return self.purges.status(request_id)

    def pending_purges(self) -> list[dict[str, Any]]:
        """Purges that started and never closed: ``resume_pending`` ends them."""
        return purge_resume.pending(self.store)

    def resume_pending(self) -> list[dict[str, Any]]:
        """Run every purge not finished: those waiting in this process's queue (a failed batch
        leaves its jobs there), then those the audit trail says were interrupted; returns
        their receipts."""
        waiting = self.purges.waiting()
        if not self.purges.running:
            self.purges.run_waiting()
        jobs = purge_resume.resume(self.purger,
                                   skip={j.request_id for j in self.purges.waiting()})
        return [job.receipt for job in [*waiting, *jobs] if job.receipt is not None]

    def receipts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Purge receipts, newest first (they hold hashes only)."""
        rows = self.store.dicts(
            "SELECT * FROM purge_receipts ORDER BY requested_at DESC LIMIT {n:UInt32}",
            {"n": max(1, min(limit, 10_000))})
        return plain_rows(rows)

    # -- export -------------------------------------------------------------------------

    def export(self, *, visitor_id: str | None = None,
               user_id: str | None = None) -> dict[str, Any]:
        """Everything stored about the person (an unknown id gives empty lists)."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        scope = self.resolve(root)
        s, p = self.store, PRIVATE_SETTINGS
        params = {"v": scope.visitors, "u": scope.users, "c": scope.consent_ids}
        hashes = sorted({root.hash, *(x.hash for x in scope.subjects(self.key))})
        events = s.dicts(
            "SELECT * FROM events WHERE visitor_id IN {v:Array(String)} OR user_id IN "
            "{u:Array(String)} OR consent_id IN {c:Array(String)} ORDER BY ts",
            params, settings=p)
        records = s.dicts(
            "SELECT * FROM consent_records WHERE visitor_id IN {v:Array(String)} OR "
            "consent_id IN {c:Array(String)} ORDER BY ts", params, settings=p)
        supp = s.dicts(
            "SELECT id_type, subject, subject_hash, active, purged, reason, requested_by, "
            "updated_at FROM suppressions FINAL WHERE subject_hash IN {h:Array(String)} "
            "ORDER BY updated_at", {"h": hashes}, settings=p)
        receipts = s.dicts(
            "SELECT * FROM purge_receipts WHERE hasAny(subject_hashes, {h:Array(String)}) "
            "ORDER BY requested_at", {"h": hashes}, settings=p)
        return {
            "subject": {"id_type": root.id_type, "subject_hash": root.hash,
                        "visitor_ids": scope.visitors, "user_ids": scope.users,
                        "consent_ids": scope.consent_ids, "exported_at": plain(now_utc()),
                        "suppressed": root.hash in self.gate.hashes},
            "events": plain_rows(events),
            "consent_records": plain_rows(records),
            "suppressions": plain_rows(supp),
            "receipts": plain_rows(receipts),
        }

    def export_logged(self, *, visitor_id: str | None = None, user_id: str | None = None,
                      requested_by: str = "", reason: str = "") -> dict[str, Any]:
        """``export`` plus its audit row (the API and the CLI use this)."""
        data = self.export(visitor_id=visitor_id, user_id=user_id)
        subj = data["subject"]
        audit.append(self.store, operation="export", id_type=subj["id_type"],
                     subject_hash=subj["subject_hash"], requested_by=requested_by,
                     reason=reason, outcome="done",
                     details={k: len(data[k]) for k in ("events", "consent_records",
                                                         "suppressions", "receipts")})
        return data

    def summary(self, *, visitor_id: str | None = None,
                user_id: str | None = None) -> dict[str, Any]:
        """Row counts, first/last seen and suppression state: for the staff page."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        scope = self.resolve(root)
        counts = count_rows(self.store, [scope])[0]
        seen = self.store.rows(
            "SELECT min(ts), max(ts) FROM events WHERE visitor_id IN {v:Array(String)} OR "
            "user_id IN {u:Array(String)}", {"v": scope.visitors, "u": scope.users},
            settings=PRIVATE_SETTINGS)
        first, last = seen[0] if seen and counts["events"] else (None, None)
        receipts = self.store.dicts(
            "SELECT toString(receipt_id) AS receipt_id, verified_at, remaining, rows_deleted "
            "FROM purge_receipts WHERE has(subject_hashes, {h:String}) ORDER BY requested_at",
            {"h": root.hash})
        return {"id_type": root.id_type, "subject_hash": root.hash,
                "linked_visitors": len(scope.visitors), "rows": counts,
                "first_seen": plain(first), "last_seen": plain(last),
                "suppressed": root.hash in self.gate.hashes,
                "receipts": plain_rows(receipts)}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Load the suppressions, start the purge worker, resume interrupted purges (in the
        background: the collector serves meanwhile)."""
        self.load()
        self.purges.start()
        threading.Thread(target=self._resume_quietly, name="privacy-resume",
                         daemon=True).start()

    def stop(self) -> None:
        self.purges.stop()

    def _resume_quietly(self) -> None:
        try:
            for receipt in self.resume_pending():
                log.warning("finished an interrupted purge: receipt %s", receipt["receipt_id"])
        except Exception:  # the store may be closing; the next start tries again
            log.exception("resuming interrupted purges failed")
