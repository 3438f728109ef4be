"""What a dashboard may ask: the dimensions, filters and grains there are, and checked parameters.

Every parameter of a catalogue query is validated here (dates, time zone, allow-listed
dimensions and filters, k); :class:`Params` is then the only input SQL is built from
(``collector.query.sql``). No dimension or filter identifies a person: there is no visitor,
session, user, consent id or IP dimension.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collector.ddl.tables import EXACT_UP_TO
from collector.errors import CollectorError

if TYPE_CHECKING:
    from collector.query.funnels import Funnel
    from collector.query.goals import Goal

MAX_DAYS = 400
#: The largest k: distinct counts up to here are exact, so no group below k can pass for k.
K_MAX = 100
assert K_MAX < EXACT_UP_TO
MAX_FILTER_LEN = 512
COMPARISONS = ("previous", "year")
FIRST_DATE = dt.date(1971, 1, 1)
LAST_DATE = dt.date(2199, 12, 31)


class QueryError(CollectorError, ValueError):
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
    # A filter on it matches only its own rows: "interaction = tel" must not match a custom
    # event the site happened to call "tel".
    guarded: bool = False
    kind: str = "pageview"  # the kind of event its rows are (which rows a query must read)

    @property
    def interaction(self) -> bool:
        """Whether it counts the beacon's interactions (which most queries never read)."""
        return self.kind == "interaction"

    @property
    def filter_expr(self) -> str:
        return f"if({self.rows}, {self.expr}, NULL)" if self.guarded else self.expr


def _tap(name: str, expr: str) -> Dim:
    """An interaction breakdown: the beacon's reports of one kind (consent_mw.wire)."""
    return Dim(expr, f"kind = 'interaction' AND name = '{name}'", guarded=True,
               kind="interaction")


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
    "event": Dim("name", "kind = 'custom'", guarded=True, kind="custom"),
    # What the interaction beacon reports; scroll and engaged reports are per page, not
    # actions, and have their own figures (collector.query.engagement).
    "interaction": Dim("name", "kind = 'interaction' AND name NOT IN ('scroll', 'engaged')",
                       guarded=True, kind="interaction"),
    "outbound": _tap("outbound", "target_host"),
    "app": _tap("app", "target"),
    "tel_page": _tap("tel", "path"),
    "mailto_page": _tap("mailto", "path"),
    "download": _tap("download", "target_path"),
    "form": _tap("form", "if(target != '', target, target_path)"),
    # A page the site answered 404: a broken link somewhere, or a mistyped address.
    "not_found": Dim("path", "kind = 'pageview' AND status = 404", guarded=True),
    "property": Dim("concat(name, ' · ', prop.1, ' = ', prop.2)",
                    "kind = 'custom' AND notEmpty(properties)", filterable=False, kind="custom"),
}
assert all(d.rows.startswith(f"kind = '{d.kind}'") for d in DIMENSIONS.values())
FILTERS: dict[str, str] = {k: d.filter_expr for k, d in DIMENSIONS.items() if d.filterable}
#: Filters whose every value has its own rows in the daily rollup (collector.query.filtered):
#: what marketing filters by. Values per visitor rather than per campaign (search terms,
#: region, city) would multiply the rows for views nobody keeps open.
PER_VALUE_FILTERS = ("channel", "referrer_host", "utm_source", "utm_medium", "utm_campaign",
                     "click_id_type", "device_type", "browser", "os", "language",
                     "network_type", "country", "path")
#: Those whose values also get goal and funnel-step rows (``rollup_fgoals``): where a visit
#: came from and on what device, what marketing judges conversions by. The others' goal
#: rows would more than double the table (a visit has a dozen pages, languages, browsers...)
#: for filters read from the visits' rows well enough.
PER_VALUE_GOAL_FILTERS = ("channel", "referrer_host", "utm_source", "utm_medium",
                          "utm_campaign", "click_id_type", "device_type")
#: The breakdowns those rows hold: every dimension over page views and custom events but
#: ``property`` (an ARRAY JOIN of its own).
PER_VALUE_BREAKDOWNS = tuple(d for d, dim in DIMENSIONS.items()
                             if d != "property" and not dim.interaction)
assert all(d in FILTERS and not DIMENSIONS[d].guarded and not DIMENSIONS[d].interaction
           for d in PER_VALUE_FILTERS)
