"""The collector's HTTP face: ingest, health, metrics, OpenAPI, plus privacy and query routes.

Each endpoint's docstring carries its OpenAPI operation as YAML after ``---``
(``collector/openapi.py`` reads them); a test checks every route is described.

What one batch can cost is bounded before any Python object is built from it: the body is
inflated under ``max_decompressed_bytes``, then its JSON structure is counted (objects,
values) against what a batch of ``wire.MAX_BATCH_ITEMS`` items can hold, and at most
``max_concurrent_ingests`` batches are read and decoded at once (others wait, then get 503).
A 31 KB gzip body that inflates to ten million empty objects is a 413 after counting, not a
gigabyte of dicts.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.auth import bearer_ok, is_loopback
from collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from collector.openapi import openapi_endpoint
from collector.privacy import api as privacy_api
from collector.query import api as query_api
from collector.query import rollup
from collector.store import StoreError
from consent_mw.wire import BATCH_SCHEMA, MAX_BATCH_ITEMS

if TYPE_CHECKING:
    from collector.service import CollectorService

log = logging.getLogger("consent_mw.collector.app")
BATCH_VALIDATOR = Draft202012Validator(BATCH_SCHEMA)
#: Objects a valid batch can hold: the batch, and per item (events and records, each at most
#: MAX_BATCH_ITEMS) itself and its maps (consent, properties, traits; categories, services,
#: gcm). Counting braces over-counts braces inside strings, which only makes it stricter;
#: a sender whose batch is refused with 413 splits it and sends the halves.
MAX_OBJECTS = 1 + 2 * MAX_BATCH_ITEMS * 4
#: Values of any kind (a comma separates two): ~45 fields per item and 32 properties.
MAX_VALUES = 2 * MAX_BATCH_ITEMS * 100


def structure_error(raw: bytes) -> str | None:
    """Why ``raw`` holds more JSON values than any valid batch, or None. Runs in C
    (``bytes.count``), before the parser builds anything."""
    objects = raw.count(b"{")
    if objects > MAX_OBJECTS:
        return f"{objects} objects: more than a batch of {MAX_BATCH_ITEMS} items holds"
    values = raw.count(b",")
    if values > MAX_VALUES:
        return f"{values} values: more than a batch of {MAX_BATCH_ITEMS} items holds"
    return None


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def read_body(request: Request, max_compressed: int, max_decompressed: int) -> bytes:
    """The request body, gunzipped while streaming, never holding more than the caps."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity", ""):
        raise BadBody(f"unsupported Content-Encoding {encoding!r}: use gzip or identity")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_compressed:
        raise BodyTooLarge(f"body over {max_compressed} bytes")
    gz = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    out = bytearray()
    received = 0
    cap = max_decompressed if gz is not None else max_compressed
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_compressed:
            raise BodyTooLarge(f"body over {max_compressed} bytes")
        if gz is None:
            out += chunk
            continue
        data = chunk
        try:
            while data and not gz.eof:
                # max_length bounds each step, so a bomb never inflates past the cap.
                out += gz.decompress(data, cap + 1 - len(out))
                if len(out) > cap:
                    raise BodyTooLarge(f"decompressed body over {cap} bytes")
                data = gz.unconsumed_tail
        except zlib.error as exc:
            raise BadBody(f"invalid gzip: {exc}") from None
    if gz is not None and not gz.eof:
        raise BadBody("invalid gzip: truncated stream")
    return bytes(out)


