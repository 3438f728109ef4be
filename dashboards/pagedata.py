"""Building a page's data: each panel's rows for a view, through a backend, ready to show.

:class:`PageLoader` fetches (one scan for all of a page's breakdowns, the previous period
beside key figures); :func:`kpi_figures` and :func:`table` shape rows for the template. Every
number comes from a catalogue query that already applies suppression and k-anonymity; this
module only chooses which queries run and how their rows are laid out. About 450 lines: the
loader and the shapes of the rows it fetches change together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from collector.query import catalogue, sql
from collector.query.params import DIMENSIONS, QueryError
from dashboards.backends import CachedBackend, Rows
from dashboards.format import (
    ANONYMOUS_HEADERS,
    BOT_HEADERS,
    BOT_TOTAL,
    ENGAGEMENT_LABELS,
    GOAL_HEADER,
    KPI_LABELS,
    PAGE_COLUMNS,
    REACHED_END,
    STEP_HEADER,
    SUPPRESSION_HEADERS,
    VISITORS_HEADER,
    Kind,
    Labels,
    Number,
    count_header,
    key_header,
    row_label,
)
from dashboards.i18n import NO_TEXT, Locale, Text
from dashboards.panels import PANELS, Page, Panel
from dashboards.settings import DashboardSettings
from dashboards.view import View, effective_grain, panel_params

#: Charts over days, which show the notes on the time axis as the series does.
TIME_CHARTS = frozenset({"optin", "gpc", "coverage", "goal"})
#: Queries about the one goal a page shows in detail (``View.goal``), and the one funnel
#: (``View.funnel``).
GOAL_DETAIL = frozenset({"goal_series", "goal_breakdown"})
FUNNEL_DETAIL = frozenset({"funnel", "funnel_breakdown"})
#: The series grains whose key figures come in the same query (``kpis_series``).
FUSED_GRAINS = frozenset(sql.ROLLUP_GRAINS)
#: The queries that list what staff defined, for a page's pickers (:meth:`PageLoader.listed`).
ListQuery = Literal["goal_list", "funnel_list", "segments"]
#: Key figure → its value; None when it stands for fewer than k visitors or divides by zero.
Figures = dict[str, Number | None]


@dataclass(frozen=True, slots=True)
class PanelData:
    """One panel's rows for a view; key figures also carry their derived rates."""

    panel: Panel
    rows: Rows
    current: Figures | None = None  # key figures only
    previous: Figures | None = None  # key figures of the previous period, when compared
    below_k: bool = False  # key figures: fewer than k visitors match
    labels: Labels = field(default_factory=dict)  # key figures
    previous_rows: Rows | None = None  # a series over the compared period, when compared
    previous_shift: int = 0  # days between the compared period and this one
    compare: str = "previous"  # what previous_rows compare with: previous, year
    annotations: Rows = field(default_factory=list)  # a series' notes and version changes

    @property
    def has_previous(self) -> bool:
        """Whether the previous period has any figure to compare with."""
        return self.previous is not None and any(v is not None
                                                 for v in self.previous.values())


@dataclass(frozen=True, slots=True)
class TableRow:
    label: str
    nums: tuple[Number | None, ...]
    href: str | None  # the same view filtered on this row, when it can be
    other: bool


@dataclass(frozen=True, slots=True)
class Table:
    rows: list[TableRow]
    headers: tuple[Text, ...]
    key_header: Text = NO_TEXT
    kinds: tuple[Kind, ...] = ()  # how each number column is written; "int" when not said

    def kind(self, column: int) -> Kind:
        return self.kinds[column] if column < len(self.kinds) else "int"


def _ratio(num: Number | None, den: Number | None) -> float | None:
    if num is None or not den:
        return None
    return float(num) / float(den)


def kpi_figures(row: Mapping[str, Any] | None) -> Figures:
    """Raw key-figure counts plus the derived rates the page shows."""
    row = row or {}
    return {
        "visitors": row.get("visitors"),
        "visits": row.get("visits"),
        "pageviews": row.get("pageviews"),
        "views_per_visit": _ratio(row.get("pageviews"), row.get("visits")),
        "bounce_rate": _ratio(row.get("bounces"), row.get("visits")),
    }


