"""``GET /openapi.json``: OpenAPI 3.1 built from the routes' YAML docstrings.

3.1 because its schemas are JSON Schema 2020-12, so the wire schemas are embedded as they are.
An endpoint added by another module is described by writing its operation as YAML after ``---``
in its docstring; ``tests/collector/test_ddl_and_openapi.py`` fails for an undescribed route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.schemas import SchemaGenerator

from collector.privacy.admin import MAX_TEXT
from consent_mw.ids import ID_RE
from consent_mw.wire import BATCH_SCHEMA, EVENT_SCHEMA, RECORD_SCHEMA


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def components() -> dict[str, Any]:
    batch = _plain(BATCH_SCHEMA)
    props = dict(batch["properties"])
    props["events"] = {**props["events"], "items": {"$ref": "#/components/schemas/Event"}}
    props["consent_records"] = {**props["consent_records"],
                                "items": {"$ref": "#/components/schemas/ConsentRecord"}}
    batch["properties"] = props
    rejected = {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "type": {"enum": ["event", "record"]},
            "event_id": {"type": ["string", "null"]},
            "record_id": {"type": ["string", "null"]},
            "reason": {"type": "string"},
        },
    }
    return {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Batch": batch,
            "Event": _plain(EVENT_SCHEMA),
            "ConsentRecord": _plain(RECORD_SCHEMA),
            "IngestResult": {
                "type": "object",
                "properties": {
                    "accepted": {"type": "integer"},
                    "duplicates": {"type": "integer"},
                    "suppressed": {"type": "integer"},
                    "anonymised": {"type": "integer"},
                    "bots": {"type": "integer", "description":
                             "accepted events of known bots: counted, not stored"},
                    "rejected": {"type": "array", "items": rejected},
                },
            },
            # What every visitor-rights operation takes (suppress, unsuppress, purge, purges).
            "RightsRequest": {
                "type": "object",
                "properties": {
                    "visitor_id": {"type": "string", "pattern": ID_RE.pattern},
                    "user_id": {"type": "string", "pattern": ID_RE.pattern},
                    "reason": {"type": "string", "maxLength": MAX_TEXT},
                    "requested_by": {"type": "string", "maxLength": MAX_TEXT},
                },
            },
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    }


GENERATOR = SchemaGenerator({
    "openapi": "3.1.0",
    "info": {"title": "consent-mw collector", "version": "1"},
    "components": components(),
})


def build_schema(app: Starlette) -> dict[str, Any]:
    return GENERATOR.get_schema(routes=list(app.routes))


def openapi_endpoint(app: Starlette) -> Callable[[Request], Awaitable[Response]]:
    async def openapi(request: Request) -> Response:
        """This description.
        ---
        summary: OpenAPI 3.1 description of the collector
        responses:
          200: {description: The OpenAPI document, content: {application/json: {}}}
        """
        return JSONResponse(build_schema(app))

    return openapi
