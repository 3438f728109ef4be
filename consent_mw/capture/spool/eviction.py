"""What a full spool throws away: the one eviction rule of both spools.

Consent records (``shown``, ``decided``, ``withdrawn``, ``gpc_applied``...) are the site's proof
of consent, and small. So a batch holding both is spooled as two entries (:func:`split`), and
:func:`evictions` throws away the oldest analytics first; a record goes only to make room for
a newer record, never for a page view. Pure functions over anything with a size and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

RECORDS_SUFFIX = ".r"  # the batch id of a batch's records, spooled apart from its events


@dataclass(slots=True)
class Dropped:
    """What ``put`` had to throw away to stay within its cap (or the disk)."""

    events: int = 0
    records: int = 0

    def add(self, events: int, records: int) -> None:
        self.events += events
        self.records += records


class Sized(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def records(self) -> Any: ...

    @property
    def events(self) -> Any: ...


E = TypeVar("E", bound=Sized)


def is_proof(entry: Sized) -> bool:
    """Whether a spooled entry holds consent records (kept before any analytics)."""
    records = entry.records
    return bool(records if not isinstance(records, int) else records > 0)


def evictions(entries: Sequence[E], new_size: int, new_is_proof: bool,
                        cap: int) -> list[E] | None:
    """Which of ``entries`` (oldest first) to throw away so a new entry of ``new_size`` fits
    under ``cap``; None when it cannot fit. Analytics go first, oldest first; a record goes
    only to make room for a newer record."""
    total = sum(e.size for e in entries)
    if new_size > cap:
        return None
    chosen: list[E] = []
    for pool in ([e for e in entries if not is_proof(e)],
                 [e for e in entries if is_proof(e)] if new_is_proof else []):
        for entry in pool:
            if total + new_size <= cap:
                return chosen
            chosen.append(entry)
            total -= entry.size
    return chosen if total + new_size <= cap else None


def split(batch_id: str, events: list[dict[str, Any]], records: list[dict[str, Any]]
          ) -> list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """A batch as the entries it is spooled as: its records apart from its events (items keep
    their ids, so the collector deduplicates either part however it is replayed)."""
    if events and records:
        return [(batch_id + RECORDS_SUFFIX, [], records), (batch_id, events, [])]
    return [(batch_id, events, records)]