def engagement_figures(row: Mapping[str, Any] | None) -> Figures:
    """The engagement panel's figures: durations in seconds, and the engaged-bounce rate."""
    row = row or {}
    return {
        "visits": row.get("visits"),
        "duration_median": row.get("duration_median"),
        "duration_mean": row.get("duration_mean"),
        "engaged_mean": row.get("engaged_mean"),
        "engaged_bounce_rate": _ratio(row.get("engaged_bounces"), row.get("visits")),
    }


#: Key-figure query → (its labels, its figures from the query's one row). The previous
#: period's figures come from the query named ``<query>_previous``.
KEY_FIGURES: dict[str, tuple[Labels, Callable[[Mapping[str, Any] | None], Figures]]] = {
    "kpis": (KPI_LABELS, kpi_figures),
    "engagement": (ENGAGEMENT_LABELS, engagement_figures),
}


class PageLoader:
    """Runs the catalogue queries behind panels and pages, with the dashboards' k, time zone
    and table length."""

    def __init__(self, backend: CachedBackend, settings: DashboardSettings, *,
                 one_page: bool = False) -> None:
        self.backend = backend
        self.settings = settings
        self.k = settings.k
        self.tz = settings.tz
        self.top_n = settings.top_n
        # A page's lists of goals, funnels and segments, read once for it (:meth:`listed`);
        # None for the app's loader, which never keeps them.
        self._lists: dict[ListQuery, Rows] | None = {} if one_page else None

    def for_page(self) -> PageLoader:
        """A loader for one page's queries, which share what each reads first
        (:meth:`Backend.for_page <dashboards.backends.Backend.for_page>`)."""
        return PageLoader(self.backend.for_page(), self.settings, one_page=True)

    def listed(self, name: ListQuery, version: str) -> Rows:
        """The goals, funnels or saved segments there are; a page's loader reads each once,
        so the detail a page picks and the list it offers name the same ones (and the
        goals page no longer reads its list twice: ~5 ms each, uncached)."""
        if self._lists is None:
            return self.backend.run(name, {}, version=version)
        if name not in self._lists:
            self._lists[name] = self.backend.run(name, {}, version=version)
        return self._lists[name]

    def version(self) -> str:
        """The data version answers are cached under (call once per page, then pass it on)."""
        return self.backend.version()

    def panel_rows(self, panel: Panel, view: View, version: str,
                   memo: dict[str, Rows] | None = None) -> Rows:
        """``memo``: one page's answers so far, by query and parameters, so two panels of
        one query cost one run even with the result cache off."""
        params = panel_params(panel, view, self.k, self.tz, self.top_n)
        key = f"{panel.query} {sorted(params.items())}"
        rows = memo.get(key) if memo is not None else None
        if rows is None:
            rows = self.backend.run(panel.query, params, version=version)
            if memo is not None:
                memo[key] = rows
        if panel.query == "page_engagement":
            return top_rows(rows, panel.order or "views", self.top_n)
        return rows

    def annotations(self, view: View, version: str,
                    memo: dict[str, Rows] | None = None) -> Rows:
        """The notes on the time axis of ``view``; asked once per page (``memo``)."""
        if memo is not None and "annotations" in memo:
            return memo["annotations"]
        rows = self.backend.run("annotations", view.params(self.k, self.tz), version=version)
        if memo is not None:
            memo["annotations"] = rows
        return rows

    def panel(self, panel: Panel, view: View, version: str,
              memo: dict[str, Rows] | None = None) -> PanelData:
        rows = self.panel_rows(panel, view, version, memo)
        notes: Rows = []
        if panel.show == "series" or panel.chart in TIME_CHARTS:
            notes = self.annotations(view, version, memo)
        if panel.chart in TIME_CHARTS:
            return PanelData(panel, rows, annotations=notes)
        if panel.show == "series":
            if view.compare == "off":
                return series_data(panel, rows, notes, view, {}, None)
            params = {**panel_params(panel, view, self.k, self.tz, self.top_n),
                      "compare": view.compare}
            return series_data(panel, rows, notes, view, params, self.backend.run(
                "timeseries_previous", params, version=version))
        if panel.show != "kpis":
            return PanelData(panel, rows)
        previous = None
        if view.compare != "off":
            previous = self.backend.run(f"{panel.query}_previous",
                                        view.params(self.k, self.tz, compare=view.compare),
                                        version=version)
        return kpi_data(panel, rows, previous)

    def with_goal(self, page: Page, view: View, version: str) -> View:
        """``view`` with the goal and funnel ``page`` shows in detail: the one asked for,
        else the first there is ("" when there is none, or the page shows none)."""
        queries = {PANELS[pid].query for pid in page.panels}
        if queries & GOAL_DETAIL:
            # The list, not the figures: a few ms, where every goal's figures cost a scan.
            ids = [str(r["goal_id"]) for r in self.listed("goal_list", version)]
            if view.goal and view.goal not in ids:
                raise QueryError("goal: no such goal")
            view = dataclasses.replace(view, goal=view.goal or (ids[0] if ids else ""))
        if queries & FUNNEL_DETAIL:
            ids = [str(r["funnel_id"]) for r in self.listed("funnel_list", version)
                   if r["ok"]]
            if view.funnel and view.funnel not in ids:
                raise QueryError("funnel: no such funnel, or a step's goal was removed")
            view = dataclasses.replace(view, funnel=view.funnel or (ids[0] if ids else ""))
        return view

    def page(self, page: Page, view: View, version: str | None = None) -> dict[str, PanelData]:
        """Every panel of ``page``; ``version``: the data version, when the caller has it.
        A page about one goal gets ``view`` from :meth:`with_goal`."""
        version = self.version() if version is None else version
        # The page's breakdowns share one scan (and, when filtered, one visit selection), and
        # so do a goal's: each answer's rows, by panel.
        shared: dict[str, Rows] = {}
        for query, together, extra in (("breakdown", "breakdowns", {}),
                                       ("goal_breakdown", "goal_breakdowns",
                                        {"goal": view.goal})):
            panels = [PANELS[pid] for pid in page.panels if PANELS[pid].query == query
                      and PANELS[pid].dim != "property"]
            if len(panels) < 2 or extra.get("goal") == "":
                continue
            params = view.params(self.k, self.tz, dims=[p.dim for p in panels],
                                 limit=self.top_n, **extra)
            rows = self.backend.run(together, params, version=version)
            for p in panels:  # rows may be cached: never changed, copied without dim
                shared[p.id] = [{k: v for k, v in r.items() if k != "dim"}
                                for r in rows if r["dim"] == p.dim]
        out: dict[str, PanelData] = {}
        memo: dict[str, Rows] = {}
        fused = self._figures_with_series(page, view, version, memo)
        for pid in page.panels:
            panel = PANELS[pid]
            if pid in fused:
                out[pid] = fused[pid]
            elif pid in shared:
                out[pid] = PanelData(panel, shared[pid])
            elif ((panel.query in GOAL_DETAIL and not view.goal)
                  or (panel.query in FUNNEL_DETAIL and not view.funnel)):
                out[pid] = PanelData(panel, [])  # none defined yet
            else:
                out[pid] = self.panel(panel, view, version, memo)
        return out

    def _figures_with_series(self, page: Page, view: View, version: str,
                             memo: dict[str, Rows]) -> dict[str, PanelData]:
        """The key figures and visitors series of ``page``, from one query a period
        (``kpis_series``) instead of two: the same numbers, the period read once. By panel
        id; empty when the page does not show both, or the series is hourly."""
        kpis = [pid for pid in page.panels if PANELS[pid].query == "kpis"]
        series = [pid for pid in page.panels if PANELS[pid].query == "timeseries"]
        grain = effective_grain(view)
        if not kpis or not series or grain not in FUSED_GRAINS:
            return {}
        params = view.params(self.k, self.tz, grain=grain)
        try:
            now, buckets = _split(self.backend.run("kpis_series", params, version=version))
        except QueryError:  # a collector older than the query: the two queries answer
            return {}
        before: Rows | None = None
        earlier: Rows = []
        if view.compare != "off":
            params = {**params, "compare": view.compare}
            earlier, before = _split(self.backend.run("kpis_series_previous", params,
                                                      version=version))
        notes = self.annotations(view, version, memo)
        out = {pid: kpi_data(PANELS[pid], now, earlier if before is not None else None)
               for pid in kpis}
        for pid in series:
            out[pid] = series_data(PANELS[pid], buckets, notes, view, params, before)
        return out


