"""The consent state of one request, shared by the consent layer and capture."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both import this module
    from consent_mw.capture.pipeline import Capture
    from consent_mw.settings import Settings

#: Key under which the middleware stores the RequestContext in the ASGI scope.
SCOPE_KEY = "consent_mw"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentState:
    """What the visitor decided, as read from a valid, current ``cmw_consent`` cookie.

    ``categories`` names every configured category explicitly; anything not granted is False.
    An undecided state grants only the required categories.
    """

    decided: bool
    categories: Mapping[str, bool]
    services: Mapping[str, bool] = field(default_factory=dict)
    consent_id: str | None = None
    policy_version: str = ""
    decided_at: int | None = None  # ms since epoch
    gpc: bool = False  # this request carries Sec-GPC: 1
    gpc_applied: bool = False  # marketing is refused because of GPC
    gpc_conflict: bool = False  # the visitor explicitly opted in despite GPC
    method: str | None = None  # how the decision was made: accept_all, reject_all, save, ...
    #: The granted categories, for checks that run on every request (set from ``categories``).
    granted_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        granted = frozenset(name for name, on in self.categories.items() if on)
        object.__setattr__(self, "granted_names", granted)

    def granted(self, category: str) -> bool:
        return category in self.granted_names

    def granted_any(self, categories: tuple[str, ...]) -> bool:
        return not self.granted_names.isdisjoint(categories)

    def service_granted(self, category: str, service: str) -> bool:
        return self.granted(category) and bool(self.services.get(service, False))


@dataclass(slots=True)  # not kw_only: keyword calls cost ~3x, and one is made per request
class RequestContext:
    """Per-request handle the site's code reaches through ``request.scope[SCOPE_KEY]``.

    ``track()`` and ``identify()`` use it to emit events under the request's consent.
    """

    settings: Settings
    state: ConsentState
    locale: str
    visitor_id: str | None = None  # only when analytics is granted
    session_id: str | None = None
    client_ip: str | None = None
    capture: Capture | None = None  # when capture is on
