"""Where dashboard numbers come from: backends, panels, and the request's filters.

A backend runs a *named* query from the catalogue (``collector.query.api.CATALOGUE``) with
parameters; it never sees SQL. ``StoreBackend`` runs it on a store in this process,
``CollectorBackend`` asks the collector that owns the store (``POST /v1/query``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from collector.query import catalogue
from collector.query import run as query_run
from collector.query.params import FILTERS, MAX_DAYS, MAX_FILTER_LEN, QueryError, parse_date
from collector.store import Store

Rows = list[dict[str, Any]]
log = logging.getLogger("consent_mw.dashboards")


class BackendError(RuntimeError):
    """The store or collector could not answer (not the caller's fault)."""


class Backend(Protocol):
    def run(self, name: str, params: Mapping[str, Any]) -> Rows: ...


class StoreBackend:
    """Catalogue queries on a store this process owns (the demo; a ClickHouse server)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def run(self, name: str, params: Mapping[str, Any]) -> Rows:
        catalogue.build(name, params)  # QueryError passes through: the caller's fault
        for attempt in (1, 2):
            try:
                return query_run.run(self.store, name, params)
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
        self.url = collector_url.rstrip("/") + "/v1/query"
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {query_token}"})
        self._lock = threading.Lock()

    def run(self, name: str, params: Mapping[str, Any]) -> Rows:
        try:
            with self._lock:
                response = self._client.post(self.url, json={"query": name,
                                                             "params": dict(params)})
        except httpx.HTTPError as exc:
            raise BackendError(f"collector unreachable: {exc}") from exc
        if response.status_code == 400:
            raise QueryError(str(response.json().get("message", "bad query")))
        if response.status_code != 200:
            raise BackendError(f"collector answered {response.status_code}")
        rows = response.json().get("rows")
        if not isinstance(rows, list):
            raise BackendError("collector answered without rows")
        return rows

    def close(self) -> None:
        self._client.close()


class CachedBackend:
    """Reuse results while the data is unchanged, so numbers stay exact.

    The key is a fingerprint of the store (``data_version``). With ``max_age = 0`` it changes
    with every insert, delete (purge), mutation, merge and suppression, so a cached answer is
    always the answer a fresh query would give. With ``max_age > 0`` new events may be up to
    ``max_age`` seconds late (useful while the collector ingests continuously), but any
    suppression change or delete still invalidates at once: privacy is never stale.
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

    def run(self, name: str, params: Mapping[str, Any], *, version: str | None = None) -> Rows:
        if not version or self.max_entries <= 0:
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


# --- panels ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Panel:
    """One box on a page: a catalogue query, how to show it, and its column labels."""

    id: str
    title: str
    query: str
    show: str  # "kpis" | "series" | "table" | "chart"
    dim: str | None = None
    note: str = ""
    chart: str = ""  # for "chart": "funnel" | "optin" | "gpc" | "coverage"


def _bd(dim: str, title: str, note: str = "") -> Panel:
    return Panel(f"bd_{dim}", title, "breakdown", "table", dim=dim, note=note)


PANELS: dict[str, Panel] = {p.id: p for p in [
    Panel("kpis", "Key figures", "kpis", "kpis"),
    Panel("series", "Visitors and pageviews", "timeseries", "series"),
    _bd("path", "Top pages"),
    _bd("entry_path", "Entry pages", "pages that start a visit from outside the site"),
    _bd("channel", "Channels", "visits by how they arrived"),
    _bd("referrer_host", "Referrers"),
    _bd("utm_source", "Campaign sources (utm_source)"),
    _bd("utm_medium", "Campaign media (utm_medium)"),
    _bd("utm_campaign", "Campaigns (utm_campaign)"),
    _bd("click_id_type", "Ad click ids", "which ad network's click id the landing carried"),
    _bd("search_terms", "Site search terms"),
    _bd("device_type", "Devices"),
    _bd("browser", "Browsers"),
    _bd("os", "Operating systems"),
    _bd("language", "Languages"),
    _bd("network_type", "Network type", "effective connection type (Chromium browsers)"),
    _bd("country", "Countries", "needs location consent; (not set) without it"),
    _bd("region", "Regions"),
    _bd("city", "Cities"),
    _bd("event", "Custom events"),
    _bd("property", "Custom event properties"),
    Panel("consent_funnel", "Banner shown → decisions", "consent_funnel", "chart",
          chart="funnel", note="distinct consent ids"),
    Panel("optin", "Opt-in rate per category", "optin", "chart", chart="optin"),
    Panel("gpc", "Global Privacy Control share", "gpc", "chart", chart="gpc",
          note="share of banner impressions from browsers sending Sec-GPC: 1"),
    Panel("coverage", "Consent coverage: anonymous counts vs consented detail", "coverage",
          "chart", chart="coverage",
          note="views without analytics consent are counted anonymously (path, hour, device)"),
    Panel("anonymous_pages", "Anonymous counts by page", "anonymous_pages", "table",
          dim="path"),
    Panel("suppression_stats", "Suppressions", "suppression_stats", "table"),
]}


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    title: str
    panels: tuple[str, ...]


PAGES: dict[str, Page] = {p.id: p for p in [
    Page("overview", "Overview", ("kpis", "series", "bd_path", "bd_entry_path", "bd_channel",
                                  "bd_referrer_host", "bd_device_type", "bd_country")),
    Page("acquisition", "Acquisition", ("bd_channel", "bd_referrer_host", "bd_utm_source",
                                        "bd_utm_medium", "bd_utm_campaign",
                                        "bd_click_id_type", "bd_search_terms")),
    Page("audience", "Audience", ("bd_device_type", "bd_browser", "bd_os", "bd_language",
                                  "bd_network_type", "bd_country", "bd_region", "bd_city")),
    Page("events", "Events", ("kpis", "bd_event", "bd_property")),
    Page("consent", "Consent", ("consent_funnel", "optin", "gpc", "coverage",
                                "anonymous_pages")),
    Page("privacy", "Privacy staff", ("suppression_stats",)),
]}


# --- the request's view: date range, filters, grain -------------------------------------------

PRESETS = ("today", "yesterday", "7d", "30d", "90d", "this_month", "last_month", "custom")


@dataclass(frozen=True, slots=True)
class View:
    """Validated query-string state: what every panel on the page is computed over."""

    preset: str
    start: dt.date
    end: dt.date
    filters: tuple[tuple[str, str], ...]
    grain: str
    compare: bool

    def params(self, settings_k: int, tz: str, **extra: Any) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": tz,
                "filters": dict(self.filters), "k": settings_k, **extra}

    def query(self, **changes: Any) -> list[tuple[str, str]]:
        """Query-string pairs for this view with ``changes`` (filter=None removes one)."""
        filters = dict(self.filters)
        for key, value in changes.get("filters", {}).items():
            if value is None:
                filters.pop(key, None)
            else:
                filters[key] = value
        pairs = [("preset", self.preset)]
        if self.preset == "custom":
            pairs += [("start", self.start.isoformat()), ("end", self.end.isoformat())]
        if self.grain != "auto":
            pairs.append(("grain", self.grain))
        if not self.compare:
            pairs.append(("compare", "0"))
        pairs += [(f"f.{k}", v) for k, v in sorted(filters.items())]
        return pairs


