"""The request-path side of the site's own events: ``track()``, ``identify()`` and the
interaction beacon's reports.

Each checks the visitor's consent and suppression and queues a :class:`SiteEvent` of
references; the worker builds it (``capture.events``). Counted, never raised: a refusal is
``no_consent`` (or ``suppressed``), exactly alike for the three, since an interaction is a
custom event the site did not have to write. :class:`~consent_mw.capture.pipeline.Capture`
owns one and calls it only while capture is on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from consent_mw.capture.counters import Counters
from consent_mw.capture.events import Interaction, SiteEvent, page_of, props_size
from consent_mw.capture.suppression import SuppressionList
from consent_mw.ids import hash_user_id
from consent_mw.state import RequestContext

log = logging.getLogger(__name__)

#: What a queued item costs beyond the request data it holds (the tuple, its references).
ITEM_OVERHEAD = 256
_time_ns = time.time_ns


class SiteEvents:
    """Admits and queues site events. ``analytics`` and ``marketing``: the categories that
    stand for them (``decision.analytics_gate``); ``emit``: the queue's ``emit``."""

    def __init__(self, *, analytics: tuple[str, ...], marketing: tuple[str, ...],
                 hash_key: bytes, suppressions: SuppressionList, counters: Counters,
                 emit: Callable[[SiteEvent, int], bool]) -> None:
        self._analytics = analytics
        self._marketing = marketing
        self._hash_key = hash_key
        self._suppressions = suppressions
        self._counters = counters
        self._emit = emit

    def custom(self, ctx: RequestContext, name: str, properties: Mapping[str, Any], *,
               conversion: bool = False, scope: Mapping[str, Any] | None = None,
               value: tuple[float, str] | None = None) -> None:
        try:
            if self._admitted(ctx, marketing=conversion):
                host, path = page_of(scope)
                self._emit(self._event(
                    ctx, "custom", path=path, host=host, name=str(name),
                    properties=dict(properties or {}), conversion=conversion, value=value,
                ), ITEM_OVERHEAD + len(path or "") + len(str(name)) + props_size(properties))
        except Exception:
            log.exception("capture.custom failed")
            self._counters.drop("error")

    def interaction(self, ctx: RequestContext, report: Interaction, *,
                    host: str | None = None) -> bool:
        try:
            if not self._admitted(ctx):
                return False
            return self._emit(self._event(ctx, "interaction", path=report.page, host=host,
                                          interaction=report),
                              ITEM_OVERHEAD + len(host or "") + report.size)
        except Exception:
            log.exception("capture.interaction failed")
            self._counters.drop("error")
            return False

    def identify(self, ctx: RequestContext, user_id: str, traits: Mapping[str, Any]) -> None:
        try:
            if not ctx.state.granted_any(self._analytics):
                self._counters.drop("no_consent")
                return
            if user_id is None or str(user_id) == "":
                return
            user_hash = hash_user_id(self._hash_key, str(user_id))
            if not self._admitted(ctx, user_hash=user_hash):
                return
            self._emit(self._event(ctx, "identify", user_id=user_hash,
                                   traits=dict(traits or {})),
                       ITEM_OVERHEAD + props_size(traits))
        except Exception:
            log.exception("capture.identify failed")
            self._counters.drop("error")

    def _admitted(self, ctx: RequestContext, *, marketing: bool = False,
                  user_hash: str | None = None) -> bool:
        """Analytics granted (and marketing, when asked) and no suppressed id; why not is
        counted."""
        state = ctx.state
        if not state.granted_any(self._analytics) or (
                marketing and not state.granted_any(self._marketing)):
            self._counters.drop("no_consent")
            return False
        if self._suppressions.is_suppressed(visitor_id=ctx.visitor_id, user_id_hash=user_hash,
                                            consent_id=state.consent_id):
            self._counters.drop("suppressed")
            return False
        return True

    @staticmethod
    def _event(ctx: RequestContext, kind: str, **fields: Any) -> SiteEvent:
        state = ctx.state
        return SiteEvent(kind=kind, ts=_time_ns() // 1_000_000, consent=state.categories,
                         gpc=state.gpc, visitor_id=ctx.visitor_id, session_id=ctx.session_id,
                         consent_id=state.consent_id, **fields)
