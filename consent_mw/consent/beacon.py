"""The interaction beacon: its script element, and ``POST {prefix}/beacon``, where the script
reports clicks, taps, downloads, forms sent, scroll depth and engaged time.

The script is in a page only when the visitor granted analytics (``consent._inject``), but
the endpoint trusts none of that: it decides from the request's own consent cookie, in this
order (the first refusal answers, in the one error shape of ``consent_mw.http``):

1. not same-origin (``consent_mw.http.same_origin``): 403 ``cross_site``;
2. a body that is neither ``text/plain`` (what ``sendBeacon`` sends) nor JSON: 415;
   over :data:`MAX_BODY` bytes: 413;
3. not ``{"events": [...]}`` of 1 to 10 valid reports (``consent.reports``): 400
   ``bad_report`` naming the first bad one; none of the batch is kept;
4. analytics not granted: 403 ``no_consent``; each report is refused by capture, which
   counts it as ``no_consent``;
5. no visitor id this browser held already: 403 ``no_visitor`` (one minted by this request
   would be free to mint, and no browser would hold it);
6. more than ``beacon_per_minute`` reports a minute from this visitor id at this address:
   429 ``rate_limited`` with ``Retry-After``;
7. else 204: each report is queued through capture like a custom event (a suppressed
   visitor's are dropped there and counted ``suppressed``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

from consent_mw.capture.pipeline import Capture
from consent_mw.clientip import client_ip
from consent_mw.consent.decision import analytics_granted
from consent_mw.consent.identity import Identity
from consent_mw.consent.incoming import Incoming
from consent_mw.consent.reports import Report, Rules, Tagged, parse_reports
from consent_mw.http import BadRequest, parse_json, read_body, respond, respond_error, same_origin
from consent_mw.ratelimit import RateLimit, address_key
from consent_mw.settings import Settings
from consent_mw.state import RequestContext
from consent_mw.types import Receive, Scope, Send

if TYPE_CHECKING:  # the middleware imports this module
    from consent_mw.consent.middleware import ErrorPlace

MAX_BODY = 4096
#: What sendBeacon and fetch send a string as, and JSON.
BODY_TYPES = ("", "text/plain", "application/json")


def render_beacon(settings: Settings, script: str) -> str:
    """The script element (``script``: its content-hashed file name under ``static/``); the
    script reads its endpoint and the download extensions from it, so the page needs no
    inline code."""
    p = escape(settings.prefix, quote=True)
    downloads = escape(",".join(settings.beacon_download_extensions), quote=True)
    return (f'<script src="{p}/static/{escape(script, quote=True)}" defer '
            f'data-cmw-beacon="{p}/beacon" data-cmw-downloads="{downloads}"></script>')


#: How many visitors' worth of reports one address may send a minute.
ADDRESS_FACTOR = 10


class Beacon:
    """``POST {prefix}/beacon`` for one Settings and the capture it feeds."""

    def __init__(self, settings: Settings, capture: Capture, identity: Identity, *,
                 fail: Callable[[ErrorPlace], None]) -> None:
        self.settings = settings
        self.capture = capture
        self.identity = identity
        self._fail = fail
        self.rules = Rules.of(settings)
        self.limit = RateLimit(settings.beacon_per_minute, 60.0)
        # A visitor id costs one decision, so an address may mint many: its own, larger bucket
        # bounds what all its visitors report together.
        self.per_address = RateLimit(settings.beacon_per_minute * ADDRESS_FACTOR, 60.0)

    async def handle(self, ctx: RequestContext, incoming: Incoming, scope: Scope,
                     receive: Receive, send: Send) -> None:
        s = self.settings
        retry_after: list[tuple[bytes, bytes]] = []
        try:
            if not same_origin(scope, s.allowed_origins):
                raise BadRequest(403, "cross-site reports are refused", "cross_site")
            ctype = (incoming.header(b"content-type") or "").split(";")[0].strip().lower()
            if ctype not in BODY_TYPES:
                raise BadRequest(415, "send text/plain or application/json")
            reports = parse_reports(parse_json(await read_body(receive, MAX_BODY), MAX_BODY),
                                    self.rules)
            if not analytics_granted(ctx.state, s):
                self._queue(ctx, incoming, reports)  # capture refuses and counts each one
                raise BadRequest(403, "analytics is not granted: nothing is recorded",
                                 "no_consent")
            if incoming.new_visitor or ctx.visitor_id is None:
                raise BadRequest(403, "no visitor id held by this browser: load a page first",
                                 "no_visitor")
            address = address_key(client_ip(scope, s.trusted_proxies, s.forwarded_header))
            wait = self.per_address.check(address, cost=len(reports))
            if wait is None:
                wait = self.limit.check(f"{ctx.visitor_id}|{address}", cost=len(reports))
            if wait is not None:
                retry_after = [(b"retry-after", str(math.ceil(wait)).encode())]
                raise BadRequest(429, "too many reports from this visitor; try again later")
        except BadRequest as exc:
            await respond_error(send, exc.status, exc.code, exc.reason, retry_after)
            return
        headers = [(b"cache-control", b"no-store")]
        try:
            self._queue(ctx, incoming, reports)
            # Interactions are activity: the session cookie slides as a page's would.
            headers += [(b"set-cookie", c.encode("latin-1"))
                        for c in self.identity.id_cookies(ctx, incoming)]
        except Exception:
            self._fail("beacon")  # counted; the script has nothing to do with the answer
        await respond(send, 204, b"", b"text/plain; charset=utf-8", headers)

    def _queue(self, ctx: RequestContext, incoming: Incoming, reports: list[Report]) -> None:
        host = incoming.header(b"host")
        for report in reports:
            if isinstance(report, Tagged):
                # As track() would send it from that page: the page's host and path.
                page = {"headers": [(b"host", (host or "").encode("latin-1"))],
                        "path": report.page}
                self.capture.custom(ctx, report.name, {}, scope=page)
            else:
                self.capture.interaction(ctx, report, host=host)
