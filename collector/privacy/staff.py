"""The privacy-staff page at ``/v1/privacy/staff``: look up, export, suppress, purge, receipts.

Staff log in with their own account (``collector.accounts``; the ``privacy`` or ``admin``
role), so every action is recorded under their name. Logins are throttled per account and per
address and password checks are bounded (``collector.logins``); the session lives on the
server (logout ends it for every copy of the cookie). Every form is same-origin only and
carries the session's CSRF token; the cookie is ``SameSite=Strict``. Templates autoescape. A
little over 300 lines: its three templates and the endpoints' OpenAPI YAML live beside the
code that uses them.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector.accounts import PRIVACY_ROLES
from collector.logins import Logins, Session, SessionStore
from collector.privacy.operations import Privacy
from collector.privacy.purge import PurgeFailed
from collector.privacy.purge_queue import PurgeQueueFull
from collector.privacy.subjects import ID_TYPES, PrivacyError
from collector.settings import CollectorSettings
from collector.store import StoreError
from collector.web import FormTooLarge, client_key, is_same_origin, read_form


def unavailable() -> HTMLResponse:
    """The store failed: the person retries; the page says so instead of a 500."""
    return HTMLResponse("The store is unavailable; try again shortly.", 503,
                        headers={"Retry-After": "5"})


COOKIE = "cmw_staff"
SESSION_AGE = 8 * 3600
PATH = "/v1/privacy/staff"

_BASE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Privacy staff · consent-mw</title>
<style>body{font:15px system-ui;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}
.warn{color:#a00}.ok{color:#060}form.inline{display:inline}</style></head><body>
<h1>Visitor rights</h1>{% block body %}{% endblock %}</body></html>"""

_LOGIN = """{% extends "base" %}{% block body %}
{% if error %}<p class="warn">{{ error }}</p>{% endif %}
<form method="post" action="{{ base }}/login"><p><label>User
<input name="username" autocomplete="username" required></label></p><p><label>Password
<input type="password" name="password" autocomplete="current-password" required></label></p>
<button>Log in</button></form>{% endblock %}"""

_HOME = """{% extends "base" %}{% block body %}
<p>{{ user }} ({{ role }}) <form method="post" action="{{ base }}/logout" class="inline">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>Log out</button></form></p>
<form method="get" action="{{ base }}"><p>
<select name="id_type"><option value="visitor_id"{% if id_type == 'visitor_id' %} selected{% endif
%}>visitor_id</option><option value="user_id"{% if id_type == 'user_id' %} selected{% endif
%}>user_id</option></select>
<input name="id" value="{{ ident }}" size="40" required> <button>Look up</button></p></form>
{% if error %}<p class="warn">{{ error }}</p>{% endif %}
{% if message %}<p class="ok">{{ message }}</p>{% endif %}
{% if result %}<pre>{{ result }}</pre>{% endif %}
{% if summary %}
<h2>{{ summary.id_type }} · {{ summary.subject_hash }}</h2>
<table><tr><th>events</th><td>{{ summary.rows.events }}</td></tr>
<tr><th>consent records</th><td>{{ summary.rows.consent_records }}</td></tr>
<tr><th>linked visitors</th><td>{{ summary.linked_visitors }}</td></tr>
<tr><th>first seen</th><td>{{ summary.first_seen or '—' }}</td></tr>
<tr><th>last seen</th><td>{{ summary.last_seen or '—' }}</td></tr>
<tr><th>suppressed</th><td>{{ 'yes' if summary.suppressed else 'no' }}</td></tr></table>
<p><a href="{{ base }}/export?id_type={{ id_type|urlencode }}&id={{ ident|urlencode }}">Export
(JSON)</a></p>
{% for action in ['suppress', 'unsuppress'] %}
<form method="post" action="{{ base }}/action" class="inline">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="action"
value="{{ action }}"><input type="hidden" name="id_type" value="{{ id_type }}">
<input type="hidden" name="id" value="{{ ident }}">
<input name="reason" placeholder="reason"><button>{{ action|capitalize }}</button></form>
{% endfor %}
<form method="post" action="{{ base }}/action"><fieldset><legend class="warn">Purge (cannot be
undone)</legend><input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden"
name="action" value="purge"><input type="hidden" name="id_type" value="{{ id_type }}">
<input type="hidden" name="id" value="{{ ident }}"><input name="reason" placeholder="reason"
required> <label>Type PURGE to confirm <input name="confirm" required></label>
<button>Purge</button></fieldset></form>
{% if summary.receipts %}<h3>Receipts</h3><ul>{% for r in summary.receipts %}
<li>{{ r.receipt_id }} · verified {{ r.verified_at }} · remaining {{ r.remaining }}</li>
{% endfor %}</ul>{% endif %}{% endif %}
<h2>Recent receipts</h2><table><tr><th>receipt</th><th>requested</th><th>by</th><th>reason</th>
<th>rows</th><th>remaining</th></tr>{% for r in receipts %}<tr><td>{{ r.receipt_id }}</td>
<td>{{ r.requested_at }}</td><td>{{ r.requested_by }}</td><td>{{ r.reason }}</td>
<td>{{ r.rows_deleted }}</td><td>{{ r.remaining }}</td></tr>{% endfor %}</table>
{% endblock %}"""

