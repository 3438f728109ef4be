"""Who serves a visitor's rights (export, deletion): the :class:`Rights` protocol, and
:class:`HttpRights`, a collector over HTTP.

``rights`` does blocking work (the self-service routes run it in a worker thread). In the
collector's own process, ``collector.transport.InProcessRights`` serves it without
HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from consent_mw.errors import ConsentMWError


class Rights(Protocol):
    def export(self, visitor_id: str) -> dict[str, Any]: ...

    def request_purge(self, visitor_id: str) -> str:
        """Queue a purge of the visitor; returns its request id."""
        ...

    def purge_status(self, request_id: str) -> dict[str, Any] | None: ...


class Intake(Protocol):
    """Privacy requests a person makes on the site's form (``collector.requests``)."""

    def submit_request(self, fields: dict[str, Any]) -> str:
        """A new request from the form's fields; its reference number (RightsRefused with
        the reason for a refused one)."""
        ...

    def send_request_code(self, ref: str) -> int:
        """Mail a new code: 0, or the seconds to wait first."""
        ...

    def check_request_code(self, ref: str, code: str,
                           lang: str = "") -> tuple[str, dict[str, Any] | None]:
        """The verdict ("ok", "wrong", "malformed", "expired", "no_code", "too_many") and,
        with "ok", the person's view of the request, its words in ``lang``."""
        ...


class RightsError(ConsentMWError):
    """The collector could not serve the request."""


class RightsRefused(RightsError):
    """The collector refused what the person asked, for a reason they can act on."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RightsBusy(RightsError):
    """The collector's purge queue is full; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class HttpRights:
    """Rights and request intake served by a collector over HTTP (the admin token
    authorises)."""

    def __init__(self, collector_url: str, admin_token: str, *, timeout: float = 30.0) -> None:
        self.url = collector_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {admin_token}"}
        self.timeout = httpx.Timeout(10.0, read=timeout)

    def _call(self, method: str, path: str, *, ok: Sequence[int] = (200,),
              **kw: Any) -> dict[str, Any] | None:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                resp = client.request(method, self.url + path, headers=self.headers, **kw)
        except httpx.HTTPError as exc:
            raise RightsError(f"collector unreachable: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code in (400, 409, 429) and "application/json" in resp.headers.get(
                "content-type", ""):
            body = resp.json()
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                raise RightsRefused(body["error"], str(body.get("message", "")))
        if resp.status_code == 503 and resp.headers.get("retry-after", "").isdigit():
            raise RightsBusy("the collector is busy", int(resp.headers["retry-after"]))
        if resp.status_code not in ok:
            raise RightsError(f"collector answered {resp.status_code}")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RightsError("unexpected answer from the collector")
        return data

    def export(self, visitor_id: str) -> dict[str, Any]:
        data = self._call("GET", "/v1/privacy/export", params={
            "visitor_id": visitor_id, "requested_by": "visitor",
            "reason": "self-service download"})
        if data is None:
            raise RightsError("the collector has no privacy API")
        return data

    def request_purge(self, visitor_id: str) -> str:
        data = self._call("POST", "/v1/privacy/purges", ok=(202,), json={
            "visitor_id": visitor_id, "requested_by": "visitor",
            "reason": "self-service deletion"})
        if data is None or not isinstance(data.get("request_id"), str):
            raise RightsError("the collector did not queue the purge")
        return str(data["request_id"])

    def purge_status(self, request_id: str) -> dict[str, Any] | None:
        return self._call("GET", f"/v1/privacy/purges/{quote(request_id, safe='')}")

    def submit_request(self, fields: dict[str, Any]) -> str:
        data = self._call("POST", "/v1/requests", ok=(201,), json=fields)
        if data is None or not isinstance(data.get("ref"), str):
            raise RightsError("the collector has no request desk")
        return str(data["ref"])

    def send_request_code(self, ref: str) -> int:
        data = self._call("POST", f"/v1/requests/{quote(ref, safe='')}/code")
        if data is None:
            raise RightsRefused("unknown_request", "no request has this reference number")
        return int(data.get("wait", 0))

    def check_request_code(self, ref: str, code: str,
                           lang: str = "") -> tuple[str, dict[str, Any] | None]:
        data = self._call("POST", f"/v1/requests/{quote(ref, safe='')}/code/check",
                          json={"code": code, "lang": lang})
        if data is None:
            raise RightsRefused("unknown_request", "no request has this reference number")
        view = data.get("request")
        return str(data.get("verdict", "")), view if isinstance(view, dict) else None
