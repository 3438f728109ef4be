"""The privacy-request console in the dashboards: the queue, a request's page, the audit trail.

For the ``privacy`` and ``admin`` roles, logged in as for the rest of the dashboards. Every
change is a same-origin form post carrying the session's CSRF token, made under the staff
member's own name (the desk records it on the request's timeline and in the audit chain).
Pages render what the desk says in words; the raw JSON is a link away
(``/requests/{ref}/json``). A refusal (an unverified request, a fee still due) is a page with
its reason, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from collector.logins import Session
from collector.privacy.subjects import PrivacyError
from collector.requests.model import GROUNDS, KINDS, STATUSES, RequestRefused, UnknownRequest
from dashboards import desk_words as words
from dashboards.desk_backend import DeskBackend
from dashboards.i18n import UI
from dashboards.reasons import explain
from dashboards.views import SECURITY_HEADERS, DashboardViews, here, locale, root

ROLES = frozenset({"privacy", "admin"})
ACTIONS = ("verify", "start", "complete", "refuse", "withdraw", "fee", "link", "note")
Endpoint = Callable[[Request], Awaitable[Response]]


def may_handle_requests(role: str) -> bool:
    return role in ROLES


class DeskViews:
    """The console's endpoints, over the dashboards' sessions and pages."""

    def __init__(self, views: DashboardViews, desk: DeskBackend | None) -> None:
        self.views = views
        self.desk = desk
        self.tz = ZoneInfo(views.settings.tz)

    def when(self, ms: object) -> str:
        """A moment (ms since the epoch, or ISO 8601) in the dashboards' time zone."""
        if isinstance(ms, str) and ms:
            try:
                moment = datetime.fromisoformat(ms.replace("Z", "+00:00"))
            except ValueError:
                return ms
            return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        if not isinstance(ms, int | float) or not ms:
            return "–"
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz).strftime(
            "%Y-%m-%d %H:%M")

    def _staff(self, request: Request) -> Session | Response:
        session = self.views.session(request)
        if session is None:
            return RedirectResponse(root(request) + "/login?" + urlencode({"next": here(request)}),
                                    status_code=303)
        if not may_handle_requests(session.role):
            return self.views.error_page(request, 403, UI["forbidden"])
        if self.desk is None:
            return self.views.error_page(request, 503, UI["unavailable"])
        return session

    def _render(self, request: Request, template: str, session: Session,
                **context: object) -> Response:
        shared: Any = {"user": session, "page": None, "desk_page": True, "when": self.when,
                       "W": words, **context}
        return self.views.render(request, template, 200, None, **shared)

    def refused(self, request: Request, exc: Exception) -> Response:
        status = 404 if isinstance(exc, UnknownRequest) else 409 if isinstance(
            exc, RequestRefused) and exc.code in ("unverified", "bad_state", "busy", "fee_due",
                                                   "no_ids", "closed", "no_fee") else 400
        if isinstance(exc, RequestRefused):
            words = explain(exc.message, locale(request), exc.code)
        else:
            words = explain(str(exc), locale(request))
        return self.views.error_page(request, status, words)

    # -- pages --------------------------------------------------------------------------

    async def queue(self, request: Request) -> Response:
        session = self._staff(request)
        if isinstance(session, Response):
            return session
        assert self.desk is not None
        q = request.query_params
        status, kind, overdue = q.get("status", ""), q.get("kind", ""), q.get("overdue") == "1"
        every = await run_in_threadpool(self.desk.every)
        shown = [r for r in every if (status not in STATUSES or r["status"] == status)
                 and (kind not in KINDS or r["kind"] == kind) and (not overdue or r["overdue"])]
        return self._render(request, "requests.html", session, requests=shown,
                            total=len(every), status_filter=status, kind_filter=kind,
                            overdue=overdue,
                            STATUSES=STATUSES, KINDS=KINDS)

    async def one(self, request: Request) -> Response:
        session = self._staff(request)
        if isinstance(session, Response):
            return session
        assert self.desk is not None
        ref = request.path_params["ref"]
        try:
            view = await run_in_threadpool(self.desk.one, ref)
        except RequestRefused as exc:
            return self.refused(request, exc)
        lookup: dict[str, Any] | None = None
        id_type = request.query_params.get("id_type", "")
        value = request.query_params.get("value", "").strip()
        problem = ""
        if value:
            try:
                lookup = await run_in_threadpool(self.desk.lookup, id_type, value)
            except PrivacyError as exc:
                problem = explain(str(exc), locale(request))
        return self._render(request, "request.html", session, r=view, lookup=lookup,
                            lookup_type=id_type, lookup_value=value, lookup_problem=problem,
                            GROUNDS=GROUNDS)

    async def raw(self, request: Request) -> Response:
        session = self._staff(request)
        if isinstance(session, Response):
            return session
        assert self.desk is not None
        try:
            view = await run_in_threadpool(self.desk.one, request.path_params["ref"])
        except RequestRefused as exc:
            return self.refused(request, exc)
        return JSONResponse(view, headers=SECURITY_HEADERS)

    async def audit(self, request: Request) -> Response:
        session = self._staff(request)
        if isinstance(session, Response):
            return session
        assert self.desk is not None
        rows, report = await run_in_threadpool(self.desk.audit, 200)
        today = datetime.now(UTC).date()
        return self._render(request, "audit.html", session, rows=rows, report=report,
                            evidence_from=today.replace(day=1).isoformat(),
                            evidence_to=today.isoformat(),
                            details=lambda d: json.loads(d) if isinstance(d, str) else d)

    # -- changes ------------------------------------------------------------------------

    async def _post(self, request: Request) -> tuple[Session, dict[str, str]] | Response:
        if self.desk is None:
            return self.views.error_page(request, 503, UI["unavailable"])
        return await self.views.staff_post(request, may_handle_requests)

    async def act(self, request: Request) -> Response:
        found = await self._post(request)
        if isinstance(found, Response):
            return found
        session, form = found
        assert self.desk is not None
        ref, action = request.path_params["ref"], request.path_params["action"]
        if action not in ACTIONS:
            return self.views.error_page(request, 404, UI["no_page"])
        try:
            if action == "complete" and form.get("confirm") != "yes":
                # A purge cannot be undone: the form's tick is checked here too, not only by
                # the browser (a request not yet verified is refused as such, further on).
                view = await run_in_threadpool(self.desk.one, ref)
                if view["kind"] == "deletion" and view["status"] in ("verified", "in_progress"):
                    return self.views.error_page(request, 400,
                                                 words.DESK_UI["rq_confirm_needed"])
            await run_in_threadpool(self.desk.act, ref, action, session.user, form)
        except (RequestRefused, PrivacyError) as exc:
            return self.refused(request, exc)
        return RedirectResponse(f"{root(request)}/requests/{ref}", status_code=303,
                                headers=SECURITY_HEADERS)

    async def add(self, request: Request) -> Response:
        found = await self._post(request)
        if isinstance(found, Response):
            return found
        session, form = found
        assert self.desk is not None
        try:
            ref = await run_in_threadpool(self.desk.submit, form, session.user)
        except RequestRefused as exc:
            return self.refused(request, exc)
        return RedirectResponse(f"{root(request)}/requests/{ref}", status_code=303,
                                headers=SECURITY_HEADERS)

    async def evidence(self, request: Request) -> Response:
        """The evidence pack for the posted period, as a download (a POST: making one is
        audited under the staff member's name, so a link from elsewhere must not)."""
        found = await self._post(request)
        if isinstance(found, Response):
            return found
        session, form = found
        assert self.desk is not None
        start, end = form.get("from", ""), form.get("to", "")
        try:
            pack = await run_in_threadpool(self.desk.evidence, start, end, session.user)
        except PrivacyError as exc:
            return self.refused(request, exc)

        def chunks() -> Iterator[bytes]:
            with pack:
                yield from iter(lambda: pack.read(1 << 20), b"")

        return StreamingResponse(chunks(), media_type="application/zip", headers={
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="evidence-{start}-{end}.zip"'})

    async def retry(self, request: Request) -> Response:
        found = await self._post(request)
        if isinstance(found, Response):
            return found
        _, form = found
        assert self.desk is not None
        await run_in_threadpool(self.desk.retry_mail, request.path_params["mail_id"])
        ref = form.get("ref", "")
        target = f"{root(request)}/requests/{ref}" if ref.startswith("R-") and len(ref) == 11 \
            else f"{root(request)}/requests"
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
