"""The privacy-staff page at ``/v1/privacy/staff``: look up, export, suppress, purge, receipts.

Login is the admin token posted once; the session is a signed cookie (itsdangerous, keyed by
the admin token, so rotating the token logs everyone out). State-changing forms carry a CSRF
token bound to the session and the cookie is ``SameSite=Strict``. Templates autoescape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collector.privacy import Privacy, PrivacyError
from collector.store import StoreError

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
<form method="post" action="{{ base }}/login"><label>Admin token
<input type="password" name="token" autocomplete="current-password" required></label>
<button>Log in</button></form>{% endblock %}"""

_HOME = """{% extends "base" %}{% block body %}
<form method="post" action="{{ base }}/logout" class="inline">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>Log out</button></form>
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


def build_staff_routes(service: Any, privacy: Privacy) -> list[BaseRoute]:
    """Routes of the staff page; they answer 503 until an admin token is configured."""

    def serializer() -> URLSafeTimedSerializer | None:
        token = service.settings.admin_token.value
        return URLSafeTimedSerializer(token, salt="consent-mw.staff") if token else None

    def session(request: Request) -> str | None:
        ser = serializer()
        raw = request.cookies.get(COOKIE)
        if ser is None or not raw:
            return None
        try:
            sid = ser.loads(raw, max_age=SESSION_AGE)
        except BadSignature:
            return None
        return sid if isinstance(sid, str) else None

    def csrf_for(sid: str) -> str:
        key = service.settings.admin_token.value.encode("utf-8")
        return hmac.new(key, ("csrf:" + sid).encode(), hashlib.sha256).hexdigest()

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PATH

    def page(name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = ENV.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers={
            "Cache-Control": "no-store", "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       "form-action 'self'"})

    def ids(id_type: str, ident: str) -> dict[str, str | None]:
        if id_type not in ("visitor_id", "user_id"):
            raise PrivacyError("id type must be visitor_id or user_id")
        return {"visitor_id": ident if id_type == "visitor_id" else None,
                "user_id": ident if id_type == "user_id" else None}

    async def home(request: Request, *, message: str = "", result: str = "",
                   error: str = "", form: dict[str, str] | None = None) -> Response:
        if serializer() is None:
            return HTMLResponse("the staff page needs CONSENT_MW_ADMIN_TOKEN", 503)
        sid = session(request)
        if sid is None:
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
            return HTMLResponse("the store is unavailable", 503)
        return page("home", base=base(request), csrf=csrf_for(sid), id_type=id_type,
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
          503: {description: No admin token configured}
        """
        return await home(request)

    async def login(request: Request) -> Response:
        """Log in with the admin token.
        ---
        summary: Staff login
        requestBody:
          content:
            application/x-www-form-urlencoded:
              schema: {type: object, properties: {token: {type: string}}}
        responses:
          303: {description: Logged in; redirect to the page}
          403: {description: Wrong token}
          503: {description: No admin token configured}
        """
        ser = serializer()
        if ser is None:
            return HTMLResponse("the staff page needs CONSENT_MW_ADMIN_TOKEN", 503)
        form = await request.form()
        token = str(form.get("token") or "")
        expected = service.settings.admin_token.value
        if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
            return page("login", status=403, base=base(request), error="wrong token")
        resp = RedirectResponse(base(request), status_code=303)
        resp.set_cookie(COOKIE, ser.dumps(secrets.token_hex(16)), max_age=SESSION_AGE,
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
        return resp

    async def logout(request: Request) -> Response:
        """End the staff session.
        ---
        summary: Staff logout
        responses:
          303: {description: Logged out; redirect to the login form}
        """
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
        sid = session(request)
        raw = await request.form()
        form = {k: str(v) for k, v in raw.items()}
        if sid is None or not hmac.compare_digest(form.get("csrf", ""), csrf_for(sid)):
            return HTMLResponse("log in again", 403)
        name = form.get("action", "")
        if name not in ("suppress", "unsuppress", "purge"):
            return await home(request, error="unknown action", form=form)
        if name == "purge" and form.get("confirm", "").strip() != "PURGE":
            return await home(request, error="purge not confirmed: type PURGE", form=form)
        try:
            kwargs = ids(form.get("id_type", ""), form.get("id", "").strip())
            result = await run_in_threadpool(
                lambda: getattr(privacy, name)(**kwargs, reason=form.get("reason", "")[:512],
                                               requested_by="staff"))
        except PrivacyError as exc:
            return await home(request, error=str(exc), form=form)
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
        if session(request) is None:
            return HTMLResponse("log in first", 403)
        q = request.query_params
        try:
            kwargs = ids(q.get("id_type", ""), q.get("id", "").strip())
            data = await run_in_threadpool(
                lambda: privacy.export_logged(**kwargs, requested_by="staff",
                                              reason="staff export"))
        except PrivacyError as exc:
            return HTMLResponse(str(exc), 400)
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
