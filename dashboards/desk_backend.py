"""How the privacy-request console reaches the request desk: in this process, or over HTTP.

:class:`DeskBackend` is what the console's views call. Answers are the JSON shapes of the
collector's ``/v1/requests`` routes (``collector.requests.api.staff_view``), whichever way they
travel, so a page renders the same data in the demo (:class:`LocalDesk`, the collector's
own :class:`~collector.requests.desk.Desk`) and beside a separate collector
(:class:`HttpDesk`, the admin token plus the staff member's name, as the privacy API records
it). A refusal is :class:`~collector.requests.model.RequestRefused` either way.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, Protocol

import httpx

from collector.privacy import audit, evidence
from collector.privacy.evidence import Notices
from collector.privacy.operations import Privacy
from collector.privacy.subjects import PrivacyError
from collector.requests.api import staff_view
from collector.requests.desk import Desk
from collector.requests.model import RequestRefused, UnknownRequest
from dashboards.backends import BackendError

View = dict[str, Any]
#: The form fields a staff entry and an action pass on (never the page's CSRF token).
SUBMITTED = ("kind", "email", "lang", "channel", "text", "account_id")
ACTED = ("note", "ground", "state", "id_type", "value")


class DeskBackend(Protocol):
    def every(self) -> list[View]: ...

    def one(self, ref: str) -> View:
        """The request with its timeline and mail; UnknownRequest when there is none."""
        ...

    def submit(self, fields: Mapping[str, Any], staff: str) -> str: ...

    def act(self, ref: str, action: str, staff: str, fields: Mapping[str, str]) -> View:
        """verify, start, complete, refuse, withdraw, fee, link or note."""
        ...

    def retry_mail(self, mail_id: str) -> bool: ...

    def lookup(self, id_type: str, value: str) -> View: ...

    def audit(self, limit: int) -> tuple[list[View], View]:
        """The newest audit rows, and the chain's verification."""
        ...

    def evidence(self, start: str, end: str, staff: str) -> BinaryIO:
        """The evidence pack for a period (``collector.privacy.evidence``), in a temporary
        file read from its start (the caller closes it)."""
        ...


class LocalDesk:
    """The desk of a collector in this process (the demo; a dashboards process that owns
    the store). ``desk`` is a callable so the console can be built before the collector
    starts."""

    def __init__(self, desk: Desk | Callable[[], Desk],
                 notices: Notices | None = None) -> None:
        self._desk: Callable[[], Desk] = desk if callable(desk) else (lambda: desk)
        self.notices = notices

    @property
    def desk(self) -> Desk:
        return self._desk()

    @property
    def privacy(self) -> Privacy:
        return self.desk.privacy

    def every(self) -> list[View]:
        return [staff_view(r) for r in self.desk.every()]

    def one(self, ref: str) -> View:
        return staff_view(self.desk.get(ref), self.desk.mails(ref))

    def submit(self, fields: Mapping[str, Any], staff: str) -> str:
        return self.desk.submit(
            kind=str(fields.get("kind", "")), email=str(fields.get("email", "")),
            lang=str(fields.get("lang") or "ja"), channel=str(fields.get("channel") or "phone"),
            text=str(fields.get("text") or ""), account_id=str(fields.get("account_id") or ""),
            actor=staff).ref

    def act(self, ref: str, action: str, staff: str, fields: Mapping[str, str]) -> View:
        d, note = self.desk, fields.get("note", "")
        if action == "fee":
            return staff_view(d.set_fee(ref, fields.get("state", ""), staff, note))
        if action == "link":
            id_type = fields.get("id_type", "visitor_id")
            value = fields.get("value", "").strip()
            return staff_view(d.link(ref, staff, note=note, **{
                "visitor_id" if id_type == "visitor_id" else "user_id": value}))
        if action == "note":
            return staff_view(d.add_note(ref, staff, note))
        return staff_view(d.act(ref, action, staff, note=note, ground=fields.get("ground", "")))

    def retry_mail(self, mail_id: str) -> bool:
        return self.desk.outbox.retry(mail_id)

    def lookup(self, id_type: str, value: str) -> View:
        ids = {"visitor_id" if id_type == "visitor_id" else "user_id": value}
        return self.privacy.summary(**ids)

    def audit(self, limit: int) -> tuple[list[View], View]:
        store = self.privacy.store
        report = audit.verify_chain(store)
        return (audit.listing(store, limit=limit),
                {"ok": report.ok, "rows": report.rows, "problems": report.problems})

    def evidence(self, start: str, end: str, staff: str) -> BinaryIO:
        d = self.desk
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        try:
            evidence.write(d.privacy.store, d.settings, start, end, spool,
                           notices=self.notices, requested_by=staff)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool


