"""The one suppression gate every write to the store passes.

Who is suppressed lives here, as keyed subject hashes (``consent_mw.ids.subject_hash``) of
visitor ids, user ids and consent ids; ``purged`` is the subset whose purge was asked for.
:class:`collector.privacy.operations.Privacy` changes it; ingest asks it about every item:

- an event carrying any suppressed id is dropped (page views, custom events, identify links:
  an identify event is how a visitor id gets linked to an account, so it is dropped too);
- a consent record carrying a suppressed id is kept as proof of what was decided, but
  anonymised first: its visitor and consent ids are emptied, as a purge empties stored ones.
  A record in a web process's spool when a purge ran therefore never brings the ids back.

Rollups are built from events already through this gate, and hold no ids.

The gate also counts ingest calls in flight, by epoch, so a suppression can wait for the
calls that passed the check just before it (:meth:`drain`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from collector.privacy.subjects import EVENT_SUBJECTS, RECORD_SUBJECTS
from consent_mw.ids import subject_hash

log = logging.getLogger(__name__)



class SuppressionListener(Protocol):
    """Kept in step with the gate: an in-process capture's list, the rollup worker."""

    def replace(self, hashes: Iterable[str], version: int | None = None, *,
                purged: Iterable[str] = ()) -> None: ...


class SuppressionGate:
    """Suppressed subject hashes, the checks ingest makes, and the in-flight count."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._hashes: frozenset[str] = frozenset()
        self._purged: frozenset[str] = frozenset()
        self.version = 0
        self._lock = threading.RLock()
        self._listeners: list[SuppressionListener] = []
        self._cond = threading.Condition()
        self._epoch = 0
        self._active: Counter[int] = Counter()

    # -- state ----------------------------------------------------------------------------

    @property
    def hashes(self) -> frozenset[str]:
        return self._hashes

    @property
    def purged(self) -> frozenset[str]:
        return self._purged

    def set(self, hashes: Iterable[str], purged: Iterable[str], version: int) -> None:
        """Replace the whole state (at start, from the suppressions table)."""
        with self._lock:
            self._hashes = frozenset(hashes)
            self._purged = frozenset(purged) & self._hashes
            self.version = max(self.version, version)
            self._notify()

    def change(self, hashes: Iterable[str], *, active: bool, purged: bool,
               version: int) -> None:
        """Suppress (``active``) or lift ``hashes``; ``purged`` marks a purge asked for."""
        new = frozenset(hashes)
        with self._lock:
            if active:
                self._hashes |= new
                if purged:
                    self._purged |= new
            else:
                self._hashes -= new
                self._purged -= new
            self.version = max(self.version, version)
            self._notify()

    def attach(self, listener: SuppressionListener) -> None:
        with self._lock:
            self._listeners.append(listener)
            listener.replace(self._hashes, self.version, purged=self._purged)

    def _notify(self) -> None:
        for listener in self._listeners:
            try:
                listener.replace(self._hashes, self.version, purged=self._purged)
            except Exception:
                log.exception("suppression listener failed")

    def snapshot(self) -> dict[str, Any]:
        """What web processes poll: subject hashes, the purged subset and a version."""
        return {"hashes": sorted(self._hashes), "purged": sorted(self._purged),
                "version": self.version}

    # -- the checks -----------------------------------------------------------------------

    def is_suppressed(self, id_type: str, stored_id: str) -> bool:
        """One HMAC per id, and nothing at all while nobody is suppressed."""
        hashes = self._hashes
        if not hashes or not stored_id:
            return False
        return subject_hash(self.key, id_type, stored_id) in hashes

    def blocks_event(self, event: Mapping[str, Any]) -> bool:
        if not self._hashes:
            return False
        return any(self.is_suppressed(t, event.get(t) or "") for t in EVENT_SUBJECTS)

    def admit_record(self, record: dict[str, Any]) -> bool:
        """Anonymise ``record`` in place when it names a suppressed person; True if it did."""
        if not self._hashes:
            return False
        if not any(self.is_suppressed(t, record.get(t) or "") for t in RECORD_SUBJECTS):
            return False
        record["visitor_id"] = None
        record["consent_id"] = ""
        record["anonymised"] = True
        return True

    # -- ingest calls in flight -------------------------------------------------------------

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Wrap one ingest call, so :meth:`drain` can wait for it."""
        with self._cond:
            epoch = self._epoch
            self._active[epoch] += 1
        try:
            yield
        finally:
            with self._cond:
                self._active[epoch] -= 1
                if self._active[epoch] <= 0:
                    del self._active[epoch]
                self._cond.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every ingest call that began before now has returned."""
        with self._cond:
            self._epoch += 1
            target = self._epoch
            return self._cond.wait_for(
                lambda: all(e >= target for e in self._active), timeout=timeout)
