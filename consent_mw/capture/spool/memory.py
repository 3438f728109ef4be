"""The spool of a capture without ``spool_dir``: bounded, in memory, lost with the process."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from consent_mw import wire
from consent_mw.capture.spool.base import SpooledBatch
from consent_mw.capture.spool.eviction import Dropped, evictions, is_proof, split


class MemorySpool:
    """Bounded in-memory spool: lost with the process, but rides out a collector restart."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[SpooledBatch] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped:
        dropped = Dropped()
        for part_id, part_events, part_records in split(batch_id, events, records):
            size = len(wire.encode_json([part_events, part_records]))
            new = SpooledBatch(part_id, sent_at, part_events, part_records, size)
            with self._lock:
                evict = evictions(self._items, size, is_proof(new), self.max_bytes)
                if evict is None:
                    dropped.add(len(part_events), len(part_records))
                    continue
                for old in evict:
                    self._items.remove(old)
                    self._bytes -= old.size
                    dropped.add(len(old.events), len(old.records))
                self._items.append(new)
                self._bytes += size
        return dropped

    def claim_oldest(self) -> SpooledBatch | None:
        with self._lock:
            if not self._items:
                return None
            batch = self._items.popleft()
            self._bytes -= batch.size
            return batch

    def done(self, batch: SpooledBatch) -> None:
        return None

    def release(self, batch: SpooledBatch) -> None:
        with self._lock:
            self._items.appendleft(batch)
            self._bytes += batch.size

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return (len(self._items), sum(len(b.events) for b in self._items),
                    sum(len(b.records) for b in self._items))

    def nbytes(self) -> int:
        return self._bytes
