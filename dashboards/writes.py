"""The dashboards' writes: staff notes on the time axis, saved segments and goals.

Every write is a form post from a page: same origin, the session's CSRF token, a role that
may write (:func:`dashboards.auth.may_write_notes`), a bounded body; then the backend's write
(``collector.staff``) and a redirect back to the page. A refusal is an
error page with its reason, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from collector.logins import Session
from collector.notes import WriteRefused
from collector.query.funnels import MAX_STEPS
from collector.query.goals import GOAL_FIELDS
from dashboards.auth import may_write_notes
from dashboards.reasons import explain
from dashboards.views import SECURITY_HEADERS, DashboardViews, locale


class WriteViews:
    """The write endpoints, over the page views' sessions, errors and backend."""

    def __init__(self, views: DashboardViews) -> None:
        self.views = views
        self.backend = views.loader.backend

    async def _form(self, request: Request) -> Response | tuple[Session, dict[str, str]]:
        """The staff member and the posted form, or the refusal."""
        return await self.views.staff_post(request, may_write_notes)

    def _back(self, request: Request, form: Mapping[str, str], done: str) -> Response:
        """Back to the page the form was on, which then says what was done (``DONE``)."""
        parts = urlsplit(self.views.safe_next(request, form.get("next", "")))
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k != "done"] + [("done", done)]
        target = urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)

    async def _write(self, request: Request,
                     action: Callable[[Session, dict[str, str]], object],
                     done: str = "saved") -> Response:
        """Check the post, run ``action`` with its staff member and form, go back."""
        found = await self._form(request)
        if isinstance(found, Response):
            return found
        session, form = found
        try:
            await run_in_threadpool(action, session, form)
        except WriteRefused as exc:
            return self.views.error_page(request, 400, explain(exc.reason, locale(request)))
        return self._back(request, form, done)

    def add(self, item: str) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint adding an ``item`` from its form (:data:`FORMS`)."""
        body_of = FORMS[item]

        async def endpoint(request: Request) -> Response:
            return await self._write(request, lambda who, form: self.backend.add_item(
                item, body_of(form), who.user))

        return endpoint

    def delete(self, item: str) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint removing the ``item`` the path names."""

        async def endpoint(request: Request) -> Response:
            item_id = request.path_params["item_id"]
            return await self._write(request, lambda who, _: self.backend.delete_item(
                item, item_id, who.user), done="removed")

        return endpoint


def _segment(form: Mapping[str, str]) -> dict[str, object]:
    return {"name": form.get("name", ""),
            "filters": {k[2:]: v for k, v in form.items() if k.startswith("f.")}}


#: What each item's form posts, as the body its writer reads (``collector.staff.ITEMS``).
#: A goal's form carries every kind's fields; the goal reads those of its kind.
FORMS: dict[str, Callable[[Mapping[str, str]], dict[str, object]]] = {
    "notes": lambda form: {"day": form.get("day", ""), "text": form.get("text", "")},
    "segments": _segment,
    "goals": lambda form: {k: form.get(k, "") for k in GOAL_FIELDS},
    "funnels": lambda form: {
        "name": form.get("name", ""), "days": form.get("days", "0") or "0",
        # Step rows left empty are not steps: a form has room for the most there may be. A
        # post with more is read one further, so the check refuses it rather than cut it.
        "steps": [{"goal": form[f"step{n}_goal"]} if form.get(f"step{n}_goal")
                  else {"path": form[f"step{n}_path"]}
                  for n in range(1, MAX_STEPS + 2)
                  if form.get(f"step{n}_goal") or form.get(f"step{n}_path")]},
}
