"""Batches the collector could not take yet, kept until it answers again.

:class:`DiskSpool` writes one gzip file per batch (tmp + rename, so a crash never leaves half a
batch), survives restarts, and is replayed oldest first. A batch keeps its ``batch_id`` and
``sent_at``, and its events their ``event_id``, across replays, so the collector deduplicates a
batch that was stored but whose answer was lost, and reads a late replay as old data arriving
late rather than as a client whose clock is wrong. The file name carries the counts and size,
so bookkeeping needs no reads. Several processes may share a directory: a replay claims a
file by renaming it.

Consent records are the site's proof of consent: what a full spool throws away first is
decided by :mod:`consent_mw.capture.spool.eviction`, the one rule of both spools. A write the disk
refuses (``ENOSPC``, ``EDQUOT``, any ``OSError``) removes its temp file, evicts by that rule
and tries again; what still cannot be kept is reported as dropped (``spool_full``), never
raised. The cap is the smaller of ``max_bytes`` and what the spool holds plus the
filesystem's free space.

:class:`MemorySpool` is the same, bounded, in memory, for a capture without ``spool_dir``.
"""

from __future__ import annotations

from consent_mw.capture.spool.base import Spool, SpooledBatch
from consent_mw.capture.spool.disk import DiskSpool, Writer, write_file
from consent_mw.capture.spool.eviction import Dropped
from consent_mw.capture.spool.memory import MemorySpool

__all__ = ["DiskSpool", "Dropped", "MemorySpool", "Spool", "SpooledBatch", "Writer",
           "write_file"]
