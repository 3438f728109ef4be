"""What the dashboards' staff write, reachable from another process: one route pair for all.

Notes, saved segments, goals and funnels are each a :class:`collector.notes.StaffItems` table. For
dashboards in another process than the collector that owns the store, ``POST /v1/notes``
(``/v1/segments``, ``/v1/goals``) adds one (the JSON body is what the item's ``add_from``
reads, plus ``author``) and ``POST /v1/notes/{id}/delete`` removes one. Both are opened by
the dashboards' query token, like ``/v1/query`` (503 while it is unset); a refused write is a
400 with its reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.funnels import Funnels
from collector.goals import Goals
from collector.notes import Notes, StaffItems, WriteRefused
from collector.segments import Segments
from collector.store import Store
from collector.web import error_response, token_json
from consent_mw.config import Secret

MAX_BODY = 8192
#: The items there are, by the name their routes carry.
ITEMS: dict[str, Callable[[Store | Callable[[], Store]], StaffItems]] = {
    "notes": Notes,
    "segments": Segments,
    "goals": Goals,
    "funnels": Funnels,
}


def staff_items(store: Store | Callable[[], Store]) -> dict[str, StaffItems]:
    return {name: make(store) for name, make in ITEMS.items()}


def build_routes(store: Callable[[], Store], query_token: Secret) -> list[BaseRoute]:
    """``POST /v1/{item}`` and ``POST /v1/{item}/{item_id}/delete`` for each of :data:`ITEMS`."""
    routes: list[BaseRoute] = []
    for name, item in staff_items(store).items():
        add, delete = _endpoints(item, query_token)
        routes += [Route(f"/v1/{name}", add, methods=["POST"]),
                   Route(f"/v1/{name}/{{item_id}}/delete", delete, methods=["POST"])]
    return routes


def _endpoints(item: StaffItems, query_token: Secret) -> tuple[
        Callable[[Request], Awaitable[Response]], Callable[[Request], Awaitable[Response]]]:
    async def write(request: Request, action: Callable[[dict[str, object]],
                                                       dict[str, object]]) -> Response:
        payload = await token_json(request, query_token.value, MAX_BODY)
        if isinstance(payload, Response):
            return payload
        try:
            answer = await run_in_threadpool(action, payload)
        except WriteRefused as exc:
            return error_response(400, f"bad_{item.what}", exc.reason)
        return JSONResponse(answer)

    async def add(request: Request) -> Response:
        """Add a dashboard note, saved segment or goal.
        ---
        summary: Add a note (day, text), segment (name, filters) or goal
        description: >
          A goal is a name, a kind and the kind's fields: page (path), event (event,
          property, equals), interaction (interaction, target) or engaged (seconds), and
          an optional value in yen. See docs/dashboards.md.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [author]
                properties:
                  author: {type: string}
        responses:
          200: {description: '{"id": ...}'}
          400: {description: A malformed item, with the reason}
          401: {description: Missing or wrong bearer token}
          503: {description: Writes disabled (no query_token)}
        """
        return await write(request, lambda body: {
            "id": item.add_from(body, body.get("author"))})

    async def delete(request: Request) -> Response:
        """Remove a note, segment or goal (kept, marked deleted by its remover).
        ---
        summary: Remove a note, segment or goal
        security: [{bearer: []}]
        responses:
          200: {description: '{"deleted": true|false}'}
          400: {description: Not an id, or no author}
          401: {description: Missing or wrong bearer token}
        """
        return await write(request, lambda body: {
            "deleted": item.delete(request.path_params["item_id"], body.get("author"))})

    return add, delete
