"""Admin API for visitor rights under ``/v1/privacy``, plus the privacy-staff page.

Who may call the admin routes, and under whose name an operation is recorded, is
``collector.privacy.admin``. Suppress, unsuppress and purge need a ``reason``.
``GET /v1/privacy/suppressions`` is for web processes and takes the collector token (or, with
none configured, loopback clients only); the in-process transport answers from the same call.
Store work runs in the threadpool; a purge can take seconds.

Purges are queued and run in batches (``collector.privacy.purge``):
``POST /v1/privacy/purges`` answers 202 at once with the request id,
``GET /v1/privacy/purges/{request_id}`` follows it, and ``POST /v1/privacy/purge`` waits for
the receipt (the CLI's way).

Over 300 lines because half of it is the endpoints' OpenAPI descriptions (the YAML after
``---`` in each docstring), which ``collector/openapi.py`` reads from here, beside the code.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.auth import bearer_token, is_loopback, tokens_equal
from collector.logins import Logins
from collector.privacy import audit
from collector.privacy.admin import (
    Handler,
    guard,
    id_fields,
    json_body,
    requested_by,
    text_field,
)
from collector.privacy.export_format import export_zip
from collector.privacy.operations import Privacy
from collector.privacy.staff import build_staff_routes
from collector.privacy.subjects import PrivacyError
from collector.settings import CollectorSettings
from collector.web import error_response, unauthorized


class Operation(Protocol):
    """Privacy.suppress, .unsuppress and .purge: act on one person, for a reason, for someone."""

    def __call__(self, *, visitor_id: str | None = None, user_id: str | None = None,
                 reason: str = "", requested_by: str = "") -> dict[str, Any]: ...


def build_routes(privacy: Privacy, settings: CollectorSettings,
                 logins: Logins) -> list[BaseRoute]:
    """``/v1/privacy/*``: the admin API, the web processes' suppression list, the staff page."""

    def operation(act: Operation) -> Handler:
        async def run(request: Request) -> Response:
            body = await json_body(request)
            reason = text_field(body, "reason")
            if not reason:
                raise PrivacyError("reason is required: say why (it goes into the audit "
                                   "trail)")
            who = requested_by(request, text_field(body, "requested_by"))
            ids = id_fields(body)
            result = await run_in_threadpool(lambda: act(**ids, reason=reason,
                                                         requested_by=who))
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
            application/json: {schema: {$ref: '#/components/schemas/RightsRequest'}}
        responses:
          200: {description: Suppressed, content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          413: {description: Body over 16 KiB}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation(privacy.suppress)(request)

    async def unsuppress(request: Request) -> Response:
        """Lift a suppression.
        ---
        summary: Lift the suppression of a visitor or account
        security: [{bearer: []}]
        requestBody:
          required: true
          content:
            application/json: {schema: {$ref: '#/components/schemas/RightsRequest'}}
        responses:
          200: {description: Lifted (or was not suppressed), content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          413: {description: Body over 16 KiB}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation(privacy.unsuppress)(request)

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
            application/json: {schema: {$ref: '#/components/schemas/RightsRequest'}}
        responses:
          200: {description: The purge receipt, content: {application/json: {}}}
          400: {description: Malformed id, both ids or none}
          413: {description: Body over 16 KiB}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Admin token not configured, or store unavailable}
        """
        return await operation(privacy.purge)(request)

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
            application/json: {schema: {$ref: '#/components/schemas/RightsRequest'}}
        responses:
          202: {description: 'Queued: {"request_id", "status", "status_url"}'}
          400: {description: Malformed id, both ids or none}
          413: {description: Body over 16 KiB}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
          503: {description: Queue full or store unavailable (Retry-After)}
        """
        body = await json_body(request)
        reason = text_field(body, "reason")
        if not reason:
            raise PrivacyError("reason is required: say why (it goes into the audit trail)")
        who = requested_by(request, text_field(body, "requested_by"))
        job = await run_in_threadpool(
            lambda: privacy.request_purge(**id_fields(body), reason=reason, requested_by=who))
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
            return error_response(404, "not_found", "no such purge request")
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
            privacy.export_logged, **id_fields(q),
            requested_by=requested_by(request, text_field(dict(q), "requested_by")),
            reason=text_field(dict(q), "reason"))
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

    async def summary(request: Request) -> Response:
        """What the store holds about one id, without the rows: for the staff's lookup.
        ---
        summary: Look up a visitor or account
        security: [{bearer: []}]
        parameters:
          - {name: visitor_id, in: query, schema: {type: string}}
          - {name: user_id, in: query, schema: {type: string}}
        responses:
          200: {description: Row counts, first and last seen, suppression, receipts}
          400: {description: Malformed id, both ids or none}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        ids = id_fields(request.query_params)
        return JSONResponse(await run_in_threadpool(lambda: privacy.summary(**ids)))

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
        tokens = [t for t in (settings.collector_token.value, settings.admin_token.value) if t]
        given = bearer_token(request)
        allowed = (any(tokens_equal(given, t) for t in tokens) if given is not None
                   else not settings.collector_token.value and is_loopback(request))
        if not allowed:
            return unauthorized()
        since = request.query_params.get("since", "")
        # The in-process transport's fetch_suppressions answers from the same call.
        answer = privacy.suppressions_since(int(since) if since.isdigit() else None)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    routes: list[BaseRoute] = [
        Route("/v1/privacy/suppress", guard(settings, suppress), methods=["POST"]),
        Route("/v1/privacy/unsuppress", guard(settings, unsuppress), methods=["POST"]),
        Route("/v1/privacy/purge", guard(settings, purge), methods=["POST"]),
        Route("/v1/privacy/purges", guard(settings, request_purge), methods=["POST"]),
        Route("/v1/privacy/purges/{request_id}", guard(settings, purge_status),
              methods=["GET"]),
        Route("/v1/privacy/export", guard(settings, export), methods=["GET"]),
        Route("/v1/privacy/requests", guard(settings, requests_), methods=["GET"]),
        Route("/v1/privacy/receipts", guard(settings, receipts), methods=["GET"]),
        Route("/v1/privacy/summary", guard(settings, summary), methods=["GET"]),
        Route("/v1/privacy/audit/verify", guard(settings, verify), methods=["GET"]),
        Route("/v1/privacy/suppressions", guard(settings, suppressions, admin=False),
              methods=["GET"]),
    ]
    return routes + build_staff_routes(privacy, settings, logins)
