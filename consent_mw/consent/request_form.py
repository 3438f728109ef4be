"""The site's privacy-request pages: the form, and the status of a request behind its code.

- ``GET {prefix}/requests``: the form (kind, e-mail, optional member id, free text, and, for a
  browser holding a bound visitor id, a box to include this browser's records).
- ``POST {prefix}/requests``: the request goes to the collector (``Intake``), which mails an
  acknowledgement and a one-time code; the page shows the reference number and asks for the
  code.
- ``GET|POST {prefix}/requests/status``: reference number and code → the request's state in
  words. ``action=send`` mails a new code instead.

Nothing here needs JavaScript. Pages are in the visitor's language and styled like the
preferences page (``MyDataPage``). POSTs pass the one same-origin rule. Each address gets
:data:`SUBMITS` requests and :data:`CHECKS` code checks an hour (an address cannot be minted
for free); the collector adds its own limits per e-mail address and per code.

Whose browser: only the visitor id the signed consent cookie binds (as for the my-data pages),
and only when the person ticks the box. A member id is looked up with the site's own
``account_email`` hook, which says what e-mail the site has for it; the collector keeps the
request unverified when that is not the e-mail given.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread

from consent_mw.clientip import client_ip
from consent_mw.consent.i18n import t
from consent_mw.consent.my_data_page import MyDataPage
from consent_mw.consent.rights import Intake, RightsBusy, RightsRefused
from consent_mw.http import BadRequest, read_body, same_origin
from consent_mw.ratelimit import RateLimit, address_key
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Receive, Scope, Send

SUBMITS = 10
CHECKS = 60
KINDS = ("disclosure", "deletion", "suspension", "withdrawal")
#: The details' limit (the collector's too), and the body's: 2,000 characters of Japanese are
#: ~18 KB once a browser has URL-encoded them (9 bytes each).
MAX_TEXT, MAX_FORM = 2000, 64 * 1024
#: The site's member id → the e-mail its records have (None: no such member). Blocking.
AccountEmail = Callable[[str], "str | None"]
#: Refusal code → the sentence the page says; any other reads as "could not accept".
REFUSALS = {"bad_email": "rq_bad_email", "bad_kind": "rq_bad_kind",
            "bad_account_id": "rq_bad_account_id", "text_too_long": "rq_text_too_long",
            "too_many_requests": "rq_too_many_requests", "busy": "rq_busy",
            "unknown_request": "rq_unknown", "closed": "rq_closed",
            "too_many_codes": "rq_too_many_codes", "bad_visitor_ids": "rq_refused",
            "not_configured": "md_unavailable"}
#: Code verdict → the sentence (``ok`` shows the request instead).
VERDICTS = {"wrong": "rq_wrong", "malformed": "rq_code_format", "expired": "rq_expired",
            "no_code": "rq_no_code", "too_many": "rq_too_many"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _on(view: dict[str, Any], moment: str, loc: str) -> str:
    """A date of the request in the site's time zone, as the collector gives it (else UTC)."""
    given = view.get(f"{moment}_on")
    return given if isinstance(given, str) and given else _day(view.get(f"{moment}_at"), loc)


def _day(ms: object, loc: str) -> str:
    if not isinstance(ms, int | float) or not ms:
        return "–"
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return f"{d.year}年{d.month}月{d.day}日" if loc == "ja" else d.strftime("%Y-%m-%d")


