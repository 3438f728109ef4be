"""HTTP plumbing of the middleware's own routes: responses, the one error shape, bodies, JSON,
and the one same-origin rule.

Errors: every consent-mw HTTP API answers a refusal with one JSON body, :func:`error_body`:
``{"error": <snake_case code, for programs>, "message": <one line, for people>}``. The
middleware's own routes send it through :func:`respond_error` to a client that asked for JSON,
else the plain-text message (the self-service pages answer people with an HTML page); the
collector and the dashboards build their JSON responses from the same function.

Same-origin rule for every state-changing route (consent, deletion), in order:

1. ``Origin`` present: it must equal the request's own origin (``scheme://host``; over plain
   http also ``https://host``, for TLS-terminating proxies) or one of ``allowed_origins``.
   ``Origin: null`` is refused.
2. else ``Sec-Fetch-Site`` present: it must be ``same-origin``, ``same-site`` or ``none``.
3. else ``Referer`` present: its origin must pass rule 1.
4. else refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from consent_mw.errors import ConsentMWError
from consent_mw.types import Receive, Send

#: The largest JSON body the middleware parses (consent decisions, deletion confirmations).
MAX_JSON_BYTES = 64 * 1024


#: The ``code`` of a refusal that names none of its own, by status.
STATUS_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
                429: "rate_limited", 503: "unavailable"}


class BadRequest(ConsentMWError):
    """A request refused with ``status`` (4xx); ``reason`` says why, in one line; ``code``
    names it for programs (by default from the status)."""

    def __init__(self, status: int, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code or STATUS_CODES.get(status, "bad_request")


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a request header (ASGI names are lower-case)."""
    for key, value in headers:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def same_origin(scope: Mapping[str, Any], allowed_origins: Iterable[str] = ()) -> bool:
    """The module docstring's rule, for an ASGI scope."""
    headers = scope.get("headers") or ()
    host = (header(headers, b"host") or "").strip()
    if not host:
        return False
    scheme = scope.get("scheme", "http")
    own = {f"{scheme}://{host}".lower()}
    if scheme == "http":
        own.add(f"https://{host}".lower())
    own |= {o.lower().rstrip("/") for o in allowed_origins}
    origin = header(headers, b"origin")
    if origin is not None:
        return origin.strip().lower() in own
    site = header(headers, b"sec-fetch-site")
    if site is not None:
        return site.strip().lower() in ("same-origin", "same-site", "none")
    referer = header(headers, b"referer")
    if referer:
        try:
            parts = urlsplit(referer.strip())
        except ValueError:
            return False
        return f"{parts.scheme}://{parts.netloc}".lower() in own
    return False


#: On every page of the middleware's own (preferences, my data, requests): nothing may frame
#: them, so no other site can lay its own buttons over "accept all" or "delete my data".
NO_FRAMING = ((b"content-security-policy", b"frame-ancestors 'none'"),
              (b"x-frame-options", b"DENY"))


async def respond(send: Send, status: int, body: bytes, content_type: bytes,
                  headers: Iterable[tuple[bytes, bytes]] = (), *, head: bool = False) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
           *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_body(code: str, message: str) -> dict[str, str]:
    """The one JSON error shape of consent-mw's HTTP APIs (middleware, collector, dashboards)."""
    return {"error": code, "message": message}


async def respond_error(send: Send, status: int, code: str, reason: str,
                        headers: Iterable[tuple[bytes, bytes]] = (), *, as_json: bool = True,
                        head: bool = False) -> None:
    """The one error answer of the middleware's own routes (see the module docstring)."""
    if as_json:
        await respond(send, status, json_bytes(error_body(code, reason)),
                      b"application/json", headers, head=head)
    else:
        await respond(send, status, reason.encode("utf-8"), b"text/plain; charset=utf-8",
                      headers, head=head)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, read chunk by chunk; stops as soon as it exceeds ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest(400, "client disconnected")
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_json(body: bytes, limit: int = MAX_JSON_BYTES) -> Any:
    """A JSON document, or :class:`BadRequest` (400 or 413) saying what is wrong with it.

    Every way ``json.loads`` can fail is a client error: bad UTF-8, bad syntax, nesting past
    the recursion limit, an integer past Python's 4,300-digit conversion limit.
    """
    if len(body) > limit:
        raise BadRequest(413, f"body larger than {limit} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(400, "invalid JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(400, f"invalid JSON: {exc.msg} at line {exc.lineno} column "
                              f"{exc.colno}") from None
    except RecursionError:
        raise BadRequest(400, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer over the digit limit
        raise BadRequest(400, f"invalid JSON: {str(exc)[:120]}") from None
