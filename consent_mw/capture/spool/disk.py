"""The spool on disk: one gzip file per batch, tmp + fsync + rename, shared by processes.

See :mod:`consent_mw.capture.spool` for what it keeps and how a full disk is handled.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from consent_mw.capture.spool.base import SpooledBatch, encode
from consent_mw.capture.spool.eviction import Dropped, evictions, split
from consent_mw.capture.transport import batch_time

log = logging.getLogger(__name__)
SUFFIX = ".spool"
CLAIM = ".claim-"
#: Left free on the spool's filesystem, so the spool never fills it to the last block (file
#: system metadata, the host's own writes): this much, or a twentieth of a smaller disk.
FS_RESERVE = 256 * 1024

#: ``write(path, data)``: create ``path`` holding ``data``, durably (fsync); raises OSError.
Writer = Callable[[Path, bytes], None]


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    batch_id: str
    events: int
    records: int
    size: int


def _parse_name(name: str) -> _Entry | None:
    # <sent_at ms, then write order:020d>-<batch_id hex>-<events>-<records>-<bytes>.spool
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


def write_file(path: Path, data: bytes) -> None:
    """The default :data:`Writer`: write, flush, fsync."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def disk_room(directory: Path) -> tuple[int, int] | None:
    """(free bytes for unprivileged writers, less the reserve; the block size) of
    ``directory``'s filesystem, or None if unknown."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    reserve = min(FS_RESERVE, st.f_blocks * st.f_frsize // 20)
    return max(0, st.f_bavail * st.f_frsize - reserve), max(1, st.f_frsize)


def _blocks(size: int, block: int) -> int:
    return -(-size // block) * block


class DiskSpool:
    """One file per batch in ``directory``, at most ``max_bytes`` in all (oldest analytics
    dropped first; see :func:`evictions`). ``write`` is how a file is written (a test or a
    drill injects a full disk through it)."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int, *,
                 write: Writer | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._write = write or write_file
        self._written = 0
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

    def _plan(self, size: int, proof: bool, full: bool) -> list[_Entry] | None:
        """What to evict so an entry of ``size`` bytes fits both under ``max_bytes`` and on
        the disk, counted there in whole blocks (a small file takes one); None when it cannot
        fit. ``full``: a write just failed, so there is no room beyond what we hold: free
        ``size`` bytes of it (in bytes, whatever the disk counts: a quota may count bytes, and
        a disk that counts blocks fails again and gets more evicted)."""
        entries = self._entries()
        if full:
            return evictions(entries, size, proof, sum(e.size for e in entries))
        first = evictions(entries, size, proof, self.max_bytes)
        room = disk_room(self.dir)
        if first is None or room is None:
            return first
        free, block = room
        gone = {e.name for e in first}
        left = [replace(e, size=_blocks(e.size, block)) for e in entries if e.name not in gone]
        held = sum(e.size for e in left)
        cap = held + free + sum(_blocks(e.size, block) for e in first)
        second = evictions(left, _blocks(size, block), proof, cap)
        if second is None:
            return None
        names = {e.name for e in second}
        return first + [e for e in entries if e.name in names]

    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped:
        dropped = Dropped()
        for part_id, part_events, part_records in split(batch_id, events, records):
            body = encode(part_id, sent_at, part_events, part_records)
            with self._lock:
                if not self._put(part_id, sent_at, body, part_events, part_records, dropped):
                    dropped.add(len(part_events), len(part_records))
        return dropped

    def _put(self, batch_id: str, sent_at: int, body: bytes, events: list[dict[str, Any]],
             records: list[dict[str, Any]], dropped: Dropped) -> bool:
        """Make room and write one entry; False when it cannot be kept. Named after the age
        of what it holds (``sent_at``, then the order of writing), not the time of writing:
        two threads spool, and the oldest data must be evicted first."""
        proof, full = bool(records), False
        while True:
            evict = self._plan(len(body), proof, full)
            if evict is None:  # counted (and logged, rate-limited) as spool_full by the caller
                return False
            for old in evict:
                try:
                    (self.dir / old.name).unlink()
                except OSError:
                    continue  # claimed by a replay meanwhile
                dropped.add(old.events, old.records)
            self._written = (self._written + 1) % 1_000_000
            age = sent_at * 1_000_000 + self._written
            name = (f"{age:020d}-{batch_id.replace('-', '')}-{len(events)}-"
                    f"{len(records)}-{len(body)}{SUFFIX}")
            tmp = self.dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                self._write(tmp, body)
                os.replace(tmp, self.dir / name)
                return True
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                # The disk is fuller than statvfs said (other writers, quotas): plan again
                # as if it had no room but what we hold; give up once nothing can go.
                log.debug("spool write failed (%s); evicting to make room", exc.strerror or exc)
                if full and not evict:
                    return False
                full = True

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

    def nbytes(self) -> int:
        return sum(e.size for e in self._entries())
