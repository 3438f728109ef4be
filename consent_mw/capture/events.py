"""Events from the site's own code: ``track()`` (custom events and conversions),
``identify()`` (an account linked to the visitor) and the interaction beacon's reports. Pure.

``Capture.custom``, ``Capture.identify`` and ``Capture.interaction`` queue a
:class:`SiteEvent` only under analytics consent (a conversion also under marketing), with the
account id already a keyed hash; the worker turns it into a wire event here, its properties,
traits, paths and targets cleaned (scrubbed and capped). Pages are not site events: see
``consent_mw.capture.hits``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from consent_mw import wire
from consent_mw.capture.fields import clean_host, clean_text, json_size
from consent_mw.capture.traits import clean_traits
from consent_mw.scrub import scrub_capped

MAX_PROPERTIES = 32
MAX_KEY = 64


def props_size(values: Mapping[str, Any] | None) -> int:
    """What the site's properties or traits weigh in the queue (the build keeps 32 of them,
    each capped, but the queue holds them as given)."""
    if not values:
        return 0
    return sum(len(str(k)) + (len(v) if isinstance(v, str) else 16) for k, v in values.items())


def page_of(scope: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """The host and path a site event happened on, from its request scope."""
    if not scope:
        return None, None
    host = next((v.decode("latin-1") for k, v in scope.get("headers") or ()
                 if k == b"host"), None)
    return host, scope.get("path")


class Interaction(NamedTuple):
    """One beacon report, classified by ``consent_mw.consent.beacon``: where it happened and
    what kind of thing was used, never what was typed or dialled. The paths are as the
    visitor's browser gave them (percent-decoded, without query or fragment); the build
    scrubs and caps every string."""

    name: str  # one of wire.INTERACTIONS
    page: str  # the path of the page it happened on
    target_host: str | None = None
    target_path: str | None = None
    target: str | None = None  # app name, file extension or form id
    scroll_depth: int | None = None  # already in quarters (wire.scroll_step)
    engaged_seconds: int | None = None  # already capped (wire.MAX_ENGAGED_SECONDS)

    @property
    def size(self) -> int:
        """What it weighs in the queue, beyond the item's overhead."""
        return sum(len(v) for v in (self.page, self.target_host, self.target_path,
                                    self.target) if v)


@dataclass(slots=True, kw_only=True)
class SiteEvent:
    """A ``track()`` or ``identify()`` call, as queued: the values as the site gave them."""

    kind: str  # "custom" | "identify" | "interaction"
    ts: int  # ms
    consent: Mapping[str, bool]
    gpc: bool = False
    visitor_id: str | None = None
    session_id: str | None = None
    consent_id: str | None = None
    # custom
    name: str | None = None
    properties: Mapping[str, Any] | None = None
    conversion: bool = False
    value: tuple[float, str] | None = None  # (amount, currency), checked by :func:`money`
    host: str | None = None  # of the page the call was made from, when given its scope
    path: str | None = None
    # identify
    user_id: str | None = None  # already the keyed hash
    traits: Mapping[str, Any] | None = None  # as given; cleaned by the build
    # interaction (its page in host and path)
    interaction: Interaction | None = None


def money(value: object, currency: object) -> tuple[float, str] | None:
    """(amount to the cent, currency) of a ``track()`` value, or None for no value or one
    that is not an amount (negative, too large, NaN, a bool, a string)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    amount = float(value)
    if not math.isfinite(amount) or not 0 <= amount <= wire.MAX_VALUE:
        return None
    if not isinstance(currency, str) or not re.fullmatch(wire.CURRENCY_PATTERN, currency):
        return None
    return round(amount, 2), currency


def clean_properties(props: Mapping[str, Any] | None) -> dict[str, str | int | float | bool | None]:
    """At most 32 scalar properties; strings scrubbed and capped; other types dropped."""
    out: dict[str, str | int | float | bool | None] = {}
    if not props:
        return out
    for key, value in props.items():
        if len(out) >= MAX_PROPERTIES:
            break
        if not isinstance(key, str) or not key:
            continue
        name = scrub_capped(key, MAX_KEY)
        if value is None or isinstance(value, bool | int):
            out[name] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                out[name] = value
        elif isinstance(value, str):
            out[name] = scrub_capped(value, wire.MAX_TEXT)
    return out


def _event(ev: SiteEvent, event_id: str) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": event_id, "ts": ev.ts, "kind": ev.kind,
                             "consent": dict(ev.consent)}
    if ev.kind == "custom":
        event["name"] = clean_text(ev.name, 128) or "event"
        event["properties"] = clean_properties(ev.properties)
        event["host"] = clean_host(ev.host)
        event["path"] = clean_text(ev.path, wire.MAX_PATH) if ev.path else None
        if ev.conversion:
            event["conversion"] = True
        if ev.value is not None:
            event["value"], event["currency"] = ev.value
    elif ev.kind == "interaction" and ev.interaction is not None:
        event.update(interaction_fields(ev.interaction, ev.host))
    elif ev.kind == "identify":
        event["name"] = "identify"
        event["user_id"] = ev.user_id
        event["traits"] = clean_traits(ev.traits)
    else:
        raise ValueError(f"unknown site event kind {ev.kind!r}")
    # The ids an event carries under analytics; absent ids are left out, not null.
    event["visitor_id"] = ev.visitor_id
    event["session_id"] = ev.session_id
    event["consent_id"] = ev.consent_id
    event["gpc"] = ev.gpc
    return event


def interaction_fields(it: Interaction, host: str | None) -> dict[str, Any]:
    """An interaction's wire fields: its page like a pageview's (host, scrubbed path), its
    target scrubbed and capped like every kept string."""
    if it.name not in wire.INTERACTIONS:
        raise ValueError(f"unknown interaction {it.name!r}")
    return {
        "name": it.name,
        "host": clean_host(host),
        "path": clean_text(it.page, wire.MAX_PATH) or "/",
        "target_host": clean_host(it.target_host),
        "target_path": clean_text(it.target_path, wire.MAX_PATH),
        "target": clean_text(it.target, 128),
        "scroll_depth": (None if it.scroll_depth is None
                         else wire.scroll_step(it.scroll_depth)),
        "engaged_seconds": (None if it.engaged_seconds is None
                            else max(0, min(it.engaged_seconds, wire.MAX_ENGAGED_SECONDS))),
    }


def build_site_event(ev: SiteEvent, event_id: str) -> tuple[dict[str, Any], int]:
    """The wire event for ``ev`` (None-valued fields left out) and its encoded size."""
    event = {k: v for k, v in _event(ev, event_id).items() if v is not None}
    return event, json_size(event)
