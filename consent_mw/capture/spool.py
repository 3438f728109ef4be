"""Batches the collector could not take yet, kept until it answers again.

:class:`DiskSpool` writes one gzip file per batch (tmp + rename, so a crash never leaves half a
batch), survives restarts, and is replayed oldest first. A batch keeps its ``batch_id`` and
``sent_at``, and its events their ``event_id``, across replays, so the collector deduplicates a
batch that was stored but whose answer was lost, and reads a late replay as old data arriving
late rather than as a client whose clock is wrong. The file name carries the counts and size,
so bookkeeping needs no reads. Several processes may share a directory: a replay claims a
file by renaming it.

:class:`MemorySpool` is the same, bounded, in memory, for a capture without ``spool_dir``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from consent_mw import wire
from consent_mw.capture.transport import batch_time

log = logging.getLogger(__name__)
SUFFIX = ".spool"
CLAIM = ".claim-"


@dataclass(slots=True)
class SpooledBatch:
    batch_id: str
    sent_at: int  # ms: as the batch was first sent, on every replay
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]
    size: int
    handle: Path | None = field(default=None, repr=False)  # a DiskSpool's claimed file


@dataclass(slots=True)
class Dropped:
    """What ``put`` had to throw away to stay within ``max_bytes``."""

    events: int = 0
    records: int = 0


class Spool(Protocol):
    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped: ...

    def claim_oldest(self) -> SpooledBatch | None: ...

    def done(self, batch: SpooledBatch) -> None: ...

    def release(self, batch: SpooledBatch) -> None: ...

    def counts(self) -> tuple[int, int, int]:
        """(batches, events, records) waiting."""
        ...


def _encode(batch_id: str, sent_at: int, events: list[dict[str, Any]],
            records: list[dict[str, Any]]) -> bytes:
    raw = wire.encode_json({"batch_id": batch_id, "sent_at": sent_at, "events": events,
                            "consent_records": records})
    return gzip.compress(raw, compresslevel=5)  # on disk, bytes are what the cap counts


class MemorySpool:
    """Bounded in-memory spool: lost with the process, but rides out a collector restart."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[SpooledBatch] = deque()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped:
        size = len(wire.encode_json([events, records]))
        dropped = Dropped()
        with self._lock:
            if size > self.max_bytes:
                return Dropped(len(events), len(records))
            while self._items and self._bytes + size > self.max_bytes:
                old = self._items.popleft()
                self._bytes -= old.size
                dropped.events += len(old.events)
                dropped.records += len(old.records)
            self._items.append(SpooledBatch(batch_id, sent_at, events, records, size))
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


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    batch_id: str
    events: int
    records: int
    size: int


def _parse_name(name: str) -> _Entry | None:
    # <ns:020d>-<batch_id hex>-<events>-<records>-<bytes>.spool
    if not name.endswith(SUFFIX):
        return None
    parts = name[: -len(SUFFIX)].split("-")
    if len(parts) != 5 or not all(p.isdigit() for p in (parts[0], *parts[2:])):
        return None
    return _Entry(name, parts[1], int(parts[2]), int(parts[3]), int(parts[4]))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DiskSpool:
    """One file per batch in ``directory``, at most ``max_bytes`` in all (oldest dropped)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._recover()

    def _recover(self) -> None:
        """Unclaim files a dead process was replaying, remove its half-written temp files."""
        for path in self.dir.iterdir():
            name = path.name
            if CLAIM in name:
                base, _, pid = name.rpartition(CLAIM)
                if pid.isdigit() and not _pid_alive(int(pid)):
                    with contextlib.suppress(OSError):
                        path.rename(self.dir / base)
            elif name.startswith(".tmp-"):
                pid = name.split("-")[1] if name.count("-") >= 2 else ""
                if pid.isdigit() and not _pid_alive(int(pid)):
                    with contextlib.suppress(OSError):
                        path.unlink()

    def _entries(self) -> list[_Entry]:
        try:
            names = os.listdir(self.dir)
        except OSError:
            return []
        entries = [e for e in map(_parse_name, names) if e is not None]
        entries.sort(key=lambda e: e.name)  # the name starts with a zero-padded timestamp
        return entries

    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped:
        body = _encode(batch_id, sent_at, events, records)
        if len(body) > self.max_bytes:
            return Dropped(len(events), len(records))
        safe_id = batch_id.replace("-", "")
        dropped = Dropped()
        with self._lock:
            entries = self._entries()
            total = sum(e.size for e in entries)
            for old in entries:
                if total + len(body) <= self.max_bytes:
                    break
                try:
                    (self.dir / old.name).unlink()
                except OSError:
                    continue  # claimed by a replay meanwhile
                total -= old.size
                dropped.events += old.events
                dropped.records += old.records
            name = (f"{time.time_ns():020d}-{safe_id}-{len(events)}-{len(records)}-"
                    f"{len(body)}{SUFFIX}")
            tmp = self.dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
            with open(tmp, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / name)
        return dropped

    def claim_oldest(self) -> SpooledBatch | None:
        for entry in self._entries():
            claimed = self.dir / f"{entry.name}{CLAIM}{os.getpid()}"
            try:
                (self.dir / entry.name).rename(claimed)
            except OSError:
                continue  # another process took it, or it was dropped
            try:
                data = json.loads(gzip.decompress(claimed.read_bytes()))
                events, records = list(data["events"]), list(data["consent_records"])
                sent_at = data.get("sent_at")
                if not isinstance(sent_at, int):  # a file from before sent_at was kept
                    sent_at = batch_time(events, records)
                batch = SpooledBatch(str(data["batch_id"]), sent_at, events, records,
                                     entry.size, claimed)
            except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
                log.error("dropping unreadable spool file %s: %r", entry.name, exc)
                with contextlib.suppress(OSError):
                    claimed.unlink()
                continue
            return batch
        return None

    def done(self, batch: SpooledBatch) -> None:
        if batch.handle is not None:
            with contextlib.suppress(OSError):
                batch.handle.unlink()

    def release(self, batch: SpooledBatch) -> None:
        path = batch.handle
        if path is None:
            return
        with contextlib.suppress(OSError):
            path.rename(path.with_name(path.name.rpartition(CLAIM)[0]))

    def counts(self) -> tuple[int, int, int]:
        entries = self._entries()
        return (len(entries), sum(e.events for e in entries), sum(e.records for e in entries))
