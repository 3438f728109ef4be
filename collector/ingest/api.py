"""``POST /v1/events``: a batch from a web process's HTTP transport, into :class:`Ingest`.

What one batch can cost is bounded before any Python object is built from it: the body is
inflated under ``max_decompressed_bytes``, then its JSON structure is counted (objects,
values) against what a batch of ``wire.MAX_BATCH_ITEMS`` items can hold, and at most
``max_concurrent_ingests`` batches are read and decoded at once (others wait, then get 503).
A 31 KB gzip body that inflates to ten million empty objects is a 413 after counting, not a
gigabyte of dicts. What is decoded then goes through :meth:`Ingest.take`, as the in-process
transport's batches do.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import anyio
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.auth import bearer_ok, is_loopback
from collector.errors import CollectorError
from collector.ingest.pipeline import Ingest
from collector.ingest.validate import BatchRefused
from collector.metrics import CollectorMetrics
from collector.settings import CollectorSettings
from collector.store import StoreError
from collector.web import (
    STORE_RETRY_AFTER,
    BodyTooLarge,
    error_response,
    store_unavailable,
    unauthorized,
)
from consent_mw.wire import MAX_BATCH_ITEMS

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


class BadBody(CollectorError):
    """A body that cannot be decoded: invalid gzip (400) or an unknown encoding (415)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, max_compressed: int, max_decompressed: int) -> bytes:
    """The request body, gunzipped while streaming, never holding more than the caps."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("gzip", "identity", ""):
        raise BadBody(f"unsupported Content-Encoding {encoding!r}: use gzip or identity",
                      status=415)
    gz = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    # A plain body is its own decompressed size: both caps hold it (web processes on this
    # host send plain JSON, capture/http_body.py).
    limit = max_compressed if gz is not None else min(max_compressed, max_decompressed)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body over {limit} bytes")
    out = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(f"body over {limit} bytes")
        if gz is None:
            out += chunk
            continue
        data = chunk
        try:
            while data and not gz.eof:
                # max_length bounds each step, so a bomb never inflates past the cap.
                out += gz.decompress(data, max_decompressed + 1 - len(out))
                if len(out) > max_decompressed:
                    raise BodyTooLarge(f"decompressed body over {max_decompressed} bytes")
                data = gz.unconsumed_tail
        except zlib.error as exc:
            raise BadBody(f"invalid gzip: {exc}") from None
    if gz is not None and not gz.eof:
        raise BadBody("invalid gzip: truncated stream")
    return bytes(out)


def build_routes(ingest: Ingest, settings: CollectorSettings,
                 metrics: CollectorMetrics) -> list[BaseRoute]:
    """``POST /v1/events``."""
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
            return unauthorized()
        try:
            with anyio.fail_after(settings.ingest_wait):
                await decoding.acquire()
        except TimeoutError:
            metrics.rejected.labels("busy").inc()
            return error_response(503, "busy", "too many batches at once; retry later",
                         **{"Retry-After": "1"})
        metrics.queue_depth.inc()
        expected = ingest.expect()  # an insert about to start may wait for this batch
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
            return error_response(413, "too_large", str(exc))
        except BadBody as exc:
            metrics.rejected.labels("bad_encoding").inc()
            return error_response(exc.status, "bad_encoding", str(exc))
        # Parsing and validating are CPU work: off the event loop, with the insert wait.
        return await run_in_threadpool(_ingest_body, raw, expected)

    def _ingest_body(raw: bytes, expected: Callable[[], None]) -> Response:
        too_many = structure_error(raw)
        if too_many is not None:
            metrics.rejected.labels("too_many_items").inc()
            return error_response(413, "too_many_items", too_many)
        try:
            body = orjson.loads(raw)  # also refuses nesting past 1,024 levels
        except orjson.JSONDecodeError as exc:
            metrics.rejected.labels("invalid_json").inc()
            return error_response(400, "invalid_json", f"body is not valid UTF-8 JSON: {exc}"[:300])
        try:
            result = ingest.take(body, expected=expected)
        except BatchRefused as exc:
            return error_response(400, exc.code, str(exc))
        except StoreError:
            return store_unavailable()
        except Exception:  # the collector answers, whatever happens (take logged it)
            return error_response(503, "internal", "ingest failed; retry later",
                                  **{"Retry-After": str(STORE_RETRY_AFTER)})
        return JSONResponse(result.as_dict(), status_code=400 if result.rejected else 200)

    return [Route("/v1/events", post_events, methods=["POST"])]
