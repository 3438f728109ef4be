"""Visitor self-service: download or delete my data (Art. 5 and 6), for the visitor's own id.

The middleware routes ``{prefix}/my-data`` here. ``handle`` returns False when self-service is
not configured (no ``rights``), and the middleware then answers 404.

- ``GET {prefix}/my-data``: the export as a JSON attachment.
- ``GET {prefix}/my-data/delete``: a confirmation form.
- ``POST {prefix}/my-data/delete`` with ``confirm=yes``: purge, answer with the receipt (JSON or
  HTML) and expire the visitor and session cookies.

The visitor is ``ctx.visitor_id``, which the middleware sets only from a valid signed consent
that grants analytics: nobody can name another visitor's id. POSTs pass the same cross-site
check as the consent POST. Each visitor gets ``limit`` requests per ``window`` seconds (memory
of this process). ``rights`` is any object with ``export(visitor_id) -> dict`` and
``purge(visitor_id, reason, requested_by) -> dict`` (blocking; run in a worker thread):
:class:`HttpRights` here, or ``collector.privacy.InProcessRights`` in the collector's process.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
import httpx

from consent_mw.state import RequestContext

Scope = dict[str, Any]


class Rights(Protocol):
    def export(self, visitor_id: str) -> dict[str, Any]: ...

    def purge(self, visitor_id: str, reason: str, requested_by: str) -> dict[str, Any]: ...


class RightsError(RuntimeError):
    """The collector could not serve the request."""


class HttpRights:
    """Rights served by a collector over HTTP (the admin token authorises)."""

    def __init__(self, collector_url: str, admin_token: str, *, timeout: float = 120.0) -> None:
        self.url = collector_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        self.timeout = httpx.Timeout(10.0, read=timeout)

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                resp = client.request(method, self.url + path, headers=self.headers, **kw)
        except httpx.HTTPError as exc:
            raise RightsError(f"collector unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise RightsError(f"collector answered {resp.status_code}")
        data = resp.json()
        if not isinstance(data, dict):
            raise RightsError("unexpected answer from the collector")
        return data

    def export(self, visitor_id: str) -> dict[str, Any]:
        return self._call("GET", "/v1/privacy/export", params={
            "visitor_id": visitor_id, "requested_by": "self-service",
            "reason": "visitor request"})

    def purge(self, visitor_id: str, reason: str, requested_by: str) -> dict[str, Any]:
        return self._call("POST", "/v1/privacy/purge", json={
            "visitor_id": visitor_id, "reason": reason, "requested_by": requested_by})


class RateLimit:
    """At most ``limit`` hits per key in a sliding ``window`` (seconds), in memory."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record a hit; None if allowed, else the seconds until the next one is."""
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 100_000:  # bounded memory under a flood of ids
                self._hits.clear()
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return q[0] + self.window - now
            q.append(now)
            return None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers", [])}


def same_origin(scope: Scope, headers: dict[str, str], allowed: tuple[str, ...] = ()) -> bool:
    """The consent POST's cross-site rule: Origin, else Sec-Fetch-Site, else Referer."""
    host = headers.get("host", "").strip()
    if not host:
        return False
    scheme = scope.get("scheme", "http")
    own = {f"{scheme}://{host}".lower()}
    if scheme == "http":
        own.add(f"https://{host}".lower())
    own |= {o.lower().rstrip("/") for o in allowed}
    if "origin" in headers:
        return headers["origin"].strip().lower() in own
    if "sec-fetch-site" in headers:
        return headers["sec-fetch-site"].strip().lower() in ("same-origin", "same-site", "none")
    if headers.get("referer"):
        parts = urlsplit(headers["referer"].strip())
        return f"{parts.scheme}://{parts.netloc}".lower() in own
    return False


async def _send(send: Any, status: int, body: bytes, ctype: str,
                headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", ctype.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"),
        *headers]})
    await send({"type": "http.response.body", "body": body})


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


_CONFIRM = """<!doctype html><html><head><meta charset="utf-8"><title>Delete my data</title>
</head><body><h1>Delete my data</h1><p>This deletes every page view and event recorded with
this browser's visitor id, and stops further recording. Consent decisions are kept without
any link to you, as proof of what was agreed.</p>
<form method="post" action="{action}"><input type="hidden" name="confirm" value="yes">
<button>Delete my data</button></form></body></html>"""

_RECEIPT = """<!doctype html><html><head><meta charset="utf-8"><title>Data deleted</title>
</head><body><h1>Your data was deleted</h1><p>Receipt {receipt}, verified at {verified}.
Rows remaining: {remaining}.</p><pre>{body}</pre></body></html>"""


