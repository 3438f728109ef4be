"""The only door to ClickHouse: one client per process, opened from a DSN.

``chdb:///path`` is the embedded engine (one process may own a directory; the collector is
that process). ``http(s)://user:pass@host:port/db`` is a ClickHouse server. Every setting the
code relies on is set explicitly, because chDB's defaults differ from a server's
(``async_insert=1``, ``mutations_sync=1``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.query import QueryResult

from collector.errors import CollectorError

#: Inserts are synchronous so that "inserted" means on disk, and replays are deduplicated.
INSERT_SETTINGS: dict[str, Any] = {"async_insert": 0, "wait_for_async_insert": 1}
#: Mutations (ALTER ... DELETE/UPDATE, MATERIALIZE TTL) wait for every part before returning.
MUTATION_SETTINGS: dict[str, Any] = {"mutations_sync": 2}
#: Queries that carry a person's identifiers stay out of system.query_log.
PRIVATE_SETTINGS: dict[str, Any] = {"log_queries": 0, "log_query_threads": 0}


class StoreError(CollectorError, RuntimeError):
    """The store could not be opened or a statement failed."""


def mask_dsn(dsn: str) -> str:
    """``dsn`` with its password, if it has one, replaced by asterisks (for logs and reprs)."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return parts._replace(netloc=netloc).geturl()
    return dsn


def _dsn_kind(dsn: str) -> str:
    scheme = urlsplit(dsn).scheme
    if scheme == "chdb":
        return "chdb"
    if scheme in {"http", "https"}:
        return "server"
    raise StoreError(f"unsupported store DSN scheme {scheme!r}: use chdb:///path or http(s)://")


def chdb_path(dsn: str) -> Path | None:
    """The directory of an embedded store, or None for a server."""
    if _dsn_kind(dsn) != "chdb":
        return None
    path = urlsplit(dsn).path
    return Path(path) if path else None


class Store:
    """A thin, thread-safe wrapper over a clickhouse-connect client."""

    def __init__(self, dsn: str, *, database: str | None = None) -> None:
        self.dsn = dsn
        self.kind = _dsn_kind(dsn)
        self.path = chdb_path(dsn)
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # Column types per (table, columns) inserted into: without them the driver asks the
        # store (DESCRIBE TABLE) before every insert, a third of a small insert's cost.
        self._insert_types: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        try:
            self.client: Client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:  # the driver raises many types; callers get one
            raise StoreError(f"cannot open store {self.masked_dsn}: {exc}") from exc
        self.database = database or self._current_database()

    @property
    def masked_dsn(self) -> str:
        return mask_dsn(self.dsn)

    @property
    def embedded(self) -> bool:
        return self.kind == "chdb"

    def _current_database(self) -> str:
        return str(self.client.command("SELECT currentDatabase()"))

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        with self._lock:
            return self.client.query(sql, parameters=dict(parameters or {}),
                                     settings=dict(settings or {}))

    def rows(
        self, sql: str, parameters: Mapping[str, Any] | None = None, **kw: Any
    ) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.query(sql, parameters, **kw).result_rows]

    def dicts(
        self, sql: str, parameters: Mapping[str, Any] | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        result = self.query(sql, parameters, **kw)
        names = result.column_names
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    def scalar(self, sql: str, parameters: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        rows = self.query(sql, parameters, **kw).result_rows
        return rows[0][0] if rows else None

    def command(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        with self._lock:
            return self.client.command(sql, parameters=dict(parameters or {}),
                                       settings=dict(settings or {}))

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        *,
        column_oriented: bool = False,
        dedup_token: str | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert rows (or columns); returns the number of rows written."""
        merged = dict(INSERT_SETTINGS)
        if dedup_token:
            merged["insert_deduplication_token"] = dedup_token
        merged.update(settings or {})
        key = (table, tuple(column_names))
        with self._lock:
            types = self._insert_types.get(key)
            if types is None:
                types = self._insert_types[key] = self._column_types(table, key[1])
            try:
                summary = self.client.insert(
                    table, data, column_names=list(column_names), column_type_names=types,
                    column_oriented=column_oriented, settings=merged,
                )
            except Exception:
                self._insert_types.pop(key, None)  # the table may have changed: ask again
                raise
        return int(summary.written_rows)

    def _column_types(self, table: str, columns: tuple[str, ...]) -> list[str]:
        described = {str(row[0]): str(row[1]) for row in self.client.query(
            "DESCRIBE TABLE {table:Identifier}", parameters={"table": table}).result_rows}
        missing = [c for c in columns if c not in described]
        if missing:
            raise StoreError(f"table {table} has no column(s) {', '.join(missing)}")
        return [described[c] for c in columns]

    def close(self) -> None:
        with self._lock:
            self.client.close()
