"""What every spool is: the :class:`Spool` protocol, a :class:`SpooledBatch`, the encoding."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from consent_mw import wire
from consent_mw.capture.spool.eviction import Dropped


@dataclass(slots=True)
class SpooledBatch:
    batch_id: str
    sent_at: int  # ms: as the batch was first sent, on every replay
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]
    size: int
    handle: Path | None = field(default=None, repr=False)  # a DiskSpool's claimed file


class Spool(Protocol):
    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped: ...

    def claim_oldest(self) -> SpooledBatch | None: ...

    def done(self, batch: SpooledBatch) -> None: ...

    def release(self, batch: SpooledBatch) -> None: ...

    def counts(self) -> tuple[int, int, int]:
        """(batches, events, records) waiting."""
        ...

    def nbytes(self) -> int:
        """Bytes waiting (on disk for a DiskSpool)."""
        ...


def encode(batch_id: str, sent_at: int, events: list[dict[str, Any]],
           records: list[dict[str, Any]]) -> bytes:
    """A spool file: the wire's batch body, gzip level 5 (on disk, bytes are what the cap
    counts)."""
    return wire.encode_batch(events, records, batch_id=batch_id, sent_at=sent_at, level=5)
