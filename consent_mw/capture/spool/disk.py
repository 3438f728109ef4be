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
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consent_mw.capture.spool.base import SpooledBatch, encode
from consent_mw.capture.spool.eviction import Dropped, evictions, split
from consent_mw.capture.transport import batch_time

log = logging.getLogger(__name__)
SUFFIX = ".spool"
CLAIM = ".claim-"
#: Left free on the spool's filesystem, so the spool never fills it to the last block (file
#: system metadata, the host's own writes).
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


def write_file(path: Path, data: bytes) -> None:
    """The default :data:`Writer`: write, flush, fsync."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def free_bytes(directory: Path) -> int | None:
    """Free space for unprivileged writers on ``directory``'s filesystem (None if unknown)."""
    try:
        st = os.statvfs(directory)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


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

    def _cap(self, held: int) -> int:
        """``max_bytes``, or less when the filesystem has less room than that."""
        free = free_bytes(self.dir)
        if free is None:
            return self.max_bytes
        return min(self.max_bytes, max(0, held + free - FS_RESERVE))

    def put(self, batch_id: str, events: list[dict[str, Any]],
            records: list[dict[str, Any]], *, sent_at: int) -> Dropped:
        dropped = Dropped()
        for part_id, part_events, part_records in split(batch_id, events, records):
            body = encode(part_id, sent_at, part_events, part_records)
            with self._lock:
                if not self._put(part_id, body, part_events, part_records, dropped):
                    dropped.add(len(part_events), len(part_records))
        return dropped

    def _put(self, batch_id: str, body: bytes, events: list[dict[str, Any]],
             records: list[dict[str, Any]], dropped: Dropped) -> bool:
        """Make room and write one entry; False when it cannot be kept."""
        proof = bool(records)
        entries = self._entries()
        cap = self._cap(sum(e.size for e in entries))
        while True:
            evict = evictions(entries, len(body), proof, cap)
            if evict is None:
                return False
            for old in evict:
                try:
                    (self.dir / old.name).unlink()
                except OSError:
                    continue  # claimed by a replay meanwhile
                dropped.add(old.events, old.records)
            name = (f"{time.time_ns():020d}-{batch_id.replace('-', '')}-{len(events)}-"
                    f"{len(records)}-{len(body)}{SUFFIX}")
            tmp = self.dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                self._write(tmp, body)
                os.replace(tmp, self.dir / name)
                return True
            except OSError as exc:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                # The disk is fuller than statvfs said (other writers, quotas): shrink the
                # cap to what is held now and evict again; give up once nothing can go.
                entries = self._entries()
                held = sum(e.size for e in entries)
                if cap <= held or not entries:
                    log.warning("spool write failed (%s); batch of %d events, %d records "
                                "not kept", exc.strerror or exc, len(events), len(records))
                    return False
                cap = held

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
