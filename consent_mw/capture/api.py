"""What a site's own code calls: ``track()`` for custom events, ``identify()`` for accounts.

Both read the request's consent from ``request.scope[consent_mw.state.SCOPE_KEY]`` (a
Starlette ``Request`` or a raw ASGI scope), send nothing without ``analytics`` consent, and
never raise: analytics must not break the page that calls it.

    from consent_mw.capture.api import track, identify

    track(request, "booking_completed", {"clinic": "shinjuku", "slot": "2024-04-23T10:00"})
    track(request, "ad_landing_booking", {"plan": "basic"}, conversion=True)  # needs marketing
    track(request, "reservation", {"treatment": "futae"}, value=198000, currency="JPY")
    identify(request, account.id, {"age": 34, "zip": "170-0013", "gender": "f"})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from consent_mw.capture.events import money
from consent_mw.state import SCOPE_KEY, RequestContext

log = logging.getLogger(__name__)


def _context(request: Any) -> tuple[RequestContext | None, Mapping[str, Any] | None]:
    scope = getattr(request, "scope", request)
    if not isinstance(scope, Mapping):
        return None, None
    ctx = scope.get(SCOPE_KEY)
    return (ctx if isinstance(ctx, RequestContext) else None), scope


def track(request: Any, name: str, properties: Mapping[str, Any] | None = None, *,
          conversion: bool = False, value: float | int | Decimal | None = None,
          currency: str = "JPY") -> None:
    """A custom event (needs analytics); ``conversion=True`` also needs marketing.

    Properties: at most 32 scalar values; strings are scrubbed of e-mails, phone and card
    numbers. ``value``: what the event is worth (0 to 10^12, kept to the cent) in
    ``currency`` (ISO 4217); the dashboards sum it per goal, channel and campaign. A value
    that is not one (negative, NaN, a string) is left out; the event is still sent.
    """
    try:
        ctx, scope = _context(request)
        if ctx is None or ctx.capture is None:
            return
        ctx.capture.custom(ctx, name, properties or {}, conversion=conversion, scope=scope,
                           value=money(value, currency))
    except Exception:
        log.exception("track() failed")


def identify(request: Any, user_id: str, traits: Mapping[str, Any] | None = None) -> None:
    """Link this visitor to an account; the id is sent only as a keyed hash.

    Traits kept: ``age_band`` (or ``age``, banded as ``"30-39"``), ``zip3`` (or ``zip``, first
    3 digits), ``gender``, ``occupation``. Anything else is dropped.
    """
    try:
        ctx, scope = _context(request)
        if ctx is None or ctx.capture is None:
            return
        ctx.capture.identify(ctx, user_id, traits or {}, scope=scope)
    except Exception:
        log.exception("identify() failed")