assert set(PER_VALUE_GOAL_FILTERS) <= set(PER_VALUE_FILTERS)
GRAINS: dict[str, str] = {
    "hour": "toStartOfHour(ts, {tz:String})",
    "day": "toDate(ts, {tz:String})",
    "week": "toMonday(ts, {tz:String})",
}
#: What the dashboards' staff items (goals, funnels, ...) are named by: a uuid4 hex.
ITEM_ID = re.compile(r"[0-9a-f]{32}")
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
    # What the *_previous queries compare with: the period of equal length just before, or
    # the same dates a year earlier.
    compare: str = "previous"
    goal: str = ""  # the goal a goal query is about (an id of collector.goals)
    funnel: str = ""  # the funnel a funnel query is about (an id of collector.funnels)
    active_suppressions: frozenset[str] | None = None  # set by the runner, never the caller
    # Days served from the daily rollup, with their builds; set by the runner, never the caller.
    rollup: tuple[tuple[dt.date, int], ...] | None = None
    # Whether every planned day has rows for the one filter's value (a day's values beyond
    # collector.query.filtered.PER_VALUE_CAP are cut); set by the runner, never the caller.
    per_value: bool = True
    # The goals there are (collector.query.goals), for the queries about goals; set by the
    # runner, never the caller.
    goals: tuple[Goal, ...] | None = None
    funnels: tuple[Funnel, ...] | None = None  # the funnels there are; set by the runner

    @property
    def bounds(self) -> tuple[int, int]:
        """[start 00:00, end+1 00:00) in the site's time zone, as UTC epoch seconds."""
        return day_bounds(self.tz, self.start, self.end)

    @property
    def shift_days(self) -> int:
        """How many days back the compared period starts (and ends)."""
        if self.compare == "year":
            return (self.start - year_before(self.start)).days
        return (self.end - self.start).days + 1

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": self.tz,
                "filters": dict(self.filters), "k": self.k, "dim": self.dim,
                "dims": list(self.dims), "grain": self.grain, "limit": self.limit,
                "compare": self.compare, "goal": self.goal,
                "funnel": self.funnel}


def is_text(value: str) -> bool:
    """Whether ``value`` can be stored: a lone surrogate (from JSON's \\ud800) cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def year_before(day: dt.date) -> dt.date:
    """The same date a year earlier; 29 February becomes the 28th."""
    return day.replace(year=day.year - 1, day=min(day.day, 28) if day.month == 2 else day.day)


def day_bounds(tz: str, start: dt.date, end: dt.date) -> tuple[int, int]:
    """[start 00:00, end+1 00:00) in time zone ``tz``, as UTC epoch seconds."""
    zone = zoneinfo.ZoneInfo(tz)
    t0 = dt.datetime.combine(start, dt.time(), zone)
    t1 = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    return int(t0.timestamp()), int(t1.timestamp())


def parse_date(name: str, value: Any) -> dt.date:
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
        if not is_text(value):
            raise QueryError(f"filter {key!r}: not valid text")
        out.append((key, value))
    return tuple(sorted(out))


def parse_params(raw: Mapping[str, Any]) -> Params:
    """Validate caller parameters; every refusal names the parameter."""
    if not isinstance(raw, Mapping):
        raise QueryError("params: expected an object")
    unknown = set(raw) - {"start", "end", "tz", "filters", "k", "dim", "dims", "grain", "limit",
                          "compare", "goal", "funnel"}
    if unknown:
        raise QueryError(f"unknown parameters: {', '.join(sorted(map(str, unknown)))}")
    start = parse_date("start", raw.get("start"))
    end = parse_date("end", raw.get("end"))
    if end < start:
        raise QueryError("end: must not be before start")
    if (end - start).days >= MAX_DAYS:
        raise QueryError(f"date range: at most {MAX_DAYS} days")
    # Within what the store's timestamps hold, with room for a comparison a year back.
    if not (start >= FIRST_DATE and end <= LAST_DATE):
        raise QueryError(f"dates: between {FIRST_DATE} and {LAST_DATE}")
    # A JSON list or object is unhashable: test the type before membership, or it is a 500.
    dim = raw.get("dim", "path")
    if not isinstance(dim, str) or dim not in DIMENSIONS:
        raise QueryError(f"dim: unknown dimension {dim!r}")
    grain = raw.get("grain", "day")
    if not isinstance(grain, str) or grain not in GRAINS:
        raise QueryError("grain: expected hour, day or week")
    if grain == "hour" and (end - start).days > 31:
        raise QueryError("grain: hourly series cover at most 31 days")
    dims = raw.get("dims") or ()
    if not isinstance(dims, list | tuple) or len(dims) > 16 or any(
            not isinstance(d, str) or d not in DIMENSIONS or d == "property" for d in dims):
        raise QueryError("dims: expected a list of up to 16 dimensions (not property)")
    compare = raw.get("compare", "previous")
    if compare not in COMPARISONS:
        raise QueryError("compare: expected previous or year")
    goal, funnel = raw.get("goal", ""), raw.get("funnel", "")
    if not isinstance(goal, str) or (goal and not ITEM_ID.fullmatch(goal)):
        raise QueryError("goal: expected a goal id")
    if not isinstance(funnel, str) or (funnel and not ITEM_ID.fullmatch(funnel)):
        raise QueryError("funnel: expected a funnel id")
    return Params(
        dims=tuple(dims), compare=compare, goal=goal, funnel=funnel,
        start=start, end=end, tz=check_tz(raw.get("tz", "Asia/Tokyo")),
        filters=check_filters(raw.get("filters")),
        # k = 1 would be no protection at all; the floor is not configurable on purpose.
        k=_int("k", raw.get("k"), 5, 2, K_MAX), dim=dim, grain=grain,
        limit=_int("limit", raw.get("limit"), 10, 1, 500),
    )


#: Dimensions anonymous counts carry too (the only filters their panels honour).
ANONYMOUS_FILTERS = {k for k, d in DIMENSIONS.items() if d.anonymous}
