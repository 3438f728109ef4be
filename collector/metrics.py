"""Prometheus metrics, one registry per service so tests and embedded collectors don't collide."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

PREFIX = "consent_mw_collector"
CONTENT_TYPE = CONTENT_TYPE_LATEST


class CollectorMetrics:
    """Counters of what came in, what was stored and what was turned away, and why."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The interpreter's collections per generation (python_gc_*): what gc_tuning is for.
        r.register(GC_COLLECTOR)
        self.batches = Counter(f"{PREFIX}_batches", "Batches received, by outcome",
                               ["outcome"], registry=r)
        self.received = Counter(f"{PREFIX}_received", "Items received, by type (event/record)",
                                ["type"], registry=r)
        self.inserted = Counter(f"{PREFIX}_inserted", "Rows inserted, by table",
                                ["table"], registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected", "Items or batches rejected, by reason",
                                ["reason"], registry=r)
        self.dropped = Counter(f"{PREFIX}_dropped",
                               "Valid items not stored (duplicate, suppressed), by reason",
                               ["reason"], registry=r)
        self.bots = Counter(f"{PREFIX}_bots",
                            "Events of known bots: counted per hour in bot_hits, not stored, "
                            "by kind", ["kind"], registry=r)
        self.fields = Counter(f"{PREFIX}_fields",
                              "Fields altered on valid items (truncated, invalid_ip dropped)",
                              ["action"], registry=r)
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth",
                                 "Batches being validated or waiting for the store", registry=r)
        self.insert_seconds = Histogram(
            f"{PREFIX}_insert_seconds", "Time to insert one batch into the store",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )

        self.purges = Counter(f"{PREFIX}_purges",
                              "Purge requests, by outcome (queued, completed, incomplete, "
                              "failed, rejected_queue_full)", ["outcome"], registry=r)
        self.purge_queue = Gauge(f"{PREFIX}_purge_queue",
                                 "Purge requests waiting for the next batch", registry=r)
        self.purge_batch_seconds = Histogram(
            f"{PREFIX}_purge_batch_seconds", "Time of one batch of purges (one physical pass)",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600), registry=r)
        self.purge_batch_size = Histogram(
            f"{PREFIX}_purge_batch_size", "Purge requests served by one physical pass",
            buckets=(1, 2, 5, 10, 25, 50, 100, 200), registry=r)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
