"""The web side's protocols, served by a collector in the same process, without HTTP.

A site that runs its collector in its own process (the demo) hands batches to
:class:`InProcessTransport` and visitors' requests to :class:`InProcessRights`. Each answers
what its HTTP counterpart (``consent_mw.capture.transport.HttpTransport``,
``consent_mw.consent.rights.HttpRights``) would get from the collector's routes, by
calling what those routes call:

- ``send`` → :meth:`Ingest.take`, like ``POST /v1/events``: items rejected come back as
  ``SendResult(rejected=n, reasons=...)``; ``sent_at`` is the batch's, so a batch the spool
  replays late is judged against the time it was built, not this process's clock; a batch
  whose envelope is not the wire shape raises ``TransportError(retryable=False, status=400)``;
  a failing store raises ``TransportError(retryable=True, retry_after=5, status=503)``.
- ``fetch_suppressions`` → :meth:`Privacy.suppressions_since`, like
  ``GET /v1/privacy/suppressions``: the same hashes, purged subset and version, and
  ``unchanged`` while ``since`` is current.

What only HTTP has: the bearer token, the body size limits (an in-process batch is never
encoded) and the concurrency limit on decoding.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from collector.ingest.pipeline import Ingest
from collector.ingest.validate import BatchRefused
from collector.privacy.admin import QUEUE_FULL_RETRY_AFTER
from collector.privacy.operations import Privacy
from collector.privacy.purge_queue import PurgeQueueFull
from collector.privacy.subjects import PrivacyError
from collector.requests.api import public_view
from collector.requests.desk import Desk
from collector.requests.model import RequestRefused
from collector.store import StoreError
from collector.web import STORE_RETRY_AFTER
from consent_mw.capture.transport import SendResult, Suppressions, TransportError, batch_time
from consent_mw.consent.rights import RightsBusy, RightsError, RightsRefused
from consent_mw.wire import SCHEMA_ID

if TYPE_CHECKING:
    from consent_mw.capture.transport import Transport
    from consent_mw.consent.rights import Intake, Rights

log = logging.getLogger(__name__)


class InProcessTransport:
    """``consent_mw.capture.transport.Transport``, served by this process's collector."""

    def __init__(self, ingest: Ingest, privacy: Privacy) -> None:
        self.ingest = ingest
        self.privacy = privacy

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int | None = None) -> SendResult:
        """Store a batch; ``sent_at`` (ms) is when the sender first built it, kept across its
        spool's replays (a direct caller may leave it out: then the batch's newest item's time,
        :func:`batch_time`, as the capture pipeline computes it)."""
        batch = {"schema": SCHEMA_ID, "batch_id": batch_id,
                 "sent_at": batch_time(events, records) if sent_at is None else sent_at,
                 "events": events, "consent_records": records}
        try:
            result = self.ingest.take(batch)
        except BatchRefused as exc:
            raise TransportError(f"collector refused the batch: 400 {exc}", retryable=False,
                                 status=400) from exc
        except Exception as exc:  # what POST /v1/events answers with a 503 and Retry-After
            raise TransportError("collector answered 503", retryable=True,
                                 retry_after=float(STORE_RETRY_AFTER), status=503) from exc
        rejected = len(result.rejected)
        # Counted as HttpTransport counts them: every item not rejected was kept.
        return SendResult(rejected=rejected, reasons=tuple(r.reason for r in result.rejected),
                          accepted=len(events) + len(records) - rejected)

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        """The suppression list, or ``unchanged`` while ``since`` is its current version."""
        answer = self.privacy.suppressions_since(since)
        if answer.get("unchanged") is True:
            return Suppressions([], since, [], unchanged=True)
        return Suppressions(list(answer["hashes"]), int(answer["version"]),
                            list(answer["purged"]))

    def close(self) -> None:
        """Nothing to release: the service owns the store."""


class InProcessRights:
    """``consent_mw.consent.rights.Rights`` in the collector's own process: the same
    operations the admin API runs, with the errors ``HttpRights`` would raise for its
    answers (``RightsBusy`` for a 503 with ``Retry-After``, ``RightsError`` otherwise)."""

    def __init__(self, privacy: Privacy) -> None:
        self.privacy = privacy

    def export(self, visitor_id: str) -> dict[str, Any]:
        try:
            return self.privacy.export_logged(visitor_id=visitor_id, requested_by="visitor",
                                              reason="self-service download")
        except (PrivacyError, StoreError) as exc:
            raise _rights_error(exc) from exc

    def request_purge(self, visitor_id: str) -> str:
        try:
            job = self.privacy.request_purge(visitor_id=visitor_id, requested_by="visitor",
                                             reason="self-service deletion")
        except (PrivacyError, StoreError, PurgeQueueFull) as exc:
            raise _rights_error(exc) from exc
        return job.request_id

    def purge_status(self, request_id: str) -> dict[str, Any] | None:
        try:
            return self.privacy.purge_status(request_id)
        except StoreError as exc:
            raise _rights_error(exc) from exc


class InProcessIntake:
    """``consent_mw.consent.rights.Intake`` in the collector's own process: the desk the
    ``/v1/requests`` routes call, with ``RightsRefused`` where they answer 400, 404, 409 or
    429, exactly as ``HttpRights`` raises for those answers."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def submit_request(self, fields: dict[str, Any]) -> str:
        ids = fields.get("visitor_ids") or []
        account_email = fields.get("account_email")
        try:
            request = self.desk.submit(
                kind=str(fields.get("kind", "")), email=str(fields.get("email", "")),
                lang=str(fields.get("lang") or "ja"), channel="web",
                text=str(fields.get("text") or ""), account_id=str(fields.get("account_id")
                                                                 or ""),
                account_email=account_email if isinstance(account_email, str) else None,
                visitor_ids=tuple(str(v) for v in ids if isinstance(v, str)))
        except RequestRefused as exc:
            raise RightsRefused(exc.code, exc.message) from exc
        except StoreError as exc:
            raise _rights_error(exc) from exc
        return request.ref

    def send_request_code(self, ref: str) -> int:
        try:
            return self.desk.send_code(ref)
        except RequestRefused as exc:
            raise RightsRefused(exc.code, exc.message) from exc
        except StoreError as exc:
            raise _rights_error(exc) from exc

    def check_request_code(self, ref: str, code: str,
                           lang: str = "") -> tuple[str, dict[str, Any] | None]:
        try:
            verdict, request = self.desk.enter_code(ref, code)
        except RequestRefused as exc:
            raise RightsRefused(exc.code, exc.message) from exc
        except StoreError as exc:
            raise _rights_error(exc) from exc
        if verdict != "ok":
            return verdict, None
        return verdict, public_view(request, lang, tz=self.desk.settings.rollup_tz)


def _rights_error(exc: Exception) -> RightsError:
    """What ``HttpRights`` raises for the answer the admin API gives to ``exc``."""
    if isinstance(exc, PurgeQueueFull):
        return RightsBusy("the collector is busy", QUEUE_FULL_RETRY_AFTER)
    if isinstance(exc, StoreError):
        return RightsBusy("the collector is busy", STORE_RETRY_AFTER)
    return RightsError("collector answered 400")


if TYPE_CHECKING:  # mypy checks both against the web side's protocols
    def _transport(t: InProcessTransport) -> Transport:
        return t

    def _rights(r: InProcessRights) -> Rights:
        return r

    def _intake(i: InProcessIntake) -> Intake:
        return i
