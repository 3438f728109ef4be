"""The two routes that write consent records: ``POST {prefix}``, a decision, and
``POST {prefix}/shown``, the banner's report that it is on screen.

Both pass ``consent_mw.http.same_origin``; a decision's body is read by
``consent.submission``, applied by ``consent.decision.decide``, recorded and carried out in
cookies at once (``consent.identity``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from consent_mw.clientip import client_ip
from consent_mw.consent import submission
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
from consent_mw.consent.identity import Identity
from consent_mw.consent.incoming import Incoming
from consent_mw.http import (
    BadRequest,
    json_bytes,
    parse_json,
    read_body,
    respond,
    respond_error,
    same_origin,
)
from consent_mw.ids import new_consent_id
from consent_mw.ratelimit import RateLimit, address_key
from consent_mw.settings import Settings
from consent_mw.state import ConsentState, RequestContext
from consent_mw.types import Receive, Scope, Send

#: ``shown`` records per client address per hour (a carrier-grade NAT puts many phones
#: behind one address, so this is generous; a browser sends one per 30 minutes).
SHOWN_PER_HOUR = 600
#: Consent decisions per client address per hour. Each writes one to three records, and the
#: same-origin rule binds browsers only: a script sends whatever Origin matches its Host.
#: A person decides a few times at most; a clinic's waiting room shares one address.
DECISIONS_PER_HOUR = 600


def status(settings: Settings, ctx: RequestContext) -> dict[str, Any]:
    """The visitor's consent as ``GET {prefix}`` and a JSON decision answer it."""
    state = ctx.state
    return {
        "decided": state.decided,
        "categories": dict(state.categories),
        "services": dict(state.services),
        "policy_version": settings.policy_version,
        "consent_id": state.consent_id,
        "visitor_id": ctx.visitor_id,
        "gcm": gcm_signals(state, settings),
        "gpc": state.gpc,
    }


class Posts:
    """``POST {prefix}`` and ``POST {prefix}/shown`` for one Settings."""

    def __init__(self, settings: Settings, identity: Identity) -> None:
        self.settings = settings
        self.identity = identity
        self.codec = identity.codec
        self.shown_limit = RateLimit(SHOWN_PER_HOUR, 3600.0)
        self.decision_limit = RateLimit(DECISIONS_PER_HOUR, 3600.0)

    async def decision(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                   receive: Receive, send: Send) -> None:
        ctype = (incoming.header(b"content-type") or "").split(";")[0].strip().lower()
        is_json = ctype == "application/json" or ctype.endswith("+json")
        accept = incoming.header(b"accept") or ""
        answer_json = is_json or "application/json" in accept
        s = self.settings
        retry_after: list[tuple[bytes, bytes]] = []
        try:
            host = incoming.header(b"host")
            if not host or not host.strip():
                raise BadRequest(400, "missing Host header")
            if not same_origin(scope, self.settings.allowed_origins):
                raise BadRequest(403, "cross-site consent submissions are refused", "cross_site")
            address = address_key(client_ip(scope, s.trusted_proxies, s.forwarded_header))
            wait = self.decision_limit.check(address)
            if wait is not None:
                retry_after = [(b"retry-after", str(math.ceil(wait)).encode())]
                raise BadRequest(429, "too many consent decisions from this address; "
                                 "try again later", "rate_limited")
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
            choice = (submission.from_json(body, self.settings.max_body_bytes) if is_json
                      else submission.from_form(body))
            previous, prev_rid = self._previous(ctx, incoming)
            new = decide(self.settings, previous, gpc=incoming.gpc, **choice.decide)
        except BadRequest as exc:
            await respond_error(send, exc.status, exc.code, exc.reason, retry_after,
                                as_json=answer_json)
            return
        except ConsentError as exc:
            await respond_error(send, 400, "invalid_decision", str(exc), as_json=answer_json)
            return
        if choice.locale in self.settings.locales:
            ctx.locale = choice.locale  # the language the visitor read, for the record
        cookies = self._apply(ctx, incoming, scope, previous, new, choice.component, prev_rid)
        if is_json:
            await respond(send, 200, json_bytes(status(self.settings, ctx)), b"application/json",
                          [(b"cache-control", b"no-store"), *cookies])
            return
        target = safe_return(choice.return_to).encode("latin-1", errors="replace")
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
                raise BadRequest(403, "cross-site reports are refused", "cross_site")
            raw = await read_body(receive, 1024)
            data = parse_json(raw, 1024) if raw.strip() else {}
            if not isinstance(data, dict):
                raise BadRequest(400, "expected a JSON object")
        except BadRequest as exc:
            await respond_error(send, exc.status, exc.code, exc.reason)
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
            rec = self.identity.record(
                ctx, incoming, scope, ctx.state, event="shown", method="none",
                component="banner", consent_id=cid,
                path=safe_return(page if isinstance(page, str) else None, default=""))
            marker = self.codec.dump_shown(cid, rec["record_id"])
            headers.append((b"set-cookie", set_cookie(
                self.settings.consent_cookie + "_shown", marker, max_age=SHOWN_MAX_AGE,
                secure=incoming.secure).encode("latin-1")))
        await respond(send, 204, b"", b"text/plain; charset=utf-8", headers)

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
        identity = self.identity
        s = self.settings
        old_ctx_state = ctx.state
        stored = incoming.stored
        if incoming.forget:
            # The reset comes first in the proof: withdrawn after the deletion, then this.
            rec = identity.record(ctx, incoming, scope, previous, event="withdrawn",
                                  method="reject_all", component="api")
            prev_rid, stored = rec["record_id"], None
        ctx.state = apply_gpc(new, s, incoming.gpc)
        # A new visitor id keeps the consent id _previous chose.
        identity.assign_ids(ctx, incoming)
        event = record_event(previous, new, s)
        rec = identity.record(ctx, incoming, scope, ctx.state, event=event,
                              method=new.method or "save", component=component,
                              previous_record_id=prev_rid)
        rid = rec["record_id"]
        recorded_before = bool(stored and stored.gpc_recorded
                               and stored.state.consent_id == new.consent_id)
        gpc_recorded = recorded_before
        if ctx.state.gpc_applied and not recorded_before:
            rec = identity.record(ctx, incoming, scope, ctx.state, event="gpc_applied",
                                  method="gpc", component=component, previous_record_id=rid)
            rid = rec["record_id"]
            gpc_recorded = True
        withdrawing = (incoming.forget or analytics_granted(old_ctx_state, s)
                       or analytics_granted(previous, s))
        values = [set_cookie(s.consent_cookie,
                             self.codec.dump_consent(new, gpc_recorded=gpc_recorded,
                                                     record_id=rid, visitor_id=ctx.visitor_id),
                             max_age=s.consent_max_age, secure=incoming.secure)]
        values += identity.id_cookies(ctx, incoming, withdrawing=withdrawing)
        if s.consent_cookie + "_shown" in incoming.cookies:
            values.append(expire_cookie(s.consent_cookie + "_shown", secure=incoming.secure))
        return [(b"set-cookie", v.encode("latin-1")) for v in values]
