"""The dashboards' query catalogue, and ``POST /v1/query`` that runs it for another process.

Dashboards never send SQL. They name a query from :data:`CATALOGUE` and pass parameters; this
module validates every parameter (dates, time zone, allow-listed dimensions and filters, k),
builds the SQL from fixed fragments with bound parameters only, and runs it with
``readonly=1``. The catalogue lives here, below the dashboards package, because the collector
must run it without importing the dashboards (dependency direction: collector ← dashboards).

Privacy rules every query carries, so no caller can forget them:

- suppression: rows whose ``visitor_id``, ``user_id`` or ``consent_id`` is an active subject
  in ``suppressions FINAL`` are excluded (purged rows are already deleted);
- k-anonymity: a breakdown row with fewer than ``k`` distinct visitors is folded into one
  "other" row, and "other" itself is dropped when it has fewer than ``k``; KPIs and time-series
  points computed from fewer than ``k`` visitors come back as NULL. Anonymous counts and
  consent records have no visitor: there ``k`` is a threshold on the count (events or consent
  ids) instead.
- no dimension identifies a person: there is no visitor, session, user, consent id or IP
  dimension or filter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import ipaddress
import logging
import re
import uuid
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.auth import bearer_ok
from collector.ddl.tables import EXACT_UP_TO, uniq
from collector.store import Store
from collector.web import BodyTooLarge, read_limited
from consent_mw.http import BadRequest, parse_json

log = logging.getLogger("consent_mw.collector.query")

#: Every catalogue query runs with these: no writes, no DDL, no settings changes, bounded.
READONLY_SETTINGS: dict[str, Any] = {
    "readonly": 1,
    "max_execution_time": 30,
    "max_result_rows": 100_000,
    "result_overflow_mode": "throw",
}
MAX_DAYS = 400
#: The largest k: distinct counts up to here are exact, so no group below k can pass for k.
K_MAX = 500
assert K_MAX < EXACT_UP_TO
MAX_FILTER_LEN = 512
MAX_BODY = 16 * 1024
OTHER = "(other)"


class QueryError(ValueError):
    """A request the catalogue refuses; ``reason`` is safe to show the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Dim:
    """A breakdown dimension: its SQL expression over ``events`` and which rows count."""

    expr: str
    rows: str = "kind = 'pageview'"  # which events the breakdown counts
    filterable: bool = True
    anonymous: bool = False  # also a column of anonymous counts


# The only dimensions there are. Keys appear in URLs (?f.path=...); exprs are fixed SQL.
DIMENSIONS: dict[str, Dim] = {
    "path": Dim("path", anonymous=True),
    # Entry page: the pageview that starts a visit from outside the site.
    "entry_path": Dim("path", "kind = 'pageview' AND channel != 'internal'", filterable=False),
    "channel": Dim("channel", "kind = 'pageview' AND channel != 'internal'"),
    "referrer_host": Dim("referrer_host",
                         "kind = 'pageview' AND channel != 'internal' AND referrer_host != ''"),
    "utm_source": Dim("utm_source", "kind = 'pageview' AND utm_source != ''"),
    "utm_medium": Dim("utm_medium", "kind = 'pageview' AND utm_medium != ''"),
    "utm_campaign": Dim("utm_campaign", "kind = 'pageview' AND utm_campaign != ''"),
    "click_id_type": Dim("click_id_type", "kind = 'pageview' AND click_id_type != ''"),
    "search_terms": Dim("search_terms", "kind = 'pageview' AND search_terms != ''"),
    "device_type": Dim("device_type", anonymous=True),
    "browser": Dim("browser"),
    "os": Dim("os"),
    "language": Dim("language"),
    "network_type": Dim("network_type", "kind = 'pageview' AND network_type != ''"),
    "country": Dim("country"),
    "region": Dim("region"),
    "city": Dim("city"),
    "event": Dim("name", "kind = 'custom'"),
    "property": Dim("concat(name, ' · ', prop.1, ' = ', prop.2)",
                    "kind = 'custom' AND notEmpty(properties)", filterable=False),
}
FILTERS: dict[str, str] = {k: d.expr for k, d in DIMENSIONS.items() if d.filterable}
GRAINS: dict[str, str] = {
    "hour": "toStartOfHour(ts, {tz:String})",
    "day": "toDate(ts, {tz:String})",
    "week": "toMonday(ts, {tz:String})",
}
TZ_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$")


