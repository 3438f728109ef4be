"""Fault drills (issue 14) against a real uvicorn web process and a real collector process.

Each drill starts a ``consent-mw collector`` on a fresh chDB store and a web process
(``bench.drill_app``) spooling to disk, sends paced traffic in which every page view has a
path of its own (``/d/<n>``), breaks something under that traffic, lets it recover, waits for
the web process to deliver what it queued and spooled, stops the collector and counts the
rows per path. What it returns (:class:`DrillResult`): sent (pages answered 200), stored,
lost, duplicated, the web's p99 latency during the fault, requests that blocked, and the web
process's own counts (drops by reason).

- :func:`stall`: the collector frozen (SIGSTOP) for ``seconds``, then thawed;
- :func:`collector_kills`: the collector killed (-9) and restarted twice, the second time
  while the web process is replaying its spool;
- :func:`disk_full`: the spool on a small disk (a tmpfs when this process may mount one, else
  the drill app's quota writer), the collector down until the spool overflows; consent
  decisions are sent throughout, and every one answered must have its record stored;
- :func:`web_kill`: the collector down, the web process killed (-9) under traffic; every
  page in its spool files must be stored exactly once by the next web process.

Durations, rates and the web's settings (``web_env``: ``CONSENT_MW_QUEUE_SIZE``...) are
arguments, so tests can run short, small variants. ``workdir`` keeps the store, spool and
logs (``collector.log``, ``web.log``); without one a temporary directory is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from bench.drill_app import FS_BYTES_ENV
from bench.drill_load import BLOCKED_AFTER, Load, Request
from bench.drill_procs import (
    CollectorProc,
    SpoolContents,
    WebProc,
    query_store,
    spool_contents,
    stored_consents,
    stored_paths,
)
from bench.drill_rig import (
    PREFIX,
    VISITORS,
    Rig,
    finish,
    rig,
    run_out,
    wait_drained,
    workdir_for,
)
from bench.drill_trace import DrillResult, Trace, percentile

__all__ = [
    "BLOCKED_AFTER", "MIB", "PREFIX", "CollectorProc", "DrillResult", "Load", "Request", "Rig",
    "SpoolContents", "Trace", "WebProc", "can_mount_tmpfs", "collector_kills", "disk_full",
    "percentile",
    "query_store", "rig", "spool_contents", "stall", "stored_consents", "stored_paths",
    "wait_drained", "web_kill",
]

MIB = 1024 * 1024


# --- the drills -----------------------------------------------------------------------------

def stall(rate: float, seconds: float = 20.0, *, before: float = 3.0, after: float = 5.0,
          connections: int = 32, decision_every: int = 0,
          web_env: Mapping[str, str] | None = None, workdir: Path | None = None,
          pin: bool = False, visitors: int = VISITORS, drain_timeout: float = 60.0
          ) -> DrillResult:
    """The collector frozen (SIGSTOP: connections accepted, nothing answered) for
    ``seconds`` under traffic at ``rate``, then thawed; traffic goes on ``after`` seconds."""
    began = time.monotonic()
    with rig(workdir, web_env=web_env, pin=pin, visitors=visitors) as r:
        load = r.load(rate, connections=connections, decision_every=decision_every)
        time.sleep(before)
        start = time.monotonic()
        r.collector.freeze()
        time.sleep(seconds)
        r.collector.thaw()
        end = time.monotonic()
        time.sleep(after)
        requests, achieved, expected = run_out(r, load)
        result, _ = finish(r, requests, achieved, "stall", rate, (start, end), began,
                           drain_timeout=drain_timeout, expected=expected)
        return result


def collector_kills(rate: float, *, down: float = 6.0, before: float = 3.0,
                    after: float = 5.0, replay_wait: float = 30.0, connections: int = 32,
                    decision_every: int = 0, web_env: Mapping[str, str] | None = None,
                    workdir: Path | None = None, pin: bool = False,
                    visitors: int = VISITORS, drain_timeout: float = 60.0) -> DrillResult:
    """The collector killed (-9) and restarted after ``down`` seconds, twice; the second
    kill comes as soon as the web process is seen replaying its spool (its spooled count
    falling) after the first restart. ``extra["replay"]`` says whether it was caught so."""
    began = time.monotonic()
    with rig(workdir, web_env=web_env, pin=pin, visitors=visitors) as r:
        load = r.load(rate, connections=connections, decision_every=decision_every)
        time.sleep(before)
        start = time.monotonic()
        r.collector.kill()
        time.sleep(down)
        r.collector.start()
        replay = _wait_replay(r.web, replay_wait)
        r.collector.kill()
        time.sleep(down)
        r.collector.start()
        end = time.monotonic()
        time.sleep(after)
        requests, achieved, expected = run_out(r, load)
        result, _ = finish(r, requests, achieved, "collector_kills", rate, (start, end),
                           began, drain_timeout=drain_timeout, expected=expected,
                           extra={"replay": replay})
        return result


def _wait_replay(web: WebProc, timeout: float) -> dict[str, Any]:
    """Poll until the spool is seen shrinking (a replay under way) while not yet empty."""
    deadline = time.monotonic() + timeout
    peak = first = web.stats()["capture"]["spooled"]
    waited = time.monotonic()
    while time.monotonic() < deadline:
        spooled = web.stats()["capture"]["spooled"]
        if 0 < spooled < peak:
            return {"during_replay": True, "spooled_at_restart": first, "peak": peak,
                    "spooled_at_kill": spooled,
                    "after_s": round(time.monotonic() - waited, 2)}
        if spooled == 0 and peak > 0:
            break  # replayed whole between two looks
        peak = max(peak, spooled)
        time.sleep(0.02)
    return {"during_replay": False, "spooled_at_restart": first, "peak": peak,
            "after_s": round(time.monotonic() - waited, 2)}


def disk_full(rate: float, *, fs_bytes: int = MIB // 4,
              fault: Literal["kill", "freeze"] = "kill", before: float = 3.0,
              full_for: float = 5.0, max_fault: float = 120.0, after: float = 10.0,
              connections: int = 32, decision_every: int = 100, tmpfs: bool | None = None,
              web_env: Mapping[str, str] | None = None, workdir: Path | None = None,
              pin: bool = False, visitors: int = VISITORS, drain_timeout: float = 90.0
              ) -> DrillResult:
    """The spool on a disk of ``fs_bytes``; the collector killed (or frozen) until the spool
    overflows (a drop other than ``queue_full``, or the disk all but full: at most
    ``max_fault`` seconds), ``full_for`` seconds more, then back. Every
    ``decision_every``-th request is a fresh visitor's consent decision
    (``extra["records"]``: decisions answered, records stored, lost, duplicated).
    ``tmpfs``: True mounts a tmpfs (root only), False uses the drill app's quota writer
    (``DRILL_SPOOL_FS_BYTES``), None the tmpfs when it can be mounted. ``extra``: the disk
    used, when it overflowed, and what the spool directory holds at the end (``tmp_files``:
    half-written batches left behind).

    The default disk is small because the drill's events compress so well (one page app,
    50 visitors): ~17 bytes each in the spool, so 256 KiB holds ~15,000 of them, what a
    2 MiB disk holds of a real site's more varied events."""
    began = time.monotonic()
    with workdir_for(workdir) as wd:
        spool = wd / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        env = dict(web_env or {})
        with _small_disk(spool, fs_bytes, tmpfs) as (disk, used):
            if disk == "quota":
                env[FS_BYTES_ENV] = str(fs_bytes)
            with rig(wd, web_env=env, pin=pin, visitors=visitors) as r:
                load = r.load(rate, connections=connections, decision_every=decision_every)
                time.sleep(before)
                start = time.monotonic()
                if fault == "kill":
                    r.collector.kill()
                else:
                    r.collector.freeze()
                full_after = _wait_full(r.web, used, fs_bytes, max_fault)
                time.sleep(full_for)
                if fault == "kill":
                    r.collector.start()
                else:
                    r.collector.thaw()
                end = time.monotonic()
                time.sleep(after)
                requests, achieved, expected = run_out(r, load)
                result, trace = finish(r, requests, achieved, "disk_full", rate,
                                       (start, end), began, drain_timeout=drain_timeout,
                                       expected=expected)
                left = spool_contents(spool)
                result.extra.update({
                    "eviction_order": trace.eviction_order(),
                    "disk": disk, "fault": fault, "fs_bytes": fs_bytes,
                    "overflowed_after_s": full_after, "tmp_files": left.tmp_files,
                    "spool_files_left": left.files, "spool_bytes_left": left.bytes})
                return result


