"""Servers for the memory attacks, each in its own process so its RSS is its own.

Used by ``bench/bench_attacks.py`` and ``tests/security/test_memory.py``.
Usage: attack_servers.py KIND PORT. Serves with uvicorn (httptools, uvloop: the production shape)
until killed; prints "ready" once listening.

- ``web``: a site behind ConsentMiddleware, capture on, its transport stalled (the worker
  blocks on the first batch, as when a collector stops answering), so whatever capture
  queues stays queued: the queue's byte bound is what keeps memory flat.
- ``web-flowing``: the same with a transport that takes every batch at once: what the
  worker keeps (its caches) is what stays.
- ``dashboards``: the dashboards app with one account per role (password ``PASSWORD``); its
  store is never reached by a login.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route

if TYPE_CHECKING:
    from consent_mw.capture.transport import SendResult, Suppressions

PASSWORD = "security-test-password-1"
SECRET = "security-test-secret-0123456789abcdef"


class StalledTransport:
    """A collector that never answers: the capture worker waits on it forever."""

    def __init__(self) -> None:
        self._never = threading.Event()

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        from consent_mw.capture.transport import TransportError

        self._never.wait()
        raise TransportError("collector timed out", retryable=True)  # released by close()

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        return None

    def close(self) -> None:
        self._never.set()


class DiscardingTransport:
    """A collector that takes everything at once."""

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        from consent_mw.capture.transport import SendResult

        return SendResult()

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        return None

    def close(self) -> None:
        return None


def web(transport: Any = None) -> Any:
    from consent_mw import ConsentMiddleware
    from consent_mw.config import Secret
    from consent_mw.settings import Settings

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse('<!doctype html><html lang="ja"><body><p>ok</p></body></html>')

    site = Starlette(routes=[Route("/", page)])
    settings = Settings(secret_keys=(Secret(SECRET),), policy_text="policy")
    return ConsentMiddleware(site, settings=settings,
                             transport=transport if transport is not None
                             else StalledTransport())


def dashboards() -> Any:
    try:
        from collector.accounts import demo_accounts
    except ImportError:  # an older checkout, for before/after figures
        from dashboards.auth import demo_users  # type: ignore[attr-defined]

        def demo_accounts(password: str) -> Any:  # type: ignore[misc]
            return demo_users(password)[0]
    from dashboards.app import create_dashboards
    from dashboards.backends import CollectorBackend
    from dashboards.settings import DashboardSettings

    settings = DashboardSettings(users=demo_accounts(PASSWORD))
    backend = CollectorBackend("http://127.0.0.1:9", "unused")
    return Starlette(routes=[Mount("/dashboards", app=create_dashboards(settings, backend))])


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app = {"web": web, "web-flowing": lambda: web(DiscardingTransport()),
           "dashboards": dashboards}[kind]()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            http="httptools", loop="uvloop", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    threading.Thread(target=_announce, args=(server,), daemon=True).start()
    server.run()


def _announce(server: uvicorn.Server) -> None:
    import time

    while not server.started:
        time.sleep(0.02)
    print("ready", flush=True)


if __name__ == "__main__":
    main()
