"""What a visitor is shown about consent, as standalone pages: for the evidence pack.

The banner, the preferences page (nothing chosen yet) and the external-transmission notice,
in every configured language, exactly as the middleware renders them for this policy version
(its label and the hash of the texts they are built from). Pure.
"""

from __future__ import annotations

from consent_mw.consent.banner import render_banner
from consent_mw.consent.decision import undecided
from consent_mw.consent.i18n import t
from consent_mw.consent.pages import document, render_external_transmission, render_preferences
from consent_mw.settings import Settings


def notice_pages(settings: Settings) -> tuple[str, str, dict[str, str]]:
    """``(policy_version, policy_hash, {"<lang>/<page>.html": html})``."""
    pages: dict[str, str] = {}
    for locale in settings.locales:
        banner = render_banner(settings, locale, "/")
        pages[f"{locale}/banner.html"] = document(settings, locale, t(locale, "banner_title"),
                                                  banner)
        pages[f"{locale}/preferences.html"] = render_preferences(
            settings, undecided(settings), locale, return_to="/")
        pages[f"{locale}/external-transmission.html"] = render_external_transmission(
            settings, locale)
    return settings.policy_version, settings.policy_hash, pages