class RequestForms:
    """``{prefix}/requests`` and ``{prefix}/requests/status`` (see the module docstring)."""

    def __init__(self, settings: Settings, intake: Intake, *,
                 account_email: AccountEmail | None = None, window: float = 3600.0) -> None:
        self.settings = settings
        self.intake = intake
        self.account_email = account_email
        self.submits = RateLimit(SUBMITS, window)
        self.checks = RateLimit(CHECKS, window)

    async def handle(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send,
                     *, visitor_id: str | None) -> bool:
        sub = str(scope.get("path", ""))[len(self.settings.prefix):]
        if sub not in ("/requests", "/requests/status"):
            return False
        page = MyDataPage(self.settings, ctx, scope, send)
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD", "POST"):
            await page.plain(405, "method not allowed", [(b"allow", b"GET, HEAD, POST")])
            return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        page = self._in_language(ctx, (query.get("lang") or [""])[0], scope, send) or page
        if method != "POST":
            if sub == "/requests":
                await self._form(page, ctx, visitor_id)
            else:
                await self._status_form(page, ctx, (query.get("ref") or [""])[0])
            return True
        if not same_origin(scope, self.settings.allowed_origins):
            await page.error(403, "cross_site", "md_cross_site", title="rq_title")
            return True
        address = address_key(client_ip(scope, self.settings.trusted_proxies,
                                        self.settings.forwarded_header))
        limit = self.submits if sub == "/requests" else self.checks
        wait = limit.check(address)
        if wait is not None:
            await page.error(429, "rate_limited", "md_rate_limited", title="rq_title",
                             headers=[(b"retry-after", str(int(wait) + 1).encode())])
            return True
        try:
            raw = await read_body(receive, MAX_FORM)
        except BadRequest:
            await page.error(413, "too_large", "rq_text_too_long", title="rq_title")
            return True
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace"),
                                               keep_blank_values=True).items()}
        page = self._in_language(ctx, form.get("lang", ""), scope, send) or page
        if sub == "/requests":
            await self._submit(page, ctx, form, visitor_id)
        else:
            await self._status(page, ctx, form)
        return True

    def _in_language(self, ctx: RequestContext, lang: str, scope: Scope,
                     send: Send) -> MyDataPage | None:
        """The page in ``lang`` when the visitor chose it (the language link, the form's own
        language), else None: the language the middleware chose stands."""
        if lang not in self.settings.locales or lang == ctx.locale:
            return None
        ctx.locale = lang
        return MyDataPage(self.settings, ctx, scope, send)

    # -- the form -----------------------------------------------------------------------

    async def _form(self, page: MyDataPage, ctx: RequestContext, visitor_id: str | None,
                    *, problem: str = "", form: dict[str, str] | None = None,
                    status: int = 200) -> None:
        loc, p, f = ctx.locale, self.settings.prefix, form or {}
        kinds = "".join(
            f'<label class="cmw-choice"><input type="radio" name="kind" value="{k}" required'
            f'{" checked" if f.get("kind") == k else ""}> {_e(t(loc, "rq_kind_" + k))}'
            f'<small>{_e(t(loc, "rq_kind_" + k + "_help"))}</small></label>' for k in KINDS)
        attach = ""
        if visitor_id:
            attach = (f'<p><label class="cmw-choice"><input type="checkbox" name="attach" '
                      f'value="yes"> {_e(t(loc, "rq_attach"))}<small>'
                      f'{_e(t(loc, "rq_attach_help"))}</small></label></p>')
        alert = f'<p class="cmw-note" role="alert">{_e(t(loc, problem))}</p>' if problem else ""
        await page.html(status, "rq_title", (
            f'<p>{_e(t(loc, "rq_intro"))}</p>{alert}'
            f'<form class="cmw-form" method="post" action="{_e(p)}/requests">'
            f'<input type="hidden" name="lang" value="{_e(loc)}">'
            f'<fieldset><legend>{_e(t(loc, "rq_kind"))}</legend>{kinds}</fieldset>'
            f'<p><label class="cmw-label" for="cmw-rq-email">{_e(t(loc, "rq_email"))}</label>'
            f'<input type="email" id="cmw-rq-email" name="email" required maxlength="254" '
            f'autocomplete="email" value="{_e(f.get("email", ""))}">'
            f'<span class="cmw-help">{_e(t(loc, "rq_email_help"))}</span></p>'
            f'<p><label class="cmw-label" for="cmw-rq-account">{_e(t(loc, "rq_account"))}'
            f'</label><input type="text" id="cmw-rq-account" name="account_id" maxlength="128"'
            f' autocomplete="username" value="{_e(f.get("account_id", ""))}">'
            f'<span class="cmw-help">{_e(t(loc, "rq_account_help"))}</span></p>'
            f'<p><label class="cmw-label" for="cmw-rq-text">{_e(t(loc, "rq_text"))}</label>'
            f'<textarea id="cmw-rq-text" name="text" rows="5" maxlength="{MAX_TEXT}">'
            f'{_e(f.get("text", ""))}</textarea></p>{attach}'
            f'<p class="cmw-actions"><button class="cmw-button" type="submit">'
            f'{_e(t(loc, "rq_submit"))}</button></p></form>'
            f'<p><a class="cmw-link" href="{_e(p)}/requests/status?lang={_e(loc)}">'
            f'{_e(t(loc, "rq_have_ref"))}</a></p>'))

    async def _submit(self, page: MyDataPage, ctx: RequestContext, form: dict[str, str],
                      visitor_id: str | None) -> None:
        loc = ctx.locale
        account_id = form.get("account_id", "").strip()
        fields: dict[str, Any] = {
            "kind": form.get("kind", ""), "email": form.get("email", "").strip(),
            # Mail goes out in Japanese or English: a page in another language gets English.
            "lang": loc if loc in ("ja", "en") else "en", "text": form.get("text", ""),
            "account_id": account_id,
            "visitor_ids": [visitor_id] if visitor_id and form.get("attach") == "yes" else []}
        if len(fields["text"]) > MAX_TEXT:
            # Here, with the form kept: far past it, the collector's body limit would answer.
            await self._form(page, ctx, visitor_id, problem="rq_text_too_long", form=form,
                             status=400)
            return
        try:
            if account_id and self.account_email is not None:
                fields["account_email"] = await anyio.to_thread.run_sync(
                    self.account_email, account_id)
            ref = await anyio.to_thread.run_sync(self.intake.submit_request, fields)
        except RightsRefused as exc:
            key = REFUSALS.get(exc.code, "rq_refused")
            await self._form(page, ctx, visitor_id, problem=key, form=form,
                             status=429 if exc.code == "too_many_requests" else 400)
            return
        except RightsBusy:
            await page.error(503, "busy", "rq_busy", title="rq_title")
            return
        except Exception:  # the collector or the site's hook failed: say so, never a 500
            await page.error(503, "unavailable", "md_unavailable", title="rq_title")
            return
        await page.html(201, "rq_received_title", (
            f'<dl class="cmw-facts"><dt>{_e(t(loc, "rq_reference"))}</dt>'
            f'<dd class="cmw-ref">{_e(ref)}</dd></dl>'
            f'<p class="cmw-note">{_e(t(loc, "rq_keep_ref"))}</p>'
            f'<p class="cmw-status" role="status">{_e(t(loc, "rq_code_sent"))}</p>'
            + self._code_form(loc, ref)))

    # -- the status ---------------------------------------------------------------------

    def _code_form(self, loc: str, ref: str, *, ask_ref: bool = False) -> str:
        p = self.settings.prefix
        ref_field = (f'<p><label class="cmw-label" for="cmw-rq-ref">'
                     f'{_e(t(loc, "rq_reference"))}</label><input type="text" id="cmw-rq-ref" '
                     f'name="ref" required maxlength="11" autocapitalize="characters" '
                     f'placeholder="R-XXXX-XXXX" value="{_e(ref)}"></p>' if ask_ref else
                     f'<input type="hidden" name="ref" value="{_e(ref)}">')
        return (f'<form class="cmw-form" method="post" action="{_e(p)}/requests/status">'
                f'<input type="hidden" name="lang" value="{_e(loc)}">{ref_field}'
                f'<p><label class="cmw-label" for="cmw-rq-code">{_e(t(loc, "rq_code"))}</label>'
                f'<input type="text" id="cmw-rq-code" name="code" inputmode="numeric" '
                f'autocomplete="one-time-code" maxlength="6" pattern="[0-9]{{6}}"></p>'
                f'<p class="cmw-actions"><button class="cmw-button" type="submit" name="action" '
                f'value="check">{_e(t(loc, "rq_check"))}</button>'
                f'<button class="cmw-button cmw-secondary" type="submit" name="action" '
                f'value="send" formnovalidate>{_e(t(loc, "rq_resend"))}</button></p></form>')

    async def _status_form(self, page: MyDataPage, ctx: RequestContext, ref: str, *,
                           message: str = "", alert: bool = False, status: int = 200,
                           seconds: int = 0) -> None:
        loc = ctx.locale
        note = ""
        if message:
            role, cls = ("alert", "cmw-note") if alert else ("status", "cmw-status")
            note = (f'<p class="{cls}" role="{role}">'
                    f'{_e(t(loc, message).format(seconds=seconds))}</p>')
        await page.html(status, "rq_status_title", (
            f'<p>{_e(t(loc, "rq_status_intro"))}</p>{note}'
            + self._code_form(loc, ref.strip().upper()[:11], ask_ref=True)))

    async def _status(self, page: MyDataPage, ctx: RequestContext,
                      form: dict[str, str]) -> None:
        loc = ctx.locale
        ref = form.get("ref", "").strip().upper()[:11]
        try:
            if form.get("action") == "send":
                wait = await anyio.to_thread.run_sync(self.intake.send_request_code, ref)
                await self._status_form(page, ctx, ref,
                                        message="rq_wait_seconds" if wait else "rq_resent",
                                        alert=bool(wait), seconds=wait)
                return
            verdict, view = await anyio.to_thread.run_sync(
                self.intake.check_request_code, ref, form.get("code", ""), loc)
        except RightsRefused as exc:
            key = REFUSALS.get(exc.code, "rq_refused")
            await self._status_form(page, ctx, ref, message=key, alert=True,
                                    status=404 if exc.code == "unknown_request" else 400)
            return
        except Exception:
            await page.error(503, "unavailable", "md_unavailable", title="rq_status_title")
            return
        if verdict != "ok" or view is None:
            await self._status_form(page, ctx, ref,
                                    message=VERDICTS.get(verdict, "rq_refused"), alert=True,
                                    status=400)
            return
        await self._show(page, loc, view)

    async def _show(self, page: MyDataPage, loc: str, view: dict[str, Any]) -> None:
        rows = [("rq_reference", view.get("ref", "")), ("rq_kind", view.get("kind_label", "")),
                ("rq_status", view.get("status_label", "")),
                ("rq_received_at", _on(view, "received", loc))]
        if view.get("verified_at"):
            rows.append(("rq_verified_at", _on(view, "verified", loc)))
        if view.get("due_at") and view.get("status") in ("verified", "in_progress"):
            rows.append(("rq_due", _on(view, "due", loc)))
        if view.get("fee_label"):
            amount = t(loc, "rq_fee_amount").format(fee=f"{int(view.get('fee_yen') or 0):,}")
            rows.append(("rq_fee", f"{amount} · {view['fee_label']}"))
        if view.get("result_text"):
            rows.append(("rq_result", view["result_text"]))
        if view.get("ground_label"):
            rows.append(("rq_ground", view["ground_label"]))
        facts = "".join(f"<dt>{_e(t(loc, k))}</dt><dd>{_e(v)}</dd>" for k, v in rows)
        kept = ""
        if view.get("kind") == "deletion":
            kept = (f'<section class="cmw-rights"><h2>{_e(t(loc, "md_kept"))}</h2>'
                    f'<p>{_e(t(loc, "md_kept_text"))}</p></section>')
        verified = (f'<p class="cmw-status" role="status">{_e(t(loc, "rq_verified_now"))}</p>'
                    if view.get("status") == "verified" else "")
        await page.html(200, "rq_status_title",
                        f'{verified}<dl class="cmw-facts">{facts}</dl>{kept}')
