"""The answers of one self-service request: a page in the visitor's language, styled like
the preferences page, or JSON for a client that asks for it (``Accept: application/json``).
Pages never show raw JSON; errors in JSON have the middleware's one error shape
(``consent_mw.http.respond_error``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from consent_mw.consent.i18n import t
from consent_mw.consent.pages import document
from consent_mw.http import NO_FRAMING, respond, respond_error
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Send

Headers = Sequence[tuple[bytes, bytes]]

#: On every self-service answer. ``same-origin``, not ``no-referrer``: under no-referrer
#: browsers send "Origin: null" with the page's own form POST, which the same-origin rule
#: refuses. The status link's signed reference still never leaves the site.
SECURITY_HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"), *NO_FRAMING)


class MyDataPage:
    """The answers of one self-service request (see the module docstring)."""

    def __init__(self, settings: Settings, ctx: RequestContext, scope: Mapping[str, Any],
                 send: Send) -> None:
        self.settings = settings
        self.locale = ctx.locale
        self.send_ = send
        self.head = scope.get("method") == "HEAD"
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        self.ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        self.json = ("application/json" in headers.get("accept", "")
                     or self.ctype == "application/json")

    async def send(self, status: int, body: bytes, ctype: str, headers: Headers = ()) -> None:
        await respond(self.send_, status, body, ctype.encode("latin-1"),
                      [*SECURITY_HEADERS, *headers], head=self.head)

    async def plain(self, status: int, text: str, headers: Headers = ()) -> None:
        await self.send(status, text.encode(), "text/plain; charset=utf-8", headers)

    async def html(self, status: int, title_key: str, body: str,
                   headers: Headers = ()) -> None:
        loc = self.locale
        p = self.settings.prefix
        footer = (f'<p><a class="cmw-link" href="/">{_e(t(loc, "back_to_site"))}</a> · '
                  f'<a class="cmw-link" href="{_e(p)}/preferences?lang={loc}">'
                  f'{_e(t(loc, "prefs_link"))}</a></p>')
        page = document(self.settings, loc, t(loc, title_key),
                        f"<h1>{_e(t(loc, title_key))}</h1>{body}{footer}")
        await self.send(status, page.encode("utf-8"), "text/html; charset=utf-8", headers)

    async def error(self, status: int, code: str, key: str, *, title: str | None = None,
                    headers: Headers = ()) -> None:
        if self.json:
            await respond_error(self.send_, status, code, t("en", key),
                                [*SECURITY_HEADERS, *headers], head=self.head)
            return
        await self.html(status, title or "my_data",
                        f'<p class="cmw-note" role="alert">{_e(t(self.locale, key))}</p>',
                        headers)

    async def confirm(self) -> None:
        loc = self.locale
        action = _e(self.settings.prefix + "/my-data/delete")
        await self.html(200, "md_delete_title", (
            f'<p>{_e(t(loc, "md_delete_text"))}</p>'
            f'<form method="post" action="{action}"><input type="hidden" name="confirm" '
            f'value="yes"><p class="cmw-actions"><button class="cmw-button" type="submit">'
            f'{_e(t(loc, "md_delete_button"))}</button></p></form>'))

    async def requested(self, request_id: str, status_url: str, cookies: Headers) -> None:
        loc = self.locale
        if self.json:
            body = json.dumps({"request_id": request_id, "status": "queued",
                               "status_url": status_url}).encode()
            await self.send(202, body, "application/json", cookies)
            return
        await self.html(202, "md_requested_title", (
            f'<p class="cmw-status" role="status">{_e(t(loc, "md_requested_text"))}</p>'
            f'<dl><dt>{_e(t(loc, "md_reference"))}</dt><dd><code>{_e(request_id)}</code>'
            f'</dd></dl><p><a class="cmw-button" href="{_e(status_url)}">'
            f'{_e(t(loc, "md_check_status"))}</a></p>'
            f'<p class="cmw-note">{_e(t(loc, "md_keep_link"))}</p>'), cookies)

    async def status(self, request_id: str, status: dict[str, Any]) -> None:
        loc = self.locale
        state = str(status.get("status", ""))
        receipt = status.get("receipt") if isinstance(status.get("receipt"), dict) else None
        if self.json:
            await self.send(200, json.dumps(
                {"request_id": request_id, "status": state,
                 "receipt": receipt}, ensure_ascii=False).encode(), "application/json")
            return
        rows = [(t(loc, "md_reference"), request_id)]
        if state == "completed" and receipt:
            message = f'<p class="cmw-status" role="status">{_e(t(loc, "md_status_done"))}</p>'
        elif state == "incomplete":
            message = f'<p class="cmw-note" role="alert">{_e(t(loc, "md_status_incomplete"))}</p>'
        else:
            message = f'<p class="cmw-note" role="status">{_e(t(loc, "md_status_pending"))}</p>'
        if receipt:
            deleted = receipt.get("rows_deleted") or {}
            rows += [(t(loc, "md_deleted_events"), _count(deleted.get("events"))),
                     (t(loc, "md_anonymised_records"), _count(deleted.get("consent_records"))),
                     (t(loc, "md_verified_at"), _when(receipt.get("verified_at"), loc)),
                     (t(loc, "md_receipt"), str(receipt.get("receipt_id", "")))]
        listing = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in rows)
        await self.html(200, "md_status_title", (
            f'{message}<dl>{listing}</dl><section class="cmw-rights"><h2>{_e(t(loc, "md_kept"))}'
            f'</h2><p>{_e(t(loc, "md_kept_text"))}</p></section>'))


def _e(value: str) -> str:
    return html.escape(value, quote=True)


def _count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else "0"


def _when(value: Any, locale: str) -> str:
    """An ISO 8601 UTC time as people read it: ``2026年12月5日 12:00 (UTC)``."""
    text = str(value or "")
    if len(text) < 16 or text[4] != "-" or text[10] != "T":
        return text
    year, month, day = text[:4], text[5:7].lstrip("0"), text[8:10].lstrip("0")
    clock = text[11:16]
    if locale == "ja":
        return f"{year}年{month}月{day}日 {clock} (UTC)"
    return f"{year}-{text[5:7]}-{text[8:10]} {clock} UTC"