ENV = Environment(loader=DictLoader({"base": _BASE, "login": _LOGIN, "home": _HOME}),
                  autoescape=select_autoescape(default=True, default_for_string=True))


def build_staff_routes(privacy: Privacy, settings: CollectorSettings,
                       logins: Logins) -> list[BaseRoute]:
    """Routes of the staff page; they answer 503 until staff accounts are configured.
    ``logins`` is the process's one login throttle (shared with the dashboards')."""
    # Sessions live in this process; a restart logs everyone out, which fails safe.
    sessions = SessionStore(secrets.token_hex(32), salt="consent-mw.staff",
                            max_age=SESSION_AGE)
    actions = {"suppress": privacy.suppress, "unsuppress": privacy.unsuppress,
               "purge": privacy.purge}

    def session(request: Request) -> Session | None:
        found = sessions.get(request.cookies.get(COOKIE), settings.staff_users)
        return found if found is not None and found.role in PRIVACY_ROLES else None

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PATH

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = ENV.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers={
            "Cache-Control": "no-store", "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "form-action 'self'"})

    def ids(id_type: str, ident: str) -> dict[str, str | None]:
        if id_type not in ID_TYPES:
            raise PrivacyError("id type must be visitor_id or user_id")
        return {"visitor_id": ident if id_type == "visitor_id" else None,
                "user_id": ident if id_type == "user_id" else None}

    def unconfigured() -> HTMLResponse:
        return HTMLResponse("the staff page needs staff accounts (CONSENT_MW_STAFF_USERS)", 503)

    async def home(request: Request, *, message: str = "", result: str = "",
                   error: str = "", form: dict[str, str] | None = None) -> Response:
        if not settings.staff_users:
            return unconfigured()
        current = session(request)
        if current is None:
            return page("login", base=base(request))
        src = form if form is not None else dict(request.query_params)
        id_type, ident = src.get("id_type", "visitor_id"), src.get("id", "").strip()
        summary = None
        try:
            if ident:
                summary = await run_in_threadpool(lambda: privacy.summary(**ids(id_type,
                                                                                ident)))
            receipts = await run_in_threadpool(privacy.receipts, 20)
        except PrivacyError as exc:
            error, receipts = str(exc), []
        except StoreError:
            return unavailable()
        return page("home", base=base(request), csrf=current.csrf, user=current.user,
                    role=current.role, id_type=id_type,
                    ident=ident, summary=summary, receipts=receipts, message=message,
                    result=result, error=error)

    async def staff(request: Request) -> Response:
        """The privacy-staff page (login form without a session).
        ---
        summary: Privacy-staff page
        parameters:
          - {name: id_type, in: query, schema: {enum: [visitor_id, user_id]}}
          - {name: id, in: query, schema: {type: string}}
        responses:
          200: {description: HTML page, content: {text/html: {}}}
          303: {description: "To the request console (CONSENT_MW_CONSOLE_URL), when set and
                 no session is open here"}
          503: {description: No admin token configured}
        """
        if settings.console_url and session(request) is None:
            # The dashboards' request console replaces this page: whoever arrives is sent
            # there. (A session already open here may finish its work.)
            return RedirectResponse(settings.console_url, status_code=303)
        return await home(request)

    async def login(request: Request) -> Response:
        """Log in with a staff account (privacy or admin role).
        ---
        summary: Staff login
        requestBody:
          content:
            application/x-www-form-urlencoded:
              schema:
                type: object
                properties: {username: {type: string}, password: {type: string}}
        responses:
          303: {description: Logged in; redirect to the page}
          401: {description: Unknown user, wrong password, or a role without this page}
          403: {description: Cross-site form post}
          413: {description: Form too large}
          429: {description: Too many failed logins for this account or address (Retry-After)}
          503: {description: No staff accounts configured, or too many logins at once}
        """
        if not settings.staff_users:
            return unconfigured()
        if not is_same_origin(request):
            return HTMLResponse("cross-site form posts are refused", 403)
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return HTMLResponse(str(exc), 413)
        outcome = await logins.attempt(
            settings.staff_users, form.get("username", "")[:128],
            form.get("password", "")[:1024],
            address=client_key(request, settings.trusted_proxies, settings.forwarded_header))
        if outcome.retry_after is not None:
            retry = str(int(outcome.retry_after) + 1)
            response = page("login", status=429, base=base(request),
                            error=f"too many failed logins; try again in {retry} s")
            response.headers["Retry-After"] = retry
            return response
        if outcome.busy:
            response = page("login", status=503, base=base(request),
                            error="too many logins at once; try again in a moment")
            response.headers["Retry-After"] = "2"
            return response
        account = outcome.account
        if account is None or account.role not in PRIVACY_ROLES:
            return page("login", status=401, base=base(request),
                        error="unknown user, wrong password, or an account without the "
                              "privacy role")
        resp = RedirectResponse(base(request), status_code=303)
        resp.set_cookie(COOKIE, sessions.create(account), max_age=SESSION_AGE,
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
        return resp

    async def logout(request: Request) -> Response:
        """End the staff session (for every copy of its cookie).
        ---
        summary: Staff logout
        responses:
          303: {description: Logged out; redirect to the login form}
          403: {description: Cross-site form post, or a wrong CSRF token}
        """
        current = session(request)
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return HTMLResponse(str(exc), 413)
        if not is_same_origin(request) or (
                current is not None and form.get("csrf") != current.csrf):
            return HTMLResponse("log out from the staff page itself", 403)
        sessions.end(request.cookies.get(COOKIE))
        resp = RedirectResponse(base(request), status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def action(request: Request) -> Response:
        """Suppress, unsuppress or purge from the page (purge needs PURGE typed).
        ---
        summary: Staff action
        requestBody:
          content:
            application/x-www-form-urlencoded:
              schema:
                type: object
                properties:
                  action: {enum: [suppress, unsuppress, purge]}
                  id_type: {enum: [visitor_id, user_id]}
                  id: {type: string}
                  reason: {type: string}
                  confirm: {type: string}
                  csrf: {type: string}
        responses:
          200: {description: The page with the outcome, content: {text/html: {}}}
          403: {description: Not logged in, or a bad CSRF token}
        """
        current = session(request)
        try:
            form = await read_form(request)
        except FormTooLarge as exc:
            return HTMLResponse(str(exc), 413)
        if (current is None or not is_same_origin(request)
                or not secrets.compare_digest(form.get("csrf", ""), current.csrf)):
            return HTMLResponse("log in again", 403)
        name = form.get("action", "")
        act = actions.get(name)
        if act is None:
            return await home(request, error="unknown action", form=form)
        if name == "purge" and form.get("confirm", "").strip() != "PURGE":
            return await home(request, error="purge not confirmed: type PURGE", form=form)
        if not form.get("reason", "").strip():
            return await home(request, error="give a reason: it goes into the audit trail",
                              form=form)
        try:
            kwargs = ids(form.get("id_type", ""), form.get("id", "").strip())
            result = await run_in_threadpool(
                lambda: act(**kwargs, reason=form.get("reason", "")[:512],
                            requested_by=current.user))
        except PrivacyError as exc:
            return await home(request, error=str(exc), form=form)
        except PurgeQueueFull:
            return await home(request, error="many deletions are waiting: try again in a "
                              "minute", form=form)
        except PurgeFailed:
            return await home(request, error="the purge did not finish; it resumes by itself: "
                              "look for its receipt below in a few minutes", form=form)
        except StoreError:
            return unavailable()
        return await home(request, message=f"{name}: done",
                          result=json.dumps(result, indent=2, ensure_ascii=False), form=form)

    async def export(request: Request) -> Response:
        """Download a person's export as JSON.
        ---
        summary: Staff export download
        parameters:
          - {name: id_type, in: query, schema: {enum: [visitor_id, user_id]}}
          - {name: id, in: query, schema: {type: string}}
        responses:
          200: {description: JSON attachment, content: {application/json: {}}}
          400: {description: Malformed id}
          403: {description: Not logged in}
        """
        current = session(request)
        if current is None:
            return HTMLResponse("log in first", 403)
        q = request.query_params
        try:
            kwargs = ids(q.get("id_type", ""), q.get("id", "").strip())
            data = await run_in_threadpool(
                lambda: privacy.export_logged(**kwargs, requested_by=current.user,
                                              reason="staff export"))
        except PrivacyError as exc:
            return HTMLResponse(str(exc), 400)
        except StoreError:
            return unavailable()
        name = f"consent-mw-export-{data['subject']['subject_hash'][:12]}.json"
        return JSONResponse(data, headers={"Content-Disposition":
                                           f'attachment; filename="{name}"',
                                           "Cache-Control": "no-store"})

    return [
        Route(PATH, staff, methods=["GET"]),
        Route(PATH + "/login", login, methods=["POST"]),
        Route(PATH + "/logout", logout, methods=["POST"]),
        Route(PATH + "/action", action, methods=["POST"]),
        Route(PATH + "/export", export, methods=["GET"]),
    ]