@dataclass(frozen=True, slots=True)
class Params:
    """Validated parameters: the only inputs SQL is built from."""

    start: dt.date
    end: dt.date  # inclusive
    tz: str = "Asia/Tokyo"
    filters: tuple[tuple[str, str], ...] = ()
    k: int = 5
    dim: str = "path"
    grain: str = "day"
    limit: int = 10
    dims: tuple[str, ...] = ()  # for "breakdowns": several dimensions in one scan
    active_suppressions: frozenset[str] | None = None  # set by the runner, never the caller
    # Days served from the daily rollup, with their builds; set by the runner, never the caller.
    rollup: tuple[tuple[dt.date, int], ...] | None = None

    @property
    def bounds(self) -> tuple[int, int]:
        """[start 00:00, end+1 00:00) in the site's time zone, as UTC epoch seconds."""
        return day_bounds(self.tz, self.start, self.end)

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": self.tz,
                "filters": dict(self.filters), "k": self.k, "dim": self.dim,
                "dims": list(self.dims), "grain": self.grain, "limit": self.limit}


def day_bounds(tz: str, start: dt.date, end: dt.date) -> tuple[int, int]:
    """[start 00:00, end+1 00:00) in time zone ``tz``, as UTC epoch seconds."""
    zone = zoneinfo.ZoneInfo(tz)
    t0 = dt.datetime.combine(start, dt.time(), zone)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    return int(t0.timestamp()), int(t1.timestamp())


