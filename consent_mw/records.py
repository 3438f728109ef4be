"""Consent records: the server-side proof of what was shown and decided (wire RECORD_SCHEMA).

``build_record`` is pure. A sink is any object with ``write(record)``: :class:`MemorySink`,
:class:`JsonlSink`, or the capture pipeline (``Capture.write``). Records hold no IP address and
no full user agent: only the browser/OS family.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from consent_mw import useragent
from consent_mw.consent import gcm_signals, now_ms
from consent_mw.settings import Settings
from consent_mw.state import ConsentState


class RecordSink(Protocol):
    def write(self, record: dict[str, Any]) -> None: ...


def ua_family(user_agent: str) -> str | None:
    """``Browser/OS`` families only, e.g. ``Chrome/Linux``; never the full string."""
    return useragent.family(user_agent)


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
) -> dict[str, Any]:
    """One record for ``state`` (whose ``consent_id`` must be set)."""
    if not state.consent_id:
        raise ValueError("a consent record needs a consent id")
    ts = now_ms() if ts is None else ts
    decided_at = state.decided_at if state.decided and state.decided_at else ts
    return {
        "record_id": str(uuid.uuid4()),
        "consent_id": state.consent_id,
        "visitor_id": visitor_id,
        "previous_record_id": previous_record_id,
        "ts": ts,
        "event": event,
        "method": method,
        "component": component,
        "policy_version": settings.policy_version[:128],
        "policy_hash": settings.policy_hash,
        "locale": (locale or settings.default_locale)[:16],
        "categories": {c.name: state.granted(c.name) for c in settings.categories},
        "services": {k: bool(v) for k, v in state.services.items()},
        "gcm": gcm_signals(state, settings),
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
