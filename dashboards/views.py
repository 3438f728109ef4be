"""The dashboards' Starlette endpoints: pages, a panel's rows as JSON or CSV, login, logout.

Pages are rendered on the server (jinja2, autoescaped). Every answer carries the security
headers below; bad input is a 400 with its reason and a failure a 503, never a 500. HTML
endpoints answer errors with the error page, JSON and CSV ones with the one JSON error shape
the collector uses too: ``{"error": <code>, "message": <reason>}``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)

from collector.csvsafe import write_csv
from collector.logins import Logins, Session, SessionStore
from collector.query.funnels import MAX_STEPS
from collector.query.params import QueryError
from collector.segments import filters_of
from collector.web import FormTooLarge, client_key, is_same_origin, read_form
from consent_mw.http import error_body
from dashboards.auth import may_open, may_read
from dashboards.backends import BackendError, Rows
from dashboards.charts import charts, script_json
from dashboards.format import funnel_text, goal_text, key_header, row_label
from dashboards.i18n import COOKIE, COOKIE_MAX_AGE, UI, Locale, Text, locale_of, pick_locale
from dashboards.pagedata import (
    FUNNEL_DETAIL,
    GOAL_DETAIL,
    PageLoader,
    PanelData,
    Realtime,
    Table,
    realtime,
    table,
)
from dashboards.panels import PAGES, PANELS, Panel, pages_showing
from dashboards.reasons import explain
from dashboards.settings import DashboardSettings
from dashboards.view import View, effective_grain, parse_view

log = logging.getLogger(__name__)

# Plotly sets inline styles on its SVG; scripts are only ever files from this app.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
UNAVAILABLE = UI["unavailable"].en  # the JSON API's wording (pages say it in their language)
FAILED = UI["failed"].en

Endpoint = Callable[[Request], Awaitable[Response]]


def json_error(status: int, code: str, message: str) -> JSONResponse:
    """An API refusal in the one JSON error shape (``consent_mw.http.error_body``)."""
    return JSONResponse(error_body(code, message), status_code=status, headers=SECURITY_HEADERS)


def locale(request: Request) -> Locale:
    """The language of the page answering ``request`` (:func:`dashboards.i18n.pick_locale`)."""
    return pick_locale(request.query_params.get("lang"), request.cookies.get(COOKIE),
                       request.headers.get("accept-language"))


def here(request: Request) -> str:
    """This page's path and query: where a form on it comes back to."""
    return request.url.path + ("?" + request.url.query if request.url.query else "")


def root(request: Request) -> str:
    """Where the dashboards are mounted (``/dashboards`` in the demo), without a final /."""
    return str(request.scope.get("root_path", "")).rstrip("/")