class SelfService:
    """``{prefix}/my-data`` for the visitor's own id (see the module docstring)."""

    def __init__(self, settings: Any, *, rights: Rights | None = None, limit: int = 5,
                 window: float = 3600.0) -> None:
        self.settings = settings
        self.rights = rights
        self.limiter = RateLimit(limit, window)

    @property
    def enabled(self) -> bool:
        return self.rights is not None

    async def handle(
        self, ctx: RequestContext, scope: dict[str, Any], receive: Any, send: Any
    ) -> bool:
        """Serve the request and return True, or return False to let the caller 404."""
        rights = self.rights
        if rights is None:
            return False
        prefix = self.settings.prefix
        sub = str(scope.get("path", ""))[len(prefix):]
        method = scope.get("method", "GET")
        if sub not in ("/my-data", "/my-data/delete"):
            return False
        allowed = {"/my-data": ("GET", "HEAD"), "/my-data/delete": ("GET", "HEAD", "POST")}[sub]
        if method not in allowed:
            await _send(send, 405, b"method not allowed", "text/plain; charset=utf-8",
                        [(b"allow", ", ".join(allowed).encode())])
            return True
        headers = _headers(scope)
        if method == "POST" and not same_origin(scope, headers,
                                                tuple(self.settings.allowed_origins)):
            await self._error(send, 403, "cross_site", "cross-site requests are refused")
            return True
        visitor = ctx.visitor_id
        if not visitor:
            await self._error(send, 403, "no_visitor_id",
                              "this browser has no visitor id (analytics not consented), "
                              "so nothing is recorded about it")
            return True
        if sub == "/my-data/delete" and method != "POST":
            action = html.escape(prefix + "/my-data/delete", quote=True)
            await _send(send, 200, _CONFIRM.format(action=action).encode("utf-8"),
                        "text/html; charset=utf-8")
            return True
        wait = self.limiter.hit(visitor)
        if wait is not None:
            await self._error(send, 429, "rate_limited", "too many requests; try later",
                              [(b"retry-after", str(int(wait) + 1).encode())])
            return True
        if sub == "/my-data":
            await self._export(rights, visitor, send)
        else:
            await self._delete(rights, visitor, scope, headers, receive, send)
        return True

    async def _error(self, send: Any, status: int, code: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await _send(send, status, _json({"error": code, "message": message}),
                    "application/json", headers or [])

    async def _export(self, rights: Rights, visitor: str, send: Any) -> None:
        try:
            data = await anyio.to_thread.run_sync(rights.export, visitor)
        except Exception:
            await self._error(send, 503, "unavailable", "your data cannot be read right now")
            return
        await _send(send, 200, _json(data), "application/json", [
            (b"content-disposition", b'attachment; filename="my-data.json"')])

    async def _delete(self, rights: Rights, visitor: str, scope: Scope,
                      headers: dict[str, str], receive: Any, send: Any) -> None:
        body = await _read(receive, int(getattr(self.settings, "max_body_bytes", 8192)))
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        confirm = ""
        if ctype == "application/json":
            try:
                parsed = json.loads(body or b"{}")
                confirm = str(parsed.get("confirm", "")) if isinstance(parsed, dict) else ""
            except ValueError:
                confirm = ""
        else:
            confirm = (parse_qs(body.decode("latin-1")).get("confirm") or [""])[0]
        if confirm.strip().lower() not in ("yes", "true", "1"):
            await self._error(send, 400, "not_confirmed", "send confirm=yes to delete")
            return
        try:
            receipt = await anyio.to_thread.run_sync(
                lambda: rights.purge(visitor, "visitor self-service", "self-service"))
        except Exception:
            await self._error(send, 503, "unavailable", "deletion failed; please try again later")
            return
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        expire = [(b"set-cookie", f"{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
                   f"{secure}".encode("latin-1"))
                  for name in (self.settings.visitor_cookie, self.settings.session_cookie)]
        if "application/json" in headers.get("accept", "") or ctype == "application/json":
            await _send(send, 200, _json(receipt), "application/json", expire)
            return
        page = _RECEIPT.format(
            receipt=html.escape(str(receipt.get("receipt_id", ""))),
            verified=html.escape(str(receipt.get("verified_at", ""))),
            remaining=html.escape(str(receipt.get("remaining", ""))),
            body=html.escape(json.dumps(receipt, indent=2, ensure_ascii=False)))
        await _send(send, 200, page.encode("utf-8"), "text/html; charset=utf-8", expire)


async def _read(receive: Any, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            return b""  # an oversized body confirms nothing
        if not message.get("more_body"):
            return bytes(body)