def kpi_data(panel: Panel, rows: Rows, previous: Rows | None) -> PanelData:
    """A key-figures panel: its figures, and the compared period's (``previous``: its rows,
    None when not compared)."""
    labels, figures = KEY_FIGURES[panel.query]
    return PanelData(panel, rows, current=figures(rows[0] if rows else None),
                     previous=(None if previous is None
                               else figures(previous[0] if previous else None)),
                     below_k=bool(rows and rows[0].get("below_k")), labels=labels)


def series_data(panel: Panel, rows: Rows, notes: Rows, view: View,
                params: Mapping[str, Any], previous: Rows | None) -> PanelData:
    """A series panel: its rows and notes, and the compared period's rows laid over them
    (``previous``, None when not compared; ``params``: the compared query's, which say how
    many days back it lies)."""
    if previous is None:
        return PanelData(panel, rows, annotations=notes)
    return PanelData(panel, rows, previous_rows=previous,
                     previous_shift=catalogue.params_for("timeseries", params).shift_days,
                     compare=view.compare, annotations=notes)


def _split(rows: Rows) -> tuple[Rows, Rows]:
    """``kpis_series`` rows as ``kpis`` and ``timeseries`` answer them: the totals row (one,
    with nothing counted, when the period has no row at all) and the buckets'."""
    totals = [{k: v for k, v in r.items() if k != "bucket"} for r in rows if not r["bucket"]]
    buckets = [{"bucket": r["bucket"], "visitors": r["visitors"], "visits": r["visits"],
                "pageviews": r["pageviews"]} for r in rows if r["bucket"]]
    return totals or [dict(_NOTHING)], buckets


