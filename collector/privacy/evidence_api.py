"""``GET /v1/privacy/evidence?from=&to=``: the evidence pack (``collector.privacy.evidence``)
over HTTP, for ``consent-mw evidence`` and a console in another process."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from collector.privacy.admin import guard, requested_by
from collector.privacy.evidence import Notices, period, write
from collector.settings import CollectorSettings
from collector.store import Store


def evidence_route(store: Callable[[], Store], settings: CollectorSettings,
                   notices: Notices | None) -> Route:
    """``GET /v1/privacy/evidence?from=&to=``: the pack, behind the privacy API's door."""

    async def evidence(request: Request) -> Response:
        """The evidence pack for a period, as a zip.
        ---
        summary: Evidence pack for a period
        description: >
          Policy versions, notices, consent records, privacy requests with their timelines
          and receipts, the audit chain with its verification, the retention settings, and an
          index.html explaining each file. The same ended period gives the same bytes.
        security: [{bearer: []}]
        parameters:
          - {name: from, in: query, required: true, schema: {type: string, format: date}}
          - {name: to, in: query, required: true, schema: {type: string, format: date}}
          - {name: requested_by, in: query, schema: {type: string}}
        responses:
          200: {description: The zip, content: {application/zip: {}}}
          400: {description: Bad dates}
          401: {description: Missing admin token}
          403: {description: Wrong admin token}
        """
        q = request.query_params
        start, end = q.get("from", ""), q.get("to", "")
        period(start, end)  # PrivacyError → 400 before any work
        who = requested_by(request, q.get("requested_by", "").strip()[:128])
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - the response's generator closes it
        # (a long period is written to disk, not memory)
        try:
            await run_in_threadpool(lambda: write(store(), settings, start, end, spool,
                                                  notices=notices, requested_by=who))
        except BaseException:
            spool.close()
            raise
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            with spool:
                yield from iter(lambda: spool.read(1 << 20), b"")

        return StreamingResponse(chunks(), media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="evidence-{start}-{end}.zip"',
            "Cache-Control": "no-store"})

    return Route("/v1/privacy/evidence", guard(settings, evidence), methods=["GET"])
