"""Capture pipeline (interface stub; the capture work replaces the body, not the signatures)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consent_mw.settings import Settings
from consent_mw.state import RequestContext


class Capture:
    """Consent-gated events into a bounded queue, flushed off the request path."""

    def __init__(self, settings: Settings, *, transport: Any = None) -> None:
        self.settings = settings
        self.transport = transport

    def page(self, ctx: RequestContext, scope: Mapping[str, Any], status: int) -> None:
        """Snapshot one response for capture; never raises, never blocks."""

    def custom(self, ctx: RequestContext, name: str, properties: Mapping[str, Any]) -> None:
        """A custom event from the site's code (``track``)."""

    def identify(self, ctx: RequestContext, user_id: str, traits: Mapping[str, Any]) -> None:
        """Link the visitor to an account (``identify``)."""

    def record(self, record: Mapping[str, Any]) -> None:
        """A consent record (wire RECORD_SCHEMA), through the same pipeline as events."""

    def write(self, record: Mapping[str, Any]) -> None:
        """Record-sink protocol: the pipeline is a consent-record sink."""
        self.record(record)

    def start(self) -> None:
        """Start the background worker."""

    def force_flush(self, timeout: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush what is queued, then stop."""

    def stats(self) -> dict[str, Any]:
        return {"queued": 0, "sent": 0, "dropped": {}}