#: The key figures of a period with no visit: what ``kpis`` answers then.
_NOTHING: dict[str, Any] = {"visitors": None, "visits": None, "pageviews": None,
                            "bounces": None, "below_k": 1}


def funnel_table(panel: Panel, view: View, rows: Rows, page_url: str,
                 locale: Locale) -> Table:
    """A funnel by a dimension: a row per group (the query's order), its visitors, how many
    reached each step ("–" under k), and the share of its visitors who reached the last."""
    groups: dict[tuple[str, bool], dict[int, Number | None]] = {}
    visitors: dict[tuple[str, bool], Number] = {}
    for r in rows:
        group = (str(r["key"]), bool(r["is_other"]))
        groups.setdefault(group, {})[int(r["step"])] = r["reached"]
        visitors[group] = r["visitors"]
    steps = max((len(g) for g in groups.values()), default=0)
    out = []
    for (key, other), reached in groups.items():
        last = reached.get(steps)
        nums: tuple[Number | None, ...] = (
            visitors[(key, other)], *(reached.get(n) for n in range(1, steps + 1)),
            None if last is None or not visitors[(key, other)]
            else float(last) / float(visitors[(key, other)]))
        href = None
        if not other and panel.dim and dict(view.filters).get(panel.dim) != key:
            href = page_url + "?" + urlencode(view.query(filters={panel.dim: key}))
        out.append(TableRow(row_label(key, other, panel.dim, locale), nums, href, other))
    headers = (VISITORS_HEADER, *(Text(f"ステップ{n}", f"Step {n}")
                                  for n in range(1, steps + 1)), REACHED_END)
    count: Kind = "int"
    kinds: tuple[Kind, ...] = (*[count] * (steps + 1), "pct")
    return Table(out, headers, key_header(panel.dim), kinds)


def _columns(panel: Panel, rows: Rows) -> tuple[tuple[str, Text, Kind], ...]:
    """The number columns of a table of several figures: its own, or its query's; a value
    column only when some row has a value (most goals carry none)."""
    columns = PAGE_COLUMNS.get(panel.id) or PAGE_COLUMNS[panel.query]
    return tuple(c for c in columns
                 if not c[0].startswith("value") or any(r.get(c[0]) is not None for r in rows))


def top_rows(rows: Rows, column: str, n: int) -> Rows:
    """The ``n`` first rows by ``column`` (then views, then key), the folded row last."""
    return sorted(rows, key=lambda r: (bool(r.get("is_other")), -(r.get(column) or 0),
                                       -(r.get("views") or 0), str(r.get("key"))))[:n]