def preset_range(preset: str, today: dt.date) -> tuple[dt.date, dt.date]:
    if preset == "today":
        return today, today
    if preset == "yesterday":
        y = today - dt.timedelta(days=1)
        return y, y
    if preset in ("7d", "30d", "90d"):
        return today - dt.timedelta(days=int(preset[:-1]) - 1), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    raise QueryError(f"preset: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")


def parse_view(query: Mapping[str, str] | Any, tz: str,
               today: dt.date | None = None) -> View:
    """The view from a query string; QueryError (a 400) names anything invalid."""
    today = today or dt.datetime.now(zoneinfo.ZoneInfo(tz)).date()
    preset = query.get("preset") or ("custom" if query.get("start") else "30d")
    if preset not in PRESETS:
        raise QueryError(f"preset: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    if preset == "custom":
        start = parse_date("start", query.get("start"))
        end = parse_date("end", query.get("end") or query.get("start"))
        if end < start:
            raise QueryError("end: must not be before start")
        if (end - start).days >= MAX_DAYS:
            raise QueryError(f"date range: at most {MAX_DAYS} days")
    else:
        start, end = preset_range(preset, today)
    filters: dict[str, str] = {}
    for key in query:
        if key.startswith("f."):
            dim = key[2:]
            if dim not in FILTERS:
                raise QueryError(f"unknown filter {dim!r}; filterable: "
                                 f"{', '.join(sorted(FILTERS))}")
            value = str(query.get(key) or "")
            if len(value) > MAX_FILTER_LEN:
                raise QueryError(f"filter {dim!r}: value too long")
            filters[dim] = value
    grain = query.get("grain") or "auto"
    if grain not in ("auto", "hour", "day", "week"):
        raise QueryError("grain: expected hour, day or week")
    if grain == "hour" and (end - start).days > 31:
        raise QueryError("grain: hourly series cover at most 31 days")
    compare = query.get("compare", "1") != "0"
    return View(preset, start, end, tuple(sorted(filters.items())), grain, compare)


def effective_grain(view: View) -> str:
    if view.grain != "auto":
        return view.grain
    days = (view.end - view.start).days + 1
    return "hour" if days <= 2 else "day" if days <= 92 else "week"


def panel_params(panel: Panel, view: View, k: int, tz: str, top_n: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if panel.query == "breakdown":
        extra = {"dim": panel.dim, "limit": top_n}
    elif panel.query == "anonymous_pages":
        extra = {"limit": top_n}
    elif panel.query == "timeseries":
        extra = {"grain": effective_grain(view)}
    if panel.query in catalogue.UNDATED:
        return {}
    return view.params(k, tz, **extra)
