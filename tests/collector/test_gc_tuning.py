"""The ``consent-mw collector`` process ingests a batch without the garbage collector walking
it: the batch's objects are freed by reference counting first (collector/gc_tuning.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
from support.servers import free_port, process
from support.wire import AUTH, TOKEN, batch_body, make_event

BATCH = 5_000  # what a web process sends at a time


def collections(metrics: str) -> list[int]:
    """python_gc_collections_total per generation, from a /metrics page."""
    found = dict(re.findall(r'python_gc_collections_total\{generation="(\d)"\} ([\d.]+)',
                            metrics))
    return [int(float(found[str(g)])) for g in range(3)]


def test_a_batch_is_ingested_without_a_young_collection_per_700_objects(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "consent_mw_cli", "collector", "--port", str(port),
               "--store", f"chdb://{tmp_path / 'store'}", "--log-level", "warning"]

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz").status_code == 200
        except httpx.HTTPError:
            return False

    body = batch_body([make_event(path=f"/p{i}") for i in range(BATCH)])
    with process(command, env={"CONSENT_MW_COLLECTOR_TOKEN": TOKEN}, ready=up):
        before = collections(httpx.get(base + "/metrics").text)
        r = httpx.post(base + "/v1/events", content=body, headers=AUTH, timeout=60)
        assert r.status_code == 200 and r.json()["accepted"] == BATCH
        after = collections(httpx.get(base + "/metrics").text)
    # Decoding, checking and building 5,000 events makes ~27,000 containers: at CPython's
    # default of a young collection every 700, this batch ran 39 of them, and 4 middle ones.
    # One is allowed: what the collector's own workers allocate meanwhile counts too.
    assert after[0] - before[0] <= 1, (before, after)
    if sys.version_info < (3, 14):  # 3.14's incremental collector counts generations anew
        assert after[2] == before[2]  # and no full collection walked the process
