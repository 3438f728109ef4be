"""The middleware's own routes under ``settings.prefix`` and ``/.well-known/gpc.json``.

``POST {prefix}`` (a consent decision) and the deletion POST of ``{prefix}/my-data`` are the
only state-changing routes; both pass ``consent_mw.http.same_origin``, else 403.
"""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl

from consent_mw.clientip import client_ip
from consent_mw.consent.banner import safe_return
from consent_mw.consent.cookies import SHOWN_MAX_AGE, expire_cookie, set_cookie
from consent_mw.consent.decision import (
    ConsentError,
    analytics_granted,
    apply_gpc,
    decide,
    gcm_signals,
    record_event,
    undecided,
)
from consent_mw.consent.i18n import choose_locale
from consent_mw.consent.pages import render_external_transmission, render_preferences
from consent_mw.http import BadRequest, json_bytes, parse_json, read_body, respond, same_origin
from consent_mw.ids import new_consent_id
from consent_mw.ratelimit import RateLimit, address_key
from consent_mw.state import ConsentState, RequestContext

if TYPE_CHECKING:
    from consent_mw.consent.middleware import ConsentMiddleware, Incoming, Receive, Scope, Send

STATIC_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
}
TRUE_VALUES = {"on", "true", "1", "yes"}
FALSE_VALUES = {"off", "false", "0", "no", ""}
FORM_CONTROL_FIELDS = {"action", "return", "form", "component", "locale"}
COMPONENTS = ("banner", "preferences", "api")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
GPC_LAST_UPDATE = "2026-11-24"
#: ``shown`` records per client address per hour (a carrier-grade NAT puts many phones
#: behind one address, so this is generous; a browser sends one per 30 minutes).
SHOWN_PER_HOUR = 600


def _bool_field(name: str, values: list[str]) -> bool:
    if len(values) != 1:
        # A checkbox sends one value; a hidden "off" plus a checked "on" is common too.
        return any(v.strip().lower() in TRUE_VALUES for v in values)
    value = values[0].strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise BadRequest(400, f"field {name!r} must be on/off or true/false")