@contextlib.contextmanager
def _small_disk(directory: Path, size: int, tmpfs: bool | None
                ) -> Iterator[tuple[str, Callable[[], int]]]:
    """``directory`` on a tmpfs of ``size`` bytes ("tmpfs"), or left as it is for the quota
    writer ("quota"); with a function answering the bytes it uses."""
    if tmpfs is not False and _mount_tmpfs(directory, size):
        try:
            yield "tmpfs", lambda: shutil.disk_usage(directory).used
        finally:
            if subprocess.run(["umount", str(directory)]).returncode != 0:
                subprocess.run(["umount", "-l", str(directory)])  # busy: detach it anyway
        return
    if tmpfs:
        raise RuntimeError(f"cannot mount a tmpfs on {directory} (needs root)")
    yield "quota", lambda: _dir_bytes(directory)


def can_mount_tmpfs() -> bool:
    """Whether this process may mount a tmpfs (root, and a kernel and container that let it)."""
    with workdir_for(None) as wd:
        probe = wd / "probe"
        probe.mkdir()
        if not _mount_tmpfs(probe, 64 * 1024):
            return False
        subprocess.run(["umount", str(probe)], capture_output=True)
        return True


def _mount_tmpfs(directory: Path, size: int) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(directory)], capture_output=True)
    return done.returncode == 0


