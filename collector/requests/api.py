"""``/v1/requests``: privacy requests over HTTP, behind the privacy API's door.

Every route takes the privacy API's bearer tokens (``collector.privacy.admin``): the admin
token, which web processes hold to pass on what a visitor typed into the site's form (the
actor is then "person"), or a staff member's personal token (the actor is that account).

- ``POST /v1/requests``: a new request (201 with its reference number).
- ``POST /v1/requests/{ref}/code``: mail a new one-time code.
- ``POST /v1/requests/{ref}/code/check`` ``{"code"}``: check it; with "ok", the person's view.
- ``GET /v1/requests``: the queue (``status``, ``kind``, ``overdue=1``), for staff.
- ``GET /v1/requests/{ref}``: one request, its timeline and its mail, for staff.
- ``POST /v1/requests/{ref}/{verify|start|complete|refuse|withdraw}`` ``{"note", "ground"}``.
- ``POST /v1/requests/{ref}/fee|link|note``, ``POST /v1/requests/mail/{id}/retry``.

Refusals carry the one error body: 404 for an unknown reference, 409 for an action the
request's state does not allow (an unverified request among them), 429 for the limits.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.privacy.admin import Handler, guard, json_body, requested_by, text_field
from collector.requests.desk import Desk
from collector.requests.log import now_ms
from collector.requests.mail import Mail
from collector.requests.model import KINDS, STATUSES, TRANSITIONS, RequestRefused, UnknownRequest
from collector.requests.model import Request as PrivacyRequest
from collector.requests.wording import words
from collector.settings import CollectorSettings
from collector.web import error_response

CONFLICT = {"unverified", "bad_state", "busy", "fee_due", "no_ids", "closed", "no_fee"}
TOO_MANY = {"too_many_requests", "too_many_codes"}


def public_view(r: PrivacyRequest, lang: str = "", *, tz: str = "UTC") -> dict[str, Any]:
    """What the person sees about their own request (after their code), with its words in
    ``lang`` (else the request's language) and its dates in the site's time zone ``tz``."""
    return {**words(r, lang if lang in ("ja", "en") else r.lang, tz),
            "ref": r.ref, "kind": r.kind, "status": r.status, "lang": r.lang,
            "received_at": r.received_at, "verified_at": r.verified_at, "due_at": r.due_at,
            "closed_at": r.closed_at, "fee": r.fee, "fee_yen": r.fee_yen, "ground": r.ground,
            "results": r.results}


def mail_view(m: Mail) -> dict[str, Any]:
    return {"mail_id": m.mail_id, "template": m.template, "subject": m.subject,
            "recipient": m.recipient, "status": m.status, "attempts": m.attempts,
            "last_error": m.last_error, "created_at": m.created_at, "updated_at": m.updated_at,
            "body": m.body, "attach": m.attach}


def staff_view(r: PrivacyRequest, mails: list[Mail] | None = None) -> dict[str, Any]:
    """Everything about a request, for the privacy staff."""
    now = now_ms()
    view = public_view(r)
    # Staff read the moments (``*_at``), which the console shows in its own time zone; the
    # person's dates (``*_on``) are the person's view, in the site's (public_view's ``tz``).
    for day in ("received_on", "verified_on", "due_on"):
        del view[day]
    view.update(
        email=r.email, channel=r.channel, text=r.text, account_id=r.account_id,
        account_match=r.account_match, visitor_ids=r.visitor_ids, subjects=r.subjects,
        verified_by=r.verified_by, overdue=r.overdue(now),
        code_tries=r.code_tries, actions=[a for a in TRANSITIONS if _allowed(r, a)],
        timeline=[{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                   "data": {k: v for k, v in e.data.items() if k != "hash"}}
                  for e in r.timeline])
    if mails is not None:
        view["mails"] = [mail_view(m) for m in mails]
    return view


def _allowed(r: PrivacyRequest, action: str) -> bool:
    sources, _ = TRANSITIONS[action]
    if r.status not in sources:
        return False
    return not (action in ("start", "complete") and r.verified_at is None)


def refusal(exc: RequestRefused) -> Response:
    if isinstance(exc, UnknownRequest):
        return error_response(404, exc.code, exc.message)
    if exc.code == "not_configured":
        return error_response(503, exc.code, exc.message)
    status = 409 if exc.code in CONFLICT else 429 if exc.code in TOO_MANY else 400
    return error_response(status, exc.code, exc.message)


def build_routes(desk: Desk, settings: CollectorSettings) -> list[BaseRoute]:
    def route(path: str, fn: Handler, method: str) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except RequestRefused as exc:
                return refusal(exc)
        endpoint.__doc__ = fn.__doc__
        endpoint.__name__ = fn.__name__
        return Route(path, guard(settings, endpoint), methods=[method])

    def actor(request: Request) -> str:
        """The staff account, or "person" for the admin token passing on a visitor's form."""
        person = getattr(request.state, "person", None)
        return str(person) if person else "person"

    def staff(request: Request, body: dict[str, Any]) -> str:
        return requested_by(request, text_field(body, "staff"))

    async def submit(request: Request) -> Response:
        """A new privacy request.
        ---
        summary: Submit a privacy request
        description: >
          kind is disclosure, deletion, suspension or withdrawal. The person gets an
          acknowledgement and a one-time code by mail; nothing is done before the code.
          account_email is what the site's own records say the account's e-mail is: a
          mismatch leaves the request unverified.
        security: [{bearer: []}]
        responses:
          201: {description: Received, content: {application/json: {}}}
          400: {description: A field is missing or malformed}
          429: {description: Too many requests for this e-mail address today}
        """
        body = await json_body(request)
        ids = body.get("visitor_ids") or []
        if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
            raise RequestRefused("bad_visitor_ids", "visitor_ids must be a list of strings")
        account_email = body.get("account_email")
        fields = {name: text_field(body, name) if name != "text" else
                  str(body.get("text") or "") for name in
                  ("kind", "email", "lang", "channel", "text", "account_id")}
        who = actor(request)
        if who == "person" and text_field(body, "staff"):  # staff entering a phone request
            who = requested_by(request, text_field(body, "staff"))
        result = await run_in_threadpool(lambda: desk.submit(
            kind=fields["kind"], email=fields["email"], lang=fields["lang"] or "ja",
            channel=fields["channel"] or "web", text=fields["text"],
            account_id=fields["account_id"],
            account_email=account_email if isinstance(account_email, str) else None,
            visitor_ids=tuple(ids), actor=who))
        return JSONResponse({"ref": result.ref, "status": result.status}, status_code=201)

    async def send_code(request: Request) -> Response:
        """Mail a new one-time code.
        ---
        summary: Send a new confirmation code
        security: [{bearer: []}]
        responses:
          200: {description: "wait: 0 when sent, else seconds to wait"}
          404: {description: Unknown reference}
        """
        ref = request.path_params["ref"]
        wait = await run_in_threadpool(desk.send_code, ref)
        return JSONResponse({"ref": ref, "sent": wait == 0, "wait": wait})

    async def verify_code(request: Request) -> Response:
        """Check a one-time code.
        ---
        summary: Check a confirmation code
        description: >
          verdict is ok, wrong, malformed (not six digits: no try spent), expired,
          no_code or too_many. With ok the answer carries the person's view of their
          request.
        security: [{bearer: []}]
        responses:
          200: {description: The verdict}
          404: {description: Unknown reference}
        """
        body = await json_body(request)
        ref = request.path_params["ref"]
        verdict, found = await run_in_threadpool(desk.enter_code, ref,
                                                 text_field(body, "code"))
        answer: dict[str, Any] = {"ref": ref, "verdict": verdict}
        if verdict == "ok":
            answer["request"] = public_view(found, text_field(body, "lang"),
                                            tz=settings.rollup_tz)
        return JSONResponse(answer)

    async def queue(request: Request) -> Response:
        """The queue of privacy requests, newest first.
        ---
        summary: List privacy requests
        security: [{bearer: []}]
        responses:
          200: {description: The requests}
        """
        q = request.query_params
        status, kind = q.get("status", ""), q.get("kind", "")
        if status and status not in STATUSES:
            raise RequestRefused("bad_status", f"status must be one of {', '.join(STATUSES)}")
        if kind and kind not in KINDS:
            raise RequestRefused("bad_kind", f"kind must be one of {', '.join(KINDS)}")
        now = now_ms()
        found = [r for r in await run_in_threadpool(desk.every)
                 if (not status or r.status == status) and (not kind or r.kind == kind)
                 and (q.get("overdue") != "1" or r.overdue(now))]
        return JSONResponse({"requests": [staff_view(r) for r in found]})

    async def one(request: Request) -> Response:
        """One request with its timeline and mail.
        ---
        summary: Read a privacy request
        security: [{bearer: []}]
        responses:
          200: {description: The request}
          404: {description: Unknown reference}
        """
        ref = request.path_params["ref"]
        found = await run_in_threadpool(desk.get, ref)
        mails = await run_in_threadpool(desk.mails, ref)
        return JSONResponse(staff_view(found, mails))

    async def act(request: Request) -> Response:
        """A staff action on a request.
        ---
        summary: Verify, start, complete, refuse or withdraw a request
        description: >
          verify needs a note saying how the identity was confirmed; refuse needs a ground
          (harm, business, law, identity). complete answers at once; the operation runs in
          the background and the timeline records its receipts.
        security: [{bearer: []}]
        responses:
          200: {description: The request after the action}
          404: {description: Unknown reference}
          409: {description: Not allowed in the request's state (e.g. not verified)}
        """
        body = await json_body(request)
        ref, action = request.path_params["ref"], request.path_params["action"]
        who = staff(request, body)
        found = await run_in_threadpool(lambda: desk.act(
            ref, action, who, note=str(body.get("note") or ""),
            ground=text_field(body, "ground"), wait=body.get("wait") is True))
        return JSONResponse(staff_view(found))

    async def fee(request: Request) -> Response:
        """Record the disclosure fee as due, paid or waived.
        ---
        summary: Record the fee
        security: [{bearer: []}]
        responses:
          200: {description: The request}
        """
        body = await json_body(request)
        found = await run_in_threadpool(lambda: desk.set_fee(
            request.path_params["ref"], text_field(body, "state"), staff(request, body),
            str(body.get("note") or "")))
        return JSONResponse(staff_view(found))

    async def link(request: Request) -> Response:
        """Link a visitor id or account found with the lookup.
        ---
        summary: Link an id to a request
        security: [{bearer: []}]
        responses:
          200: {description: The request}
        """
        body = await json_body(request)
        found = await run_in_threadpool(lambda: desk.link(
            request.path_params["ref"], staff(request, body),
            visitor_id=text_field(body, "visitor_id"), user_id=text_field(body, "user_id"),
            note=str(body.get("note") or "")))
        return JSONResponse(staff_view(found))

    async def note(request: Request) -> Response:
        """Add a note to a request's timeline.
        ---
        summary: Note on a request
        security: [{bearer: []}]
        responses:
          200: {description: The request}
        """
        body = await json_body(request)
        found = await run_in_threadpool(lambda: desk.add_note(
            request.path_params["ref"], staff(request, body), str(body.get("note") or "")))
        return JSONResponse(staff_view(found))

    async def retry_mail(request: Request) -> Response:
        """Send a mail that gave up again.
        ---
        summary: Retry a mail
        security: [{bearer: []}]
        responses:
          200: {description: "retried: false when it was sent already or is unknown"}
        """
        done = await run_in_threadpool(desk.outbox.retry, request.path_params["mail_id"])
        return JSONResponse({"retried": done})

    actions = "{action}"
    return [
        route("/v1/requests", submit, "POST"),
        route("/v1/requests", queue, "GET"),
        route("/v1/requests/mail/{mail_id}/retry", retry_mail, "POST"),
        route("/v1/requests/{ref}", one, "GET"),
        route("/v1/requests/{ref}/code", send_code, "POST"),
        route("/v1/requests/{ref}/code/check", verify_code, "POST"),
        route("/v1/requests/{ref}/fee", fee, "POST"),
        route("/v1/requests/{ref}/link", link, "POST"),
        route("/v1/requests/{ref}/note", note, "POST"),
        route(f"/v1/requests/{{ref}}/{actions}", act, "POST"),
    ]

