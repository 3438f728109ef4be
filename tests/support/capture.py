"""Capture test helpers: request contexts built directly, scopes, a recording transport.

Imported by name (pytest puts this directory on sys.path).

The consent middleware is not involved: a RequestContext with a hand-made ConsentState is all
capture reads, so these tests do not depend on the middleware's timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from consent_mw.capture.transport import InMemoryTransport, SendResult, TransportError
from consent_mw.settings import Settings
from consent_mw.state import ConsentState, RequestContext

CATEGORIES = ("necessary", "analytics", "location", "marketing")
VISITOR = "0123456789abcdef0123456789abcdef"
SESSION = "0123456789abcdef"
CONSENT_ID = "5f0c7e0e-1d2b-4c35-9a36-1e2f3a4b5c6d"


def consent_state(granted: Iterable[str], *, decided: bool = True, gpc: bool = False,
                  consent_id: str | None = CONSENT_ID) -> ConsentState:
    allowed = set(granted) | {"necessary"}
    return ConsentState(
        decided=decided,
        categories={c: c in allowed for c in CATEGORIES},
        consent_id=consent_id if decided else None,
        policy_version="2024-04-23+abc",
        gpc=gpc,
    )


def make_ctx(settings: Settings, granted: Iterable[str] = (), *, decided: bool = True,
             capture: Any = None, visitor_id: str = VISITOR, client_ip: str | None = None,
             gpc: bool = False) -> RequestContext:
    state = consent_state(granted, decided=decided, gpc=gpc)
    analytics = state.granted("analytics")
    return RequestContext(
        settings=settings,
        state=state,
        locale="ja",
        visitor_id=visitor_id if analytics else None,
        session_id=SESSION if analytics else None,
        client_ip=client_ip,
        capture=capture,
    )


def make_scope(path: str = "/", query: str = "", headers: dict[str, str] | None = None,
               client: tuple[str, int] | None = ("203.0.113.7", 50000),
               method: str = "GET") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode("latin-1"),
        "headers": [(k.lower().encode("latin-1"), v.encode("utf-8"))
                    for k, v in (headers or {}).items()],
        "client": client,
        "server": ("clinic.example.jp", 443),
        "scheme": "https",
    }


class RecordingTransport(InMemoryTransport):
    """An in-memory transport that fails on demand: ``fail`` makes the next sends raise,
    ``result`` is what a send answers."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: Callable[[], Exception | None] = lambda: None
        self.result = SendResult()

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        error = self.fail()
        if error is not None:
            raise error
        super().send(events, records, batch_id=batch_id, sent_at=sent_at)
        return self.result


def failures(capture: Any) -> int:
    """What ``capture.stats()`` counts as failed: errors dropping items, background errors."""
    stats = capture.stats()
    return int(stats["dropped"]["error"] + stats["worker_errors"])


def down(retry_after: float | None = None) -> TransportError:
    return TransportError("down", retryable=True, retry_after=retry_after, status=503)
