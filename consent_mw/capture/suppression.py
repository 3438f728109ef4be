"""Who must not be captured any more (Article 7: suspension of use), and who asked to be
forgotten (Article 6).

The list holds subject hashes (``ids.subject_hash(key, id_type, stored_id)``), never the ids.
``purged`` is the subset whose purge was asked for: the middleware resets a browser that still
carries one of those ids (its consent withdrawn, its id cookies expired), so deleting stops
recording even for a browser that was not the one asking. Lookups happen on the request path,
so the sets are replaced wholesale (copy on write) and read without a lock.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable

from consent_mw.ids import subject_hash


class SuppressionList:
    """Subject hashes of suppressed visitors, accounts and consents."""

    def __init__(self, key: bytes, hashes: Iterable[str] = ()) -> None:
        self._key = key
        self._hashes: frozenset[str] = frozenset(hashes)
        self._purged: frozenset[str] = frozenset()
        #: Whether anyone's purge was asked for: while not, the request path checks nothing.
        #: A plain attribute, kept in step with the set, because every request reads it.
        self.has_purged = False
        self._lock = threading.Lock()
        self.version: int | None = None

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, subject: object) -> bool:
        return subject in self._hashes

    def add(self, *hashes: str) -> None:
        with self._lock:
            self._hashes = self._hashes | frozenset(hashes)

    def discard(self, *hashes: str) -> None:
        with self._lock:
            self._hashes = self._hashes - frozenset(hashes)
            self._purged = self._purged - frozenset(hashes)
            self.has_purged = bool(self._purged)

    def replace(self, hashes: Iterable[str], version: int | None = None, *,
                purged: Iterable[str] = ()) -> None:
        new = frozenset(hashes)
        gone = frozenset(purged) & new
        with self._lock:
            self._hashes = new
            self._purged = gone
            self.has_purged = bool(gone)
            self.version = version

    def is_purged(self, visitor_id: str | None = None, consent_id: str | None = None) -> bool:
        """Whether this browser's visitor or consent id belongs to a purged person."""
        purged = self._purged
        if not purged:
            return False
        return bool((visitor_id and _subject_hash(self._key, "visitor_id", visitor_id) in purged)
                    or (consent_id
                        and _subject_hash(self._key, "consent_id", consent_id) in purged))

    def is_suppressed(self, visitor_id: str | None = None, user_id_hash: str | None = None,
                      consent_id: str | None = None) -> bool:
        hashes = self._hashes
        if not hashes:  # the common case costs one attribute read
            return False
        for id_type, value in (("visitor_id", visitor_id), ("user_id", user_id_hash),
                               ("consent_id", consent_id)):
            if value and _subject_hash(self._key, id_type, value) in hashes:
                return True
        return False


@functools.lru_cache(maxsize=8192)  # a visitor's pages repeat the same ids: one HMAC each
def _subject_hash(key: bytes, id_type: str, value: str) -> str:
    return subject_hash(key, id_type, value)
