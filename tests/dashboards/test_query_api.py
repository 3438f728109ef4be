"""The collector's /v1/query: named catalogue queries only, read-only, behind a token."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support.dashboards import insert_events, visitors

from collector.query import api as query_api
from collector.query.params import QueryError
from collector.query.run import run_readonly
from collector.query.sql import Sql
from consent_mw.config import Secret
from dashboards.backends import CollectorBackend

TOKEN = "query-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARAMS = {"start": "2026-06-17", "end": "2026-06-30", "tz": "Asia/Tokyo", "k": 5}


@pytest.fixture
def collector(store: Any) -> TestClient:
    return TestClient(Starlette(routes=query_api.build_routes(lambda: store, Secret(TOKEN))))


def test_named_query_runs_with_the_token(store: Any, collector: TestClient) -> None:
    insert_events(store, visitors("a", 7, path="/"))
    r = collector.post("/v1/query", json={"query": "kpis", "params": PARAMS}, headers=AUTH)
    assert r.status_code == 200
    assert r.json()["rows"][0]["visitors"] == 7


def test_token_is_required(collector: TestClient) -> None:
    body = {"query": "kpis", "params": PARAMS}
    assert collector.post("/v1/query", json=body).status_code == 401
    assert collector.post("/v1/query", json=body,
                          headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_disabled_without_a_configured_token(store: Any) -> None:
    client = TestClient(Starlette(routes=query_api.build_routes(lambda: store, Secret(""))))
    r = client.post("/v1/query", json={"query": "kpis", "params": PARAMS}, headers=AUTH)
    assert r.status_code == 503


@pytest.mark.parametrize("body", [
    {"query": "DROP TABLE events"},
    {"query": "SELECT * FROM events"},
    {"query": "kpis; DROP TABLE events", "params": PARAMS},
    {"query": "kpis", "sql": "SELECT * FROM events", "params": PARAMS},
    {"sql": "ALTER TABLE events DELETE WHERE 1"},
    {"query": "breakdown", "params": {**PARAMS, "dim": "visitor_id"}},
    {"query": "breakdown", "params": {**PARAMS, "filters": {"ip": "192.0.2.1"}}},
    {"query": "kpis", "params": {**PARAMS, "k": 1}},
    {"query": "kpis_previous", "params": {**PARAMS, "start": "0001-01-01", "end": "0001-01-05"}},
    {"query": "kpis_previous",
     "params": {**PARAMS, "start": "0001-01-01", "end": "0001-01-05", "compare": "year"}},
    {"query": "kpis", "params": {**PARAMS, "filters": {"path": "\ud800"}}},
    {"query": "kpis", "params": {**PARAMS, "tz": "Asia/Tokyo'); DROP TABLE x; --"}},
    {"query": "kpis", "params": {**PARAMS, "extra": 1}},
    # JSON lists and objects where a name is expected (unhashable: these were 500s)
    {"query": "breakdown", "params": {**PARAMS, "dim": ["path"]}},
    {"query": "timeseries", "params": {**PARAMS, "grain": {"day": 1}}},
    {"query": "breakdowns", "params": {**PARAMS, "dims": [["path"]]}},
    {"query": ["kpis"], "params": PARAMS},
])
def test_refuses_unknown_names_sql_and_bad_params(store: Any, collector: TestClient,
                                                  body: dict[str, Any]) -> None:
    # As JSON text: a lone surrogate (\ud800) is an escape no encoder would send raw.
    r = collector.post("/v1/query", content=json.dumps(body),
                       headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert store.scalar("SELECT count() FROM system.tables WHERE name = 'events' "
                        "AND database = currentDatabase()") == 1


def test_readonly_runner_refuses_writes(store: Any) -> None:
    for statement in ("INSERT INTO events (path) VALUES ('/x')", "DROP TABLE events",
                      "ALTER TABLE events DELETE WHERE 1", "  insert into events select *"):
        with pytest.raises(QueryError, match="only SELECT"):
            run_readonly(store, Sql(statement))
    # The engine itself enforces read-only on what does run.
    assert run_readonly(store, Sql("SELECT getSetting('readonly') AS ro")) == [{"ro": 1}]
    assert store.scalar("SELECT count() FROM events") == 0
    # The setting is per query: the owner's own writes still work afterwards.
    insert_events(store, visitors("w", 1))
    assert store.scalar("SELECT count() FROM events") == 1


def test_collector_backend_talks_to_the_endpoint(store: Any, collector: TestClient) -> None:
    insert_events(store, visitors("a", 6, path="/price"))
    def forward(request: httpx.Request) -> httpx.Response:
        # The backend speaks httpx; the test client runs the collector app in this thread.
        r = collector.request(request.method, str(request.url), content=request.content,
                              headers=dict(request.headers))
        return httpx.Response(r.status_code, headers=list(r.headers.multi_items()),
                              content=r.content)

    backend = CollectorBackend("http://testserver", TOKEN, transport=httpx.MockTransport(forward))
    rows = backend.run("breakdown", {**PARAMS, "dim": "path"})
    assert [(r["key"], r["visitors"]) for r in rows] == [("/price", 6)]
    with pytest.raises(QueryError, match="unknown query"):
        backend.run("nope", PARAMS)


def test_cache_follows_the_data_version(store: Any) -> None:
    from dashboards.backends import CachedBackend, StoreBackend

    insert_events(store, visitors("a", 6, path="/"))
    cached = CachedBackend(StoreBackend(store))
    v1 = cached.version()
    assert cached.run("kpis", PARAMS, version=v1)[0]["visitors"] == 6
    insert_events(store, visitors("b", 1, path="/"))
    v2 = cached.version()
    assert v2 != v1
    assert cached.run("kpis", PARAMS, version=v2)[0]["visitors"] == 7
    # A purge deletes rows: the fingerprint changes, so no cached figure outlives it.
    store.command("DELETE FROM events WHERE visitor_id = {v:String}",
                  {"v": "b0000".ljust(32, "0")}, settings={"mutations_sync": 2})
    v3 = cached.version()
    assert v3 not in (v1, v2)
    assert cached.run("kpis", PARAMS, version=v3)[0]["visitors"] == 6


def test_store_backend_retries_a_failed_read_once(store: Any) -> None:
    from dashboards.backends import BackendError, StoreBackend

    class Flaky:
        """The real store, but its next ``failures`` reads fail like a vanished part."""

        def __init__(self, failures: int) -> None:
            self.failures = failures

        def query(self, *args: Any, **kw: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise RuntimeError("No such file or directory: data.cmrk4")
            return store.query(*args, **kw)

    insert_events(store, visitors("a", 5))
    assert StoreBackend(Flaky(1)).run("kpis", PARAMS)[0]["visitors"] == 5  # type: ignore[arg-type]
    with pytest.raises(BackendError):
        StoreBackend(Flaky(2)).run("kpis", PARAMS)  # type: ignore[arg-type]


def test_max_age_cache_lags_new_events_but_never_privacy_changes(store: Any) -> None:
    from dashboards.backends import CachedBackend, StoreBackend

    insert_events(store, visitors("a", 6, path="/"))
    cached = CachedBackend(StoreBackend(store), max_age=3600)
    v1 = cached.version()
    assert cached.run("kpis", PARAMS, version=v1)[0]["visitors"] == 6
    insert_events(store, visitors("b", 1, path="/"))
    assert cached.version() == v1  # new events may wait for the next refresh
    store.insert("suppressions", [["visitor_id", "a0000".ljust(32, "0"), "h", True, False,
                                   "", "", dt.datetime.now(dt.UTC), 1]],
                 ["id_type", "subject", "subject_hash", "active", "purged", "reason",
                  "requested_by", "updated_at", "version"])
    v2 = cached.version()
    assert v2 != v1
    assert cached.run("kpis", PARAMS, version=v2)[0]["visitors"] == 6  # 7 - 1 suppressed
    store.command("DELETE FROM events WHERE visitor_id = {v:String}",
                  {"v": "b0000".ljust(32, "0")}, settings={"mutations_sync": 2})
    v3 = cached.version()
    assert v3 not in (v1, v2)
    assert cached.run("kpis", PARAMS, version=v3)[0]["visitors"] == 5
