"""Who may see which dashboard page; accounts, logins and sessions are the staff ones
(``collector.accounts``)."""

from __future__ import annotations

from collector.logins import Session

__all__ = ["PAGE_ROLES", "Session"]

#: Page → roles that may open it. Marketing never gets the privacy-staff page.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"marketing", "admin"}),
    "acquisition": frozenset({"marketing", "admin"}),
    "audience": frozenset({"marketing", "admin"}),
    "events": frozenset({"marketing", "admin"}),
    "consent": frozenset({"marketing", "privacy", "admin"}),
    "privacy": frozenset({"privacy", "admin"}),
}