def _dir_bytes(directory: Path) -> int:
    total = 0
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            total += path.stat().st_size
    return total


def _wait_full(web: WebProc, used: Callable[[], int], size: int, timeout: float
               ) -> float | None:
    """Seconds until the spool overflowed; None if it did not within ``timeout``."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        dropped = web.stats()["capture"]["dropped"]
        if any(n for reason, n in dropped.items() if reason != "queue_full") or (
                used() >= size - min(64 * 1024, size // 8)):
            return round(time.monotonic() - began, 1)
        time.sleep(0.2)
    return None


def web_kill(rate: float, *, seconds: float = 10.0, connections: int = 32,
             decision_every: int = 0, web_env: Mapping[str, str] | None = None,
             workdir: Path | None = None, pin: bool = False,
             visitors: int = VISITORS, drain_timeout: float = 90.0) -> DrillResult:
    """Traffic for ``seconds`` with the collector down, then the web process killed (-9);
    the spool files it left are read, then the collector and a new web process (same spool)
    are started and the spool replayed. ``extra``: pages on disk at the kill and how many
    of them were stored once, lost or duplicated (each must be stored exactly once), what
    the web held in memory at the kill, and the lost pages that were in memory only."""
    began = time.monotonic()
    with rig(workdir, web_env=web_env, pin=pin, start_collector=False,
             visitors=visitors) as r:
        load = r.load(rate, connections=connections, decision_every=decision_every)
        start = time.monotonic()
        time.sleep(seconds)
        held = r.web.stats()["capture"]
        r.web.kill()
        end = time.monotonic()
        requests, achieved, _ = run_out(r, load)
        on_disk = spool_contents(r.spool_dir)
        r.collector.start()
        r.web.start()
        result, trace = finish(r, requests, achieved, "web_kill", rate, (start, end), began,
                               drain_timeout=drain_timeout, expected=None)
        result.extra.update(_on_disk(on_disk, trace, held))
        return result


def _on_disk(on_disk: SpoolContents, trace: Trace, held: Mapping[str, Any]) -> dict[str, Any]:
    stored = trace.stored
    paths = set(on_disk.paths)
    lost = set(trace.lost_paths)
    return {
        "on_disk": len(paths), "spool_files": on_disk.files, "spool_bytes": on_disk.bytes,
        "tmp_files": on_disk.tmp_files,
        "on_disk_records": on_disk.records,
        "on_disk_stored_once": sum(1 for p in paths if stored[p] == 1),
        "on_disk_lost": sum(1 for p in paths if not stored[p]),
        "on_disk_duplicated": sum(1 for p in paths if stored[p] > 1),
        "on_disk_not_answered": len(paths - trace.sent_paths),
        "queued_at_kill": held.get("queued"), "spooled_at_kill": held.get("spooled"),
        "lost_in_memory_only": len(lost - paths),
    }