class HttpDesk:
    """The desk of a collector over HTTP: ``/v1/requests`` and ``/v1/privacy`` with the
    admin token; every change names the staff member (recorded as ``<name> [admin token]``)."""

    def __init__(self, collector_url: str, admin_token: str, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = collector_url.rstrip("/")
        self._client = httpx.Client(timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {admin_token}"})
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            with self._lock:
                response = self._client.request(method, self.base + path, **kw)
        except httpx.HTTPError as exc:
            raise BackendError(f"collector unreachable: {exc}") from exc
        body = response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {}
        if response.status_code == 404 and body.get("error") == "unknown_request":
            raise UnknownRequest()
        if response.status_code == 400 and "/v1/privacy/" in path:
            raise PrivacyError(str(body.get("message", "refused")))
        if response.status_code in (400, 409, 429) and isinstance(body, dict):
            raise RequestRefused(str(body.get("error", "refused")),
                                 str(body.get("message", "refused")))
        if response.status_code not in (200, 201):
            raise BackendError(f"collector answered {response.status_code}")
        return body

    def every(self) -> list[View]:
        return list(self._call("GET", "/v1/requests")["requests"])

    def one(self, ref: str) -> View:
        return dict(self._call("GET", f"/v1/requests/{ref}"))

    def submit(self, fields: Mapping[str, Any], staff: str) -> str:
        body = {k: fields[k] for k in SUBMITTED if k in fields}
        return str(self._call("POST", "/v1/requests", json={**body, "staff": staff})["ref"])

    def act(self, ref: str, action: str, staff: str, fields: Mapping[str, str]) -> View:
        body: dict[str, Any] = {k: fields[k] for k in ACTED if k in fields}
        body["staff"] = staff
        if action == "link":
            id_type = "user_id" if fields.get("id_type") == "user_id" else "visitor_id"
            body[id_type] = fields.get("value", "")
        return dict(self._call("POST", f"/v1/requests/{ref}/{action}", json=body))

    def retry_mail(self, mail_id: str) -> bool:
        return bool(self._call("POST", f"/v1/requests/mail/{mail_id}/retry")["retried"])

    def lookup(self, id_type: str, value: str) -> View:
        return dict(self._call("GET", "/v1/privacy/summary", params={id_type: value}))

    def audit(self, limit: int) -> tuple[list[View], View]:
        rows = self._call("GET", "/v1/privacy/requests", params={"limit": limit})
        try:
            with self._lock:
                check = self._client.get(self.base + "/v1/privacy/audit/verify")
        except httpx.HTTPError as exc:
            raise BackendError(f"collector unreachable: {exc}") from exc
        return list(rows.get("requests", [])), dict(check.json())

    def evidence(self, start: str, end: str, staff: str) -> BinaryIO:
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
        try:
            with self._lock, self._client.stream(
                    "GET", self.base + "/v1/privacy/evidence",
                    params={"from": start, "to": end, "requested_by": staff}) as response:
                if response.status_code == 400:
                    response.read()
                    raise PrivacyError(str(response.json().get("message", "refused")))
                if response.status_code != 200:
                    raise BackendError(f"collector answered {response.status_code}")
                for chunk in response.iter_bytes():
                    spool.write(chunk)
        except httpx.HTTPError as exc:
            spool.close()
            raise BackendError(f"collector unreachable: {exc}") from exc
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return spool

    def close(self) -> None:
        self._client.close()
