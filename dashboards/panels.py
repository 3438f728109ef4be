"""Which panels exist, what each shows, and which pages group them.

A panel is one box on a page: the catalogue query that feeds it (``collector.query.catalogue``), how
its rows are drawn, and its title. A page is an ordered list of panels; who may open which page
is :mod:`dashboards.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a panel draws its rows: key figures, the visitors/visits/pageviews series, a table, or
#: one of the charts named by :attr:`Panel.chart`.
Show = Literal["kpis", "series", "table", "chart"]
Chart = Literal["", "funnel", "optin", "gpc", "coverage"]


@dataclass(frozen=True, slots=True)
class Panel:
    """One box on a page: a catalogue query, how to show it, and its title."""

    id: str
    title: str
    query: str  # a name in collector.query.catalogue.CATALOGUE
    show: Show
    dim: str | None = None  # the breakdown's dimension (a key of DIMENSIONS)
    note: str = ""
    chart: Chart = ""  # for show == "chart"
    wide: bool = False  # spans the page's width (a table of many columns)
    # Rows re-ordered by this column (descending) from the query's: two panels of one query
    # (pages by views, pages by exits) then cost one scan.
    order: str = ""


def _breakdown(dim: str, title: str, note: str = "") -> Panel:
    return Panel(f"bd_{dim}", title, "breakdown", "table", dim=dim, note=note)


PANELS: dict[str, Panel] = {p.id: p for p in [
    Panel("kpis", "Key figures", "kpis", "kpis"),
    Panel("series", "Visitors and pageviews", "timeseries", "series"),
    _breakdown("path", "Top pages"),
    _breakdown("entry_path", "Entry pages", "pages that start a visit from outside the site"),
    _breakdown("channel", "Channels", "visits by how they arrived"),
    _breakdown("referrer_host", "Referrers"),
    _breakdown("utm_source", "Campaign sources (utm_source)"),
    _breakdown("utm_medium", "Campaign media (utm_medium)"),
    _breakdown("utm_campaign", "Campaigns (utm_campaign)"),
    _breakdown("click_id_type", "Ad click ids",
               "which ad network's click id the landing carried"),
    _breakdown("search_terms", "Site search terms"),
    _breakdown("device_type", "Devices"),
    _breakdown("browser", "Browsers"),
    _breakdown("os", "Operating systems"),
    _breakdown("language", "Languages"),
    _breakdown("network_type", "Network type", "effective connection type (Chromium browsers)"),
    _breakdown("country", "Countries", "needs location consent; (not set) without it"),
    _breakdown("region", "Regions"),
    _breakdown("city", "Cities"),
    _breakdown("event", "Custom events"),
    _breakdown("property", "Custom event properties"),
    # Engagement: what the interaction beacon reports (collector.query.engagement).
    Panel("engagement", "Engagement", "engagement", "kpis",
          note="visits with analytics consent; engaged time needs the page's script"),
    Panel("page_engagement", "How pages are read", "page_engagement", "table", dim="path",
          note="mean engaged time and scroll depth of the pages' reports; exits: visits "
               "that ended there", wide=True),
    Panel("exit_pages", "Exit pages", "page_engagement", "table", dim="path",
          note="the last page viewed in a visit", order="exits"),
    _breakdown("interaction", "Interactions", "clicks, taps and form submits"),
    _breakdown("outbound", "Outbound links", "by the linked site; never its query string"),
    _breakdown("app", "App links (LINE, Instagram…)", "the app, never the account"),
    _breakdown("tel_page", "Phone taps by page", "that a tel: link was tapped, never the number"),
    _breakdown("mailto_page", "E-mail taps by page", "never the address"),
    _breakdown("download", "Downloads"),
    _breakdown("form", "Form submits", "the form's id, or where it posts; never a value"),
    _breakdown("not_found", "Pages not found (404)",
               "addresses visitors asked for that the site does not have"),
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
    Panel("bot_hits", "Bot hits left out (除外したボットのアクセス)", "bot_hits", "table",
          note="known bots' hits per day: not stored, and in no other figure"),
    Panel("suppression_stats", "Suppressions", "suppression_stats", "table"),
]}


@dataclass(frozen=True, slots=True)
class Page:
    """A dashboard page: its URL segment, navigation title, and panels in display order."""

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
    Page("engagement", "Engagement", ("engagement", "page_engagement", "exit_pages",
                                      "bd_interaction", "bd_outbound", "bd_app",
                                      "bd_tel_page", "bd_mailto_page", "bd_download",
                                      "bd_form", "bd_not_found")),
    Page("events", "Events", ("kpis", "bd_event", "bd_property", "bd_interaction")),
    Page("consent", "Consent", ("consent_funnel", "optin", "gpc", "coverage",
                                "anonymous_pages", "bot_hits")),
    Page("privacy", "Privacy staff", ("suppression_stats",)),
]}


def pages_showing(panel_id: str) -> list[Page]:
    """The pages a panel appears on (a panel's data is readable by whoever opens one)."""
    return [page for page in PAGES.values() if panel_id in page.panels]
