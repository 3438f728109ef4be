"""Admin API for visitor rights under ``/v1/privacy``, plus the privacy-staff page.

Admin routes take ``Authorization: Bearer <token>``, missing ⇒ 401, wrong ⇒ 403, and act as a
person, whose name goes into the audit trail and the receipts:

- a staff member's personal token (``collector.accounts``, privacy or admin role): the
  operation is theirs, whatever ``requested_by`` says;
- the shared ``CONSENT_MW_ADMIN_TOKEN``, for machines (the CLI, a web process's self-service):
  the caller must name the person in ``requested_by``, recorded as ``<name> [admin token]``.

Suppress, unsuppress and purge need a ``reason``. Without any token or account configured the
routes answer 503. ``GET /v1/privacy/suppressions`` is for web processes and takes the
collector token (or, with none configured, loopback clients only). Store work runs in the
threadpool; a purge can take seconds.

Purges are queued and run in batches (``collector.privacy.purge``):
``POST /v1/privacy/purges`` answers 202 at once with the request id,
``GET /v1/privacy/purges/{request_id}`` follows it, and ``POST /v1/privacy/purge`` waits for
the receipt (the CLI's way).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.accounts import PRIVACY_ROLES, account_for_token
from collector.auth import bearer_token, is_loopback, tokens_equal
from collector.privacy import audit
from collector.privacy.operations import Privacy, PrivacyError, PurgeFailed, export_zip
from collector.privacy.purge import PurgeQueueFull
from collector.privacy.staff import build_staff_routes
from collector.store import StoreError
from collector.web import BodyTooLarge, read_limited
from consent_mw.http import BadRequest, parse_json

log = logging.getLogger("consent_mw.collector.privacy_api")
MAX_BODY = 16 * 1024
MAX_TEXT = 512
Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers=headers)


MACHINE = "[admin token]"


def admin_check(service: Any, request: Request) -> Response | None:
    """None when the request carries a token that may act on visitors' rights (and
    ``request.state.person`` is then the account name, or None for the machine token), else
    the refusal."""
    settings = service.settings
    expected = settings.admin_token.value
    if not expected and not any(a.token_sha256 for a in settings.staff_users.values()):
        return _error(503, "not_configured", "the privacy API needs CONSENT_MW_ADMIN_TOKEN "
                      "or staff accounts with personal tokens")
    token = bearer_token(request)
    if token is None:
        return _error(401, "unauthorized", "a bearer token is required",
                      **{"WWW-Authenticate": "Bearer"})
    if expected and tokens_equal(token, expected):
        request.state.person = None
        return None
    account = account_for_token(settings.staff_users, token)
    if account is None:
        return _error(403, "forbidden", "wrong token")
    if account.role not in PRIVACY_ROLES:
        return _error(403, "forbidden", f"{account.name} ({account.role}) cannot act on "
                      "visitors' rights")
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


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name) or ""
    if not isinstance(value, str):
        raise PrivacyError(f"{name} must be a string")
    return value.strip()[:MAX_TEXT]


def _ids(source: Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in ("visitor_id", "user_id"):
        value = source.get(name)
        if value is not None and not isinstance(value, str):
            raise PrivacyError(f"{name} must be a string")
        out[name] = value or None
    return out


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        raw = await read_limited(request, MAX_BODY)
    except BodyTooLarge as exc:
        raise PrivacyError(str(exc)) from None
    try:
        body = parse_json(raw or b"{}", MAX_BODY)
    except BadRequest as exc:
        raise PrivacyError(exc.reason) from None
    if not isinstance(body, dict):
        raise PrivacyError("body must be a JSON object")
    return body


def _guard(service: Any, fn: Handler, *, admin: bool = True) -> Handler:
    """Authorise, then map PrivacyError to 400 and store failures to 503."""

    async def endpoint(request: Request) -> Response:
        if admin and (refused := admin_check(service, request)) is not None:
            return refused
        try:
            return await fn(request)
        except PrivacyError as exc:
            return _error(400, "bad_request", str(exc))
        except StoreError as exc:
            log.error("privacy operation failed: %s", exc)
            return _error(503, "store_unavailable", "the store is unavailable; retry later",
                          **{"Retry-After": "5"})
        except PurgeQueueFull as exc:
            return _error(503, "busy", str(exc), **{"Retry-After": "60"})
        except PurgeFailed as exc:
            log.error("purge failed: %s", exc)
            return _error(503, "purge_failed", "the purge did not finish; it is resumed "
                          "automatically, retry later for the receipt", **{"Retry-After": "30"})

    endpoint.__doc__ = fn.__doc__
    endpoint.__name__ = fn.__name__
    return endpoint


def build_routes(service: Any) -> list[BaseRoute]:
    """The privacy routes of a CollectorService."""
    privacy: Privacy = service.privacy

    def operation(name: str) -> Handler:
        async def run(request: Request) -> Response:
            body = await _json_body(request)
            reason = _text(body, "reason")
            if not reason:
                raise PrivacyError("reason is required: say why (it goes into the audit "
                                   "trail)")
            kwargs: dict[str, Any] = {**_ids(body), "reason": reason,
                                      "requested_by": requested_by(
                                          request, _text(body, "requested_by"))}
            result = await run_in_threadpool(getattr(privacy, name), **kwargs)
            return JSONResponse(result)
        return run

    async def suppress(request: Request) -> Response:
        """Suppress a person (Art. 7): stop capture, hide rows, keep them.
        ---
        summary: Suppress a visitor or account
        description: >
          Capture of the person's ids stops at once in this process and within the suppression
          refresh interval in web processes; dashboards and partner exports exclude their
          rows. A user_id covers every visitor_id seen with it. Rows are kept.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  visitor_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  user_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  reason: {type: string, maxLength: 512}
                  requested_by: {type: string, maxLength: 512}
        responses:
          200: {description: Suppressed, content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation("suppress")(request)

    async def unsuppress(request: Request) -> Response:
        """Lift a suppression.
        ---
        summary: Lift the suppression of a visitor or account
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  visitor_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  user_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  reason: {type: string, maxLength: 512}
                  requested_by: {type: string, maxLength: 512}
        responses:
          200: {description: Lifted (or was not suppressed), content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation("unsuppress")(request)

    async def purge(request: Request) -> Response:
        """Purge a person (Art. 6) and return the verified receipt.
        ---
        summary: Delete every row about a visitor or account, verified
        description: >
          Suppresses first (in-flight events are dropped), deletes events, anonymises consent
          records, waits for the rewritten parts, removes outdated parts, then verifies by
          query and by a byte scan of an embedded store. Idempotent; safe to re-run after an
          interruption. The response is the receipt (also stored in purge_receipts).
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  visitor_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  user_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  reason: {type: string, maxLength: 512}
                  requested_by: {type: string, maxLength: 512}
        responses:
          200: {description: The purge receipt, content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation("purge")(request)

    async def request_purge(request: Request) -> Response:
        """Queue a purge and answer at once.
        ---
        summary: Ask for a purge (queued; answers 202)
        description: >
          The person is suppressed before the answer (capture stops, dashboards hide them,
          web processes reset their browser). The rows are deleted and verified in the next
          batch; follow it at the returned status URL.
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                properties:
                  visitor_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  user_id: {type: string, pattern: '^[0-9A-Za-z_-]{1,64}$'}
                  reason: {type: string, maxLength: 512}
                  requested_by: {type: string, maxLength: 512}
        responses:
          202: {description: 'Queued: {"request_id", "status", "status_url"}'}
          400: {description: Malformed id, both ids or none}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Queue full or store unavailable (Retry-After)}
        """
        body = await _json_body(request)
        reason = _text(body, "reason")
        if not reason:
            raise PrivacyError("reason is required: say why (it goes into the audit trail)")
        who = requested_by(request, _text(body, "requested_by"))
        job = await run_in_threadpool(
            lambda: privacy.request_purge(**_ids(body), reason=reason, requested_by=who))
        return JSONResponse({"request_id": job.request_id, "status": job.status,
                             "status_url": f"/v1/privacy/purges/{job.request_id}"},
                            status_code=202)

    async def purge_status(request: Request) -> Response:
        """Where a queued purge is.
        ---
        summary: Status of a purge request
        security: [{bearer: []}]
        parameters:
          - {name: request_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: '{"request_id", "status", "requested_at", "receipt", "error"}'}
          404: {description: No such purge request}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        found = await run_in_threadpool(privacy.purge_status,
                                        str(request.path_params["request_id"]))
        if found is None:
            return _error(404, "not_found", "no such purge request")
        return JSONResponse(found)

    async def export(request: Request) -> Response:
        """Export everything about a person (Art. 5).
        ---
        summary: Export a visitor's or account's data
        security: [{bearer: []}]
        parameters:
          - {name: visitor_id, in: query, schema: {type: string}}
          - {name: user_id, in: query, schema: {type: string}}
          - {name: format, in: query, schema: {enum: [json, csv]}}
          - {name: requested_by, in: query, schema: {type: string}}
          - {name: reason, in: query, schema: {type: string}}
        responses:
          200:
            description: >
              JSON {subject, events, consent_records, suppressions, receipts}, or a zip of
              CSV files (format=csv). An unknown id gives empty lists.
            content: {application/json: {}, application/zip: {}}
          400: {description: Malformed id, both ids or none, or unknown format}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        q = request.query_params
        fmt = q.get("format", "json")
        if fmt not in ("json", "csv"):
            raise PrivacyError("format must be json or csv")
        data = await run_in_threadpool(
            privacy.export_logged, **_ids(q),
            requested_by=requested_by(request, _text(dict(q), "requested_by")),
            reason=_text(dict(q), "reason"))
        name = f"consent-mw-export-{data['subject']['subject_hash'][:12]}"
        if fmt == "csv":
            return Response(export_zip(data), media_type="application/zip", headers={
                "Content-Disposition": f'attachment; filename="{name}.zip"'})
        return JSONResponse(data, headers={
            "Content-Disposition": f'attachment; filename="{name}.json"'})

    async def requests_(request: Request) -> Response:
        """The audit trail, newest first.
        ---
        summary: List privacy requests (audit trail)
        security: [{bearer: []}]
        parameters:
          - {name: limit, in: query, schema: {type: integer, default: 100}}
          - {name: subject_hash, in: query, schema: {type: string}}
          - {name: operation, in: query, schema: {type: string}}
        responses:
          200: {description: '{"requests": [...]}', content: {application/json: {}}}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        q = request.query_params
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise PrivacyError("limit must be an integer") from None
        rows = await run_in_threadpool(
            audit.listing, privacy.store, limit=limit, subject_hash=q.get("subject_hash"),
            operation=q.get("operation"))
        return JSONResponse({"requests": rows})

    async def receipts(request: Request) -> Response:
        """Purge receipts, newest first.
        ---
        summary: List purge receipts
        security: [{bearer: []}]
        parameters:
          - {name: limit, in: query, schema: {type: integer, default: 100}}
        responses:
          200: {description: '{"receipts": [...]}', content: {application/json: {}}}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        try:
            limit = max(1, min(int(request.query_params.get("limit", "100")), 10_000))
        except ValueError:
            raise PrivacyError("limit must be an integer") from None
        rows = await run_in_threadpool(privacy.receipts, limit)
        return JSONResponse({"receipts": rows})

    async def verify(request: Request) -> Response:
        """Verify the audit trail's hash chain.
        ---
        summary: Verify the audit hash chain
        security: [{bearer: []}]
        responses:
          200: {description: 'Chain intact: {"ok": true, "rows": n, "problems": []}'}
          409: {description: 'Chain broken: {"ok": false, "problems": [...]}'}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        report = await run_in_threadpool(audit.verify_chain, privacy.store)
        return JSONResponse(report.as_dict(), status_code=200 if report.ok else 409)

    async def suppressions(request: Request) -> Response:
        """Subject hashes under suppression, for web processes' capture.
        ---
        summary: Active suppressions (hashes only)
        description: >
          Polled by web processes every suppression_refresh seconds. Takes the collector
          token (or the admin token); without a configured collector token, loopback only.
        security: [{bearer: []}]
        parameters:
          - name: since
            in: query
            schema: {type: integer}
            description: 'the version held: if it is still current the answer is
              {"unchanged": true}'

        responses:
          200:
            description: '{"hashes": [...], "purged": [...], "version": n}: purged is the
              subset whose purge was asked for (their browsers are reset)'
            content: {application/json: {}}
          401: {description: Missing or wrong token}
        """
        tokens = [t for t in (service.settings.collector_token.value,
                              service.settings.admin_token.value) if t]
        given = bearer_token(request)
        allowed = (any(tokens_equal(given, t) for t in tokens) if given is not None
                   else not service.settings.collector_token.value and is_loopback(request))
        if not allowed:
            return _error(401, "unauthorized", "a valid bearer token is required",
                          **{"WWW-Authenticate": "Bearer"})
        since = request.query_params.get("since", "")
        if since.isdigit() and int(since) == privacy.version:
            # The list only grows with purges; web processes ask every few seconds.
            return JSONResponse({"version": privacy.version, "unchanged": True},
                                headers={"Cache-Control": "no-store"})
        return JSONResponse(privacy.suppression_list(),
                            headers={"Cache-Control": "no-store"})

    routes: list[BaseRoute] = [
        Route("/v1/privacy/suppress", _guard(service, suppress), methods=["POST"]),
        Route("/v1/privacy/unsuppress", _guard(service, unsuppress), methods=["POST"]),
        Route("/v1/privacy/purge", _guard(service, purge), methods=["POST"]),
        Route("/v1/privacy/purges", _guard(service, request_purge), methods=["POST"]),
        Route("/v1/privacy/purges/{request_id}", _guard(service, purge_status),
              methods=["GET"]),
        Route("/v1/privacy/export", _guard(service, export), methods=["GET"]),
        Route("/v1/privacy/requests", _guard(service, requests_), methods=["GET"]),
        Route("/v1/privacy/receipts", _guard(service, receipts), methods=["GET"]),
        Route("/v1/privacy/audit/verify", _guard(service, verify), methods=["GET"]),
        Route("/v1/privacy/suppressions", _guard(service, suppressions, admin=False),
              methods=["GET"]),
    ]
    return routes + build_staff_routes(service, privacy)
