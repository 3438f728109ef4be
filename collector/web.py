"""What the collector's HTTP routes (and the dashboards' forms) share.

The one JSON error answer of the collector's API, ``{"error": code, "message": text}``
(:func:`error_response`); bounded body and form reads; the client address logins are throttled
by; and the one same-origin rule (``consent_mw.http``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collector.auth import bearer_ok
from collector.errors import CollectorError
from consent_mw.clientip import client_ip
from consent_mw.http import BadRequest, error_body, parse_json, same_origin
from consent_mw.ratelimit import address_key

MAX_FORM_BYTES = 16 * 1024
#: Seconds a caller waits before retrying after the store failed.
STORE_RETRY_AFTER = 5


class BodyTooLarge(CollectorError, ValueError):
    """A request body over its limit; answered 413."""


class FormTooLarge(BodyTooLarge):
    """A form body over the limit; answered 413."""


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The collector API's only error body: a stable ``code`` for programs, a ``message`` for
    people. ``headers`` become response headers (``Retry-After``, ``WWW-Authenticate``)."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def unauthorized(message: str = "a valid bearer token is required") -> JSONResponse:
    """401 with the challenge every bearer-token route sends."""
    return error_response(401, "unauthorized", message, **{"WWW-Authenticate": "Bearer"})


def store_unavailable() -> JSONResponse:
    """503 when the store failed: the caller retries (what the in-process transport mirrors)."""
    return error_response(503, "store_unavailable", "the store is unavailable; retry later",
                          **{"Retry-After": str(STORE_RETRY_AFTER)})


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, never holding more than ``limit`` bytes of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
    return bytes(body)


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """An urlencoded form, never holding more than ``limit`` bytes of body (Starlette's own
    form parsing reads any size). Repeated fields keep their first value."""
    try:
        body = await read_limited(request, limit)
    except BodyTooLarge:
        raise FormTooLarge(f"form larger than {limit} bytes") from None
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=100)
    except ValueError:
        raise FormTooLarge("more than 100 form fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def client_key(request: Request, trusted_proxies: tuple[str, ...],
               forwarded_header: str) -> str:
    """The client's address as limits key it (see ``consent_mw.ratelimit.address_key``)."""
    return address_key(client_ip(request.scope, trusted_proxies, forwarded_header))


def is_same_origin(request: Request) -> bool:
    return same_origin(request.scope)


async def token_json(request: Request, token: str, limit: int) -> dict[str, object] | Response:
    """The JSON object a token-guarded write route was sent, or the refusal to answer with:
    503 while ``token`` is unset, 401 without it, 413 over ``limit``, 400 for anything but a
    JSON object."""
    if not token:
        return error_response(503, "disabled", "this route needs a configured query_token")
    if not bearer_ok(request, token):
        return unauthorized("bearer token required")
    try:
        payload = parse_json(await read_limited(request, limit), limit)
    except BodyTooLarge:
        return error_response(413, "too_large", f"body over {limit} bytes")
    except BadRequest as exc:
        return error_response(400, "invalid_json", exc.reason)
    if not isinstance(payload, dict):
        return error_response(400, "bad_request", "body must be an object")
    return payload
