"""The middleware's own routes under ``settings.prefix`` and ``/.well-known/gpc.json``: the
status JSON, the preferences and external-transmission pages, static files, and the routing
to the POSTs (``consent.posts``, ``consent.beacon``) and to self-service
(``consent.self_service``).

``POST {prefix}`` (a consent decision), the deletion POST of ``{prefix}/my-data`` and the
beacon's ``POST {prefix}/beacon`` are the only state-changing routes; all pass
``consent_mw.http.same_origin``, else 403. Refusals are answered by
``consent_mw.http.respond_error``.

Static files are served under their own name (cached an hour) and under a content-hashed
one, ``name.<12 hex of its sha256>.ext``, cached for a year as ``immutable``: a page that
names the hashed file (the beacon's does) names a new file whenever the file changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from consent_mw.consent.banner import safe_return
from consent_mw.consent.beacon import Beacon
from consent_mw.consent.i18n import choose_locale
from consent_mw.consent.identity import Identity
from consent_mw.consent.incoming import Incoming
from consent_mw.consent.pages import render_external_transmission, render_preferences
from consent_mw.consent.posts import Posts, status
from consent_mw.consent.self_service import SelfService
from consent_mw.http import NO_FRAMING, STATUS_CODES, header, json_bytes, respond, respond_error
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Receive, Scope, Send

if TYPE_CHECKING:  # the middleware imports this module
    from consent_mw.consent.middleware import ErrorPlace


STATIC_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GPC_LAST_UPDATE = "2026-11-24"
SHORT_CACHE = b"public, max-age=3600"
IMMUTABLE = b"public, max-age=31536000, immutable"


REASONS = {404: "not found", 405: "method not allowed"}


def hashed_name(name: str, body: bytes) -> str:
    """``name`` with the first 12 hex digits of the SHA-256 of ``body`` before its suffix."""
    stem, _, suffix = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:12]}.{suffix}"


async def refuse(scope: Scope, send: Send, status: int,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A route or method we do not serve, in the package's one error shape: JSON to a client
    that asks for it, else the plain reason."""
    accept = header(scope.get("headers") or (), b"accept") or ""
    await respond_error(send, status, STATUS_CODES[status], REASONS[status], headers or (),
                        as_json="application/json" in accept,
                        head=scope.get("method") == "HEAD")


