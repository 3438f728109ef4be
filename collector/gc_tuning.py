"""The collector process's garbage collector, set for ingesting batches.

A batch is thousands of acyclic dicts and lists that live until its rows are built and
inserted. Under CPython's thresholds (700, 10, 10) they outlive young collections, fill the
old generation and set off full collections, each of which walks every object the process
holds: the ~100,000 made at start (modules, settings, compiled schemas) on every one.
Streaming from a web process at ~17,000 events/s, the garbage collector's own timing showed
full collections at ~110 ms each and ~30 % of the collector's time.

So :func:`tune_for_ingest` moves what exists at start out of the collector's reach
(``gc.freeze``: those objects live as long as the process anyway) and makes young
collections rarer, so a batch's objects are freed by reference counting before a collection
looks at them. Cycles are still collected, later. Only the ``consent-mw collector`` command
calls it: it owns its process, whereas a host that embeds :class:`CollectorService` (tests,
the demo) keeps its own settings.
"""

from __future__ import annotations

import gc

#: Allocations between young collections (CPython: 700), then young collections per middle
#: one and middle ones per full one (CPython: 10 and 10). CPython also holds a full
#: collection back until the old generation has grown by a quarter since the last.
THRESHOLDS = (50_000, 20, 10)


def tune_for_ingest() -> None:
    """Freeze the objects made so far and set :data:`THRESHOLDS` (call once, after start)."""
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
