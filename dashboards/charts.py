"""Plotly chart descriptions for a page's chart panels, and their safe embedding in HTML.

Charts travel as data only: a ``<script type="application/json">`` block that
``static/app.js`` reads and hands to plotly.js, so no inline script runs and the CSP can forbid
it. Pure: rows in, JSON-ready dictionaries out.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Mapping

from markupsafe import Markup

from dashboards.format import (
    ANONYMOUS_COUNTS,
    COMPARED_NAMES,
    CONSENTED_PAGEVIEWS,
    GOAL_SERIES_NAMES,
    GPC_SHARE,
    POLICY_MARK,
    SERIES_NAMES,
    value_label,
)
from dashboards.i18n import DATE_FORMAT, Locale
from dashboards.pagedata import PanelData

#: A Plotly trace, layout or chart: JSON objects.
Json = dict[str, object]


def script_json(data: object) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no way to close the tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return Markup(text)  # noqa: S704 - every character that could end the block is escaped


#: Plotly's first colours: a series and its compared period share one.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def _later(bucket: str, days: int) -> str:
    """A bucket (``2026-06-17`` or ``2026-06-17 13:00:00``) ``days`` later, as written."""
    if len(bucket) > 10:
        moved = dt.datetime.fromisoformat(bucket) + dt.timedelta(days=days)
        return moved.strftime("%Y-%m-%d %H:%M:%S")
    return (dt.date.fromisoformat(bucket) + dt.timedelta(days=days)).isoformat()


def _marks(notes: list[dict[str, object]], locale: Locale) -> Json:
    """A dotted line and a short label at each note's day (the whole text is in the list
    under the chart)."""
    if not notes:
        return {}
    shapes, labels = [], []
    for n in notes:
        day = str(n["day"])
        # Plotly reads tags (<a href>, <br>) in label text: a note's are entities.
        text = POLICY_MARK(locale) if n["kind"] == "policy" else html.escape(str(n["text"]))
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": day, "x1": day,
                       "y0": 0, "y1": 1, "line": {"dash": "dot", "width": 1,
                                                  "color": "#8a5cf6"}})
        labels.append({"x": day, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom",
                       "text": _short(text),
                       "showarrow": False, "font": {"size": 10, "color": "#6b46c1"}})
    # Room above the plot for the labels.
    return {"shapes": shapes, "annotations": labels,
            "margin": {"l": 50, "r": 10, "t": 30, "b": 40}}


def _short(text: str, limit: int = 14) -> str:
    """At most ``limit`` characters, never cutting an entity in half."""
    if len(html.unescape(text)) <= limit:
        return text
    return html.escape(html.unescape(text)[:limit - 1]) + "…"


def _dates(locale: Locale, hourly: bool = False) -> Json:
    """A date x axis that always shows the year, in the locale's order."""
    fmt = DATE_FORMAT[locale] + (" %H:%M" if hourly else "")
    return {"xaxis": {"type": "date", "tickformat": fmt, "automargin": True}}


def _funnel_label(step: str, method: str, locale: Locale) -> str:
    """"Banner shown", or a decision and how it was made ("Decided: Accept all")."""
    label = value_label("step", step, locale)
    return label if method == "none" else f"{label}: {value_label('method', method, locale)}"


def chart(data: PanelData, locale: Locale = "ja") -> tuple[list[Json], Json] | None:
    """One panel's traces and layout, or None when the panel is not a chart."""
    panel, rows = data.panel, data.rows
    if panel.show == "series":
        x = [r["bucket"] for r in rows]
        hourly = any(len(str(b)) > 10 for b in x)
        traces: list[Json] = [{"type": "scatter", "mode": "lines+markers", "name": name(locale),
                               "x": x, "y": [r[key] for r in rows]}
                              for key, name in SERIES_NAMES]
        if data.previous_rows:
            # The compared period laid over this one: each point moved forward by the
            # comparison's days, dashed, in its series's colour.
            px = [_later(str(r["bucket"]), data.previous_shift) for r in data.previous_rows]
            pattern = COMPARED_NAMES[data.compare](locale)
            traces += [{"type": "scatter", "mode": "lines", "x": px,
                        "y": [r[key] for r in data.previous_rows],
                        "name": pattern.format(name=name(locale)),
                        "line": {"dash": "dot", "color": COLOURS[i]}, "opacity": 0.6}
                       for i, (key, name) in enumerate(SERIES_NAMES)]
            for i, trace in enumerate(traces[:len(SERIES_NAMES)]):
                trace["line"] = {"color": COLOURS[i]}
        return traces, {**_dates(locale, hourly), **_marks(data.annotations, locale)}
    if panel.chart == "funnel":
        return ([{"type": "bar", "orientation": "h",
                  "y": [_funnel_label(r["step"], r["method"], locale) for r in rows],
                  "x": [r["consents"] for r in rows]}],
                {"yaxis": {"autorange": "reversed", "automargin": True}})
    if panel.chart == "optin":
        by_cat: dict[str, tuple[list[object], list[object]]] = {}
        for r in rows:
            xs, ys = by_cat.setdefault(str(r["category"]), ([], []))
            xs.append(r["day"])
            ys.append(r["rate"])
        return ([{"type": "scatter", "mode": "lines",
                  "name": value_label("category", c, locale), "x": xs, "y": ys}
                 for c, (xs, ys) in sorted(by_cat.items())],
                {"yaxis": {"tickformat": ".0%", "range": [0, 1]}, **_dates(locale),
                 **_marks(data.annotations, locale)})
    if panel.chart == "gpc":
        return ([{"type": "scatter", "mode": "lines", "name": GPC_SHARE(locale),
                  "x": [r["day"] for r in rows], "y": [r["gpc_share"] for r in rows]}],
                {"yaxis": {"tickformat": ".0%", "rangemode": "tozero"}, **_dates(locale),
                 **_marks(data.annotations, locale)})
    if panel.chart == "goal":
        x = [r["bucket"] for r in rows]
        return ([{"type": "scatter", "mode": "lines+markers", "name": name(locale), "x": x,
                  "y": [r[key] for r in rows]} for key, name in GOAL_SERIES_NAMES],
                {"yaxis": {"rangemode": "tozero"},
                 **_dates(locale, any(len(str(b)) > 10 for b in x)),
                 **_marks(data.annotations, locale)})
    if panel.chart == "steps":
        return ([{"type": "bar", "orientation": "h",
                  "y": [f"{r['step']}. {r['name']}" for r in rows],
                  "x": [r["visitors"] for r in rows]}],
                {"yaxis": {"autorange": "reversed", "automargin": True}})
    if panel.chart == "coverage":
        x = [r["day"] for r in rows]
        return ([{"type": "bar", "name": CONSENTED_PAGEVIEWS(locale), "x": x,
                  "y": [r["consented"] for r in rows]},
                 {"type": "bar", "name": ANONYMOUS_COUNTS(locale), "x": x,
                  "y": [r["anonymous"] for r in rows]}],
                {"barmode": "stack", **_dates(locale), **_marks(data.annotations, locale)})
    return None


def charts(page: Mapping[str, PanelData], locale: Locale = "ja") -> list[Json]:
    """Every chart panel on the page, keyed to its ``chart-<panel id>`` element."""
    out: list[Json] = []
    for pid, data in page.items():
        drawn = chart(data, locale)
        if drawn is not None:
            traces, layout = drawn
            out.append({"id": f"chart-{pid}", "traces": traces, "layout": layout})
    return out