class Endpoints:
    """Routes served by the middleware itself (no host-app involvement)."""

    def __init__(self, mw: ConsentMiddleware) -> None:
        self.mw = mw
        self.settings = mw.settings
        self.static: dict[str, tuple[bytes, bytes]] = {}
        root = resources.files("consent_mw") / "static"
        for entry in root.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in STATIC_TYPES:
                self.static[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
        label = self.settings.policy_label
        self.shown_limit = RateLimit(SHOWN_PER_HOUR, 3600.0)
        self.gpc_body = json_bytes({"gpc": True,
                               "lastUpdate": label if _DATE.match(label) else GPC_LAST_UPDATE})

    async def gpc_json(self, scope: Scope, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await respond(send, 405, b"method not allowed", b"text/plain; charset=utf-8",
                          [(b"allow", b"GET, HEAD")])
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
        if sub == "/my-data" or sub.startswith("/my-data/"):
            def forget() -> list[tuple[bytes, bytes]]:
                return self._forget(ctx, incoming, scope, "self_service")

            # Only an id this browser already holds, bound: one minted by this very request
            # has no data, and acting on it would cost a purge for nothing.
            visitor = None if incoming.new_visitor else ctx.visitor_id
            if not await self.mw.self_service.handle(ctx, dict(scope), receive, send,
                                                     visitor_id=visitor, forget=forget):
                await respond(send, 404, b"not found", b"text/plain; charset=utf-8")
            return
        if sub.startswith("/static/") and method in ("GET", "HEAD"):
            found = self.static.get(sub[len("/static/"):])
            if found is None:
                await respond(send, 404, b"not found", b"text/plain; charset=utf-8")
                return
            await respond(send, 200, found[0], found[1],
                          [(b"cache-control", b"public, max-age=3600"),
                           (b"x-content-type-options", b"nosniff")],
                          head=method == "HEAD")
            return
        routes = {"": ("GET", "HEAD", "POST"), "/preferences": ("GET", "HEAD"),
                  "/external-transmission": ("GET", "HEAD"), "/shown": ("POST",)}
        if sub not in routes:
            await respond(send, 404, b"not found", b"text/plain; charset=utf-8")
            return
        if method not in routes[sub]:
            await respond(send, 405, b"method not allowed", b"text/plain; charset=utf-8",
                          [(b"allow", ", ".join(routes[sub]).encode())])
            return
        if sub == "" and method == "POST":
            await self.post(ctx, incoming, scope, receive, send)
            return
        if sub == "/shown":
            await self.shown(ctx, incoming, scope, receive, send)
            return
        head = method == "HEAD"
        no_store = [(b"cache-control", b"no-store"), (b"vary", b"Cookie, Sec-GPC")]
        if incoming.forget:  # a purged person's browser: reset it with this answer
            no_store += self._forget(ctx, incoming, scope, "api", reset=False)
        if sub == "":
            await respond(send, 200, json_bytes(self.status(ctx)), b"application/json",
                          no_store, head=head)
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
                      no_store, head=head)

    def _forget(self, ctx: RequestContext, incoming: Incoming, scope: Scope, component: str,
                *, reset: bool = True) -> list[tuple[bytes, bytes]]:
        """The Set-Cookie headers that reset this browser after a deletion; ``reset`` first
        puts the context in the withdrawn state (a purge asked for just now)."""
        if reset:
            ctx.state = self.mw.forgotten_state()
            ctx.visitor_id = ctx.session_id = None
            incoming.forget = True
        values = self.mw.forget_cookies(ctx, incoming, scope, component=component)
        return [(b"set-cookie", v.encode("latin-1")) for v in values]

    def _self_service_enabled(self) -> bool:
        try:
            return bool(self.mw.self_service.enabled)
        except Exception:
            return False

    def status(self, ctx: RequestContext) -> dict[str, Any]:
        state = ctx.state
        return {
            "decided": state.decided,
            "categories": dict(state.categories),
            "services": dict(state.services),
            "policy_version": self.settings.policy_version,
            "consent_id": state.consent_id,
            "visitor_id": ctx.visitor_id,
            "gcm": gcm_signals(state, self.settings),
            "gpc": state.gpc,
        }

    # POST {prefix} ----------------------------------------------------------------------
    async def post(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                   receive: Receive, send: Send) -> None:
        ctype = (incoming.header(b"content-type") or "").split(";")[0].strip().lower()
        is_json = ctype == "application/json" or ctype.endswith("+json")
        accept = incoming.header(b"accept") or ""
        answer_json = is_json or "application/json" in accept
        try:
            host = incoming.header(b"host")
            if not host or not host.strip():
                raise BadRequest(400, "missing Host header")
            if not same_origin(scope, self.settings.allowed_origins):
                raise BadRequest(403, "cross-site consent submissions are refused")
            if not is_json and ctype != "application/x-www-form-urlencoded":
                raise BadRequest(415, "use application/json or "
                                 "application/x-www-form-urlencoded")
            length = incoming.header(b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    raise BadRequest(400, "invalid Content-Length") from None
                if declared > self.settings.max_body_bytes:
                    raise BadRequest(413, f"body larger than {self.settings.max_body_bytes} "
                                     "bytes")
            body = await read_body(receive, self.settings.max_body_bytes)
            submission = self._parse_json(body) if is_json else self._parse_form(body)
            previous, prev_rid = self._previous(ctx, incoming)
            new = decide(self.settings, previous, gpc=incoming.gpc, **submission["decide"])
        except BadRequest as exc:
            await self._error(send, exc.status, exc.reason, answer_json)
            return
        except ConsentError as exc:
            await self._error(send, 400, str(exc), answer_json)
            return
        if submission["locale"] in self.settings.locales:
            ctx.locale = submission["locale"]  # the language the visitor read, for the record
        cookies = self._apply(ctx, incoming, scope, previous, new, submission["component"],
                              prev_rid)
        if is_json:
            await respond(send, 200, json_bytes(self.status(ctx)), b"application/json",
                          [(b"cache-control", b"no-store"), *cookies])
            return
        target = safe_return(submission["return"]).encode("latin-1", errors="replace")
        await respond(send, 303, b"", b"text/plain; charset=utf-8",
                      [(b"location", target), (b"cache-control", b"no-store"), *cookies])

    async def shown(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                    receive: Receive, send: Send) -> None:
        """``POST {prefix}/shown``: the banner's script reports that it is on screen.

        The ``shown`` record is written here rather than when a page is served: it then
        proves a display in a browser (crawlers, prefetches and HEAD requests make none, as
        in Fides' "notices served"), and a new visitor's page costs no record. At most one
        per browser per 30 minutes (the marker cookie set here), and per address at most
        :data:`SHOWN_PER_HOUR`, since a script that drops its cookies could otherwise fill
        the records table. Always 204: the banner has nothing to do with the answer.
        """
        try:
            if not same_origin(scope, self.settings.allowed_origins):
                raise BadRequest(403, "cross-site reports are refused")
            raw = await read_body(receive, 1024)
            data = parse_json(raw, 1024) if raw.strip() else {}
            if not isinstance(data, dict):
                raise BadRequest(400, "expected a JSON object")
        except BadRequest as exc:
            await self._error(send, exc.status, exc.reason, True)
            return
        headers = [(b"cache-control", b"no-store")]
        s = self.settings
        address = address_key(client_ip(scope, s.trusted_proxies, s.forwarded_header))
        if (s.banner and not ctx.state.decided and incoming.shown_cid is None
                and self.shown_limit.check(address) is None):
            locale = data.get("locale")
            if isinstance(locale, str) and locale in self.settings.locales:
                ctx.locale = locale  # the language the banner was shown in
            page = data.get("path")
            cid = new_consent_id()
            rec = self.mw.record(ctx, incoming, scope, ctx.state, event="shown", method="none",
                                 component="banner", consent_id=cid,
                                 path=safe_return(page if isinstance(page, str) else None,
                                                  default=""))
            marker = self.mw.codec.dump_shown(cid, rec["record_id"])
            headers.append((b"set-cookie", set_cookie(
                self.settings.consent_cookie + "_shown", marker, max_age=SHOWN_MAX_AGE,
                secure=incoming.secure).encode("latin-1")))
        await respond(send, 204, b"", b"text/plain; charset=utf-8", headers)

    async def _error(self, send: Send, status: int, reason: str, as_json: bool) -> None:
        if as_json:
            await respond(send, status, json_bytes({"error": reason}), b"application/json")
        else:
            await respond(send, status, reason.encode("utf-8"), b"text/plain; charset=utf-8")

    def _parse_json(self, body: bytes) -> dict[str, Any]:
        data = parse_json(body, self.settings.max_body_bytes)
        if not isinstance(data, dict):
            raise BadRequest(400, "expected a JSON object")
        unknown = set(data) - {"action", "categories", "services", "component", "locale"}
        if unknown:
            raise BadRequest(400, f"unknown fields {sorted(unknown)}")
        component = data.get("component", "api")
        if component not in COMPONENTS:
            raise BadRequest(400, f"component must be one of {list(COMPONENTS)}")
        for key in ("categories", "services"):
            if key in data and not isinstance(data[key], dict):
                raise BadRequest(400, f"{key!r} must be an object of name: true/false")
        action = data.get("action")
        if action is not None and not isinstance(action, str):
            raise BadRequest(400, "'action' must be a string")
        decide_args: dict[str, Any] = {"action": action, "categories": data.get("categories"),
                                       "services": data.get("services")}
        if action is None and component == "api":
            decide_args["method"] = "api"
        return {
            "decide": decide_args,
            "component": component,
            "return": None,
            "locale": data.get("locale"),
        }

    def _parse_form(self, body: bytes) -> dict[str, Any]:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=False, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(400, "invalid form body") from None
        fields: dict[str, list[str]] = {}
        for key, value in pairs:
            fields.setdefault(key, []).append(value)
        actions = fields.get("action", [])
        if len(actions) > 1:
            raise BadRequest(400, "more than one action")
        action = actions[0] if actions else None
        component = "preferences" if fields.get("form") == ["preferences"] else "banner"
        result: dict[str, Any] = {
            "component": component,
            "return": fields["return"][0] if fields.get("return") else None,
            "locale": fields["locale"][0] if fields.get("locale") else None,
        }
        if action in ("accept_all", "reject_all"):
            result["decide"] = {"action": action}
            return result
        if action not in (None, "save"):
            raise BadRequest(400, f"unknown action {action!r}")
        categories: dict[str, bool] = {}
        services: dict[str, bool] = {}
        for name, values in fields.items():
            if name in FORM_CONTROL_FIELDS:
                continue
            if name.startswith("service."):
                services[name[len("service."):]] = _bool_field(name, values)
            else:
                categories[name] = _bool_field(name, values)
        explicit_services = component == "preferences" or bool(services)
        result["decide"] = {"categories": categories,
                            "services": services if explicit_services else None}
        return result

    def _previous(self, ctx: RequestContext, incoming: Incoming
                  ) -> tuple[ConsentState, str | None]:
        """The decision a submission changes, under a consent id this browser owns, and the
        record it follows.

        A consent id carries on only when the stored decision is provably this browser's
        (``Incoming.owned``). A cookie that cannot prove it (a decision without analytics has
        no visitor id to bind; a cookie copied from another browser; a banner marker) gets a
        new consent id, linked by record: otherwise two browsers could share one consent id,
        and one visitor's export or deletion reach the other's records.
        """
        stored = incoming.stored
        if incoming.forget:  # a purged person's browser: its old ids are never reused
            return ctx.state, None
        if stored is not None:
            if incoming.owned:
                return stored.state, stored.record_id
            incoming.rebound = incoming.rebound or new_consent_id()
            return replace(stored.state, consent_id=incoming.rebound), stored.record_id
        return (replace(undecided(self.settings), consent_id=new_consent_id()),
                incoming.reading.shown_rid)

    def _apply(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
               previous: ConsentState, new: ConsentState, component: str,
               prev_rid: str | None) -> list[tuple[bytes, bytes]]:
        """Record the decision and build the cookies that carry it out at once."""
        mw = self.mw
        s = self.settings
        old_ctx_state = ctx.state
        stored = incoming.stored
        if incoming.forget:
            # The reset comes first in the proof: withdrawn after the deletion, then this.
            rec = mw.record(ctx, incoming, scope, previous, event="withdrawn",
                            method="reject_all", component="api")
            prev_rid, stored = rec["record_id"], None
        ctx.state = apply_gpc(new, s, incoming.gpc)
        mw.assign_ids(ctx, incoming)  # a new visitor id keeps the consent id _previous chose
        event = record_event(previous, new, s)
        rec = mw.record(ctx, incoming, scope, ctx.state, event=event,
                        method=new.method or "save", component=component,
                        previous_record_id=prev_rid)
        rid = rec["record_id"]
        recorded_before = bool(stored and stored.gpc_recorded
                               and stored.state.consent_id == new.consent_id)
        gpc_recorded = recorded_before
        if ctx.state.gpc_applied and not recorded_before:
            rec = mw.record(ctx, incoming, scope, ctx.state, event="gpc_applied",
                            method="gpc", component=component, previous_record_id=rid)
            rid = rec["record_id"]
            gpc_recorded = True
        withdrawing = (incoming.forget or analytics_granted(old_ctx_state, s)
                       or analytics_granted(previous, s))
        values = [set_cookie(s.consent_cookie,
                             mw.codec.dump_consent(new, gpc_recorded=gpc_recorded,
                                                   record_id=rid, visitor_id=ctx.visitor_id),
                             max_age=s.consent_max_age, secure=incoming.secure)]
        values += mw.id_cookies(ctx, incoming, withdrawing=withdrawing)
        if s.consent_cookie + "_shown" in incoming.cookies:
            values.append(expire_cookie(s.consent_cookie + "_shown", secure=incoming.secure))
        return [(b"set-cookie", v.encode("latin-1")) for v in values]
