"""Who must not be captured any more (Article 7: suspension of use).

The list holds subject hashes (``ids.subject_hash(key, id_type, stored_id)``), never the ids.
Lookups happen on the request path, so the set is replaced wholesale (copy on write) and read
without a lock.
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

    def replace(self, hashes: Iterable[str], version: int | None = None) -> None:
        new = frozenset(hashes)
        with self._lock:
            self._hashes = new
            self.version = version

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
