"""Who may see which dashboard page and panel; accounts, logins and sessions are the staff ones
(``collector.accounts``, ``collector.logins``)."""

from __future__ import annotations

from dashboards.panels import PAGES, Page, pages_showing

#: Page → roles that may open it. Marketing never gets the privacy-staff page.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"marketing", "admin"}),
    "acquisition": frozenset({"marketing", "admin"}),
    "audience": frozenset({"marketing", "admin"}),
    "engagement": frozenset({"marketing", "admin"}),
    "goals": frozenset({"marketing", "admin"}),
    "funnels": frozenset({"marketing", "admin"}),
    "events": frozenset({"marketing", "admin"}),
    "consent": frozenset({"marketing", "privacy", "admin"}),
    "privacy": frozenset({"privacy", "admin"}),
}
assert set(PAGE_ROLES) == set(PAGES), "every page names its roles"


def may_open(role: str, page: Page) -> bool:
    return role in PAGE_ROLES[page.id]


def may_read(role: str, panel_id: str) -> bool:
    """A panel's rows (JSON, CSV) are for whoever may open a page that shows it."""
    return any(may_open(role, page) for page in pages_showing(panel_id))


#: Who may put notes on the time axis (and remove them): the people who read the series.
NOTE_ROLES = frozenset({"marketing", "admin"})


def may_write_notes(role: str) -> bool:
    return role in NOTE_ROLES
