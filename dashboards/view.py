"""The view a page is computed over: period, filters, series grain, comparison.

It is the page's query string, validated (:func:`parse_view`), so every view is a link; and it
turns into the parameters of each panel's catalogue query (:func:`panel_params`). Pure: no
request, no store.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from collector.query import catalogue
from collector.query.params import FILTERS, ITEM_ID, MAX_FILTER_LEN, QueryError, parse_params
from dashboards.panels import Panel

PRESETS = ("today", "yesterday", "7d", "30d", "90d", "this_month", "last_month", "custom")
#: What figures are compared with: the period just before, the same dates a year earlier, or
#: nothing (``?compare=``; ``0`` is off, as links made before ``year`` existed say).
Compare = Literal["previous", "year", "off"]
COMPARES: tuple[Compare, ...] = ("previous", "year", "off")
COMPARE_VALUES: dict[str, Compare] = {**{c: c for c in COMPARES}, "0": "off", "1": "previous"}
Grain = Literal["auto", "hour", "day", "week"]
GRAINS: tuple[Grain, ...] = ("auto", "hour", "day", "week")
#: Rows of the page-reading query behind the page panels, each of which shows its top ones.
PAGE_ROWS = 500


@dataclass(frozen=True, slots=True)
class View:
    """Validated query-string state: what every panel on the page is computed over."""

    preset: str
    start: dt.date
    end: dt.date  # inclusive
    filters: tuple[tuple[str, str], ...]
    grain: Grain
    compare: Compare
    goal: str = ""  # the goal the goals page shows in detail (an id), when one is chosen
    funnel: str = ""  # the funnel the funnels page shows (an id), when one is chosen

    def params(self, k: int, tz: str, **extra: object) -> dict[str, object]:
        """Catalogue parameters for this view; ``extra`` adds a query's own (dim, limit…)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "tz": tz,
                "filters": dict(self.filters), "k": k, **extra}

    def query(self, filters: Mapping[str, str | None] | None = None) -> list[tuple[str, str]]:
        """Query-string pairs for this view, with ``filters`` changed (None removes one)."""
        merged = dict(self.filters)
        for key, value in (filters or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        pairs = [("preset", self.preset)]
        if self.preset == "custom":
            pairs += [("start", self.start.isoformat()), ("end", self.end.isoformat())]
        if self.grain != "auto":
            pairs.append(("grain", self.grain))
        if self.compare != "previous":
            pairs.append(("compare", self.compare))
        if self.goal:
            pairs.append(("goal", self.goal))
        if self.funnel:
            pairs.append(("funnel", self.funnel))
        pairs += [(f"f.{k}", v) for k, v in sorted(merged.items())]
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


def parse_view(query: Mapping[str, str], tz: str, today: dt.date | None = None) -> View:
    """The view from a query string; QueryError (a 400) names anything invalid."""
    today = today or dt.datetime.now(zoneinfo.ZoneInfo(tz)).date()
    preset = query.get("preset") or ("custom" if query.get("start") else "30d")
    if preset not in PRESETS:
        raise QueryError(f"preset: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    if preset == "custom":
        # The catalogue's own checks, so a range the page accepts is one every query accepts.
        span = parse_params({"start": query.get("start"),
                                       "end": query.get("end") or query.get("start")})
        start, end = span.start, span.end
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
    if grain not in GRAINS:
        raise QueryError("grain: expected hour, day or week")
    if grain == "hour" and (end - start).days > 31:
        raise QueryError("grain: hourly series cover at most 31 days")
    compare = COMPARE_VALUES.get(query.get("compare") or "previous")
    if compare is None:
        raise QueryError("compare: expected previous, year or off")
    goal, funnel = query.get("goal") or "", query.get("funnel") or ""
    if goal and not ITEM_ID.fullmatch(goal):
        raise QueryError("goal: not a goal")
    if funnel and not ITEM_ID.fullmatch(funnel):
        raise QueryError("funnel: not a funnel")
    return View(preset, start, end, tuple(sorted(filters.items())), grain, compare, goal,
                funnel)


def effective_grain(view: View) -> str:
    """The series grain: the chosen one, else hours up to 2 days, days up to 92, then weeks."""
    if view.grain != "auto":
        return view.grain
    days = (view.end - view.start).days + 1
    return "hour" if days <= 2 else "day" if days <= 92 else "week"


def panel_params(panel: Panel, view: View, k: int, tz: str, top_n: int) -> dict[str, object]:
    """The parameters of ``panel``'s catalogue query for this view."""
    if panel.query == "realtime":  # now, whatever the period: only k and the list length
        return {"k": k, "limit": top_n}
    if panel.query in catalogue.UNDATED:
        return {}
    extra: dict[str, object] = {}
    if panel.query == "breakdown":
        extra = {"dim": panel.dim, "limit": top_n}
    elif panel.query == "anonymous_pages":
        extra = {"limit": top_n}
    elif panel.query == "page_engagement":  # every page panel asks the same: one scan
        extra = {"limit": PAGE_ROWS}
    elif panel.query in ("timeseries", "timeseries_previous"):
        extra = {"grain": effective_grain(view)}
    elif panel.query == "goal_series":
        extra = {"grain": effective_grain(view), "goal": view.goal}
    elif panel.query == "goal_breakdown":
        extra = {"dim": panel.dim, "limit": top_n, "goal": view.goal}
    elif panel.query == "funnel":
        extra = {"funnel": view.funnel}
    elif panel.query == "funnel_breakdown":
        extra = {"dim": panel.dim, "limit": top_n, "funnel": view.funnel}
    return view.params(k, tz, **extra)
