"""Pages the middleware serves itself: preferences and the external-transmission notice.

Both are generated from ``settings.categories`` and ``settings.tags``, so what the visitor
reads cannot drift from what the middleware does.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from consent_mw.consent.categories import Category
from consent_mw.consent.i18n import t, text
from consent_mw.settings import Settings
from consent_mw.state import ConsentState


def document(settings: Settings, locale: str, title: str, body: str) -> str:
    p = escape(settings.prefix, quote=True)
    return (
        f'<!DOCTYPE html><html lang="{escape(locale, quote=True)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="{p}/static/banner.css"></head>'
        f'<body class="cmw-page"><main class="cmw-main">{body}</main></body></html>'
    )


def _lang_switch(settings: Settings, locale: str, path: str, query: str = "") -> str:
    links = []
    for loc in settings.locales:
        if loc != locale:
            sep = "&" if query else ""
            links.append(f'<a class="cmw-link" hreflang="{loc}" lang="{loc}" '
                         f'href="{escape(path, quote=True)}?{escape(query + sep, quote=True)}'
                         f'lang={loc}">{"日本語" if loc == "ja" else "English"}</a>')
    return f'<p class="cmw-langs">{" ".join(links)}</p>' if links else ""


def _category_block(settings: Settings, category: Category, state: ConsentState,
                    locale: str) -> str:
    d = settings.default_locale
    name = escape(category.name, quote=True)
    label = escape(text(category.label, locale, d))
    cid = f"cmw-cat-{name}"
    if category.required:
        control = (f'<input type="checkbox" id="{cid}" checked disabled '
                   f'aria-describedby="{cid}-desc"> <label for="{cid}">{label}</label> '
                   f'<span class="cmw-note">({escape(t(locale, "always_on"))})</span>')
    else:
        checked = " checked" if state.decided and state.granted(category.name) else ""
        control = (f'<input type="checkbox" id="{cid}" name="{name}" value="on"{checked} '
                   f'aria-describedby="{cid}-desc"> <label for="{cid}">{label}</label>')
    services = ""
    if category.services:
        items = []
        for s in category.services:
            sid = f"cmw-svc-{escape(s.name, quote=True)}"
            if category.required:
                box = f'<input type="checkbox" id="{sid}" checked disabled>'
            else:
                on = " checked" if state.decided and state.services.get(s.name) else ""
                box = (f'<input type="checkbox" id="{sid}" name="service.'
                       f'{escape(s.name, quote=True)}" value="on"{on}>')
            items.append(f'<li>{box} <label for="{sid}">'
                         f'{escape(text(s.label, locale, d))}</label></li>')
        services = (f'<fieldset class="cmw-services"><legend>{escape(t(locale, "services"))}'
                    f'</legend><ul>{"".join(items)}</ul></fieldset>')
    return (
        f'<section class="cmw-category" aria-labelledby="{cid}-h">'
        f'<h2 id="{cid}-h">{label}</h2><p class="cmw-toggle">{control}</p>'
        f'<dl id="{cid}-desc">'
        f'<dt>{escape(t(locale, "covers"))}</dt><dd>{escape(text(category.covers, locale, d))}</dd>'
        f'<dt>{escape(t(locale, "purpose"))}</dt>'
        f'<dd>{escape(text(category.purpose, locale, d))}</dd>'
        f'<dt>{escape(t(locale, "retention"))}</dt>'
        f'<dd>{escape(text(category.retention, locale, d))}</dd></dl>{services}</section>'
    )


def render_preferences(settings: Settings, state: ConsentState, locale: str, *,
                       return_to: str, saved: bool = False,
                       self_service: bool = False) -> str:
    """One toggle per category and service; a plain form POST that works without JS."""
    p = escape(settings.prefix, quote=True)
    here = f"{settings.prefix}/preferences?return={quote(return_to)}&saved=1&lang={locale}"
    status = t(locale, "status_decided" if state.decided else "status_undecided")
    notices = []
    if saved:
        notices.append(f'<p class="cmw-status" role="status">{escape(t(locale, "saved"))}</p>')
    notices.append(f'<p class="cmw-note">{escape(status)}</p>')
    if state.gpc and not state.gpc_conflict:
        notices.append(f'<p class="cmw-note cmw-gpc">{escape(t(locale, "gpc_notice"))}</p>')
    blocks = "".join(_category_block(settings, c, state, locale) for c in settings.categories)
    rights = ""
    if self_service:
        rights = (
            f'<section class="cmw-rights" aria-labelledby="cmw-rights-h">'
            f'<h2 id="cmw-rights-h">{escape(t(locale, "my_data"))}</h2><p>'
            f'<a class="cmw-button" href="{p}/my-data">{escape(t(locale, "download"))}</a> '
            f'<a class="cmw-button" href="{p}/my-data/delete">{escape(t(locale, "delete"))}</a>'
            f"</p></section>"
        )
    body = (
        f'<h1 id="cmw-prefs-title">{escape(t(locale, "prefs_title"))}</h1>'
        f"{_lang_switch(settings, locale, settings.prefix + '/preferences')}"
        # "Nothing is pre-selected" is true only before a choice: after one, the ticks shown
        # are the visitor's own.
        f'<p>{escape(t(locale, "prefs_intro_decided" if state.decided else "prefs_intro"))}'
        f'</p>{"".join(notices)}'
        f'<form class="cmw-prefs" method="post" action="{p}" '
        f'aria-labelledby="cmw-prefs-title">'
        f'<input type="hidden" name="form" value="preferences">'
        f'<input type="hidden" name="locale" value="{escape(locale, quote=True)}">'
        f'<input type="hidden" name="return" value="{escape(here, quote=True)}">'
        f"{blocks}"
        f'<p class="cmw-actions">'
        f'<button type="submit" class="cmw-button" name="action" value="save">'
        f'{escape(t(locale, "save"))}</button> '
        f'<button type="submit" class="cmw-button" name="action" value="reject_all">'
        f'{escape(t(locale, "withdraw"))}</button></p></form>'
        f"{rights}"
        f'<p><a class="cmw-link" href="{p}/external-transmission?lang={locale}">'
        f'{escape(t(locale, "external_link"))}</a> · '
        f'<a class="cmw-link" href="{escape(return_to, quote=True)}">{escape(t(locale, "back"))}'
        f"</a></p>"
    )
    return document(settings, locale, t(locale, "prefs_title"), body)


def render_external_transmission(settings: Settings, locale: str) -> str:
    """Per tag: recipient, items sent, purpose, opt-out (電気通信事業法 第27条の12)."""
    d = settings.default_locale
    labels = {c.name: text(c.label, locale, d) for c in settings.categories}
    # A heading a person reads: the service's own label ("Google アナリティクス"), not the
    # tag's config name.
    services = {(c.name, s.name): text(s.label, locale, d)
                for c in settings.categories for s in c.services}
    rows = []
    for tag in settings.tags:
        heading = services.get((tag.category, tag.service or ""), tag.name)
        opt_out = escape(text(tag.opt_out, locale, d)) if tag.opt_out else ""
        if tag.opt_out_url:
            url = escape(tag.opt_out_url, quote=True)
            opt_out += f' <a class="cmw-link" href="{url}" rel="noopener">{url}</a>'
        rows.append(
            f'<section class="cmw-tag"><h2>{escape(heading)}</h2><dl>'
            f'<dt>{escape(t(locale, "recipient"))}</dt>'
            f"<dd>{escape(text(tag.recipient, locale, d))}</dd>"
            f'<dt>{escape(t(locale, "items"))}</dt><dd>{escape(text(tag.items, locale, d))}</dd>'
            f'<dt>{escape(t(locale, "purpose"))}</dt>'
            f"<dd>{escape(text(tag.purpose, locale, d))}</dd>"
            f'<dt>{escape(t(locale, "category"))}</dt>'
            f"<dd>{escape(labels.get(tag.category, tag.category))}</dd>"
            f'<dt>{escape(t(locale, "opt_out"))}</dt><dd>{opt_out}'
            f' <a class="cmw-link" href="{escape(settings.prefix, quote=True)}/preferences">'
            f'{escape(t(locale, "prefs_link"))}</a></dd></dl></section>'
        )
    listing = "".join(rows) or f'<p>{escape(t(locale, "ext_none"))}</p>'
    body = (
        f'<h1>{escape(t(locale, "ext_title"))}</h1>'
        f"{_lang_switch(settings, locale, settings.prefix + '/external-transmission')}"
        f'<p>{escape(t(locale, "ext_intro"))}</p>{listing}'
    )
    return document(settings, locale, t(locale, "ext_title"), body)
