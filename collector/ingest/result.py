"""What ingesting a batch answers: counts, and the items rejected with their reasons.

``POST /v1/events`` sends :meth:`IngestResult.as_dict` as its body; the in-process transport
turns the same result into the web side's ``SendResult``, so a sender learns the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Rejected:
    index: int
    type: str  # "event" or "record"
    id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        key = "event_id" if self.type == "event" else "record_id"
        return {"index": self.index, "type": self.type, key: self.id, "reason": self.reason}


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0  # valid items, stored now or already stored (replays)
    duplicates: int = 0
    suppressed: int = 0
    anonymised: int = 0  # consent records of suppressed people, stored without their ids
    bots: int = 0  # events of known bots: accepted, counted in bot_hits, not stored
    inserted_events: int = 0
    inserted_records: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "anonymised": self.anonymised,
            "bots": self.bots,
            "rejected": [r.as_dict() for r in self.rejected],
        }
