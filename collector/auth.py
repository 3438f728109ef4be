"""Bearer tokens and loopback checks shared by every collector endpoint."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so the check leaks no prefix of the token."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_ok(request: Request, expected: str) -> bool:
    token = bearer_token(request)
    return token is not None and tokens_equal(token, expected)


def is_loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False
