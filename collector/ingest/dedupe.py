"""Replays never count twice: the ids this collector saw lately, bounded and thread-safe.

A sender that never saw the answer to a batch sends it again (its spool keeps it, or a retry
crosses the first answer); the items keep their ids, so :class:`RecentIds` recognises them. At
start, :func:`warm` fills it with the ids the store received in the last
``dedupe_warm_hours``, so a replay after a restart is dropped too. Per process: see
docs/scaling.md for what that means with several collectors.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from collector.store import Store

if TYPE_CHECKING:
    from collector.ingest.inserter import Pending

log = logging.getLogger(__name__)


class RecentIds:
    """A bounded, thread-safe LRU of ids (per process: see docs/scaling.md).

    Each id maps to the :class:`Pending` insert that carries it, or None once known stored
    (ids warmed from the store at start), so a replay that arrives while the first copy is
    still being inserted can wait for that insert instead of being answered too early.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, Pending | None] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(
        self, ids: Iterable[str], owner: Pending | None = None
    ) -> dict[str, Pending | None]:
        """Add the ids (carried by ``owner``); return those already present with their owner."""
        seen: dict[str, Pending | None] = {}
        known = self._ids
        with self._lock:
            for i in ids:
                if i in known:
                    known.move_to_end(i)
                    seen[i] = known[i]
                else:
                    known[i] = owner
            while len(known) > self.size:
                known.popitem(last=False)
        return seen

    def fresh(self, items: list[dict[str, Any]], kind: str, id_key: str, pending: Pending,
              reserved: list[tuple[str, str]],
              waits: list[tuple[str, Pending]]) -> list[dict[str, Any]]:
        """The items seen neither before nor earlier in ``items``; their ids are reserved for
        ``pending`` (and appended to ``reserved`` as ``(kind, id)``). A replayed id whose first
        copy is still being inserted adds that insert to ``waits``: the replay is answered only
        once the first copy is stored."""
        if not items:
            return items
        seen = self.reserve((i[id_key] for i in items), pending)
        fresh: list[dict[str, Any]] = []
        in_batch: set[str] = set()
        for item in items:
            item_id = item[id_key]
            if item_id in seen or item_id in in_batch:
                owner = seen.get(item_id)
                if owner is not None and owner is not pending and all(
                        o is not owner for _, o in waits):
                    waits.append((kind, owner))
                continue
            in_batch.add(item_id)
            reserved.append((kind, item_id))
            fresh.append(item)
        return fresh

    def remember(self, ids: Iterable[str]) -> None:
        """Add ids known to be stored, oldest first (the newest stay longest)."""
        with self._lock:
            for i in ids:
                self._ids[i] = None
                self._ids.move_to_end(i)
            while len(self._ids) > self.size:
                self._ids.popitem(last=False)

    def forget(self, ids: Iterable[str]) -> None:
        with self._lock:
            for i in ids:
                self._ids.pop(i, None)

    def __len__(self) -> int:
        return len(self._ids)


def warm(recent: RecentIds, store: Store, hours: int) -> int:
    """Remember the ids ``store`` received in the last ``hours``, so a batch replayed after a
    restart (the sender never saw the answer) is still dropped; how many it remembered."""
    if not hours:
        return 0
    total = 0
    for table, column in (("consent_records", "record_id"), ("events", "event_id")):
        try:
            rows = store.rows(
                f"SELECT toString({column}) FROM {table} "
                "WHERE received_at > now64(3) - INTERVAL {h:UInt32} HOUR "
                "ORDER BY received_at DESC LIMIT {n:UInt64}",
                {"h": hours, "n": recent.size})
        except Exception as exc:  # a slow or odd store must not stop the collector
            log.warning("could not load recent %s ids (replays may be stored twice): %s",
                        table, exc)
            continue
        recent.remember(r[0] for r in reversed(rows))
        total += len(rows)
    if total:
        log.info("remembered %d ids received in the last %d h", total, hours)
    return total
