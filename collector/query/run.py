"""Running catalogue queries: read-only, on the store, with the suppression and rollup plan.

Before building a query, :func:`run` asks the store which id types anyone is suppressed under
(a condition nobody can match is left out) and which rollup days are current (a day built
before the latest suppression change is never read). Every statement runs with
:data:`READONLY_SETTINGS`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from collector.query.catalogue import params_for, with_plan
from collector.query.params import Params, QueryError
from collector.query.sql import (
    ACTIVE_TYPES_SQL,
    PREVIOUS_QUERIES,
    ROLLUP_GRAINS,
    ROLLUP_PLAN_SQL,
    ROLLUP_QUERIES,
    Sql,
)
from collector.store import Store

log = logging.getLogger(__name__)

#: Every catalogue query runs with these: no writes, no DDL, no settings changes, bounded.
READONLY_SETTINGS: dict[str, Any] = {
    "readonly": 1,
    "max_execution_time": 30,
    "max_result_rows": 100_000,
    "result_overflow_mode": "throw",
}


def active_suppression_types(store: Store) -> frozenset[str]:
    rows = store.query(ACTIVE_TYPES_SQL, settings=READONLY_SETTINGS).result_rows
    return frozenset(str(r[0]) for r in rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


READ_RE = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)


def run_readonly(store: Store, sql: Sql) -> list[dict[str, Any]]:
    """Run one SELECT with ``readonly=1``; rows come back as JSON-safe dicts.

    Anything but a SELECT is refused before it reaches the driver: besides being pointless
    under readonly, the chDB driver applies settings of non-SELECT statements with ``SET`` and
    cannot ``SET`` them back once ``readonly=1`` holds, which would leave the owner's session
    read-only. A SELECT gets the settings as its own ``SETTINGS`` clause.
    """
    if not READ_RE.match(sql.text):
        raise QueryError("read-only: only SELECT statements run here")
    result = store.query(sql.text, sql.params, settings=READONLY_SETTINGS)
    names = result.column_names
    return [{n: _jsonable(v) for n, v in zip(names, row, strict=True)}
            for row in result.result_rows]


def rollup_plan(store: Store, name: str, p: Params) -> list[tuple[dt.date, int]]:
    """The current rollup days (and builds) a query may read; [] when it must scan events.

    Filtered views select visits across the whole range, and hourly series are finer than a
    day: neither can use daily aggregates.
    """
    if name not in ROLLUP_QUERIES or p.filters or (name == "timeseries"
                                                   and p.grain not in ROLLUP_GRAINS):
        return []
    first = p.start - dt.timedelta(days=p.shift_days) if name in PREVIOUS_QUERIES else p.start
    try:
        rows = store.query(ROLLUP_PLAN_SQL, {"tz": p.tz, "d0": first, "d1": p.end},
                           settings=READONLY_SETTINGS).result_rows
    except Exception as exc:  # e.g. a server user not granted the rollup tables
        log.debug("rollup unavailable, scanning events: %s", exc)
        return []
    return [(r[0], int(r[1])) for r in rows]


def run(store: Store, name: str, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Validate, build and run a catalogue query."""
    params = params_for(name, raw)
    return run_readonly(store, with_plan(name, params, active_suppression_types(store),
                                         rollup_plan(store, name, params)))