def build_app(service: CollectorService) -> Starlette:
    settings = service.settings
    metrics = service.metrics
    # Batches read and decoded at once: each may hold max_decompressed_bytes and its objects.
    decoding = anyio.CapacityLimiter(settings.max_concurrent_ingests)

    async def post_events(request: Request) -> Response:
        """Ingest a batch of events and consent records.
        ---
        summary: Ingest a batch (consent-mw/1 wire format)
        description: >
          Body is the JSON batch of consent_mw.wire (gzip or identity). Valid items are stored
          even when others are rejected; replays (same event/record ids) are accepted but not
          stored twice. Without a configured collector token, only loopback clients may post.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Batch'}
        responses:
          200:
            description: Every item accepted (replays included)
            content:
              application/json:
                schema: {$ref: '#/components/schemas/IngestResult'}
          400:
            description: >
              Invalid JSON or batch shape (error body), or some items rejected while the
              others were stored (IngestResult body)
            content:
              application/json:
                schema: {$ref: '#/components/schemas/IngestResult'}
          401: {description: Missing or wrong bearer token}
          413: {description: Body over the compressed or decompressed size limit}
          415: {description: Unsupported Content-Encoding}
          503: {description: Store unavailable; retry later (Retry-After)}
        """
        token = settings.collector_token.value
        if (token and not bearer_ok(request, token)) or (not token and not is_loopback(request)):
            metrics.rejected.labels("unauthorized").inc()
            return error(401, "unauthorized", "a valid bearer token is required",
                         **{"WWW-Authenticate": "Bearer"})
        try:
            with anyio.fail_after(settings.ingest_wait):
                await decoding.acquire()
        except TimeoutError:
            metrics.rejected.labels("busy").inc()
            return error(503, "busy", "too many batches at once; retry later",
                         **{"Retry-After": "1"})
        metrics.queue_depth.inc()
        expected = service.ingest.expect()  # an insert about to start may wait for this batch
        try:
            return await _ingest(request, expected)
        finally:
            expected()
            metrics.queue_depth.dec()
            decoding.release()

    async def _ingest(request: Request, expected: Callable[[], None]) -> Response:
        try:
            raw = await read_body(request, settings.max_body_bytes,
                                  settings.max_decompressed_bytes)
        except BodyTooLarge as exc:
            metrics.rejected.labels("too_large").inc()
            return error(413, "too_large", str(exc))
        except BadBody as exc:
            metrics.rejected.labels("bad_encoding").inc()
            status = 415 if "Content-Encoding" in str(exc) else 400
            return error(status, "bad_encoding", str(exc))
        # Parsing and validating are CPU work: off the event loop, with the insert wait.
        return await run_in_threadpool(_ingest_body, raw, expected)

    def _ingest_body(raw: bytes, expected: Callable[[], None]) -> Response:
        too_many = structure_error(raw)
        if too_many is not None:
            metrics.rejected.labels("too_many_items").inc()
            return error(413, "too_many_items", too_many)
        try:
            body = orjson.loads(raw)  # also refuses nesting past 1,024 levels
        except orjson.JSONDecodeError as exc:
            metrics.rejected.labels("invalid_json").inc()
            return error(400, "invalid_json", f"body is not valid UTF-8 JSON: {exc}"[:300])
        shape = best_match(BATCH_VALIDATOR.iter_errors(body))
        if shape is not None:
            metrics.rejected.labels("bad_batch").inc()
            where = ".".join(str(p) for p in shape.absolute_path) or "(batch)"
            return error(400, "bad_batch", f"{where}: {shape.message}"[:300])
        sent_at = body.get("sent_at")
        try:
            result = service.ingest.process(
                body.get("events", []), body.get("consent_records", []),
                batch_id=body.get("batch_id"), sent_at=None if sent_at is None else int(sent_at),
                expected=expected,
            )
        except StoreError as exc:
            metrics.batches.labels("store_error").inc()
            log.error("store unavailable: %s", exc)
            return error(503, "store_unavailable", "the store is unavailable; retry later",
                         **{"Retry-After": "5"})
        except Exception:  # the collector answers, whatever happens
            metrics.batches.labels("error").inc()
            log.exception("ingest failed")
            return error(503, "internal", "ingest failed; retry later", **{"Retry-After": "5"})
        metrics.batches.labels("partial" if result.rejected else "ok").inc()
        return JSONResponse(result.as_dict(), status_code=400 if result.rejected else 200)

    async def healthz(request: Request) -> Response:
        """Liveness and store reachability.
        ---
        summary: Health check
        responses:
          200: {description: The store answers}
          503: {description: Not started or the store does not answer}
        """
        try:
            await run_in_threadpool(service.store.scalar, "SELECT 1")
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)[:200]},
                                status_code=503)
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
        Route("/v1/events", post_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    routes += privacy_api.build_routes(service)
    routes += query_api.build_routes(service)
    rollup.install(service)  # after privacy: it listens to suppression changes

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(service.start)
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.routes.append(Route("/openapi.json", openapi_endpoint(app), methods=["GET"]))
    return app
