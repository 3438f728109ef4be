"""The dashboards as a Starlette app: ``create_dashboards(settings, backend)``.

Mounted at ``/dashboards`` by the demo, or served alone by ``consent-mw dashboards``. Pages are
rendered on the server (jinja2, autoescaped); chart data travels in a
``<script type="application/json">`` block read by ``static/app.js``, so no inline script
runs and the CSP can forbid it. Every number comes from a named catalogue query that already
applies suppression and k-anonymity; this module only chooses which ones and shows them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from collector.csvsafe import write_csv
from collector.logins import Logins, Session, SessionStore
from collector.query.params import DIMENSIONS, QueryError
from collector.web import FormTooLarge, client_key, is_same_origin, read_form
from dashboards.auth import PAGE_ROLES
from dashboards.queries import (
    PAGES,
    PANELS,
    PRESETS,
    Backend,
    BackendError,
    CachedBackend,
    Page,
    Panel,
    View,
    effective_grain,
    panel_params,
    parse_view,
)
from dashboards.settings import DashboardSettings

log = logging.getLogger("consent_mw.dashboards")
HERE = Path(__file__).resolve().parent
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
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

Endpoint = Callable[[Request], Awaitable[Response]]


def script_json(data: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no way to close the tag."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return Markup(text)  # noqa: S704 - every character that could end the block is escaped


def _ratio(num: Any, den: Any) -> float | None:
    if num is None or not den:
        return None
    return float(num) / float(den)


def kpi_figures(row: Mapping[str, Any] | None) -> dict[str, float | int | None]:
    """Raw KPI counts plus the derived rates the page shows."""
    row = row or {}
    return {
        "visitors": row.get("visitors"),
        "visits": row.get("visits"),
        "pageviews": row.get("pageviews"),
        "views_per_visit": _ratio(row.get("pageviews"), row.get("visits")),
        "bounce_rate": _ratio(row.get("bounces"), row.get("visits")),
        "reservations": row.get("reservations"),
        "conversion_rate": _ratio(row.get("converted_visits"), row.get("visits")),
    }


#: What a breakdown's count column counts: landings start a visit, so they count visits.
EVENTS_LABEL = {"path": "Pageviews", "entry_path": "Visits", "channel": "Visits",
                "referrer_host": "Visits", "click_id_type": "Visits", "search_terms": "Searches",
                "utm_source": "Visits", "utm_medium": "Visits", "utm_campaign": "Visits",
                "event": "Events", "property": "Events"}

KPI_LABELS = {
    "visitors": ("Visitors", "int"), "visits": ("Visits", "int"),
    "pageviews": ("Pageviews", "int"), "views_per_visit": ("Views per visit", "dec"),
    "bounce_rate": ("Bounce rate", "pct"), "reservations": ("Reservations", "int"),
    "conversion_rate": ("Conversion rate", "pct"),
}


def fmt(value: Any, kind: str = "int") -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "dec":
        return f"{float(value):.2f}"
    return f"{int(value):,}"


def change(cur: Any, prev: Any) -> str:
    if cur is None or prev is None or not prev:
        return ""
    delta = (float(cur) - float(prev)) / float(prev)
    if math.isnan(delta):
        return ""
    return f"{'+' if delta >= 0 else ''}{100 * delta:.1f}%"


class Dashboards:
    """State and handlers behind the Starlette app."""

    def __init__(self, settings: DashboardSettings, backend: Backend, *,
                 cache: bool = True, logins: Logins | None = None) -> None:
        self.settings = settings
        self.backend = (backend if isinstance(backend, CachedBackend)
                        else CachedBackend(backend, max_entries=512 if cache else 0,
                                           max_age=settings.cache_seconds))
        self.sessions = SessionStore(settings.session_secret.value,
                                     salt="consent-mw.dashboards.session",
                                     max_age=settings.session_max_age)
        self.logins = logins or Logins()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(default=True, default_for_string=True))
        self.env.globals.update(fmt=fmt, change=change, KPI_LABELS=KPI_LABELS, PAGES=PAGES,
                                PAGE_ROLES=PAGE_ROLES, PRESETS=PRESETS, settings=settings)

    # --- plumbing ------------------------------------------------------------------------------

    def root(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def render(self, request: Request, template: str, status: int = 200,
               headers: Mapping[str, str] | None = None, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(root=self.root(request), **context)
        return HTMLResponse(html, status_code=status,
                            headers={**SECURITY_HEADERS, **(headers or {})})

    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(self.settings.cookie_name),
                                 self.settings.users)

    def error(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith((self.root(request) + "/api/",
                                        self.root(request) + "/csv/")) or \
                "/api/" in request.url.path or "/csv/" in request.url.path:
            return JSONResponse({"error": message}, status_code=status, headers=SECURITY_HEADERS)
        return self.render(request, "error.html", status=status, message=message,
                           user=self.session(request))

    def guard(self, handler: Endpoint) -> Endpoint:
        """Turn bad input into a 400 and any failure into a 503: never a 500."""

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except QueryError as exc:
                return self.error(request, 400, exc.reason)
            except BackendError as exc:
                log.warning("backend unavailable: %s", exc)
                return self.error(request, 503, "The analytics store is unavailable; "
                                                "try again shortly.")
            except Exception:
                log.exception("dashboard request failed")
                return self.error(request, 503, "The dashboard could not answer; "
                                                "try again shortly.")

        return wrapped

    # --- data ----------------------------------------------------------------------------------

    def panel_rows(self, panel: Panel, view: View, version: str) -> list[dict[str, Any]]:
        s = self.settings
        params = panel_params(panel, view, s.k, s.tz, s.top_n)
        return self.backend.run(panel.query, params, version=version)

    def panel_data(self, panel: Panel, view: View, version: str) -> dict[str, Any]:
        rows = self.panel_rows(panel, view, version)
        data: dict[str, Any] = {"panel": panel, "rows": rows}
        if panel.show == "kpis":
            data["current"] = kpi_figures(rows[0] if rows else None)
            data["below_k"] = bool(rows and rows[0].get("below_k"))
            if view.compare:
                s = self.settings
                prev = self.backend.run("kpis_previous", view.params(s.k, s.tz),
                                        version=version)
                data["previous"] = kpi_figures(prev[0] if prev else None)
        return data

    def page_data(self, page: Page, view: View) -> dict[str, dict[str, Any]]:
        version = self.backend.version()
        # The page's breakdowns share one scan (and, when filtered, one visit selection).
        combined = [PANELS[pid] for pid in page.panels
                    if PANELS[pid].query == "breakdown" and PANELS[pid].dim != "property"]
        by_dim: dict[str, list[dict[str, Any]]] = {}
        if len(combined) > 1:
            s = self.settings
            params = view.params(s.k, s.tz, dims=[p.dim for p in combined], limit=s.top_n)
            for row in self.backend.run("breakdowns", params, version=version):
                rest = {k: v for k, v in row.items() if k != "dim"}  # rows may be cached
                by_dim.setdefault(str(row["dim"]), []).append(rest)
        out: dict[str, dict[str, Any]] = {}
        for pid in page.panels:
            panel = PANELS[pid]
            if len(combined) > 1 and panel in combined:
                out[pid] = {"panel": panel, "rows": by_dim.get(str(panel.dim), [])}
            else:
                out[pid] = self.panel_data(panel, view, version)
        return out

    def charts(self, page_data: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Plotly traces for every chart panel on the page (data only, no code)."""
        out: list[dict[str, Any]] = []
        for pid, data in page_data.items():
            panel: Panel = data["panel"]
            rows = data["rows"]
            traces: list[dict[str, Any]] = []
            layout: dict[str, Any] = {}
            if panel.show == "series":
                x = [r["bucket"] for r in rows]
                for key, name in (("visitors", "Visitors"), ("visits", "Visits"),
                                  ("pageviews", "Pageviews")):
                    traces.append({"type": "scatter", "mode": "lines+markers", "name": name,
                                   "x": x, "y": [r[key] for r in rows]})
            elif panel.chart == "funnel":
                traces.append({"type": "bar", "orientation": "h",
                               "y": [f"{r['step']}: {r['method']}" for r in rows],
                               "x": [r["consents"] for r in rows]})
                layout = {"yaxis": {"autorange": "reversed", "automargin": True}}
            elif panel.chart == "optin":
                by_cat: dict[str, tuple[list[str], list[Any]]] = {}
                for r in rows:
                    xs, ys = by_cat.setdefault(str(r["category"]), ([], []))
                    xs.append(r["day"])
                    ys.append(r["rate"])
                traces = [{"type": "scatter", "mode": "lines", "name": c, "x": xs, "y": ys}
                          for c, (xs, ys) in sorted(by_cat.items())]
                layout = {"yaxis": {"tickformat": ".0%", "range": [0, 1]}}
            elif panel.chart == "gpc":
                traces.append({"type": "scatter", "mode": "lines", "name": "GPC share",
                               "x": [r["day"] for r in rows],
                               "y": [r["gpc_share"] for r in rows]})
                layout = {"yaxis": {"tickformat": ".0%", "rangemode": "tozero"}}
            elif panel.chart == "coverage":
                x = [r["day"] for r in rows]
                traces = [
                    {"type": "bar", "name": "Consented pageviews", "x": x,
                     "y": [r["consented"] for r in rows]},
                    {"type": "bar", "name": "Anonymous counts", "x": x,
                     "y": [r["anonymous"] for r in rows]},
                ]
                layout = {"barmode": "stack"}
            else:
                continue
            out.append({"id": f"chart-{pid}", "traces": traces, "layout": layout})
        return out

    def table(self, request: Request, panel: Panel, view: View,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Rows ready for the template: labels, numbers, and the filter link of each row."""
        filter_dim = "path" if panel.dim == "entry_path" else panel.dim
        filterable = (panel.query == "breakdown" and filter_dim is not None
                      and DIMENSIONS[filter_dim].filterable)
        active = dict(view.filters)
        base = f"{self.root(request)}{request.url.path[len(self.root(request)):]}"
        out = []
        for r in rows:
            if panel.query == "suppression_stats":
                out.append({"label": r["id_type"], "nums": [r["active"], r["purged"]],
                            "href": None, "other": False})
                continue
            other = bool(r.get("is_other"))
            key = r.get("key", "")
            label = "(other)" if other else (key if key != "" else "(not set)")
            href = None
            if filterable and not other and filter_dim and active.get(filter_dim) != key:
                href = base + "?" + urlencode(view.query(filters={filter_dim: key}))
            values = ([r["views"]] if panel.query == "anonymous_pages"
                      else [r["visitors"], r["events"]])
            out.append({"label": label, "nums": values, "href": href, "other": other})
        if panel.query == "suppression_stats":
            headers = ["Active", "Purged"]
        elif panel.query == "anonymous_pages":
            headers = ["Views (counted)"]
        else:
            headers = ["Visitors", EVENTS_LABEL.get(panel.dim or "", "Pageviews")]
        return {"rows": out, "headers": headers}

    # --- handlers ------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        page_id = request.path_params.get("page", "overview")
        page = PAGES.get(page_id)
        if page is None:
            return self.error(request, 404, "No such page.")
        session = self.session(request)
        if session is None:
            target = self.root(request) + "/login?" + urlencode(
                {"next": str(request.url.path) + ("?" + request.url.query
                                                  if request.url.query else "")})
            return RedirectResponse(target, status_code=303)
        if session.role not in PAGE_ROLES[page.id]:
            return self.error(request, 403, "Your role cannot open this page.")
        view = parse_view(request.query_params, self.settings.tz)
        data = await run_in_threadpool(self.page_data, page, view)
        tables = {pid: self.table(request, d["panel"], view, d["rows"])
                  for pid, d in data.items() if d["panel"].show == "table"}
        chips = [(k, v, "?" + urlencode(view.query(filters={k: None})))
                 for k, v in view.filters]
        return self.render(
            request, "page.html", page=page, user=session, view=view, data=data,
            tables=tables, chips=chips, grain=effective_grain(view),
            charts=script_json({"charts": self.charts(data)}),
            view_query=urlencode(view.query()),
        )

    def _panel_for(self, request: Request) -> tuple[Session, Panel] | Response:
        session = self.session(request)
        if session is None:
            return JSONResponse({"error": "login required"}, status_code=401,
                                headers=SECURITY_HEADERS)
        panel = PANELS.get(request.path_params["panel"])
        if panel is None:
            return JSONResponse({"error": "no such panel"}, status_code=404,
                                headers=SECURITY_HEADERS)
        allowed = any(session.role in PAGE_ROLES[p.id] for p in PAGES.values()
                      if panel.id in p.panels)
        if not allowed:
            return JSONResponse({"error": "your role cannot read this panel"}, status_code=403,
                                headers=SECURITY_HEADERS)
        return session, panel

    async def _panel_data(
        self, request: Request
    ) -> Response | tuple[Panel, View, list[dict[str, Any]]]:
        """The requested panel's rows for the request's view, or the refusal to send."""
        found = self._panel_for(request)
        if isinstance(found, Response):
            return found
        _, panel = found
        view = parse_view(request.query_params, self.settings.tz)
        version = await run_in_threadpool(self.backend.version)
        rows = await run_in_threadpool(self.panel_rows, panel, view, version)
        return panel, view, rows

    async def api(self, request: Request) -> Response:
        data = await self._panel_data(request)
        if isinstance(data, Response):
            return data
        panel, view, rows = data
        return JSONResponse({"panel": panel.id, "view": {
            "start": view.start.isoformat(), "end": view.end.isoformat(),
            "filters": dict(view.filters), "k": self.settings.k}, "rows": rows},
            headers=SECURITY_HEADERS)

    async def csv_download(self, request: Request) -> Response:
        data = await self._panel_data(request)
        if isinstance(data, Response):
            return data
        panel, view, rows = data
        text = write_csv(rows, list(rows[0])) if rows else ""
        name = f"{panel.id}_{view.start.isoformat()}_{view.end.isoformat()}.csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={**SECURITY_HEADERS,
                                 "Content-Disposition": f'attachment; filename="{name}"'})

    async def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", next=self.safe_next(request,
                           request.query_params.get("next")), error=None, user=None)

    def safe_next(self, request: Request, target: str | None) -> str:
        root = self.root(request)
        if target and target.startswith(root + "/") and not target.startswith("//") \
                and "\\" not in target and "/login" not in target:
            return target
        return root + "/"

    async def login(self, request: Request) -> Response:
        if not is_same_origin(request):
            return self.error(request, 403, "Cross-site form posts are refused.")
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.error(request, 413, str(exc))
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
                               error=f"Too many failed logins. Try again in {wait} seconds.",
                               headers={"Retry-After": wait})
        if outcome.busy:
            return self.render(request, "login.html", status=503, next=target, user=None,
                               error="The server is busy. Try again in a moment.",
                               headers={"Retry-After": "2"})
        user = outcome.account
        if user is None:
            return self.render(request, "login.html", status=401, next=target,
                               error="Unknown user or wrong password.", user=None)
        if user.role == "privacy" and target == self.root(request) + "/":
            target = self.root(request) + "/consent"
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(self.settings.cookie_name, self.sessions.create(user),
                            max_age=self.settings.session_max_age, httponly=True,
                            samesite="lax", secure=self.settings.secure_cookie,
                            path=self.root(request) + "/")
        return response

    async def logout(self, request: Request) -> Response:
        if not is_same_origin(request):
            return self.error(request, 403, "Cross-site form posts are refused.")
        cookie = request.cookies.get(self.settings.cookie_name)
        session = self.sessions.get(cookie, self.settings.users)
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return self.error(request, 413, str(exc))
        if session is not None and form.get("csrf") != session.csrf:
            return self.error(request, 403, "This form has expired; reload the page.")
        self.sessions.end(cookie)  # every copy of the cookie stops working
        response = RedirectResponse(self.root(request) + "/login", status_code=303,
                                    headers=SECURITY_HEADERS)
        response.delete_cookie(self.settings.cookie_name, path=self.root(request) + "/")
        return response

    async def plotly_js(self, request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    async def index(self, request: Request) -> Response:
        session = self.session(request)
        if session is not None and session.role == "privacy":
            return RedirectResponse(self.root(request) + "/consent", status_code=303)
        request.path_params["page"] = "overview"
        return await self.page(request)


def create_dashboards(settings: DashboardSettings, backend: Backend, *,
                      cache: bool = True, logins: Logins | None = None) -> Starlette:
    """The dashboards app; mount it anywhere (``/dashboards`` in the demo).

    ``cache`` reuses panel results while the store's data version is unchanged (exact).
    ``logins``: the login throttle to share with a staff console in the same process.
    """
    d = Dashboards(settings, backend, cache=cache, logins=logins)
    routes = [
        Route("/", d.guard(d.index), methods=["GET"]),
        Route("/login", d.guard(d.login_form), methods=["GET"]),
        Route("/login", d.guard(d.login), methods=["POST"]),
        Route("/logout", d.guard(d.logout), methods=["POST"]),
        Route("/static/plotly.min.js", d.plotly_js, methods=["GET"]),
        Route("/api/{panel}", d.guard(d.api), methods=["GET"]),
        Route("/csv/{panel}", d.guard(d.csv_download), methods=["GET"]),
        Route("/{page}", d.guard(d.page), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.state.dashboards = d
    return app


