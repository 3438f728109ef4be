"""How the dashboards write numbers, and the words a page shows beside them.

Counts get thousands separators, rates a percentage with one decimal, and a missing figure
(below k, or nothing to divide by) an en dash. The labels of key figures, table columns, table
rows and chart series are here rather than beside the code that chooses them, so the words a
page shows can be read, and changed, in one place. Panel and page titles belong to their
definitions (:mod:`dashboards.panels`).
"""

from __future__ import annotations

import math
from typing import Literal

#: How a figure is written: a count, a percentage of a 0..1 ratio, a two-decimal number, a
#: duration in seconds, or a scroll depth (a 0..100 mean).
Kind = Literal["int", "pct", "dec", "dur", "depth"]
Number = int | float

MISSING = "–"  # below k, or a rate with nothing to divide by
OTHER = "(other)"  # the row every group under k is folded into
NOT_SET = "(not set)"  # an empty value: no consent for it, or the browser did not say

#: Key figure → (label, how it is written), in display order.
KPI_LABELS: dict[str, tuple[str, Kind]] = {
    "visitors": ("Visitors", "int"), "visits": ("Visits", "int"),
    "pageviews": ("Pageviews", "int"), "views_per_visit": ("Views per visit", "dec"),
    "bounce_rate": ("Bounce rate", "pct"), "reservations": ("Reservations", "int"),
    "conversion_rate": ("Conversion rate", "pct"),
}
#: The engagement panel's figures (``collector.query.engagement``), in display order.
ENGAGEMENT_LABELS: dict[str, tuple[str, Kind]] = {
    "visits": ("Visits", "int"), "duration_median": ("Visit duration (median)", "dur"),
    "duration_mean": ("Visit duration (mean)", "dur"),
    "engaged_mean": ("Engaged time per visit", "dur"),
    "engaged_bounce_rate": ("Bounce rate (engaged under 10 s)", "pct"),
}

#: What a breakdown's count column counts: landings start a visit, so they count visits.
COUNT_HEADERS: dict[str, str] = {
    "path": "Pageviews", "entry_path": "Visits", "channel": "Visits",
    "referrer_host": "Visits", "click_id_type": "Visits", "search_terms": "Searches",
    "utm_source": "Visits", "utm_medium": "Visits", "utm_campaign": "Visits",
    "event": "Events", "property": "Events", "interaction": "Events",
    "outbound": "Clicks", "app": "Taps", "tel_page": "Taps", "mailto_page": "Taps",
    "download": "Downloads", "form": "Submits", "not_found": "Pageviews",
}
#: What a breakdown's first column holds, when its dimension's name would not say it.
KEY_HEADERS: dict[str, str] = {
    "path": "Page", "entry_path": "Entry page", "interaction": "Interaction",
    "outbound": "Host", "app": "App", "tel_page": "Page", "mailto_page": "Page",
    "download": "File", "form": "Form", "not_found": "Page (404)",
}
#: The columns of the page engagement and exit page tables, with how each is written.
PAGE_COLUMNS: dict[str, tuple[tuple[str, str, Kind], ...]] = {
    "page_engagement": (
        ("visitors", "Visitors", "int"), ("views", "Pageviews", "int"),
        ("engaged_mean", "Engaged time", "dur"), ("scroll_mean", "Scroll depth", "depth"),
        ("exits", "Exits", "int"), ("exit_rate", "Exit rate", "pct")),
    "exit_pages": (
        ("exits", "Exits", "int"), ("exit_rate", "Exit rate", "pct"),
        ("views", "Pageviews", "int")),
}
#: Values shown by what they mean rather than their code, per dimension.
VALUE_LABELS: dict[str, dict[str, str]] = {
    "interaction": {"outbound": "Outbound link", "tel": "Phone tap", "mailto": "E-mail tap",
                    "app": "App link", "download": "Download", "form": "Form submit"},
}
DEFAULT_COUNT_HEADER = "Pageviews"
VISITORS_HEADER = "Visitors"
ANONYMOUS_HEADERS = ("Views (counted)",)
SUPPRESSION_HEADERS = ("Active", "Purged")
BOT_HEADERS = ("With consent", "Counted anonymously", "Bot hits")
BOT_TOTAL = "Period total"

#: The visitors/visits/pageviews series: row column → legend name.
SERIES_NAMES: tuple[tuple[str, str], ...] = (
    ("visitors", "Visitors"), ("visits", "Visits"), ("pageviews", "Pageviews"))
GPC_SHARE = "GPC share"
CONSENTED_PAGEVIEWS = "Consented pageviews"
ANONYMOUS_COUNTS = "Anonymous counts"


def fmt(value: Number | None, kind: Kind = "int") -> str:
    """A figure as the page shows it: ``12,345``, ``38.2%``, ``2.41``, ``2m 05s``, ``62%``,
    or ``–``."""
    if value is None:
        return MISSING
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "dec":
        return f"{float(value):.2f}"
    if kind == "dur":
        return duration(float(value))
    if kind == "depth":
        return f"{float(value):.0f}%"
    return f"{int(value):,}"


def duration(seconds: float) -> str:
    """``42s``, ``2m 05s``, ``1h 03m``: a time as a person reads it at a glance."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole // 60 % 60:02d}m"


def change(current: Number | None, previous: Number | None) -> str:
    """The change from the previous period, ``+12.5%`` / ``-3.0%``; "" when there is none."""
    if current is None or previous is None or not previous:
        return ""
    delta = (float(current) - float(previous)) / float(previous)
    if math.isnan(delta):
        return ""
    return f"{'+' if delta >= 0 else ''}{100 * delta:.1f}%"


def row_label(key: str, other: bool, dim: str | None = None) -> str:
    """A breakdown row's label: its value (by what it means, when a code), or what stands in
    for a folded or empty one."""
    if other:
        return OTHER
    if key == "":
        return NOT_SET
    return VALUE_LABELS.get(dim or "", {}).get(key, key)


def count_header(dim: str | None) -> str:
    return COUNT_HEADERS.get(dim or "", DEFAULT_COUNT_HEADER)


def key_header(dim: str | None) -> str:
    return KEY_HEADERS.get(dim or "", dim or "")
