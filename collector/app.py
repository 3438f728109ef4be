"""The collector's HTTP face: the routes of ingest, privacy and query, health, metrics, OpenAPI.

Each capability builds its own routes from the collaborators it needs
(``collector.ingest.api``, ``collector.privacy.api``, ``collector.query.api``); this module
only puts them in one Starlette app. Each endpoint's docstring carries its OpenAPI operation as
YAML after ``---`` (``collector/openapi.py`` reads them); a test checks every route is
described. Every error answers with the one body of ``collector.web.error_response``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector import staff
from collector.ingest import api as ingest_api
from collector.ingest.pipeline import Ingest
from collector.logins import Logins
from collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from collector.metrics import CollectorMetrics
from collector.openapi import openapi_endpoint
from collector.privacy import api as privacy_api
from collector.privacy.evidence import Notices
from collector.privacy.evidence_api import evidence_route
from collector.privacy.operations import Privacy
from collector.query import api as query_api
from collector.requests import api as requests_api
from collector.requests.desk import Desk
from collector.settings import CollectorSettings
from collector.store import Store
from collector.web import error_response


def build_app(*, settings: CollectorSettings, metrics: CollectorMetrics, ingest: Ingest,
              privacy: Privacy, desk: Desk, notices: Notices | None = None,
              store: Callable[[], Store], logins: Logins,
              start: Callable[[], None], stop: Callable[[], None]) -> Starlette:
    """The app; its lifespan calls ``start`` and ``stop`` (a mounted app's lifespan does not
    run, so whoever mounts it calls them). ``store()`` is the open store, or raises
    ``StoreError`` while the collector is stopped."""

    async def healthz(request: Request) -> Response:
        """Liveness and store reachability.
        ---
        summary: Health check
        responses:
          200: {description: The store answers}
          503: {description: Not started or the store does not answer}
        """
        try:
            await run_in_threadpool(lambda: store().scalar("SELECT 1"))
        except Exception as exc:
            return error_response(503, "store_unavailable", str(exc)[:200])
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus metrics (counts only, no personal data).
        ---
        summary: Prometheus metrics
        responses:
          200: {description: Prometheus text exposition format, content: {text/plain: {}}}
        """
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    routes: list[BaseRoute] = [
        *ingest_api.build_routes(ingest, settings, metrics),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *privacy_api.build_routes(privacy, settings, logins),
        *requests_api.build_routes(desk, settings),
        evidence_route(store, settings, notices),
        *query_api.build_routes(store, settings.query_token),
        *staff.build_routes(store, settings.query_token),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(start)
        try:
            yield
        finally:
            await run_in_threadpool(stop)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.routes.append(Route("/openapi.json", openapi_endpoint(app), methods=["GET"]))
    return app