class DashboardViews:
    """The endpoints, over the collaborators :func:`dashboards.app.create_dashboards` wires."""

    def __init__(self, settings: DashboardSettings, loader: PageLoader,
                 sessions: SessionStore, logins: Logins, templates: Environment,
                 plotly_js: Path) -> None:
        self.settings = settings
        self.loader = loader
        self.sessions = sessions
        self.logins = logins
        self.templates = templates
        self.plotly_js_path = plotly_js

    # --- plumbing ------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200,
               headers: Mapping[str, str] | None = None, **context: object) -> HTMLResponse:
        lang = locale(request)

        def t(key: str, **values: object) -> str:
            return UI[key](lang).format(**values)

        other = "en" if lang == "ja" else "ja"
        query = [(k, v) for k, v in request.query_params.multi_items()
                 if k not in ("lang", "done")]
        done = request.query_params.get("done", "")
        html = self.templates.get_template(template).render(
            root=root(request), lang=lang, t=t,
            # What the write that led here did ("saved", "removed"): said once, at the top.
            done=UI["done_" + done](lang) if "done_" + done in UI else "",
            other_lang_url=request.url.path + "?" + urlencode([*query, ("lang", other)]),
            **context)
        response = HTMLResponse(html, status_code=status,
                                headers={**SECURITY_HEADERS, **(headers or {})})
        chosen = locale_of(request.query_params.get("lang"))
        if chosen is not None:  # the language link: remembered for this browser
            response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE, httponly=True,
                                samesite="lax", secure=self.settings.secure_cookie,
                                path=root(request) + "/")
        return response

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.settings.cookie_name),
                                 self.settings.users)

    def error_page(self, request: Request, status: int, message: Text | str) -> HTMLResponse:
        text = message(locale(request)) if isinstance(message, Text) else message
        return self.render(request, "error.html", status=status, message=text,
                           user=self.session(request))

    async def staff_post(self, request: Request, may: Callable[[str], bool]
                         ) -> Response | tuple[Session, dict[str, str]]:
        """A staff form post's author and fields, or the refusal: same origin, logged in,
        a role ``may`` allows, a bounded body, the session's CSRF token."""
        if not is_same_origin(request):
            return self.error_page(request, 403, UI["cross_site"])
        session = self.session(request)
        if session is None:
            return self.error_page(request, 401, UI["login_required"])
        if not may(session.role):
            return self.error_page(request, 403, UI["forbidden"])
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.error_page(request, 413, str(exc))
        if not secrets.compare_digest(form.get("csrf", ""), session.csrf):
            return self.error_page(request, 403, UI["expired"])
        return session, form

    def guard(self, handler: Endpoint, *, json: bool = False) -> Endpoint:
        """Turn bad input into a 400 and any failure into a 503: never a 500."""

        def error(request: Request, status: int, code: str, message: str) -> Response:
            if json:
                return json_error(status, code, message)
            return self.error_page(request, status, message)

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except QueryError as exc:
                return error(request, 400, "bad_request",
                             exc.reason if json else explain(exc.reason, locale(request)))
            except BackendError as exc:
                log.warning("backend unavailable: %s", exc)
                return error(request, 503, "unavailable",
                             UNAVAILABLE if json else UI["unavailable"](locale(request)))
            except Exception:
                log.exception("dashboard request failed")
                return error(request, 503, "unavailable",
                             FAILED if json else UI["failed"](locale(request)))

        return wrapped

    # --- pages ---------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None and session.role == "privacy":  # their work: the requests
            return RedirectResponse(root(request) + "/requests", status_code=303)
        request.path_params["page"] = "overview"
        return await self.page(request)

    async def page(self, request: Request) -> Response:
        page = PAGES.get(request.path_params.get("page", "overview"))
        if page is None:
            return self.error_page(request, 404, UI["no_page"])
        session = self.session(request)
        if session is None:
            return RedirectResponse(root(request) + "/login?" + urlencode({"next": here(request)}),
                                    status_code=303)
        if not may_open(session.role, page):
            return self.error_page(request, 403, UI["forbidden"])
        view = parse_view(request.query_params, self.settings.tz)
        loader = self.loader.for_page()  # the page's queries share what each reads first
        version = await run_in_threadpool(loader.version)
        segments = await run_in_threadpool(loader.listed, "segments", version)
        chosen = request.query_params.get("segment")
        if chosen:  # a saved segment: the same view with its filters, as a link
            match = next((row for row in segments if row["segment_id"] == chosen), None)
            if match is None:
                raise QueryError("segment: no such saved segment")
            pairs = [(k, v) for k, v in view.query(filters=None) if not k.startswith("f.")]
            pairs += [(f"f.{k}", v) for k, v in sorted(filters_of(match).items())]
            return RedirectResponse(root(request) + "/" + page.id + "?" + urlencode(pairs),
                                    status_code=303, headers=SECURITY_HEADERS)
        view = await run_in_threadpool(loader.with_goal, page, view, version)
        data = await run_in_threadpool(loader.page, page, view, version)
        goals = (await run_in_threadpool(loader.listed, "goal_list", version)
                 if page.id in ("goals", "funnels") else [])
        funnels = (await run_in_threadpool(loader.listed, "funnel_list", version)
                   if page.id == "funnels" else [])
        # (id, name, author, whether it is the view's filters)
        listed = [(str(row["segment_id"]), str(row["name"]), str(row["created_by"]),
                   filters_of(row) == dict(view.filters)) for row in segments]
        page_url = root(request) + "/" + page.id
        lang = locale(request)
        tables, now = self.shaped(data, view, page_url, lang)
        chips = [(key_header(k)(lang) or k, row_label(v, False, k, lang),
                  "?" + urlencode(view.query(filters={k: None})))
                 for k, v in view.filters]
        return self.render(
            request, "page.html", page=page, user=session, view=view, data=data,
            chips=chips, grain=effective_grain(view),
            charts=script_json({"charts": charts(data, lang)}),
            view_query=urlencode(view.query()),
            view_query_without_funnel=urlencode(dataclasses.replace(view, funnel="").query()),
            tables=tables, realtime=now,
            here=here(request),
            segments=listed, current_segment=any(current for *_, current in listed),
            goals=[(str(g["goal_id"]), str(g["name"]), goal_text(json.loads(
                str(g["definition"])), lang), str(g["created_by"])) for g in goals],
            step_goals=[(str(g["goal_id"]), str(g["name"])) for g in goals
                        if json.loads(str(g["definition"])).get("kind") != "engaged"],
            funnels=[(str(f["funnel_id"]), str(f["name"]), funnel_text(
                json.loads(str(f["definition"])), {str(g["goal_id"]): str(g["name"])
                                                   for g in goals}, lang),
                      str(f["created_by"]), bool(f["ok"])) for f in funnels],
            max_steps=MAX_STEPS,
        )

    def shaped(self, data: Mapping[str, PanelData], view: View, page_url: str,
               lang: Locale) -> tuple[dict[str, Table], dict[str, Realtime]]:
        """What the panel template reads besides the rows: tables and realtime figures."""
        return ({pid: table(d.panel, view, d.rows, page_url, lang)
                 for pid, d in data.items() if d.panel.show == "table"},
                {pid: realtime(d.rows, lang, self.settings.tz)
                 for pid, d in data.items() if d.panel.show == "realtime"})

    async def panel_html(self, request: Request) -> Response:
        """One panel of a page, as the page shows it: what a panel that refreshes itself
        (``Panel.refresh``) fetches, so its words and escaping are the page's own."""
        session = self.session(request)
        panel = PANELS.get(request.path_params["panel"])
        if session is None:
            return self.error_page(request, 401, UI["login_required"])
        if panel is None or not panel.refresh:
            return self.error_page(request, 404, UI["no_page"])
        if not may_read(session.role, panel.id):
            return self.error_page(request, 403, UI["forbidden"])
        view = parse_view(request.query_params, self.settings.tz)
        loader = self.loader.for_page()
        version = await run_in_threadpool(loader.version)
        data = {panel.id: await run_in_threadpool(loader.panel, panel, view, version)}
        page = pages_showing(panel.id)[0]
        tables, now = self.shaped(data, view, root(request) + "/" + page.id, locale(request))
        return self.render(request, "_panel.html", pid=panel.id, d=data[panel.id],
                           view_query=urlencode(view.query()), tables=tables, realtime=now)

    # --- a panel's rows ------------------------------------------------------------------------

    async def _panel_rows(self, request: Request) -> Response | tuple[Panel, View, Rows]:
        """The requested panel's rows for the request's view, or the refusal to send."""
        session = self.session(request)
        if session is None:
            return json_error(401, "login_required", "login required")
        panel = PANELS.get(request.path_params["panel"])
        if panel is None:
            return json_error(404, "not_found", "no such panel")
        if not may_read(session.role, panel.id):
            return json_error(403, "forbidden", "your role cannot read this panel")
        view = parse_view(request.query_params, self.settings.tz)
        loader = self.loader.for_page()
        version = await run_in_threadpool(loader.version)
        page = pages_showing(panel.id)[0]
        view = await run_in_threadpool(loader.with_goal, page, view, version)
        if ((panel.query in GOAL_DETAIL and not view.goal)
                or (panel.query in FUNNEL_DETAIL and not view.funnel)):
            return panel, view, []  # none defined yet
        rows = await run_in_threadpool(loader.panel_rows, panel, view, version)
        return panel, view, rows

    async def api(self, request: Request) -> Response:
        found = await self._panel_rows(request)
        if isinstance(found, Response):
            return found
        panel, view, rows = found
        return JSONResponse({"panel": panel.id, "view": {
            "start": view.start.isoformat(), "end": view.end.isoformat(),
            "filters": dict(view.filters), "k": self.settings.k}, "rows": rows},
            headers=SECURITY_HEADERS)

    async def csv(self, request: Request) -> Response:
        found = await self._panel_rows(request)
        if isinstance(found, Response):
            return found
        panel, view, rows = found
        text = write_csv(rows, list(rows[0])) if rows else ""
        name = f"{panel.id}_{view.start.isoformat()}_{view.end.isoformat()}.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    # --- login and logout ----------------------------------------------------------------------

    def safe_next(self, request: Request, target: str | None) -> str:
        """Where to go after login: a path under the dashboards, else their home."""
        home = root(request) + "/"
        if target and target.startswith(home) and not target.startswith("//") \
                and "\\" not in target and "/login" not in target:
            return target
        return home

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", next=self.safe_next(
            request, request.query_params.get("next")), error=None, user=None)

    async def login(self, request: Request) -> Response:
        if not is_same_origin(request):
            return self.error_page(request, 403, UI["cross_site"])
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.error_page(request, 413, str(exc))
        name = form.get("username", "")[:128]
        password = form.get("password", "")[:1024]
        target = self.safe_next(request, form.get("next", ""))
        outcome = await self.logins.attempt(
            self.settings.users, name, password,
            address=client_key(request, self.settings.trusted_proxies,
                               self.settings.forwarded_header))
        if outcome.retry_after is not None:
            wait = str(int(outcome.retry_after) + 1)
            return self.render(request, "login.html", status=429, next=target, user=None,
                               error=UI["too_many"](locale(request)).format(s=wait),
                               headers={"Retry-After": wait})
        if outcome.busy:
            return self.render(request, "login.html", status=503, next=target, user=None,
                               error=UI["busy"](locale(request)),
                               headers={"Retry-After": "2"})
        user = outcome.account
        if user is None:
            return self.render(request, "login.html", status=401, next=target,
                               error=UI["wrong_login"](locale(request)), user=None)
        if user.role == "privacy" and target == root(request) + "/":
            target = root(request) + "/consent"
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(self.settings.cookie_name, self.sessions.create(user),
                            max_age=self.settings.session_max_age, httponly=True,
                            samesite="lax", secure=self.settings.secure_cookie,
                            path=root(request) + "/")
        return response

    async def logout(self, request: Request) -> Response:
        if not is_same_origin(request):
            return self.error_page(request, 403, UI["cross_site"])
        cookie = request.cookies.get(self.settings.cookie_name)
        session = self.sessions.get(cookie, self.settings.users)
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.error_page(request, 413, str(exc))
        if session is not None and not secrets.compare_digest(form.get("csrf", ""),
                                                              session.csrf):
            return self.error_page(request, 403, UI["expired"])
        self.sessions.end(cookie)  # every copy of the cookie stops working
        response = RedirectResponse(root(request) + "/login", status_code=303,
                                    headers=SECURITY_HEADERS)
        response.delete_cookie(self.settings.cookie_name, path=root(request) + "/")
        return response

    async def plotly_js(self, request: Request) -> Response:
        return FileResponse(self.plotly_js_path, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})