class Endpoints:
    """Routes served by the middleware itself (no host-app involvement)."""

    def __init__(self, settings: Settings, identity: Identity, self_service: SelfService, *,
                 fail: Callable[[ErrorPlace], None], beacon: Beacon | None = None) -> None:
        self.settings = settings
        self.identity = identity
        self.codec = identity.codec
        self.self_service = self_service
        self.beacon = beacon  # None: the beacon is off, and so is its route
        self._fail = fail  # counts a failure of ours; the answer goes out regardless
        #: file name → (body, content type, cache control); ``hashed``: name → hashed name.
        self.static: dict[str, tuple[bytes, bytes, bytes]] = {}
        self.hashed: dict[str, str] = {}
        root = resources.files("consent_mw") / "static"
        for entry in root.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in STATIC_TYPES:
                body = entry.read_bytes()
                self.static[entry.name] = (body, STATIC_TYPES[suffix], SHORT_CACHE)
                self.hashed[entry.name] = hashed_name(entry.name, body)
                self.static[self.hashed[entry.name]] = (body, STATIC_TYPES[suffix], IMMUTABLE)
        label = self.settings.policy_label
        self.posts = Posts(settings, identity)
        self.gpc_body = json_bytes({"gpc": True,
                                    "lastUpdate": label if _DATE.match(label) else GPC_LAST_UPDATE})

    async def gpc_json(self, scope: Scope, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await refuse(scope, send, 405, [(b"allow", b"GET, HEAD")])
            return
        await respond(send, 200, self.gpc_body, b"application/json",
                      [(b"cache-control", b"public, max-age=86400")],
                      head=scope.get("method") == "HEAD")

    async def handle(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                     receive: Receive, send: Send) -> None:
        prefix = self.settings.prefix
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        sub = path[len(prefix):]
        if sub in ("/my-data", "/requests") or sub.startswith(("/my-data/", "/requests/")):
            def forget() -> list[tuple[bytes, bytes]]:
                return self._forget(ctx, incoming, scope, "self_service")

            # Only an id this browser already holds, bound: one minted by this very request
            # has no data, and acting on it would cost a purge for nothing.
            visitor = None if incoming.new_visitor else ctx.visitor_id
            if not await self.self_service.handle(ctx, dict(scope), receive, send,
                                                  visitor_id=visitor, forget=forget):
                await refuse(scope, send, 404)
            return
        if sub.startswith("/static/") and method in ("GET", "HEAD"):
            found = self.static.get(sub[len("/static/"):])
            if found is None:
                await refuse(scope, send, 404)
                return
            await respond(send, 200, found[0], found[1],
                          [(b"cache-control", found[2]),
                           (b"x-content-type-options", b"nosniff")],
                          head=method == "HEAD")
            return
        routes = {"": ("GET", "HEAD", "POST"), "/preferences": ("GET", "HEAD"),
                  "/external-transmission": ("GET", "HEAD"), "/shown": ("POST",)}
        if self.beacon is not None:
            routes["/beacon"] = ("POST",)
        if sub not in routes:
            await refuse(scope, send, 404)
            return
        if method not in routes[sub]:
            await refuse(scope, send, 405, [(b"allow", ", ".join(routes[sub]).encode())])
            return
        if sub == "" and method == "POST":
            await self.posts.decision(ctx, incoming, scope, receive, send)
            return
        if sub == "/shown":
            await self.posts.shown(ctx, incoming, scope, receive, send)
            return
        if sub == "/beacon" and self.beacon is not None:
            await self.beacon.handle(ctx, incoming, scope, receive, send)
            return
        head = method == "HEAD"
        no_store = [(b"cache-control", b"no-store"), (b"vary", b"Cookie, Sec-GPC")]
        if incoming.forget:  # a purged person's browser: reset it with this answer
            no_store += self._forget(ctx, incoming, scope, "api", reset=False)
        if sub == "":
            await respond(send, 200, json_bytes(status(self.settings, ctx)),
                          b"application/json", no_store, head=head)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        lang = (query.get("lang") or [None])[0]
        locale = choose_locale(self.settings, html_lang=lang,
                               accept_language=incoming.header(b"accept-language") or "")
        if sub == "/preferences":
            page = render_preferences(
                self.settings, ctx.state, locale,
                return_to=safe_return((query.get("return") or [None])[0]),
                saved=(query.get("saved") or [""])[0] == "1",
                self_service=self._self_service_enabled(),
            )
        else:
            page = render_external_transmission(self.settings, locale)
        await respond(send, 200, page.encode("utf-8"), b"text/html; charset=utf-8",
                      [*no_store, *NO_FRAMING], head=head)

    def _forget(self, ctx: RequestContext, incoming: Incoming, scope: Scope, component: str,
                *, reset: bool = True) -> list[tuple[bytes, bytes]]:
        """The Set-Cookie headers that reset this browser after a deletion; ``reset`` first
        puts the context in the withdrawn state (a purge asked for just now)."""
        if reset:
            ctx.state = self.identity.forgotten_state()
            ctx.visitor_id = ctx.session_id = None
            incoming.forget = True
        values = self.identity.forget_cookies(ctx, incoming, scope, component=component)
        return [(b"set-cookie", v.encode("latin-1")) for v in values]

    def _self_service_enabled(self) -> bool:
        try:
            return bool(self.self_service.enabled)
        except Exception:  # a host's own self-service: the page goes out without its links
            self._fail("self_service")
            return False
