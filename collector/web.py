"""What the collector's and the dashboards' HTML forms share: a bounded form read, the client
address logins are throttled by, and the one same-origin rule (``consent_mw.http``)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

from consent_mw.clientip import client_ip
from consent_mw.http import same_origin
from consent_mw.ratelimit import address_key

MAX_FORM_BYTES = 16 * 1024


class FormTooLarge(ValueError):
    """A form body over the limit; answered 413."""


class BodyTooLarge(ValueError):
    """A request body over its limit; answered 413."""


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
