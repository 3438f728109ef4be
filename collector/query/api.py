"""``POST /v1/query``: the catalogue, run for dashboards in another process.

Dashboards that cannot open the store themselves (an embedded store another process owns)
name a catalogue query and its parameters; SQL is never accepted. Enabled by ``query_token``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.query.catalogue import params_for
from collector.query.params import QueryError
from collector.query.run import run
from collector.store import Store
from collector.web import error_response, token_json
from consent_mw.config import Secret

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024


def build_routes(store: Callable[[], Store], query_token: Secret) -> list[BaseRoute]:
    """``POST /v1/query`` on the store ``store()`` returns; 503 while ``query_token`` is unset."""

    async def post_query(request: Request) -> Response:
        """Run a named, read-only dashboard query.
        ---
        summary: Run a named dashboard query (read-only)
        description: >
          Body {"query": <name>, "params": {...}}. Only the dashboards' catalogue of named
          queries runs, with bound parameters and readonly=1; SQL is never accepted. Results
          are already suppression-aware and k-anonymous.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [query]
                properties:
                  query: {type: string}
                  params: {type: object}
        responses:
          200: {description: 'Rows: {"rows": [...]}'}
          400: {description: Unknown query, SQL in the body, or invalid parameters}
          401: {description: Missing or wrong bearer token}
          413: {description: Body too large}
          503: {description: Query API disabled (no query_token) or store unavailable}
        """
        payload = await token_json(request, query_token.value, MAX_BODY)
        if isinstance(payload, Response):
            return payload
        if set(payload) - {"query", "params"}:
            return error_response(400, "bad_request",
                                  "only 'query' (a catalogue name) and 'params' are accepted; "
                                  "SQL is never accepted")
        name: Any = payload.get("query")  # params_for() refuses anything but a catalogue name
        params: Any = payload.get("params") or {}  # params_for() checks it is an object
        try:
            params_for(name, params)  # refuse a bad request before touching the store
            rows = await run_in_threadpool(lambda: run(store(), name, params))
        except QueryError as exc:  # also what only the store can tell: a goal that is gone
            return error_response(400, "bad_query", exc.reason)
        except Exception as exc:  # the store's driver raises many types
            log.warning("query %s failed: %s", name, exc)
            return error_response(503, "store_error", "the query failed; see the collector log")
        return JSONResponse({"rows": rows})

    return [Route("/v1/query", post_query, methods=["POST"])]
