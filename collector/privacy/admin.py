"""The admin API's door: who may act on visitors' rights, and under whose name.

A request to ``/v1/privacy/*`` (but the web processes' suppression list) carries a bearer
token, missing ⇒ 401, wrong ⇒ 403: a staff member's personal token (privacy or admin role; the
operation is theirs, whatever ``requested_by`` says) or the shared admin token, for machines,
whose caller must name the person (recorded as ``<name> [admin token]``). Without any token or
account configured the API answers 503. :func:`guard` wraps each endpoint with that check and
maps failures to the one error body (``collector.web.error_response``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from collector.accounts import PRIVACY_ROLES, account_for_token
from collector.auth import bearer_token, tokens_equal
from collector.privacy.purge import PurgeFailed
from collector.privacy.purge_queue import PurgeQueueFull
from collector.privacy.subjects import ID_TYPES, PrivacyError
from collector.settings import CollectorSettings
from collector.store import StoreError
from collector.web import (
    BodyTooLarge,
    error_response,
    read_limited,
    store_unavailable,
    unauthorized,
)
from consent_mw.http import BadRequest, parse_json

log = logging.getLogger(__name__)
#: Seconds a caller waits before asking again when the purge queue is full.
QUEUE_FULL_RETRY_AFTER = 60
MAX_BODY = 16 * 1024
MAX_TEXT = 512
Handler = Callable[[Request], Awaitable[Response]]
MACHINE = "[admin token]"


def admin_check(settings: CollectorSettings, request: Request) -> Response | None:
    """None when the request carries a token that may act on visitors' rights (and
    ``request.state.person`` is then the account name, or None for the machine token), else
    the refusal."""
    expected = settings.admin_token.value
    if not expected and not any(a.token_sha256 for a in settings.staff_users.values()):
        return error_response(503, "not_configured", "the privacy API needs "
                              "CONSENT_MW_ADMIN_TOKEN or staff accounts with personal tokens")
    token = bearer_token(request)
    if token is None:
        return unauthorized("a bearer token is required")
    if expected and tokens_equal(token, expected):
        request.state.person = None
        return None
    account = account_for_token(settings.staff_users, token)
    if account is None:
        return error_response(403, "forbidden", "wrong token")
    if account.role not in PRIVACY_ROLES:
        return error_response(403, "forbidden", f"{account.name} ({account.role}) cannot act "
                              "on visitors' rights")
    request.state.person = account.name
    return None


def requested_by(request: Request, given: str) -> str:
    """Who the operation is recorded under: the token's account, or the name the machine
    token's caller gives (required, and marked as asserted by it)."""
    person = getattr(request.state, "person", None)
    if person:
        return str(person)
    if not given:
        raise PrivacyError("requested_by is required with the admin token: name the person "
                           "who asked (or use your personal token)")
    return f"{given} {MACHINE}"


def text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name) or ""
    if not isinstance(value, str):
        raise PrivacyError(f"{name} must be a string")
    return value.strip()[:MAX_TEXT]


def id_fields(source: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ID_TYPES:
        value = source.get(name)
        if value is not None and not isinstance(value, str):
            raise PrivacyError(f"{name} must be a string")
        out[name] = value or None
    return out


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, MAX_BODY)  # BodyTooLarge: guard answers 413
    try:
        body = parse_json(raw or b"{}", MAX_BODY)
    except BadRequest as exc:
        raise PrivacyError(exc.reason) from None
    if not isinstance(body, dict):
        raise PrivacyError("body must be a JSON object")
    return body


def guard(settings: CollectorSettings, fn: Handler, *, admin: bool = True) -> Handler:
    """Authorise, then map PrivacyError to 400, an oversized body to 413 and store failures
    to 503."""

    async def endpoint(request: Request) -> Response:
        if admin and (refused := admin_check(settings, request)) is not None:
            return refused
        try:
            return await fn(request)
        except PrivacyError as exc:
            return error_response(400, "bad_request", str(exc))
        except BodyTooLarge as exc:
            return error_response(413, "too_large", str(exc))
        except StoreError as exc:
            log.error("privacy operation failed: %s", exc)
            return store_unavailable()
        except PurgeQueueFull as exc:
            return error_response(503, "busy", str(exc),
                                  **{"Retry-After": str(QUEUE_FULL_RETRY_AFTER)})
        except PurgeFailed as exc:
            log.error("purge failed: %s", exc)
            return error_response(503, "purge_failed", "the purge did not finish; it is "
                                  "resumed automatically, retry later for the receipt",
                                  **{"Retry-After": "30"})

    endpoint.__doc__ = fn.__doc__
    endpoint.__name__ = fn.__name__
    return endpoint