def _date(name: str, value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise QueryError(f"{name}: expected a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{name}: {value!r} is not a valid date") from None


def _int(name: str, value: Any, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryError(f"{name}: expected an integer")
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name}: expected an integer") from None
    if not lo <= number <= hi:
        raise QueryError(f"{name}: must be between {lo} and {hi}")
    return number


def check_tz(value: Any) -> str:
    if not isinstance(value, str) or not TZ_RE.fullmatch(value):
        raise QueryError("tz: expected an IANA time zone name")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise QueryError(f"tz: unknown time zone {value!r}") from None
    return value


def check_filters(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise QueryError("filters: expected an object of dimension → value")
    out: list[tuple[str, str]] = []
    for key, value in raw.items():
        if key not in FILTERS:
            raise QueryError(f"filter {key!r} is not filterable; allowed: "
                             f"{', '.join(sorted(FILTERS))}")
        if not isinstance(value, str) or len(value) > MAX_FILTER_LEN:
            raise QueryError(f"filter {key!r}: expected a string of at most "
                             f"{MAX_FILTER_LEN} characters")
        out.append((key, value))
    return tuple(sorted(out))


def parse_params(raw: Mapping[str, Any]) -> Params:
    """Validate caller parameters; every refusal names the parameter."""
    if not isinstance(raw, Mapping):
        raise QueryError("params: expected an object")
    unknown = set(raw) - {"start", "end", "tz", "filters", "k", "dim", "dims", "grain", "limit"}
    if unknown:
        raise QueryError(f"unknown parameters: {', '.join(sorted(map(str, unknown)))}")
    start = _date("start", raw.get("start"))
    end = _date("end", raw.get("end"))
    if end < start:
        raise QueryError("end: must not be before start")
    if (end - start).days >= MAX_DAYS:
        raise QueryError(f"date range: at most {MAX_DAYS} days")
    dim = raw.get("dim", "path")
    if dim not in DIMENSIONS:
        raise QueryError(f"dim: unknown dimension {dim!r}")
    grain = raw.get("grain", "day")
    if grain not in GRAINS:
        raise QueryError("grain: expected hour, day or week")
    if grain == "hour" and (end - start).days > 31:
        raise QueryError("grain: hourly series cover at most 31 days")
    dims = raw.get("dims") or ()
    if not isinstance(dims, list | tuple) or len(dims) > 16 or any(
            d not in DIMENSIONS or d == "property" for d in dims):
        raise QueryError("dims: expected a list of up to 16 dimensions (not property)")
    return Params(
        dims=tuple(dims),
        start=start, end=end, tz=check_tz(raw.get("tz", "Asia/Tokyo")),
        filters=check_filters(raw.get("filters")),
        # k = 1 would be no protection at all; the floor is not configurable on purpose.
        k=_int("k", raw.get("k"), 5, 2, K_MAX), dim=dim, grain=grain,
        limit=_int("limit", raw.get("limit"), 10, 1, 500),
    )


# --- SQL fragments -------------------------------------------------------------------------

def _suppressed(column: str, id_type: str) -> str:
    # subject is emptied after a purge; '' must never match rows that simply lack the id.
    return (f"{column} NOT IN (SELECT subject FROM suppressions FINAL "
            f"WHERE active AND id_type = '{id_type}' AND subject != '')")


SUBJECT_COLUMNS = {"events": ("visitor_id", "user_id", "consent_id"),
                   "consent_records": ("visitor_id", "consent_id")}
#: Which id types have active suppressions right now (one tiny query before each build).
ACTIVE_TYPES_SQL = ("SELECT DISTINCT id_type FROM suppressions FINAL "
                    "WHERE active AND subject != ''")


def not_suppressed(table: str, active: frozenset[str] | None) -> str:
    """Rows of people who asked to be suppressed never reach a dashboard.

    ``active`` lists the id types with at least one active suppression; a condition for a
    type nobody is suppressed under is left out, because testing every row against an empty
    set still costs a hash per row. None (unknown) keeps every condition.
    """
    cols = [c for c in SUBJECT_COLUMNS[table] if active is None or c in active]
    return " AND ".join(_suppressed(c, c) for c in cols) or "1"


EVENTS_NOT_SUPPRESSED = not_suppressed("events", None)
RECORDS_NOT_SUPPRESSED = not_suppressed("consent_records", None)
RANGE = ("ts >= toDateTime64({t0:Int64}, 3, 'UTC') AND ts < toDateTime64({t1:Int64}, 3, 'UTC')")


@dataclass(slots=True)
class Sql:
    """A statement and its bound parameters."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)


def _base_params(p: Params, shift: int = 0) -> dict[str, Any]:
    t0, t1 = p.bounds
    return {"t0": t0 - shift, "t1": t1 - shift, "tz": p.tz, "k": p.k, "lim": p.limit}


def _filters_sql(p: Params, params: dict[str, Any], only: set[str] | None = None) -> str:
    parts = []
    for i, (key, value) in enumerate(p.filters):
        if only is not None and key not in only:
            continue
        params[f"f{i}"] = value
        parts.append(f" AND {FILTERS[key]} = {{f{i}:String}}")
    return "".join(parts)


def detail_where(p: Params, params: dict[str, Any], span: str = RANGE) -> str:
    """Consented detail (pageviews and custom events) in range, unsuppressed, filtered.

    Filters select visits: every event of a visit with at least one matching event counts
    (so "channel = search" keeps the pages viewed after the search landing, and bounce and
    conversion keep their meaning). ``span`` narrows the range to the days the rollup does
    not cover (filtered views never use the rollup).
    """
    where = (f"{span} AND kind IN ('pageview', 'custom') AND "
             f"{not_suppressed('events', p.active_suppressions)}")
    if p.filters:
        where += (f" AND session_id IN (SELECT session_id FROM events WHERE {RANGE} "
                  f"AND kind IN ('pageview', 'custom'){_filters_sql(p, params)})")
    return where


# --- the daily rollup --------------------------------------------------------------------
# Unfiltered panels read closed days from rollup tables that collector.query.rollup builds with the
# very fragments below, and only the other days from events; both sides carry uniq states,
# so merged figures equal a raw scan's. Which days are current is decided per query
# (:func:`rollup_plan`): a day counts only if its build excluded every suppression there is.

#: Which rollup days are current: built, not dirtied since, and built after the latest
#: suppression change (suppressions' max(version) is the stamp a build records).
ROLLUP_PLAN_SQL = """
SELECT day, b FROM (
    SELECT day, argMax(build, version) AS b, argMax(stamp, version) AS st
    FROM rollup_days
    WHERE tz = {tz:String} AND day >= {d0:Date} AND day <= {d1:Date}
    GROUP BY day
)
WHERE b != 0 AND st = (SELECT max(version) FROM suppressions)"""
ROLLUP_QUERIES = frozenset({"kpis", "kpis_previous", "timeseries", "breakdown", "breakdowns"})
ROLLUP_ROWS = ("tz = {tz:String} AND day >= {rd0:Date} AND day <= {rd1:Date} "
               "AND build IN {builds:Array(UInt64)}")


def visits_sql(where: str) -> str:
    """One row per visit: a session's events within one day of the site's time zone.

    Visits end at midnight, so a day's figures sum to the period's (and a rollup of days is
    exact). ``vs`` is the visit's visitor as a uniq state, so visitors stay event-level.
    """
    return f"""SELECT session_id, toDate(ts, {{tz:String}}) AS d,
           {uniq('State')}(visitor_id) AS vs, countIf(kind = 'pageview') AS pv,
           countIf(kind = 'custom') AS other,
           countIf(kind = 'custom' AND name = 'reservation') AS res
    FROM events WHERE {where} GROUP BY session_id, d"""


#: Per-visit rows → (visitors state, visits, pageviews, bounces, reservations, converted).
VISIT_TOTALS = (f"{uniq('MergeState')}(vs) AS vs, count() AS s_n, sum(pv) AS pv_n, "
                "countIf(pv = 1 AND other = 0) AS b_n, sum(res) AS r_n, countIf(res > 0) AS c_n")


def grouped_sql(dims: Sequence[str], where: str) -> str:
    """(dim, key0, vs, n) for several dimensions in one scan (GROUPING SETS).

    Each dimension's key is NULL on rows that dimension does not count (e.g. non-landing
    pageviews for channels); those NULL groups are dropped.
    """
    keys = ", ".join(f"if({DIMENSIONS[d].rows}, {DIMENSIONS[d].expr}, NULL) AS k{i}"
                     for i, d in enumerate(dims))
    which = ", ".join(f"grouping(k{i}) = 0, '{d}'" for i, d in enumerate(dims))
    value = ", ".join(f"grouping(k{i}) = 0, k{i}" for i, d in enumerate(dims))
    sets = ", ".join(f"(k{i})" for i in range(len(dims)))
    return f"""SELECT dim, key0, vs, n FROM (
        SELECT multiIf({which}, '') AS dim, multiIf({value}, NULL) AS nkey,
               toString(assumeNotNull(nkey)) AS key0, {uniq('State')}(visitor_id) AS vs,
               count() AS n
        FROM (SELECT visitor_id, {keys} FROM events WHERE {where})
        GROUP BY GROUPING SETS ({sets})
        HAVING nkey IS NOT NULL)"""


def property_sql(where: str) -> str:
    """(dim, key0, vs, n) of custom-event properties (one row per event and property)."""
    d = DIMENSIONS["property"]
    return f"""SELECT 'property' AS dim, toString({d.expr}) AS key0,
           {uniq('State')}(visitor_id) AS vs, count() AS n
    FROM events ARRAY JOIN properties AS prop WHERE {where} AND {d.rows} GROUP BY key0"""


def _split(p: Params, start: dt.date, end: dt.date) -> tuple[list[int], list[tuple[int, int]]]:
    """The builds of rolled-up days in [start, end], and the epoch spans left to scan."""
    fresh = dict(p.rollup or ())
    builds: list[int] = []
    spans: list[tuple[int, int]] = []
    day, run = start, None
    while day <= end:
        if day in fresh:
            builds.append(fresh[day])
            if run is not None:
                spans.append(day_bounds(p.tz, run, day - dt.timedelta(days=1)))
                run = None
        elif run is None:
            run = day
        day += dt.timedelta(days=1)
    if run is not None:
        spans.append(day_bounds(p.tz, run, end))
    return builds, spans


def _span_sql(spans: Sequence[tuple[int, int]], params: dict[str, Any]) -> str:
    parts = []
    for i, (a, b) in enumerate(spans):
        params[f"s{i}a"], params[f"s{i}b"] = a, b
        parts.append(f"(ts >= toDateTime64({{s{i}a:Int64}}, 3, 'UTC') "
                     f"AND ts < toDateTime64({{s{i}b:Int64}}, 3, 'UTC'))")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def _sources(p: Params, params: dict[str, Any], start: dt.date | None = None,
             end: dt.date | None = None) -> tuple[str, str | None]:
    """(where for the events part, where for the rollup part or None when unused)."""
    if p.rollup is None:
        return detail_where(p, params), None
    start, end = start or p.start, end or p.end
    builds, spans = _split(p, start, end)
    if not builds:
        return detail_where(p, params, _span_sql([day_bounds(p.tz, start, end)], params)), None
    params.update(builds=builds, rd0=start, rd1=end)
    return detail_where(p, params, _span_sql(spans, params)), ROLLUP_ROWS


def _kpis(p: Params, previous: bool = False) -> Sql:
    span = dt.timedelta(days=(p.end - p.start).days + 1) if previous else dt.timedelta()
    start, end = p.start - span, p.end - span
    params = _base_params(p, int(span.total_seconds()))
    where, rolled = _sources(p, params, start, end)
    source = f"SELECT {VISIT_TOTALS} FROM ({visits_sql(where)})"
    if rolled:
        source += (" UNION ALL SELECT visitors, visits, pageviews, bounces, reservations, "
                   f"converted FROM rollup_totals WHERE {rolled}")
    text = f"""
SELECT
    if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
    if(v_n >= {{k:UInt32}}, s_n, NULL) AS visits,
    if(v_n >= {{k:UInt32}}, pv_n, NULL) AS pageviews,
    if(v_n >= {{k:UInt32}}, b_n, NULL) AS bounces,
    if(v_n >= {{k:UInt32}}, r_n, NULL) AS reservations,
    if(v_n >= {{k:UInt32}}, c_n, NULL) AS converted_visits,
    v_n < {{k:UInt32}} AS below_k
FROM (
    SELECT {uniq('Merge')}(vs) AS v_n, sum(s_n) AS s_n, sum(pv_n) AS pv_n, sum(b_n) AS b_n,
           sum(r_n) AS r_n, sum(c_n) AS c_n
    FROM ({source})
)"""
    return Sql(text, params)


def q_kpis(p: Params) -> Sql:
    return _kpis(p)


def q_kpis_previous(p: Params) -> Sql:
    """The same KPIs over the period of equal length just before."""
    return _kpis(p, previous=True)


ROLLUP_GRAINS = {"day": "day", "week": "toMonday(day)"}


def q_timeseries(p: Params) -> Sql:
    params = _base_params(p)
    if p.grain not in ROLLUP_GRAINS:
        p = dataclasses.replace(p, rollup=None)
    where, rolled = _sources(p, params)
    source = (f"SELECT {GRAINS[p.grain]} AS b, {uniq('State')}(visitor_id) AS vs, "
              f"{uniq('State')}(session_id) AS ss, countIf(kind = 'pageview') AS pv "
              f"FROM events WHERE {where} GROUP BY b")
    if rolled:
        source += (f" UNION ALL SELECT {ROLLUP_GRAINS[p.grain]} AS b, visitors, sessions, "
                   f"pageviews FROM rollup_totals WHERE {rolled}")
    text = f"""
SELECT toString(b) AS bucket,
       if(v_n >= {{k:UInt32}}, v_n, NULL) AS visitors,
       if(v_n >= {{k:UInt32}}, s_n, NULL) AS visits,
       if(v_n >= {{k:UInt32}}, pv_n, NULL) AS pageviews
FROM (
    SELECT b, {uniq('Merge')}(vs) AS v_n, {uniq('Merge')}(ss) AS s_n, sum(pv) AS pv_n
    FROM ({source})
    GROUP BY b
)
ORDER BY b"""
    return Sql(text, params)


def _rows_with_rollup(source: str, rolled: str | None, dims: Sequence[str],
                      params: dict[str, Any]) -> str:
    """(dim, key0, vs, n) from events, merged with the rollup's rows of ``dims`` if used."""
    if not rolled:
        return source
    params["rdims"] = list(dims)
    return f"""SELECT dim, key0, {uniq('MergeState')}(vs) AS vs, sum(n) AS n FROM (
        {source}
        UNION ALL
        SELECT dim, key AS key0, visitors AS vs, events AS n FROM rollup_dims
        WHERE {rolled} AND dim IN {{rdims:Array(String)}})
    GROUP BY dim, key0"""


def _folded(rows: str) -> str:
    """Fold keys seen by fewer than k visitors into one "other" row per dimension."""
    return f"""
SELECT dim, key, is_other, v_n AS visitors, e_n AS events
FROM (
    SELECT dim, if(finalizeAggregation(vs) >= {{k:UInt32}}, key0, '') AS key,
           finalizeAggregation(vs) < {{k:UInt32}} AS is_other,
           {uniq('Merge')}(vs) AS v_n, sum(n) AS e_n
    FROM ({rows})
    GROUP BY dim, key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY dim, is_other, v_n DESC, e_n DESC, key
LIMIT {{lim:UInt32}} BY dim"""


def q_breakdown(p: Params) -> Sql:
    """Top rows of one dimension, small groups folded into "other" (k distinct visitors)."""
    params = _base_params(p)
    where, rolled = _sources(p, params)
    # No distinct visit count here: it would double the cost of every breakdown.
    source = (property_sql(where) if p.dim == "property"
              else grouped_sql([p.dim], f"{where} AND {DIMENSIONS[p.dim].rows}"))
    rows = _rows_with_rollup(source, rolled, [p.dim], params)
    return Sql(f"SELECT key, is_other, visitors, events FROM ({_folded(rows)})", params)


def q_breakdowns(p: Params) -> Sql:
    """Several breakdowns in one scan (GROUPING SETS), each folded like :func:`q_breakdown`."""
    if not p.dims:
        raise QueryError("dims: at least one dimension")
    params = _base_params(p)
    where, rolled = _sources(p, params)
    rows = _rows_with_rollup(grouped_sql(p.dims, where), rolled, p.dims, params)
    return Sql(_folded(rows), params)


ANONYMOUS_FILTERS = {k for k, d in DIMENSIONS.items() if d.anonymous}


def _anonymous_where(p: Params, params: dict[str, Any]) -> str:
    return f"{RANGE} AND kind = 'anonymous'" + _filters_sql(p, params, ANONYMOUS_FILTERS)


def q_coverage(p: Params) -> Sql:
    """Per day: anonymous counts (no consent) vs consented pageviews; k on counts.

    Both sides filter views (not visits) and only by what anonymous counts carry (path,
    device type); any other filter empties the panel rather than compare unlike things.
    """
    params = _base_params(p)
    blocked = any(k not in ANONYMOUS_FILTERS for k, _ in p.filters)
    consented = (f"{RANGE} AND kind = 'pageview' AND "
                 f"{not_suppressed('events', p.active_suppressions)}"
                 + _filters_sql(p, params, ANONYMOUS_FILTERS))
    text = f"""
SELECT toString(d) AS day,
       if(a_n >= {{k:UInt32}}, a_n, NULL) AS anonymous,
       if(c_n >= {{k:UInt32}}, c_n, NULL) AS consented
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, countIf(kind = 'anonymous') AS a_n,
           countIf(kind = 'pageview') AS c_n
    FROM events
    WHERE (({_anonymous_where(p, params)}) OR ({consented})){" AND 0" if blocked else ""}
    GROUP BY d
)
ORDER BY d"""
    return Sql(text, params)


def q_anonymous_pages(p: Params) -> Sql:
    """Anonymous counts by page; a row needs at least k counted views."""
    params = _base_params(p)
    block = any(k not in ANONYMOUS_FILTERS for k, _ in p.filters)
    text = f"""
SELECT key, is_other, v_n AS views FROM (
    SELECT if(n >= {{k:UInt32}}, path, '') AS key, n < {{k:UInt32}} AS is_other,
           sum(n) AS v_n
    FROM (SELECT path, count() AS n FROM events WHERE {_anonymous_where(p, params)}
          {"AND 0" if block else ""} GROUP BY path)
    GROUP BY key, is_other
)
WHERE v_n >= {{k:UInt32}}
ORDER BY is_other, v_n DESC, key
LIMIT {{lim:UInt32}}"""
    return Sql(text, params)


def _records_where(p: Params) -> str:
    return f"{RANGE} AND {not_suppressed('consent_records', p.active_suppressions)}"


def q_consent_funnel(p: Params) -> Sql:
    """Banner shown, then decisions by method; k on distinct consent ids per row."""
    params = _base_params(p)
    text = f"""
SELECT step, m AS method, n AS consents FROM (
    SELECT event AS step, method AS m, uniq(consent_id) AS n
    FROM consent_records
    WHERE {_records_where(p)} AND event IN ('shown', 'decided', 'updated', 'withdrawn')
    GROUP BY step, m
)
WHERE n >= {{k:UInt32}}
ORDER BY step = 'shown' DESC, n DESC"""
    return Sql(text, params)


def q_optin(p: Params) -> Sql:
    """Per day and category: share of decisions that granted it (k decisions a day)."""
    params = _base_params(p)
    text = f"""
SELECT toString(d) AS day, category,
       if(n >= {{k:UInt32}}, g / n, NULL) AS rate,
       if(n >= {{k:UInt32}}, n, NULL) AS decisions
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, cat.1 AS category,
           countIf(cat.2) AS g, count() AS n
    FROM consent_records ARRAY JOIN categories AS cat
    WHERE {_records_where(p)} AND event IN ('decided', 'updated') AND cat.1 != 'necessary'
    GROUP BY d, category
)
ORDER BY d, category"""
    return Sql(text, params)


def q_gpc(p: Params) -> Sql:
    """Per day: share of banner impressions from browsers sending GPC."""
    params = _base_params(p)
    text = f"""
SELECT toString(d) AS day, if(n >= {{k:UInt32}}, g / n, NULL) AS gpc_share,
       if(n >= {{k:UInt32}}, n, NULL) AS shown
FROM (
    SELECT toDate(ts, {{tz:String}}) AS d, countIf(gpc) AS g, count() AS n
    FROM consent_records
    WHERE {_records_where(p)} AND event = 'shown'
    GROUP BY d
)
ORDER BY d"""
    return Sql(text, params)


def q_suppression_stats(p: Params) -> Sql:
    """How many people are suppressed or purged (counts only; for privacy staff)."""
    return Sql("""
SELECT id_type, countIf(active) AS active, countIf(purged) AS purged
FROM suppressions FINAL GROUP BY id_type ORDER BY id_type""")


def q_data_version(p: Params) -> Sql:
    """Fingerprints of the data, for exact result caching.

    ``version`` changes with any insert, delete, mutation or merge. ``privacy_version``
    changes with every suppression change and every delete/mutation (a purge) on events or
    consent records, but not with inserts of new events.
    """
    return Sql("""
SELECT
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', name))))
     FROM system.parts
     WHERE active AND database = currentDatabase()
       AND table IN ('events', 'consent_records', 'suppressions')) AS version,
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', name))))
     FROM system.parts
     WHERE active AND database = currentDatabase() AND table = 'suppressions')
    || '-' ||
    (SELECT toString(cityHash64(groupArraySorted(100000)(concat(table, '/', mutation_id))))
     FROM system.mutations
     WHERE database = currentDatabase()
       AND table IN ('events', 'consent_records', 'suppressions')) AS privacy_version""")


#: Name → builder. The collector runs nothing else.
CATALOGUE: dict[str, Callable[[Params], Sql]] = {
    "kpis": q_kpis,
    "kpis_previous": q_kpis_previous,
    "timeseries": q_timeseries,
    "breakdown": q_breakdown,
    "breakdowns": q_breakdowns,
    "coverage": q_coverage,
    "anonymous_pages": q_anonymous_pages,
    "consent_funnel": q_consent_funnel,
    "optin": q_optin,
    "gpc": q_gpc,
    "suppression_stats": q_suppression_stats,
    "data_version": q_data_version,
}
#: Queries that need no date range.
UNDATED = {"suppression_stats", "data_version"}


def params_for(name: str, raw: Mapping[str, Any]) -> Params:
    """Validated parameters of a catalogue query, or QueryError (unknown name, bad values)."""
    if not isinstance(name, str) or name not in CATALOGUE:
        raise QueryError(f"unknown query {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    if name in UNDATED:
        today = dt.date.today().isoformat()
        raw = {"start": today, "end": today, **dict(raw or {})}
    return parse_params(raw or {})


def build(name: str, raw: Mapping[str, Any],
          active_suppressions: frozenset[str] | None = None,
          rollup: Sequence[tuple[dt.date, int]] | None = None) -> Sql:
    """The SQL for a catalogue query, or QueryError for an unknown name or bad parameters.

    ``active_suppressions`` (from :func:`active_suppression_types`) only drops conditions
    that cannot match anything; None keeps them all. ``rollup`` (from :func:`rollup_plan`)
    lists the current rollup days and their builds; None scans events only.
    """
    return _sql(name, params_for(name, raw), active_suppressions, rollup)


def _sql(name: str, p: Params, active_suppressions: frozenset[str] | None,
         rollup: Sequence[tuple[dt.date, int]] | None) -> Sql:
    return CATALOGUE[name](dataclasses.replace(p, active_suppressions=active_suppressions,
                                               rollup=tuple(rollup) if rollup else None))


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
    first = p.start - dt.timedelta(days=(p.end - p.start).days + 1) \
        if name == "kpis_previous" else p.start
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
    return run_readonly(store, _sql(name, params, active_suppression_types(store),
                                    rollup_plan(store, name, params)))


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def build_routes(service: Any) -> list[BaseRoute]:
    """``POST /v1/query``, enabled when the collector has a ``query_token``."""

    async def post_query(request: Request) -> Response:
        """Run a named, read-only dashboard query.
        ---
        summary: Run a named dashboard query (read-only)
        description: >
          Body {"query": <name>, "params": {...}}. Only the dashboards' catalogue of named
          queries runs, with bound parameters and readonly=1; SQL is never accepted. Results
          are already suppression-aware and k-anonymous.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [query]
                properties:
                  query: {type: string}
                  params: {type: object}
        responses:
          200: {description: 'Rows: {"rows": [...]}'}
          400: {description: Unknown query, SQL in the body, or invalid parameters}
          401: {description: Missing or wrong bearer token}
          413: {description: Body too large}
          503: {description: Query API disabled (no query_token) or store unavailable}
        """
        settings = getattr(service, "settings", None)
        secret = getattr(settings, "query_token", None)
        expected = getattr(secret, "value", "") or ""
        if not expected:
            return _error(503, "disabled", "the query API needs a configured query_token")
        if not bearer_ok(request, expected):
            return JSONResponse({"error": "unauthorized", "message": "bearer token required"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            payload = parse_json(await read_limited(request, MAX_BODY), MAX_BODY)
        except BodyTooLarge:
            return _error(413, "too_large", f"body over {MAX_BODY} bytes")
        except BadRequest as exc:
            return _error(400, "invalid_json", exc.reason)
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "body must be an object")
        if set(payload) - {"query", "params"}:
            return _error(400, "bad_request",
                          "only 'query' (a catalogue name) and 'params' are accepted; "
                          "SQL is never accepted")
        params = payload.get("params") or {}
        try:
            build(payload.get("query"), params)  # type: ignore[arg-type]
        except QueryError as exc:
            return _error(400, "bad_query", exc.reason)
        try:
            rows = await run_in_threadpool(run, service.store, payload["query"], params)
        except Exception as exc:  # the store's driver raises many types
            log.warning("query %s failed: %s", payload.get("query"), exc)
            return _error(503, "store_error", "the query failed; see the collector log")
        return JSONResponse({"rows": rows})

    return [Route("/v1/query", post_query, methods=["POST"])]
