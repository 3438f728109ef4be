"""Server-side tag gating: third-party tags reach the HTML only when their consent is granted.

Google tags use Consent Mode v2 in *basic* mode: nothing of Google's is in the page until the
visitor granted the tag's category (and service); then ``gcm.js`` sets ``default`` (all denied
but ``security_storage``) and the ``update`` matching the decision before gtag/GTM loads.
"""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from consent_mw.consent.categories import Tag
from consent_mw.consent.decision import gcm_default, gcm_signals
from consent_mw.settings import Settings
from consent_mw.state import ConsentState

GOOGLE_KINDS = ("google_analytics", "gtm")


def tag_allowed(tag: Tag, state: ConsentState) -> bool:
    if not state.decided or not state.granted(tag.category):
        return False
    return tag.service is None or state.service_granted(tag.category, tag.service)


def allowed_tags(settings: Settings, state: ConsentState) -> list[Tag]:
    return [tag for tag in settings.tags if tag_allowed(tag, state)]


def _attr_json(value: dict[str, str]) -> str:
    return escape(json.dumps(value, separators=(",", ":")), quote=True)


def render_tags(settings: Settings, state: ConsentState) -> str:
    """The script elements for the tags this state allows ("" when none)."""
    tags = allowed_tags(settings, state)
    if not tags:
        return ""
    parts: list[str] = []
    ga = [t.measurement_id for t in tags if t.kind == "google_analytics" and t.measurement_id]
    gtm = [t.measurement_id for t in tags if t.kind == "gtm" and t.measurement_id]
    if ga or gtm:
        parts.append(
            f'<script src="{escape(settings.prefix, quote=True)}/static/gcm.js" '
            f'data-gcm-default="{_attr_json(gcm_default())}" '
            f'data-gcm="{_attr_json(gcm_signals(state, settings))}" '
            f'data-ga="{escape(",".join(ga), quote=True)}" '
            f'data-gtm="{escape(",".join(gtm), quote=True)}"></script>'
        )
        for mid in ga:
            parts.append('<script async src="https://www.googletagmanager.com/gtag/js?id='
                         f'{escape(quote(mid, safe=""), quote=True)}"></script>')
        for mid in gtm:
            parts.append('<script async src="https://www.googletagmanager.com/gtm.js?id='
                         f'{escape(quote(mid, safe=""), quote=True)}"></script>')
    for tag in tags:
        if tag.kind == "script" and tag.src:
            parts.append(f'<script async src="{escape(tag.src, quote=True)}"></script>')
    return "".join(parts)
