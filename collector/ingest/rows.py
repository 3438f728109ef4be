"""Validated wire items → the store's columns, built column by column.

Each column is declared once, in :data:`EVENT_FIELDS` and :data:`RECORD_FIELDS`, as the
expression that reads it from one item. The tables are compiled at import into one function
per table that builds every column with a list comprehension: a batch is inserted
column-oriented, and one comprehension per column costs about half of building a row per
item and transposing the rows (the collector's CPU per event is what limits a site's
throughput when both share a machine).

An expression reads one of these names: ``e`` (the validated item, text fields str or
None), ``d`` (its :class:`~collector.enrich.device.DeviceInfo`), ``p`` (its
:class:`~collector.enrich.geo.Place`) or ``ip`` (its address, "" when absent). The helpers
they may call are in :data:`_HELPERS`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from collector.enrich.device import DeviceInfo, device_fields
from collector.enrich.geo import NOWHERE, GeoLookup, Place, ip_prefix

log = logging.getLogger(__name__)

Columns = list[list[Any]]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _prop(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _props(props: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): _prop(v) for k, v in props.items()} if props else {}


def _traits(traits: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in traits.items() if v is not None} if traits else {}


def _name(e: dict[str, Any]) -> str:
    kind = e["kind"]
    return e.get("name") or ("pageview" if kind in ("pageview", "anonymous") else "")


_HELPERS: dict[str, Any] = {"_text": _text, "_props": _props, "_traits": _traits,
                            "_name": _name, "ip_prefix": ip_prefix}

#: (column, expression) for the events table, in its insert order. DateTime64(3) columns get
#: the ms ints themselves: no datetime objects to build here and take apart in the driver.
EVENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("event_id", 'e["event_id"]'),
    ("ts", 'int(e["ts"])'),
    ("kind", 'e["kind"]'),
    ("name", "_name(e)"),
    ("consent", 'e.get("consent") or {}'),
    ("gpc", 'e.get("gpc") is True'),
    ("host", 'e.get("host") or ""'),
    ("path", 'e.get("path") or ""'),
    ("method", 'e.get("method") or ""'),
    ("status", 'int(e.get("status") or 0)'),
    ("search_terms", 'e.get("search_terms") or ""'),
    ("referrer_host", 'e.get("referrer_host") or ""'),
    ("channel", 'e.get("channel") or ""'),
    ("language", 'e.get("language") or ""'),
    ("network_type", 'e.get("network_type") or ""'),
    ("save_data", 'e.get("save_data")'),
    ("browser", "d.browser"),
    ("browser_version", "d.browser_version"),
    ("os", "d.os"),
    ("os_version", "d.os_version"),
    ("device_type", "d.device_type"),
    ("device_brand", "d.device_brand"),
    ("device_model", "d.device_model"),
    ("visitor_id", 'e.get("visitor_id") or ""'),
    ("session_id", 'e.get("session_id") or ""'),
    ("consent_id", 'e.get("consent_id") or ""'),
    ("user_id", 'e.get("user_id") or ""'),
    ("ip", "ip"),
    ("ip_prefix", "ip_prefix(ip)"),
    ("country", "p.country"),
    ("region", "p.region"),
    ("city", "p.city"),
    ("utm_source", 'e.get("utm_source") or ""'),
    ("utm_medium", 'e.get("utm_medium") or ""'),
    ("utm_campaign", 'e.get("utm_campaign") or ""'),
    ("utm_term", 'e.get("utm_term") or ""'),
    ("utm_content", 'e.get("utm_content") or ""'),
    ("click_id_type", 'e.get("click_id_type") or ""'),
    ("conversion", 'e.get("conversion") is True'),
    # interactions (migration 6); validation has brought scroll_depth to its quarter
    ("target_host", 'e.get("target_host") or ""'),
    ("target_path", 'e.get("target_path") or ""'),
    ("target", 'e.get("target") or ""'),
    ("scroll_depth", 'int(e.get("scroll_depth") or 0)'),
    ("engaged_seconds", 'int(e.get("engaged_seconds") or 0)'),
    # what a custom event is worth (migration 13): an amount only with its currency
    ("value", 'float(e["value"]) if e.get("value") and e.get("currency") else 0.0'),
    ("currency", 'e["currency"] if e.get("value") and e.get("currency") else ""'),
    ("properties", '_props(e.get("properties"))'),
    ("traits", '_traits(e.get("traits"))'),
)

#: (column, expression) for the consent_records table; ``e`` is the validated record.
RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("record_id", 'e["record_id"]'),
    ("consent_id", 'e["consent_id"]'),
    ("visitor_id", '_text(e.get("visitor_id"))'),
    ("previous_record_id", '_text(e.get("previous_record_id"))'),
    ("ts", 'int(e["ts"])'),
    ("event", 'e["event"]'),
    ("method", 'e["method"]'),
    ("component", 'e["component"]'),
    ("policy_version", 'e["policy_version"]'),
    ("policy_hash", 'e["policy_hash"]'),
    ("locale", '_text(e.get("locale"))'),
    ("categories", 'dict(e["categories"])'),
    ("services", 'dict(e.get("services") or {})'),
    ("gcm", 'dict(e["gcm"])'),
    ("gpc", 'bool(e["gpc"])'),
    ("gpc_conflict", 'bool(e.get("gpc_conflict", False))'),
    ("host", '_text(e.get("host"))'),
    ("path", '_text(e.get("path"))'),
    ("ua_family", '_text(e.get("ua_family"))'),
    ("expires_at", 'None if e.get("expires_at") is None else int(e["expires_at"])'),
    ("anonymised", 'e.get("anonymised") is True'),
)

EVENT_COLUMNS = tuple(name for name, _ in EVENT_FIELDS)
RECORD_COLUMNS = tuple(name for name, _ in RECORD_FIELDS)
TS_COLUMN = EVENT_COLUMNS.index("ts")

_SOURCES = {"e": "items", "d": "devices", "p": "places", "ip": "ips"}


def _compile(fields: Sequence[tuple[str, str]], name: str) -> Callable[..., Columns]:
    """``name(items, devices, places, ips)`` returning one list per field. Each expression
    must read exactly one of the names in :data:`_SOURCES` (checked here, at import)."""
    lines = []
    for column, expr in fields:
        used = [var for var in _SOURCES if _reads(expr, var)]
        if len(used) != 1:
            raise ValueError(f"column {column}: {expr!r} must read one of e, d, p, ip")
        var = used[0]
        lines.append(f"        [{expr} for {var} in {_SOURCES[var]}],")
    source = (f"def {name}(items, devices, places, ips):\n    return [\n"
              + "\n".join(lines) + "\n    ]\n")
    namespace: dict[str, Any] = dict(_HELPERS)
    exec(compile(source, f"<collector.ingest.rows.{name}>", "exec"), namespace)  # noqa: S102
    built: Callable[..., Columns] = namespace[name]
    return built


def _reads(expr: str, var: str) -> bool:
    return re.search(rf"(?<![\w.\"']){var}(?![\w\"'])", expr) is not None


_event_columns = _compile(EVENT_FIELDS, "event_columns")
_record_columns = _compile(RECORD_FIELDS, "record_columns")


@functools.lru_cache(maxsize=20_000)
def _device(ua: str | None, ch_ua_model: str | None, ch_ua_platform: str | None,
            wire_device_type: str | None) -> DeviceInfo:
    """Device fields per distinct (UA, client hints): few in real traffic."""
    return device_fields(ua, ch_ua_model, ch_ua_platform, wire_device_type)


def device_of(e: dict[str, Any]) -> DeviceInfo:
    get = e.get
    try:
        return _device(get("ua"), get("ch_ua_model"), get("ch_ua_platform"),
                       get("device_type"))
    except Exception:  # a parser bug must not cost the event
        log.exception("device enrichment failed")
        return device_fields(None, wire_device_type=get("device_type"))


def event_columns(events: Sequence[dict[str, Any]], geo: GeoLookup) -> Columns:
    """The events table's columns (:data:`EVENT_COLUMNS` order) for validated events.

    Location is looked up only for an event whose consent grants ``location``.
    """
    devices = [device_of(e) for e in events]
    ips: list[str] = [e.get("ip") or "" for e in events]
    lookup = geo.lookup
    places: list[Place] = [
        lookup(ip) if ip and (e.get("consent") or {}).get("location") is True else NOWHERE
        for e, ip in zip(events, ips, strict=True)]
    return _event_columns(events, devices, places, ips)


def record_columns(records: Sequence[dict[str, Any]]) -> Columns:
    """The consent_records table's columns (:data:`RECORD_COLUMNS` order)."""
    return _record_columns(records, (), (), ())


def event_row(e: dict[str, Any], geo: GeoLookup) -> list[Any]:
    """One event as a row (tests and benchmarks read single rows)."""
    return [column[0] for column in event_columns([e], geo)]


def record_row(r: dict[str, Any]) -> list[Any]:
    return [column[0] for column in record_columns([r])]
