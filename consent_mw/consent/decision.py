"""Pure consent decisions: cookie payload → state, GPC, Consent Mode signals, applying a choice.

Nothing here does I/O; the middleware and the endpoints feed it parsed inputs. The rule
everywhere is *unknown = refused*: anything that is not an explicit, valid grant is a refusal.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from consent_mw.consent.categories import GCM_SIGNALS, Category
from consent_mw.errors import ConsentMWError
from consent_mw.ids import is_valid_id, new_consent_id
from consent_mw.settings import Settings
from consent_mw.state import ConsentState

PAYLOAD_VERSION = 1
ACTIONS = ("accept_all", "reject_all")
#: Consent Mode signals GPC turns off: sale/sharing for advertising.
GPC_SIGNALS = frozenset({"ad_storage", "ad_user_data", "ad_personalization"})
METHODS = ("accept_all", "reject_all", "save", "gpc", "api", "none")


class ConsentError(ConsentMWError, ValueError):
    """A consent submission that cannot be applied; the message says why (answered as 400)."""


def now_ms() -> int:
    return int(time.time() * 1000)


def gpc_categories(settings: Settings) -> frozenset[str]:
    """Categories GPC refuses: ``marketing`` and any category driving an ad signal."""
    return frozenset(
        c.name for c in settings.categories
        if not c.required and (c.name == "marketing" or GPC_SIGNALS & set(c.gcm))
    )


def undecided(settings: Settings) -> ConsentState:
    """No decision yet: only the required categories, no services."""
    return ConsentState(
        decided=False,
        categories={c.name: c.required for c in settings.categories},
        services={s.name: False for c in settings.categories for s in c.services},
        policy_version=settings.policy_version,
    )


def _bool_map(value: Any, names: set[str]) -> dict[str, bool] | None:
    """A dict with exactly ``names`` as keys and real booleans as values, else None."""
    if not isinstance(value, dict) or set(value) != names:
        return None
    if not all(isinstance(v, bool) for v in value.values()):
        return None
    return {str(k): bool(v) for k, v in value.items()}


def parse_payload(payload: Any, settings: Settings) -> ConsentState | None:
    """The state a verified cookie payload describes, or None when it is not a current decision.

    Stale policy versions, missing or extra categories, non-boolean flags and required
    categories marked refused all mean "no decision": the visitor sees the banner again.
    """
    if not isinstance(payload, dict) or payload.get("v") != PAYLOAD_VERSION:
        return None
    if payload.get("pv") != settings.policy_version:
        return None
    cid = payload.get("cid")
    if not is_valid_id(cid):
        return None
    categories = _bool_map(payload.get("c"), set(settings.category_names))
    services = _bool_map(
        payload.get("s"), {s.name for c in settings.categories for s in c.services}
    )
    if categories is None or services is None:
        return None
    if not all(categories[c.name] for c in settings.categories if c.required):
        return None
    decided_at = payload.get("t")
    if not isinstance(decided_at, int) or isinstance(decided_at, bool) or decided_at < 0:
        return None
    method = payload.get("m")
    if method not in METHODS:
        return None
    flags = [payload.get(k, False) for k in ("ga", "gc")]
    if not all(isinstance(f, bool) for f in flags):
        return None
    # A service is only granted under a granted category.
    by_service = {s.name: c.name for c in settings.categories for s in c.services}
    services = {s: v and categories[by_service[s]] for s, v in services.items()}
    return ConsentState(
        decided=True,
        categories=categories,
        services=services,
        consent_id=str(cid),
        policy_version=settings.policy_version,
        decided_at=decided_at,
        gpc_applied=flags[0],
        gpc_conflict=flags[1],
        method=str(method),
    )


def to_payload(state: ConsentState, *, gpc_recorded: bool = False,
               record_id: str | None = None,
               visitor_binding: str | None = None) -> dict[str, Any]:
    """The cookie payload of a decided state (inverse of :func:`parse_payload`).

    ``visitor_binding`` (``ids.visitor_binding`` of the visitor id issued with this decision)
    is what makes a ``cmw_vid`` cookie count: an id the payload does not bind is ignored.
    """
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "cid": state.consent_id,
        "pv": state.policy_version,
        "c": dict(state.categories),
        "s": dict(state.services),
        "t": state.decided_at or 0,
        "m": state.method or "none",
        "ga": state.gpc_applied,
        "gc": state.gpc_conflict,
    }
    if gpc_recorded:
        payload["gr"] = True
    if record_id:
        payload["r"] = record_id
    if visitor_binding:
        payload["vb"] = visitor_binding
    return payload


def gpc_from_headers(values: list[bytes]) -> bool:
    """True when any ``Sec-GPC`` header is exactly ``1`` (GPC spec); anything else is ignored."""
    return any(v.strip() == b"1" for v in values)


def apply_gpc(state: ConsentState, settings: Settings, gpc: bool) -> ConsentState:
    """The effective state for a request: GPC refuses marketing unless the visitor overrode it."""
    if not gpc:
        return replace(state, gpc=False)
    if state.gpc_conflict:
        return replace(state, gpc=True)
    refused = gpc_categories(settings)
    categories = {k: (v and k not in refused) for k, v in state.categories.items()}
    by_service = {s.name: c.name for c in settings.categories for s in c.services}
    services = {k: v and categories.get(by_service.get(k, ""), False)
                for k, v in state.services.items()}
    return replace(state, gpc=True, gpc_applied=True, categories=categories, services=services)


def category_gate(settings: Settings, name: str, signal: str) -> tuple[str, ...]:
    """The categories that stand for ``name``: itself, or, when a site renamed it, whichever
    optional categories drive the Consent Mode ``signal``."""
    if name in settings.category_names:
        return (name,)
    return tuple(c.name for c in settings.categories if signal in c.gcm and not c.required)


def analytics_gate(settings: Settings) -> tuple[str, ...]:
    """The categories that stand for analytics (ids, detailed capture)."""
    return category_gate(settings, "analytics", "analytics_storage")


def marketing_gate(settings: Settings) -> tuple[str, ...]:
    """The categories that stand for marketing (campaign fields, conversions)."""
    return category_gate(settings, "marketing", "ad_storage")


def analytics_granted(state: ConsentState, settings: Settings) -> bool:
    """Whether visitor/session cookies may exist (see :func:`analytics_gate`)."""
    return state.granted_any(analytics_gate(settings))


def gcm_signals(state: ConsentState, settings: Settings) -> dict[str, str]:
    """The seven Consent Mode v2 signals: granted only when a granted category drives it."""
    granted: set[str] = set()
    for category in settings.categories:
        if state.granted(category.name):
            granted.update(category.gcm)
    return {s: "granted" if s in granted else "denied" for s in GCM_SIGNALS}


def gcm_default() -> dict[str, str]:
    """Consent Mode ``default``: everything denied except ``security_storage``."""
    return {s: "granted" if s == "security_storage" else "denied" for s in GCM_SIGNALS}


def _category(settings: Settings, name: str) -> Category:
    for c in settings.categories:
        if c.name == name:
            return c
    raise ConsentError(f"unknown category {name!r}")


def decide(
    settings: Settings,
    previous: ConsentState,
    *,
    action: str | None = None,
    categories: Mapping[str, object] | None = None,
    services: Mapping[str, object] | None = None,
    gpc: bool = False,
    method: str | None = None,
    now: int | None = None,
) -> ConsentState:
    """Apply one submission to ``previous`` and return the new decided state.

    ``action`` is ``accept_all`` or ``reject_all``; otherwise ``categories`` (name → bool)
    lists the grants, missing names are refused and unknown names raise :class:`ConsentError`.
    ``services`` absent: each service follows its category; present: missing = refused.
    Under GPC, ``accept_all`` still refuses marketing; only an explicit category grant
    overrides GPC, and is marked ``gpc_conflict``.
    """
    svc_category = {s.name: c.name for c in settings.categories for s in c.services}
    if action is not None:
        if action not in ACTIONS:
            raise ConsentError(f"unknown action {action!r}; expected accept_all or reject_all")
        if categories is not None or services is not None:
            raise ConsentError("send either an action or categories, not both")
        grant = action == "accept_all"
        cats = {c.name: grant or c.required for c in settings.categories}
        svcs = {s: grant for s in svc_category}
        how = method or action
    else:
        if categories is None:
            raise ConsentError("expected an action or a categories object")
        cats = {c.name: c.required for c in settings.categories}
        for name, value in categories.items():
            category = _category(settings, str(name))
            if not isinstance(value, bool):
                raise ConsentError(f"category {name!r} must be true or false")
            cats[category.name] = value or category.required
        if services is None:
            svcs = {s: cats[c] for s, c in svc_category.items()}
        else:
            svcs = {s: False for s in svc_category}
            for name, value in services.items():
                if name not in svc_category:
                    raise ConsentError(f"unknown service {name!r}")
                if not isinstance(value, bool):
                    raise ConsentError(f"service {name!r} must be true or false")
                svcs[str(name)] = value
        how = method or "save"
    svcs = {s: v and cats[svc_category[s]] for s, v in svcs.items()}

    gpc_applied = False
    gpc_conflict = False
    if gpc:
        refused = gpc_categories(settings)
        explicit = action is None and any(cats[name] for name in refused)
        if explicit:
            gpc_conflict = True
        else:
            gpc_applied = bool(refused)
            for name in refused:
                cats[name] = False
            svcs = {s: v and cats[svc_category[s]] for s, v in svcs.items()}
    return ConsentState(
        decided=True,
        categories=cats,
        services=svcs,
        consent_id=previous.consent_id or new_consent_id(),
        policy_version=settings.policy_version,
        decided_at=now if now is not None else now_ms(),
        gpc=gpc,
        gpc_applied=gpc_applied,
        gpc_conflict=gpc_conflict,
        method=how,
    )


def record_event(previous: ConsentState, new: ConsentState, settings: Settings) -> str:
    """``decided`` for a first choice, ``withdrawn`` when an earlier grant is taken back,
    else ``updated``."""
    if not previous.decided:
        return "decided"
    optional = [c.name for c in settings.categories if not c.required]
    if any(previous.granted(n) and not new.granted(n) for n in optional):
        return "withdrawn"
    return "updated"
