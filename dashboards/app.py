"""The dashboards as a Starlette app: ``create_dashboards(settings, backend)``.

Mounted at ``/dashboards`` by the demo, or served alone by ``consent-mw dashboards``. This is
where the pieces are wired: the cache around the backend, the page loader, the staff sessions
and login throttle, the templates, and the routes to :class:`dashboards.views.DashboardViews`.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from collector.logins import Logins, SessionStore
from collector.query.goals import TAPS
from dashboards import format as formatting
from dashboards import i18n
from dashboards.auth import may_open, may_write_notes
from dashboards.backends import Backend, CachedBackend
from dashboards.desk_backend import DeskBackend
from dashboards.desk_views import DeskViews, may_handle_requests
from dashboards.pagedata import PageLoader
from dashboards.panels import PAGES
from dashboards.settings import DashboardSettings
from dashboards.view import COMPARES, GRAINS, PRESETS
from dashboards.views import DashboardViews
from dashboards.writes import FORMS, WriteViews

HERE = Path(__file__).resolve().parent
#: Served by the app itself: no CDN, so the charts work on an intranet.
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
CACHE_ENTRIES = 512


def templates(settings: DashboardSettings) -> Environment:
    """The page templates, autoescaped, with what every page refers to."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.globals.update(fmt=formatting.fmt, change=formatting.change, PAGES=PAGES,
                       may_open=may_open, may_write_notes=may_write_notes, PRESETS=PRESETS,
                       GRAINS=GRAINS,
                       PRESET_LABELS=i18n.PRESET_LABELS, GRAIN_LABELS=i18n.GRAIN_LABELS,
                       ROLE_LABELS=i18n.ROLE_LABELS, DATE_FORMAT=i18n.DATE_FORMAT,
                       COMPARES=COMPARES, COMPARE_LABELS=i18n.COMPARE_LABELS,
                       POLICY_CHANGE=formatting.POLICY_CHANGE,
                       GOAL_KIND_LABELS=formatting.GOAL_KIND_LABELS, GOAL_TAPS=tuple(TAPS),
                       INTERACTION_LABEL=lambda tap, lang: formatting.value_label(
                           "interaction", tap, lang),
                       may_handle_requests=may_handle_requests, settings=settings)
    return env


def create_dashboards(settings: DashboardSettings, backend: Backend, *,
                      cache: bool = True, logins: Logins | None = None,
                      desk: DeskBackend | None = None) -> Starlette:
    """The dashboards app; mount it anywhere (``/dashboards`` in the demo).

    ``cache`` reuses panel results while the store's data version is unchanged (exact).
    ``logins``: the login throttle to share with a staff console in the same process.
    ``desk``: the privacy-request desk its console works on (none: the console says it is
    unavailable here).
    """
    cached = CachedBackend(backend, max_entries=CACHE_ENTRIES if cache else 0,
                           max_age=settings.cache_seconds)
    sessions = SessionStore(settings.session_secret.value, salt="consent-mw.dashboards.session",
                            max_age=settings.session_max_age)
    views = DashboardViews(settings, PageLoader(cached, settings), sessions,
                           logins or Logins(), templates(settings), PLOTLY_JS)
    writes = WriteViews(views)
    console = DeskViews(views, desk)
    routes = [
        Route("/requests", views.guard(console.queue), methods=["GET"]),
        Route("/requests", views.guard(console.add), methods=["POST"]),
        Route("/requests/mail/{mail_id}/retry", views.guard(console.retry), methods=["POST"]),
        Route("/requests/{ref}", views.guard(console.one), methods=["GET"]),
        Route("/requests/{ref}/json", views.guard(console.raw), methods=["GET"]),
        Route("/requests/{ref}/{action}", views.guard(console.act), methods=["POST"]),
        Route("/audit", views.guard(console.audit), methods=["GET"]),
        Route("/evidence", views.guard(console.evidence), methods=["POST"]),
        Route("/", views.guard(views.index), methods=["GET"]),
        Route("/login", views.guard(views.login_form), methods=["GET"]),
        Route("/login", views.guard(views.login), methods=["POST"]),
        Route("/logout", views.guard(views.logout), methods=["POST"]),
        Route("/static/plotly.min.js", views.plotly_js, methods=["GET"]),
        Route("/api/{panel}", views.guard(views.api, json=True), methods=["GET"]),
        Route("/csv/{panel}", views.guard(views.csv, json=True), methods=["GET"]),
        Route("/panel/{panel}", views.guard(views.panel_html), methods=["GET"]),
        *(route for item in FORMS for route in (
            Route(f"/{item}", views.guard(writes.add(item)), methods=["POST"]),
            Route(f"/{item}/{{item_id}}/delete", views.guard(writes.delete(item)),
                  methods=["POST"]))),
        Route("/{page}", views.guard(views.page), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    return app
