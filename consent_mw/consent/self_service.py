"""Visitor self-service: download or delete my data (Art. 5 and 6), for this browser's own id.

The middleware routes ``{prefix}/my-data`` here. ``handle`` returns False when self-service is
not configured (no ``rights``), and the middleware then answers 404.

- ``GET {prefix}/my-data``: the export, as a file.
- ``GET {prefix}/my-data/delete``: what deleting does, and the button.
- ``POST {prefix}/my-data/delete`` with ``confirm=yes``: the purge is queued (the person is
  suppressed at once), this browser is reset (consent back to "reject all" under a new consent
  id, the withdrawal recorded, id cookies expired) and the page gives a signed link to
  ``GET {prefix}/my-data/status?ref=...``, where the receipt follows.
- ``{prefix}/requests`` and ``{prefix}/requests/status``: the privacy-request form, for a
  person the cookie does not prove (``consent_mw.consent.request_form``), when ``intake`` is
  given.

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

``rights`` does the work (blocking; run in a worker thread): see ``consent_mw.consent.rights``.
The answers are written by ``consent_mw.consent.my_data_page``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, quote

import anyio.to_thread
from itsdangerous import BadData, URLSafeTimedSerializer

from consent_mw.clientip import client_ip
from consent_mw.consent.my_data_page import MyDataPage
from consent_mw.consent.request_form import AccountEmail, RequestForms
from consent_mw.consent.rights import Intake, Rights, RightsBusy
from consent_mw.http import (
    MAX_JSON_BYTES,
    BadRequest,
    header,
    parse_json,
    read_body,
    same_origin,
)
from consent_mw.ratelimit import RateLimit, address_key, check_all
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Receive, Scope, Send

#: Cookies that reset this browser after a deletion (the middleware builds them).
Forget = Callable[[], list[tuple[bytes, bytes]]]
STATUS_LINK_AGE = 90 * 86400  # how long a deletion's status link works


DOWNLOAD_HEADERS = ((b"content-disposition", b'attachment; filename="my-data.json"'),)

class SelfService:
    """``{prefix}/my-data`` for the visitor's own id (see the module docstring)."""

    def __init__(self, settings: Settings, *, rights: Rights | None = None, limit: int = 5,
                 address_limit: int = 30, window: float = 3600.0,
                 intake: Intake | None = None,
                 account_email: AccountEmail | None = None) -> None:
        self.settings = settings
        self.rights = rights
        #: The privacy-request form and status pages, when a collector takes requests.
        self.forms = (RequestForms(settings, intake, account_email=account_email)
                      if intake is not None else None)
        self.per_visitor = RateLimit(limit, window)
        self.per_address = RateLimit(address_limit, window)
        self.status_per_address = RateLimit(120, window)
        keys = [k.value for k in reversed(settings.secret_keys)]
        self._refs = URLSafeTimedSerializer(keys, salt=settings.cookie_salt + ".my-data")

    @property
    def enabled(self) -> bool:
        return self.rights is not None

    async def handle(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, *,
                     visitor_id: str | None, forget: Forget) -> bool:
        """Serve the request and return True, or return False to let the caller 404."""
        if self.forms is not None and await self.forms.handle(ctx, scope, receive, send,
                                                              visitor_id=visitor_id):
            return True
        rights = self.rights
        if rights is None:
            return False
        sub = str(scope.get("path", ""))[len(self.settings.prefix):]
        method = scope.get("method", "GET")
        routes = {"/my-data": ("GET", "HEAD"), "/my-data/delete": ("GET", "HEAD", "POST"),
                  "/my-data/status": ("GET", "HEAD")}
        if sub not in routes:
            return False
        page = MyDataPage(self.settings, ctx, scope, send)
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
        if (sub == "/my-data"
                and header(scope.get("headers") or (), b"sec-fetch-site") == "cross-site"):
            # A link on another site would spend this visitor's budget and write audit rows
            # in their name; the download itself only ever reaches their own browser.
            await page.error(403, "cross_site", "md_cross_site")
            return True
        visitor = visitor_id
        if not visitor:
            await page.error(403, "no_visitor_id", "md_no_visitor", title="md_nothing_title")
            return True
        if sub == "/my-data/delete" and method != "POST":
            await page.confirm()
            return True
        if sub == "/my-data" and method == "HEAD":  # headers only: no export, no token taken
            await page.send(200, b"", "application/json", DOWNLOAD_HEADERS)
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

    async def _export(self, rights: Rights, page: MyDataPage, visitor: str) -> None:
        try:
            data = await anyio.to_thread.run_sync(rights.export, visitor)
        except Exception:
            await page.error(503, "unavailable", "md_unavailable")
            return
        body = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
        await page.send(200, body, "application/json", DOWNLOAD_HEADERS)

    async def _delete(self, rights: Rights, page: MyDataPage, visitor: str, receive: Receive,
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

    async def _status(self, rights: Rights, page: MyDataPage, scope: Scope) -> None:
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
