"""Visitor and session ids, the cookies that carry them, and the consent records written as
they change: what a response sets on a browser, decided in one place for pages and for the
middleware's own routes alike.

Rules: ids exist only while analytics is granted; the visitor cookie is set once and never
extended, the session cookie slides; a consent id never spans two visitor ids; a purged
person's browser is reset (withdrawn, ids expired) and recorded as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from consent_mw.consent.cookies import CookieCodec, expire_cookie, remaining_max_age, set_cookie
from consent_mw.consent.decision import analytics_gate, decide, undecided
from consent_mw.consent.incoming import Incoming
from consent_mw.consent.reading import SESSION_SLIDE
from consent_mw.consent.records import build_record
from consent_mw.ids import new_consent_id, new_session_id, new_visitor_id
from consent_mw.settings import Settings
from consent_mw.state import ConsentState, RequestContext

Scope = Mapping[str, Any]


class Identity:
    """Ids, id cookies and records for one Settings. ``write`` takes each record built (the
    middleware's sink, which counts a failing write rather than raising it)."""

    def __init__(self, settings: Settings, codec: CookieCodec,
                 write: Callable[[dict[str, Any]], None]) -> None:
        self.settings = settings
        self.codec = codec
        self._write = write
        self._analytics_gate = analytics_gate(settings)

    def assign_ids(self, ctx: RequestContext, incoming: Incoming) -> None:
        """Visitor and session ids exist only while analytics is granted."""
        reading = incoming.reading
        if ctx.state is reading.state and reading.ids_settled:  # a returning visitor
            ctx.visitor_id = reading.visitor_id
            ctx.session_id = reading.session_id
            incoming.new_visitor = incoming.new_session = False
        elif ctx.state.granted_any(self._analytics_gate):
            # Only a bound id is kept (see Reading.visitor_id), and never a purged person's.
            visitor = None if incoming.forget else reading.visitor_id
            session = None if incoming.forget else reading.session_id
            ctx.visitor_id = visitor or new_visitor_id()
            incoming.new_visitor = visitor is None
            ctx.session_id = session or new_session_id()  # bound to the visitor
            incoming.new_session = session is None
            if incoming.new_visitor and incoming.stored is not None and not incoming.forget:
                # A stored decision given a new visitor id (a browser that lost its cookie,
                # an older cookie, or one copied into another browser) continues under a new
                # consent id too, so a consent id never spans two visitors: it could
                # otherwise lead one visitor's export or purge to the other's rows.
                incoming.rebound = incoming.rebound or new_consent_id()
                ctx.state = replace(ctx.state, consent_id=incoming.rebound)
        else:
            ctx.visitor_id = None
            ctx.session_id = None
            incoming.new_visitor = False
            incoming.new_session = False

    def id_cookies(self, ctx: RequestContext, incoming: Incoming, *,
                   withdrawing: bool = False) -> list[str]:
        """Set-Cookie values for the visitor/session ids after this response.

        The visitor cookie is set once, when first granted, and never extended; the session
        cookie slides. Without analytics both are expired if the browser still has them.
        """
        s = self.settings
        out: list[str] = []
        if ctx.visitor_id:
            if incoming.new_visitor:
                out.append(set_cookie(s.visitor_cookie, ctx.visitor_id,
                                      max_age=s.visitor_max_age, secure=incoming.secure))
            if ctx.session_id:
                now = time.time()
                issued = incoming.reading.session_issued
                # Slid at most once a minute: a Set-Cookie on every response costs every
                # response, and a session timeout one minute early changes nothing.
                if incoming.new_session or not now - SESSION_SLIDE <= issued <= now + SESSION_SLIDE:
                    value = self.codec.dump_session(ctx.session_id, ctx.visitor_id, now)
                    out.append(set_cookie(s.session_cookie, value,
                                          max_age=s.session_timeout, secure=incoming.secure))
        else:
            if withdrawing or s.visitor_cookie in incoming.cookies:
                out.append(expire_cookie(s.visitor_cookie, secure=incoming.secure))
            if withdrawing or s.session_cookie in incoming.cookies:
                out.append(expire_cookie(s.session_cookie, secure=incoming.secure))
        return out

    def record(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
               state: ConsentState, *, event: str, method: str, component: str,
               previous_record_id: str | None = None, consent_id: str | None = None,
               path: str | None = None) -> dict[str, Any]:
        """Build and write one consent record; ``path`` defaults to the request's."""
        rec = build_record(
            self.settings, state, event=event, method=method, component=component,
            locale=ctx.locale, host=incoming.header(b"host"),
            path=scope.get("path") if path is None else path,
            user_agent=incoming.header(b"user-agent") or "",
            visitor_id=ctx.visitor_id, previous_record_id=previous_record_id,
            consent_id=consent_id,
        )
        self._write(rec)
        return rec

    def resign_cookie(self, ctx: RequestContext, incoming: Incoming, scope: Scope
                      ) -> list[str]:
        """The consent cookie re-signed, without extending its lifetime, when a page response
        must change it: to bind a visitor id issued just now, or to remember that
        ``gpc_applied`` was recorded (once per consent id and policy version, not per
        request)."""
        stored = incoming.stored
        if stored is None:
            return []
        gpc_due = ctx.state.gpc_applied and not stored.gpc_recorded
        if not gpc_due and not incoming.new_visitor:
            return []
        if not incoming.owned and incoming.rebound is None:
            incoming.rebound = new_consent_id()  # a record is due: under an id of its own
        record_id = stored.record_id
        decision = stored.state
        if incoming.rebound is not None:
            # The decision under its new consent id: proof for what is recorded under it.
            decision = replace(decision, consent_id=incoming.rebound)
            rec = self.record(ctx, incoming, scope, replace(ctx.state, gpc_applied=False),
                              event="updated", method=decision.method or "api",
                              component="api", previous_record_id=record_id)
            record_id = rec["record_id"]
            gpc_due = ctx.state.gpc_applied
        if gpc_due:
            rec = self.record(ctx, incoming, scope, ctx.state, event="gpc_applied",
                              method="gpc", component="api", previous_record_id=record_id)
            record_id = rec["record_id"]
        value = self.codec.dump_consent(
            decision, gpc_recorded=(stored.gpc_recorded and incoming.rebound is None) or gpc_due,
            record_id=record_id, visitor_id=ctx.visitor_id)
        return [set_cookie(self.settings.consent_cookie, value,
                           max_age=remaining_max_age(stored, self.settings),
                           secure=incoming.secure)]

    def forgotten_state(self) -> ConsentState:
        """After a deletion: every optional category refused, under a new consent id, so
        nothing later carries the old one. Only a new, explicit decision records again."""
        return decide(self.settings, undecided(self.settings), action="reject_all")

    def forget_cookies(self, ctx: RequestContext, incoming: Incoming, scope: Scope, *,
                       component: str) -> list[str]:
        """Reset a deleted visitor's browser: the withdrawal recorded (with no visitor id),
        the consent cookie carrying it, the visitor, session and banner cookies expired."""
        s = self.settings
        rec = self.record(ctx, incoming, scope, ctx.state, event="withdrawn",
                          method="reject_all", component=component)
        value = self.codec.dump_consent(ctx.state, record_id=rec["record_id"])
        out = [set_cookie(s.consent_cookie, value, max_age=s.consent_max_age,
                          secure=incoming.secure)]
        out += [expire_cookie(name, secure=incoming.secure)
                for name in (s.visitor_cookie, s.session_cookie, s.consent_cookie + "_shown")]
        return out
