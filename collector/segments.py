"""Saved segments: a filter set the marketing team names once and picks from a list.

A segment is a name and the dashboards' filters (``collector.query.params.check_filters``: only
dimensions that may be filtered, values as bound parameters), shared by everyone who reads the
dashboards. :class:`Segments` writes them (the dashboards' own store, or the collector's
through ``POST /v1/segments``, which the dashboards' query token opens); the catalogue's
``segments`` query lists them. A deletion is a newer version marked deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from collector.notes import StaffItems, WriteRefused, check_id, check_name
from collector.query.params import QueryError, check_filters
from collector.store import Store

MAX_FILTERS = 8
COLUMNS = ["segment_id", "name", "filters", "created_by", "updated_by", "deleted", "version"]


def check_segment(name: object, filters: object) -> tuple[str, str]:
    """(name, filters as canonical JSON) of a segment, or WriteRefused naming what is wrong."""
    clean = check_name(name)
    try:
        checked = check_filters(filters)
    except QueryError as exc:
        raise WriteRefused(exc.reason) from None
    if not checked:
        raise WriteRefused("filters: a segment needs at least one filter")
    if len(checked) > MAX_FILTERS:
        raise WriteRefused(f"filters: at most {MAX_FILTERS}")
    return clean, json.dumps(dict(checked), ensure_ascii=False, sort_keys=True)


def check_segment_id(segment_id: object) -> str:
    return check_id(segment_id, "segment")


class Segments(StaffItems):
    """Adds and removes saved segments on ``store``."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        super().__init__(store, "dashboard_segments", COLUMNS, "segment")

    def add(self, name: object, filters: object, author: object) -> str:
        clean, canonical = check_segment(name, filters)
        return self.put([clean, canonical], author)

    def add_from(self, body: Mapping[str, object], author: object) -> str:
        return self.add(body.get("name"), body.get("filters"), author)


def filters_of(row: Mapping[str, object]) -> dict[str, str]:
    """A listed segment's filters (the ``segments`` query's JSON column)."""
    loaded = json.loads(str(row.get("filters") or "{}"))
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
