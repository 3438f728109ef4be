"""The setting of a fault drill: a collector and a web process, the traffic, the count.

:func:`rig` starts both processes in a work directory and gets the load's consent cookies;
:func:`wait_drained` waits for the web process to hand over everything it holds;
:func:`finish` drains, stops both processes, counts the rows and traces every request.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.drill_load import Load, Request
from bench.drill_procs import CollectorProc, WebProc, stored_consents, stored_paths
from bench.drill_trace import DrillResult, Trace

PREFIX = "/d/"
#: Visitors the load's page views are spread over (their ids make events differ, as a
#: site's do: it matters to how well the spool compresses).
VISITORS = 50


class Sampler:
    """The web process's capture counts, polled every ``every`` seconds in a thread:
    ``samples`` of (seconds since start, queued, spooled, dropped in all)."""

    def __init__(self, web: WebProc, every: float = 0.25) -> None:
        self.web = web
        self.every = every
        self.samples: list[tuple[float, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-sampler", daemon=True)
        self._began = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                cap = self.web.stats(timeout=2.0)["capture"]
            except (OSError, ValueError):
                continue  # down, or killed: nothing to sample
            self.samples.append((round(time.monotonic() - self._began, 2), cap["queued"],
                                 cap["spooled"], sum(cap["dropped"].values())))

    def stop(self) -> dict[str, int]:
        """Stop; the peaks seen: ``peak_queued``, ``peak_spooled``."""
        self._stop.set()
        self._thread.join(5)
        return {"peak_queued": max((s[1] for s in self.samples), default=0),
                "peak_spooled": max((s[2] for s in self.samples), default=0)}


@dataclass
class Rig:
    """A collector and a web process in ``workdir`` (``store/``, ``spool/``, their logs);
    ``cookies``: visitors who accepted all, for the load."""

    workdir: Path
    collector: CollectorProc
    web: WebProc
    cookies: list[str] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    sampler: Sampler | None = None

    @property
    def store_dir(self) -> Path:
        return self.collector.store_dir

    @property
    def spool_dir(self) -> Path:
        return self.web.spool_dir

    def load(self, rate: float, **kw: Any) -> Load:
        """Start paced traffic at ``rate`` (see :class:`Load`), pages under ``/d/``, and
        the sampling of the web's counts (the first time)."""
        load = Load(self.web.url, self.cookies, rate, prefix=PREFIX, **kw).start()
        self.loads.append(load)
        if self.sampler is None:
            self.sampler = Sampler(self.web)
        return load

    def peaks(self) -> dict[str, int]:
        """Stop sampling; the largest queue and spool the web process was seen holding."""
        return self.sampler.stop() if self.sampler is not None else {}

    def close(self) -> None:
        self.peaks()
        for load in self.loads:
            with contextlib.suppress(Exception):
                load.stop()
        self.web.close()
        self.collector.close()


@contextlib.contextmanager
def rig(workdir: Path | None = None, *, web_env: Mapping[str, str] | None = None,
        pin: bool = False, start_collector: bool = True, visitors: int = VISITORS
        ) -> Iterator[Rig]:
    """A collector and a web process, started (the collector only if ``start_collector``:
    the web then sends to its port, where nothing listens yet), and ``visitors`` consent
    cookies for the load; both processes killed on exit. ``pin``: the web on CPU 0, the
    collector on CPU 1 (``taskset``)."""
    with workdir_for(workdir) as wd:
        collector = CollectorProc(wd / "store", cpu=1 if pin else None,
                                  log=wd / "collector.log")
        web = WebProc(wd / "spool", collector.url, cpu=0 if pin else None, log=wd / "web.log",
                      env=web_env)
        r = Rig(wd, collector, web)
        try:
            if start_collector:
                collector.start()
            web.start()
            r.cookies = [web.consent_cookie(f"192.0.2.{i % 250 + 1}")
                         for i in range(visitors)]
            yield r
        finally:
            r.close()


@contextlib.contextmanager
def workdir_for(workdir: Path | None) -> Iterator[Path]:
    """``workdir`` (created, kept), or a temporary directory removed afterwards."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    with tempfile.TemporaryDirectory(prefix="drill-") as tmp:
        yield Path(tmp)


def wait_drained(web: WebProc, expected: int | None = None, timeout: float = 60.0,
                 settle: float = 3.0) -> tuple[bool, dict[str, Any]]:
    """Wait until the web process holds nothing (queued, in flight and spooled all 0) and has
    accounted for ``expected`` items (sent, rejected or dropped), or, without ``expected``
    or when items went unaccounted, until its counts have not moved for ``settle`` seconds.
    (drained, its last stats)."""
    deadline = time.monotonic() + timeout
    stats: dict[str, Any] = {}
    last: tuple[int, ...] | None = None
    since = time.monotonic()
    while True:
        now = time.monotonic()
        try:
            stats = web.stats()
        except OSError:
            stats = stats or {}
        cap = stats.get("capture") or {}
        if cap:
            idle = cap["queued"] == 0 and cap["spooled"] == 0 and cap.get("in_flight", 0) == 0
            done = (cap["sent"] + cap["rejected"] + cap["records_sent"]
                    + sum(cap["dropped"].values()))
            if idle and expected is not None and done >= expected:
                return True, stats
            key = (done, cap["queued"], cap["spooled"])
            if key != last:
                last, since = key, now
            elif idle and now - since >= settle:
                return True, stats
        if now > deadline:
            return False, stats
        time.sleep(0.2)


def finish(r: Rig, requests: list[Request], achieved: float, drill: str, rate: float,
           fault: tuple[float, float], began: float, *, drain_timeout: float,
           expected: int | None, extra: dict[str, Any] | None = None
           ) -> tuple[DrillResult, Trace]:
    """Drain the web process (``expected``: see :func:`wait_drained`), stop both, count the
    rows, trace every request; ``fault`` is the window whose latency is reported."""
    extra = {**r.peaks(), **(extra or {})}
    drained, stats = wait_drained(r.web, expected, drain_timeout)
    r.web.stop()
    r.collector.stop()
    trace = Trace(requests, stored_paths(r.store_dir, PREFIX), fault)
    if trace.decisions:
        extra["records"] = _records(trace, stored_consents(r.store_dir))
    result = trace.result(drill, rate, achieved, stats=stats, drained=drained,
                          seconds=time.monotonic() - began, extra=extra)
    return result, trace


def expected_items(requests: list[Request], visitors: int) -> int:
    """Items the web must account for: pages answered 200, decisions answered (one record
    each), and the decisions that made the load's ``visitors`` cookies."""
    return visitors + sum(1 for q in requests if q.status == 200 or (q.kind == "decision" and q.ok))


def _records(trace: Trace, consents: Mapping[str, int]) -> dict[str, int]:
    ids = [q.consent_id for q in trace.decisions if q.consent_id]
    return {"decisions": len(trace.decisions),
            "stored": sum(1 for c in ids if consents.get(c, 0) >= 1),
            "lost": sum(1 for c in ids if not consents.get(c, 0)),
            "duplicated": sum(1 for c in ids if consents.get(c, 0) > 1)}


def run_out(r: Rig, load: Load) -> tuple[list[Request], float, int]:
    """Stop the load: its requests, its achieved rate, the items the web must account for."""
    requests = load.stop()
    return requests, load.achieved_rate, expected_items(requests, len(r.cookies))