@dataclass(frozen=True, slots=True)
class Realtime:
    """Who is on the site now: None visitors when fewer than k (nothing else is shown)."""

    visitors: int | None
    pages: list[tuple[str, int]]
    sources: list[tuple[str, int]]
    at: str  # the time of the answer, in the site's time zone


def realtime(rows: Rows, locale: Locale, tz: str,
             now: dt.datetime | None = None) -> Realtime:
    """The realtime panel's figures from its query's rows (``collector.query.realtime``)."""
    total = next((int(r["visitors"]) for r in rows if r["dim"] == "now"), None)

    def listed(dim: str) -> list[tuple[str, int]]:
        return [(row_label(str(r["key"]), bool(r["is_other"]), dim, locale),
                 int(r["visitors"])) for r in rows if r["dim"] == dim]

    at = (now or dt.datetime.now(zoneinfo.ZoneInfo(tz))).strftime("%H:%M:%S")
    if total is None:
        return Realtime(None, [], [], at)
    return Realtime(total, listed("path"), listed("channel"), at)


def table(panel: Panel, view: View, rows: Rows, page_url: str, locale: Locale = "ja") -> Table:
    """A table panel's rows ready for the template: labels, numbers, and each row's link to
    the same page filtered on it (``page_url`` without its query string)."""
    if panel.query == "suppression_stats":
        return Table([TableRow(row_label(r["id_type"], False, "id_type", locale),
                               (r["active"], r["purged"]), None, False)
                      for r in rows], SUPPRESSION_HEADERS)
    if panel.query == "bot_hits":
        days = [TableRow(r["day"], (r["consented"], r["anonymous"], r["hits"]), None, False)
                for r in rows]
        total = TableRow(BOT_TOTAL(locale), tuple(sum(int(r[c]) for r in rows)
                                          for c in ("consented", "anonymous", "hits")),
                         None, True)
        return Table([total, *days], BOT_HEADERS)
    if panel.query == "goals":
        goals_url = page_url.rsplit("/", 1)[0] + "/goals"
        columns = _columns(panel, rows)
        return Table([TableRow(str(r["name"]), tuple(r[c] for c, _, _ in columns),
                               goals_url + "?" + urlencode(
                                   dataclasses.replace(view, goal=str(r["goal_id"])).query()),
                               False) for r in rows],
                     tuple(h for _, h, _ in columns), GOAL_HEADER,
                     tuple(k for _, _, k in columns))
    if panel.query == "funnel":
        columns = PAGE_COLUMNS["funnel"]
        return Table([TableRow(f"{r['step']}. {r['name']}", tuple(r[c] for c, _, _ in columns),
                               None, False) for r in rows],
                     tuple(h for _, h, _ in columns), STEP_HEADER,
                     tuple(k for _, _, k in columns))
    if panel.query == "funnel_breakdown":
        return funnel_table(panel, view, rows, page_url, locale)
    pages = panel.query in ("page_engagement", "goal_breakdown")
    # A page's row filters on the page; a 404's on the page viewed with that status.
    filter_dim = ("path" if panel.dim == "entry_path" or panel.query == "page_engagement"
                  else panel.dim)
    filterable = ((panel.query == "breakdown" or pages) and filter_dim is not None
                  and DIMENSIONS[filter_dim].filterable)
    active = dict(view.filters)
    out = []
    for r in rows:
        other = bool(r.get("is_other"))
        key = r.get("key", "")
        href = None
        if filterable and not other and filter_dim and active.get(filter_dim) != key:
            href = page_url + "?" + urlencode(view.query(filters={filter_dim: key}))
        if pages:
            values: tuple[Number | None, ...] = tuple(
                r[c] for c, _, _ in _columns(panel, rows))
        elif panel.query == "anonymous_pages":
            values = (r["views"],)
        else:
            values = (r["visitors"], r["events"])
        out.append(TableRow(row_label(key, other, panel.dim, locale), values, href, other))
    if pages:
        columns = _columns(panel, rows)
        return Table(out, tuple(h for _, h, _ in columns), key_header(panel.dim),
                     tuple(k for _, _, k in columns))
    if panel.query == "anonymous_pages":
        return Table(out, ANONYMOUS_HEADERS, key_header("path"))
    return Table(out, (VISITORS_HEADER, count_header(panel.dim)), key_header(panel.dim))
