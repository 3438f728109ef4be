"""Consent records: the server-side proof of what was shown and decided (wire RECORD_SCHEMA).

``build_record`` is pure. A sink is any object with ``write(record)``: :class:`MemorySink`,
:class:`JsonlSink`, or the capture pipeline (``Capture.write``). Records hold no IP address and
no full user agent: only the browser/OS family.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from consent_mw import useragent
from consent_mw.consent.decision import gcm_signals, now_ms
from consent_mw.ids import random_uuid
from consent_mw.settings import Settings
from consent_mw.state import ConsentState


class RecordSink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


def ua_family(user_agent: str) -> str | None:
    """``Browser/OS`` families only, e.g. ``Chrome/Linux``; never the full string."""
    return useragent.family(user_agent)


#: (categories, gcm) per Settings and set of granted categories: a record's nested dicts are
#: the same for everyone who decided alike, and built records are only ever read.
_SHARED: dict[tuple[int, frozenset[str]], tuple[Settings, dict[str, bool], dict[str, str]]] = {}
_SHARED_MAX = 256


def _shared_parts(settings: Settings, state: ConsentState
                  ) -> tuple[dict[str, bool], dict[str, str]]:
    key = (id(settings), state.granted_names)
    entry = _SHARED.get(key)
    if entry is None or entry[0] is not settings:  # an id reused by another Settings
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        entry = _SHARED[key] = (
            settings, {c.name: state.granted(c.name) for c in settings.categories},
            gcm_signals(state, settings))
    return entry[1], entry[2]


def build_record(
    settings: Settings,
    state: ConsentState,
    *,
    event: str,
    method: str,
    component: str,
    locale: str | None = None,
    host: str | None = None,
    path: str | None = None,
    user_agent: str = "",
    visitor_id: str | None = None,
    previous_record_id: str | None = None,
    ts: int | None = None,
    consent_id: str | None = None,
) -> dict[str, Any]:
    """One record for ``state`` under ``consent_id`` (by default the state's own, which must
    then be set)."""
    consent_id = consent_id or state.consent_id
    if not consent_id:
        raise ValueError("a consent record needs a consent id")
    ts = now_ms() if ts is None else ts
    decided_at = state.decided_at if state.decided and state.decided_at else ts
    categories, gcm = _shared_parts(settings, state)
    return {
        "record_id": random_uuid(),
        "consent_id": consent_id,
        "visitor_id": visitor_id,
        "previous_record_id": previous_record_id,
        "ts": ts,
        "event": event,
        "method": method,
        "component": component,
        "policy_version": settings.policy_version[:128],
        "policy_hash": settings.policy_hash,
        "locale": (locale or settings.default_locale)[:16],
        "categories": categories,
        "services": {k: bool(v) for k, v in state.services.items()} if state.services else {},
        "gcm": gcm,
        "gpc": state.gpc,
        "gpc_conflict": state.gpc_conflict,
        "host": (host or None) and host[:253],
        "path": (path or None) and path.split("?", 1)[0][:2048],
        "ua_family": ua_family(user_agent),
        "expires_at": decided_at + settings.consent_max_age * 1000 if state.decided else None,
    }


class MemorySink:
    """Keeps records in a list (tests, and the default when there is no capture pipeline)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.records: list[dict[str, Any]] = []
        self._limit = limit
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        with self._lock:
            self.records.append(dict(record))
            if len(self.records) > self._limit:
                del self.records[: len(self.records) - self._limit]


class JsonlSink:
    """Appends one JSON object per line; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
