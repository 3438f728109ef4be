"""How a view reaches the query API: in this process, or over HTTP to the collector.

A backend runs a *named* query from the catalogue (``collector.query.catalogue.CATALOGUE``) with
parameters; it never sees SQL. :class:`StoreBackend` runs it on a store this process owns,
:class:`CollectorBackend` asks the collector that owns the store (``POST /v1/query``), and
:class:`CachedBackend` wraps either, reusing answers while the data is unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from collector.notes import StaffItems, WriteRefused, check_id
from collector.query import catalogue
from collector.query import run as query_run
from collector.query.params import QueryError
from collector.query.realtime import CLOCKED
from collector.staff import ITEMS, staff_items
from collector.store import Store

#: Result rows as the catalogue returns them: column → a JSON-safe value of that column's type.
Rows = list[dict[str, Any]]
#: Catalogue parameters (``collector.query.params.parse_params`` validates them).
Params = Mapping[str, object]

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The store or collector could not answer (not the caller's fault)."""


class Backend(Protocol):
    def run(self, name: str, params: Params) -> Rows:
        """The rows of catalogue query ``name``; QueryError for bad input, BackendError for
        an answer that could not be had."""
        ...

    def add_item(self, item: str, body: Mapping[str, object], author: str) -> str:
        """Add a note, saved segment or goal (``collector.staff.ITEMS``) as ``author``; its
        id, or WriteRefused with the reason."""
        ...

    def delete_item(self, item: str, item_id: str, author: str) -> bool:
        """Remove one; False when there is none."""
        ...

    def for_page(self) -> Backend:
        """This backend for the queries of one page, which may then share what each reads
        before its own SQL (``collector.query.run.Reads``): use it for one page, then drop
        it. A backend with nothing to share returns itself."""
        ...


class StoreBackend:
    """Catalogue queries on a store this process owns (the demo; a ClickHouse server)."""

    def __init__(self, store: Store, *, reads: query_run.Reads | None = None,
                 items: dict[str, StaffItems] | None = None) -> None:
        self.store = store
        self.items = items if items is not None else staff_items(store)
        self.reads = reads  # a page's (for_page), or None: each query reads its own

    def for_page(self) -> StoreBackend:
        return StoreBackend(self.store, reads=query_run.Reads(self.store), items=self.items)

    def _item(self, item: str) -> StaffItems:
        found = self.items.get(item)
        if found is None:
            raise WriteRefused(f"no such item {item!r}")
        return found

    def add_item(self, item: str, body: Mapping[str, object], author: str) -> str:
        return self._item(item).add_from(body, author)

    def delete_item(self, item: str, item_id: str, author: str) -> bool:
        return self._item(item).delete(item_id, author)

    def run(self, name: str, params: Params) -> Rows:
        catalogue.params_for(name, params)  # QueryError passes through: the caller's fault
        for attempt in (1, 2):
            try:
                return query_run.run(self.store, name, params, reads=self.reads)
            except QueryError:
                raise
            except Exception as exc:
                # Seen in the demo: right after a bulk insert, chDB may drop a merged-away
                # part under a running read ("No such file ... data.cmrk4"). A read-only
                # query is safe to run again once.
                if attempt == 2:
                    raise BackendError(f"query {name} failed: {exc}") from exc
                log.warning("query %s failed, retrying once: %s", name, exc)
                time.sleep(0.05)
        raise AssertionError("unreachable")


class CollectorBackend:
    """Catalogue queries through the collector that owns a chDB store."""

    def __init__(self, collector_url: str, query_token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = collector_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {query_token}"})
        self._lock = threading.Lock()

    def run(self, name: str, params: Params) -> Rows:
        answer = self._post("/v1/query", {"query": name, "params": dict(params)},
                            refused=QueryError)
        rows = answer.get("rows")
        if not isinstance(rows, list):
            raise BackendError("collector answered without rows")
        return rows

    def _post(self, path: str, body: dict[str, object],
              refused: type[Exception] = WriteRefused) -> dict[str, Any]:
        """The collector's JSON object for ``body`` posted at ``path``; ``refused`` with its
        reason for a 400, BackendError when it could not answer."""
        try:
            with self._lock:
                response = self._client.post(self.base + path, json=body)
        except httpx.HTTPError as exc:
            raise BackendError(f"collector unreachable: {exc}") from exc
        if response.status_code == 400:
            raise refused(str(response.json().get("message", "refused")))
        if response.status_code != 200:
            raise BackendError(f"collector answered {response.status_code}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise BackendError("collector answered without an object")
        return answer

    def add_item(self, item: str, body: Mapping[str, object], author: str) -> str:
        if item not in ITEMS:
            raise WriteRefused(f"no such item {item!r}")
        return str(self._post(f"/v1/{item}", {**body, "author": author}).get("id", ""))

    def delete_item(self, item: str, item_id: str, author: str) -> bool:
        if item not in ITEMS:
            raise WriteRefused(f"no such item {item!r}")
        check_id(item_id, item)  # never a path the collector did not mean
        return bool(self._post(f"/v1/{item}/{item_id}/delete", {"author": author})
                    .get("deleted"))

    def for_page(self) -> CollectorBackend:
        return self  # each query is its own request to the collector

    def close(self) -> None:
        self._client.close()


class CachedBackend:
    """Reuse results while the data is unchanged, so numbers stay exact.

    The key is a fingerprint of the store (``data_version``). With ``max_age = 0`` it changes
    with every insert, delete (purge), mutation, merge and suppression, so a cached answer is
    always the answer a fresh query would give. With ``max_age > 0`` new events may be up to
    ``max_age`` seconds late (useful while the collector ingests continuously), but any
    suppression change or delete still invalidates at once: privacy is never stale.
    ``max_entries = 0`` turns caching off. Queries whose answer moves with the clock alone
    (realtime) are never cached.
    """

    def __init__(self, inner: Backend, max_entries: int = 512, max_age: int = 0) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_age = max_age
        self._cache: dict[tuple[str, str, str], Rows] = {}
        self._lock = threading.Lock()

    def version(self) -> str:
        """The cache key's data part, or "" (no caching) when the store will not tell."""
        if self.max_entries <= 0:
            return ""
        try:
            rows = self.inner.run("data_version", {})
        except (BackendError, QueryError):  # e.g. a server user without access to system.parts
            return ""
        if not rows:
            return ""
        if self.max_age > 0:
            return f"{rows[0]['privacy_version']}@{int(time.time() // self.max_age)}"
        return str(rows[0]["version"])

    def for_page(self) -> CachedBackend:
        """The inner backend's for one page, behind the same cache."""
        page = CachedBackend(self.inner.for_page(), self.max_entries, self.max_age)
        page._cache, page._lock = self._cache, self._lock
        return page

    def add_item(self, item: str, body: Mapping[str, object], author: str) -> str:
        return self.inner.add_item(item, body, author)  # the data version moves with it

    def delete_item(self, item: str, item_id: str, author: str) -> bool:
        return self.inner.delete_item(item, item_id, author)

    def run(self, name: str, params: Params, *, version: str | None = None) -> Rows:
        if not version or self.max_entries <= 0 or name in CLOCKED:
            return self.inner.run(name, params)
        key = (version, name, repr(sorted((k, repr(v)) for k, v in params.items())))
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        rows = self.inner.run(name, params)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = rows
        return rows
