"""Visitor self-service: download or delete my data (Art. 5 and 6), for this browser's own id.

The middleware routes ``{prefix}/my-data`` here. ``handle`` returns False when self-service is
not configured (no ``rights``), and the middleware then answers 404.

- ``GET {prefix}/my-data``: the export, as a file.
- ``GET {prefix}/my-data/delete``: what deleting does, and the button.
- ``POST {prefix}/my-data/delete`` with ``confirm=yes``: the purge is queued (the person is
  suppressed at once), this browser is reset (consent back to "reject all" under a new consent
  id, the withdrawal recorded, id cookies expired) and the page gives a signed link to
  ``GET {prefix}/my-data/status?ref=...``, where the receipt follows.

Whose data: only ``visitor_id``, the id the signed consent cookie binds to the ``cmw_vid``
this browser sent (``consent_mw.consent.reading``); never one minted for this request. A cookie that
merely names an id opens nothing.

Limits (``consent_mw.ratelimit``): a download or deletion takes a token from the visitor id's
bucket (``limit`` per ``window``) and from the client address's (``address_limit``: larger, as
a mobile carrier's NAT puts many visitors behind one address); an address cannot be minted
for free, unlike a visitor id. Status pages take from a separate, larger address bucket.
POSTs pass the consent POST's same-origin rule (``consent_mw.http.same_origin``).

Pages are in the visitor's language (ja or en), styled like the preferences page, and never
show raw JSON; a client that asks for JSON (``Accept: application/json``) gets JSON.

``rights`` does the work (blocking; run in a worker thread): :class:`HttpRights` against a
collector, or ``collector.privacy.operations.InProcessRights`` in the collector's own process.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

import anyio.to_thread
import httpx
from itsdangerous import BadData, URLSafeTimedSerializer

from consent_mw.clientip import client_ip
from consent_mw.consent.i18n import t
from consent_mw.consent.pages import document
from consent_mw.errors import ConsentMWError
from consent_mw.http import MAX_JSON_BYTES, BadRequest, parse_json, read_body, same_origin
from consent_mw.ratelimit import RateLimit, address_key, check_all
from consent_mw.settings import Settings
from consent_mw.state import RequestContext

Scope = dict[str, Any]
Headers = Sequence[tuple[bytes, bytes]]
#: Cookies that reset this browser after a deletion (the middleware builds them).
Forget = Callable[[], list[tuple[bytes, bytes]]]
STATUS_LINK_AGE = 90 * 86400  # how long a deletion's status link works


class Rights(Protocol):
    def export(self, visitor_id: str) -> dict[str, Any]: ...

    def request_purge(self, visitor_id: str) -> str:
        """Queue a purge of the visitor; returns its request id."""
        ...

    def purge_status(self, request_id: str) -> dict[str, Any] | None: ...


class RightsError(ConsentMWError):
    """The collector could not serve the request."""


class RightsBusy(RightsError):
    """The collector's purge queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpRights:
    """Rights served by a collector over HTTP (the admin token authorises)."""

    def __init__(self, collector_url: str, admin_token: str, *, timeout: float = 30.0) -> None:
        self.url = collector_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        self.timeout = httpx.Timeout(10.0, read=timeout)

    def _call(self, method: str, path: str, *, ok: Sequence[int] = (200,),
              **kw: Any) -> dict[str, Any] | None:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                resp = client.request(method, self.url + path, headers=self.headers, **kw)
        except httpx.HTTPError as exc:
            raise RightsError(f"collector unreachable: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code == 503 and resp.headers.get("retry-after", "").isdigit():
            raise RightsBusy("the collector is busy", int(resp.headers["retry-after"]))
        if resp.status_code not in ok:
            raise RightsError(f"collector answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RightsError("unexpected answer from the collector")
        return data

    def export(self, visitor_id: str) -> dict[str, Any]:
        data = self._call("GET", "/v1/privacy/export", params={
            "visitor_id": visitor_id, "requested_by": "visitor",
            "reason": "self-service download"})
        if data is None:
            raise RightsError("the collector has no privacy API")
        return data

    def request_purge(self, visitor_id: str) -> str:
        data = self._call("POST", "/v1/privacy/purges", ok=(202,), json={
            "visitor_id": visitor_id, "requested_by": "visitor",
            "reason": "self-service deletion"})
        if data is None or not isinstance(data.get("request_id"), str):
            raise RightsError("the collector did not queue the purge")
        return str(data["request_id"])

    def purge_status(self, request_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/privacy/purges/{quote(request_id, safe='')}")


class SelfService:
    """``{prefix}/my-data`` for the visitor's own id (see the module docstring)."""

    def __init__(self, settings: Settings, *, rights: Rights | None = None, limit: int = 5,
                 address_limit: int = 30, window: float = 3600.0) -> None:
        self.settings = settings
        self.rights = rights
        self.per_visitor = RateLimit(limit, window)
        self.per_address = RateLimit(address_limit, window)
        self.status_per_address = RateLimit(120, window)
        keys = [k.value for k in reversed(settings.secret_keys)]
        self._refs = URLSafeTimedSerializer(keys, salt=settings.cookie_salt + ".my-data")

    @property
    def enabled(self) -> bool:
        return self.rights is not None

    async def handle(self, ctx: RequestContext, scope: Scope, receive: Any, send: Any, *,
                     visitor_id: str | None, forget: Forget) -> bool:
        """Serve the request and return True, or return False to let the caller 404."""
        rights = self.rights
        if rights is None:
            return False
        sub = str(scope.get("path", ""))[len(self.settings.prefix):]
        method = scope.get("method", "GET")
        routes = {"/my-data": ("GET", "HEAD"), "/my-data/delete": ("GET", "HEAD", "POST"),
                  "/my-data/status": ("GET", "HEAD")}
        if sub not in routes:
            return False
        page = _Page(self.settings, ctx, scope, send)
        if method not in routes[sub]:
            await page.plain(405, "method not allowed",
                             [(b"allow", ", ".join(routes[sub]).encode())])
            return True
        address = address_key(client_ip(scope, self.settings.trusted_proxies,
                                        self.settings.forwarded_header))
        if sub == "/my-data/status":
            wait = self.status_per_address.check(address)
            if wait is not None:
                await page.error(429, "rate_limited", "md_rate_limited",
                                 headers=[(b"retry-after", str(int(wait) + 1).encode())])
                return True
            await self._status(rights, page, scope)
            return True
        if method == "POST" and not same_origin(scope, self.settings.allowed_origins):
            await page.error(403, "cross_site", "md_cross_site")
            return True
        visitor = visitor_id
        if not visitor:
            await page.error(403, "no_visitor_id", "md_no_visitor", title="md_nothing_title")
            return True
        if sub == "/my-data/delete" and method != "POST":
            await page.confirm()
            return True
        wait = check_all((self.per_address, address), (self.per_visitor, visitor))
        if wait is not None:
            await page.error(429, "rate_limited", "md_rate_limited",
                             headers=[(b"retry-after", str(int(wait) + 1).encode())])
            return True
        if sub == "/my-data":
            await self._export(rights, page, visitor)
        else:
            await self._delete(rights, page, visitor, receive, forget)
        return True

    async def _export(self, rights: Rights, page: _Page, visitor: str) -> None:
        try:
            data = await anyio.to_thread.run_sync(rights.export, visitor)
        except Exception:
            await page.error(503, "unavailable", "md_unavailable")
            return
        body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        await page.send(200, body, "application/json", [
            (b"content-disposition", b'attachment; filename="my-data.json"')])

    async def _delete(self, rights: Rights, page: _Page, visitor: str, receive: Any,
                      forget: Forget) -> None:
        try:
            body = await read_body(receive, self.settings.max_body_bytes)
        except BadRequest:
            body = b""  # an oversized or broken body confirms nothing
        confirm = ""
        if page.ctype == "application/json":
            try:
                parsed = parse_json(body or b"{}", MAX_JSON_BYTES)
            except BadRequest:
                parsed = None
            confirm = str(parsed.get("confirm", "")) if isinstance(parsed, dict) else ""
        else:
            confirm = (parse_qs(body.decode("latin-1")).get("confirm") or [""])[0]
        if confirm.strip().lower() not in ("yes", "true", "1"):
            await page.error(400, "not_confirmed", "md_not_confirmed")
            return
        try:
            request_id = await anyio.to_thread.run_sync(rights.request_purge, visitor)
        except RightsBusy as exc:
            await page.error(503, "busy", "md_busy",
                             headers=[(b"retry-after", str(exc.retry_after).encode())])
            return
        except Exception:
            await page.error(503, "unavailable", "md_unavailable")
            return
        # Deleting stops recording: this browser is reset whatever the purge's progress.
        cookies = forget()
        ref = self._refs.dumps(request_id)
        status_url = f"{self.settings.prefix}/my-data/status?ref={quote(ref)}"
        await page.requested(request_id, status_url, cookies)

    async def _status(self, rights: Rights, page: _Page, scope: Scope) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ref = (query.get("ref") or [""])[0]
        try:
            request_id = self._refs.loads(ref, max_age=STATUS_LINK_AGE)
        except BadData:
            request_id = None
        if not isinstance(request_id, str):
            await page.error(404, "unknown_reference", "md_unknown")
            return
        try:
            status = await anyio.to_thread.run_sync(rights.purge_status, request_id)
        except Exception:
            await page.error(503, "unavailable", "md_unavailable")
            return
        if status is None:
            await page.error(404, "unknown_reference", "md_unknown")
            return
        await page.status(request_id, status)


class _Page:
    """The responses of one self-service request: a page in the visitor's language, or JSON
    for a client that asks for it."""

    def __init__(self, settings: Settings, ctx: RequestContext, scope: Scope, send: Any) -> None:
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
        await self.send_({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", ctype.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
            # same-origin, not no-referrer: under no-referrer browsers send "Origin: null"
            # with the page's own form POST, which the same-origin rule refuses. The status
            # link's signed reference still never leaves the site.
            (b"referrer-policy", b"same-origin"), *headers]})
        await self.send_({"type": "http.response.body", "body": b"" if self.head else body})

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
            body = json.dumps({"error": code, "message": t("en", key)}).encode()
            await self.send(status, body, "application/json", headers)
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
