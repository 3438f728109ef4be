"""The request workflow: intake, verification, staff actions, the operation, the mail.

:class:`Desk` is the one way a request changes. Each change is checked against the request's
folded state (``collector.requests.model.check``) and appended to its timeline under one lock,
so two staff members, a retry or a duplicate cannot both act on what one of them saw; and each
is also appended to the hash-chained audit trail under the name of who made it.

Completing runs the kind's operation (export, purge, suppress) on every id the request
resolves to (``Request.subjects``), in a background thread because a purge waits for its
batch: the timeline says ``completing`` at once and ``completed`` with the receipts when
they are in, or ``failed`` (the request stays in progress; staff complete it again).

Limits, keyed on what cannot be minted for free: a mailbox (however it is spelt:
``model.canonical_email``, counted by its keyed hash) gets at most :data:`PER_EMAIL_DAY`
requests a day and the whole desk :data:`PER_HOUR` an hour; mail has its own budget
(``collector.requests.notify``). Codes have their
own limits (``collector.requests.codes``); the HTTP layer adds a per-address limit. Nothing
changes a request while its completion runs.

Telling the person (mail, the overdue list, the zip a disclosure mails) is
``collector.requests.notify``. A little over 300 lines: the workflow's steps read best
together, beside the lock they share.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from collector.privacy import audit
from collector.privacy.operations import Privacy
from collector.requests import codes
from collector.requests.fulfil import fulfil
from collector.requests.log import RequestLog, new_ref, now_ms
from collector.requests.mail import Mail
from collector.requests.model import (
    DAY_MS,
    GROUNDS,
    RECORDED_AS,
    Request,
    RequestRefused,
    check,
    submission,
)
from collector.requests.notify import Notifier
from collector.requests.wording import FEE_LABELS, GROUND_LABELS, label, result_text
from collector.settings import CollectorSettings
from collector.store import Store

log = logging.getLogger(__name__)

PER_EMAIL_DAY = 3
PER_HOUR = 200
MAX_NOTE = 2000
def _clean_note(note: str) -> str:
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise RequestRefused("note_too_long", f"the note is over {MAX_NOTE} characters")
    return note


class Desk:
    """Privacy requests against one store (see the module docstring)."""

    def __init__(self, store: Callable[[], Store], privacy: Privacy,
                 settings: CollectorSettings) -> None:
        self._store = store
        self.privacy = privacy
        self.settings = settings
        #: Codes are keyed and ids sealed with it: without one the desk takes no requests
        #: (a constant would let anyone reading the store recompute codes and open ids).
        self.key = settings.hash_key_bytes
        self.log = RequestLog(store, due_days=settings.request_due_days, key=self.key)
        self.notify = Notifier(store, settings, log_=self.log, privacy=privacy, key=self.key,
                               open_requests=self.every)
        self.outbox = self.notify.outbox
        self._lock = threading.RLock()
        self._workers: list[threading.Thread] = []
        self._completing: set[str] = set()

    # -- reading ------------------------------------------------------------------------

    def get(self, ref: str) -> Request:
        return self.log.get(ref)

    def every(self) -> list[Request]:
        return self.log.every()

    def mails(self, ref: str) -> list[Mail]:
        return self.outbox.for_ref(ref)

    # -- changing -----------------------------------------------------------------------

    def _append(self, request: Request, actor: str, action: str,
                data: dict[str, Any] | None = None) -> Request:
        """Record an entry after the request's last one, and audit it; the new state."""
        data = data or {}
        self.log.append(request.ref, actor, action, data, seq=self.log.next_seq(request.ref),
                        email_key=request.email_key)
        if action not in ("code_sent", "code_failed", "code_used", "mailed"):
            # The reason is the step's name, never the note: notes are what staff wrote
            # about a person, and the audit trail is kept longer and goes into evidence packs.
            audit.append(self.store, operation=f"request.{action}", id_type="request",
                         subject_hash="", requested_by=actor or "person",
                         reason=action, outcome="done",
                         details={"ref": request.ref, **{k: v for k, v in data.items()
                                                         if k in ("by", "ground", "state",
                                                                  "operation", "kind")}})
        return self.log.get(request.ref)

    @property
    def store(self) -> Store:
        return self._store()

    def submit(self, *, kind: str, email: str, lang: str = "ja", channel: str = "web",
               text: str = "", account_id: str = "", account_email: str | None = None,
               visitor_ids: tuple[str, ...] = (), actor: str = "person") -> Request:
        """A new request, acknowledged and sent a code; RequestRefused for bad fields."""
        self._configured()
        data = submission(kind=kind, email=email, lang=lang, channel=channel, text=text,
                          account_id=account_id, account_email=account_email,
                          visitor_ids=visitor_ids, fee_yen=self.settings.disclosure_fee_yen)
        key = self.log.email_key(data["email"])
        with self._lock:
            now = now_ms()
            # A request staff enter (from a call or at the counter) is not what these limits
            # stop, and a person whose mailbox a stranger spent must still reach the desk.
            limited = actor == "person"
            if limited and self.log.count_since("submitted", now - 3_600_000) >= PER_HOUR:
                raise RequestRefused("busy", "too many requests this hour; try again later")
            if limited and self.log.count_since(
                    "submitted", now - DAY_MS, key) >= PER_EMAIL_DAY:
                raise RequestRefused("too_many_requests",
                                     "too many requests for this e-mail address today")
            if limited:
                self.notify.budget(key)
            ref = new_ref()
            self.log.append(ref, actor, "submitted", data, seq=1, email_key=key)
            audit.append(self.store, operation="request.submitted", id_type="request",
                         subject_hash="", requested_by=actor, reason=data["channel"],
                         outcome="done", details={"ref": ref, "kind": kind})
            request = self.log.get(ref)
            self.notify.mail(request, "acknowledgement")
            self._send_code(request)
        return self.log.get(ref)

    def send_code(self, ref: str) -> int:
        """Mail a new code (to verify the request, or to read it once it is closed): 0, or
        the seconds to wait first."""
        self._configured()
        with self._lock:
            request = self.log.get(ref)
            now = now_ms()
            if not request.is_open and now - (request.closed_at or 0) > codes.STATUS_WINDOW_MS:
                raise RequestRefused("closed", "this request is closed")
            if len(request.codes_sent) >= codes.MAX_CODES:
                raise RequestRefused("too_many_codes", "no more codes for this request; "
                                     "please make a new one")
            wait = codes.may_send(request, now)
            if wait:
                return wait
            self.notify.budget(request.email_key)
            self._send_code(request)
            return 0

    def _configured(self) -> None:
        if not self.key:
            raise RequestRefused("not_configured", "the collector has no hash key "
                                 "(CONSENT_MW_USER_ID_KEY or CONSENT_MW_SECRET_KEY): it takes "
                                 "no privacy requests without one")

    def _send_code(self, request: Request) -> None:
        code = codes.draw()
        expires = now_ms() + codes.TTL_MS
        self._append(request, "system", "code_sent",
                     {"hash": codes.code_hash(self.key, request.ref, code), "expires": expires})
        self.notify.mail(request, "code", code=code, minutes=codes.TTL_MS // 60_000,
                   secret=(code, expires))

    def enter_code(self, ref: str, code: str) -> tuple[codes.Verdict, Request]:
        """Check a code: "ok" proves the e-mail (and verifies the request, unless its account
        belongs to another e-mail); anything else is recorded as a failed try."""
        self._configured()
        with self._lock:
            request = self.log.get(ref)
            if self.log.count_since("code_failed", now_ms() - DAY_MS,
                                    request.email_key) >= codes.WRONG_PER_EMAIL_DAY:
                return "too_many", request  # this mailbox's requests had their tries today
            verdict = codes.judge(request, self.key, code, now_ms())
            if verdict == "wrong":
                return verdict, self._append(request, "person", "code_failed")
            if verdict != "ok":
                return verdict, request
            request = self._append(request, "person", "code_used")
            if request.status == "received":
                if request.account_match is False:
                    request = self._append(request, "system", "note", {
                        "note": "e-mail confirmed; the account id belongs to another e-mail "
                                "address, so the request stays unverified"})
                else:
                    request = self._append(request, "person", "verified", {"by": "email"})
            return verdict, request

    def act(self, ref: str, action: str, staff: str, *, note: str = "", ground: str = "",
            wait: bool = False) -> Request:
        """A staff member's verify, start, complete, refuse or withdraw."""
        if not staff:
            raise RequestRefused("no_staff", "a staff member must be named")
        note = _clean_note(note)
        with self._lock:
            request = self.log.get(ref)
            self._not_completing(ref)
            check(request, action)
            if action == "verify" and not note:
                raise RequestRefused("note_required", "say how the identity was confirmed "
                                     "(e.g. an identity document shown at the clinic)")
            if action == "refuse" and ground not in GROUNDS:
                raise RequestRefused("bad_ground", f"ground must be one of {', '.join(GROUNDS)}")
            if action == "complete":
                self._completing.add(ref)
                request = self._append(request, staff, "completing",
                                       {"operation": request.operation, "note": note})
                thread = threading.Thread(target=self._finish, args=(ref, staff, note),
                                          name=f"consent-mw-request-{ref}", daemon=True)
                self._workers.append(thread)
                thread.start()
            else:
                data: dict[str, Any] = {"note": note}
                if action == "verify":
                    data["by"] = "staff"
                if action == "refuse":
                    data["ground"] = ground
                request = self._append(request, staff, RECORDED_AS[action], data)
                if action == "refuse":
                    self.notify.mail(request, "refused", ground=label(GROUND_LABELS, ground,
                                                                  request.lang), note=note)
        if wait:
            self.wait_idle()
            request = self.log.get(ref)
        return request

    def _not_completing(self, ref: str) -> None:
        """Nothing changes a request while its operation runs: a refusal or a new id then
        would be overtaken by the completion it did not see."""
        if ref in self._completing:
            raise RequestRefused("busy", "this request is being completed; try again when "
                                 "it is done")

    def set_fee(self, ref: str, state: str, staff: str, note: str = "") -> Request:
        if state not in FEE_LABELS:
            raise RequestRefused("bad_fee", "fee must be due, paid or waived")
        with self._lock:
            request = self.log.get(ref)
            self._not_completing(ref)
            if request.kind != "disclosure":
                raise RequestRefused("no_fee", "only a disclosure request has a fee")
            request = self._append(request, staff, "fee", {"state": state,
                                                           "note": _clean_note(note)})
            self.notify.mail(request, "fee", fee_state=label(FEE_LABELS, state, request.lang),
                       note=note)
            return request

    def link(self, ref: str, staff: str, *, visitor_id: str = "", user_id: str = "",
             note: str) -> Request:
        """Attach an id found with the lookup; the note says why it is this person's."""
        note = _clean_note(note)
        if not note:
            raise RequestRefused("note_required", "say why this id belongs to the person")
        subject = self.privacy.subject(visitor_id=visitor_id or None, user_id=user_id or None)
        with self._lock:
            request = self.log.get(ref)
            self._not_completing(ref)
            if not request.is_open:
                raise RequestRefused("closed", "this request is closed")
            key = "visitor_id" if subject.id_type == "visitor_id" else "user_id"
            return self._append(request, staff, "linked",
                                {key: visitor_id or user_id, "note": note})

    def add_note(self, ref: str, staff: str, note: str) -> Request:
        note = _clean_note(note)
        if not note:
            raise RequestRefused("note_required", "the note is empty")
        with self._lock:
            return self._append(self.log.get(ref), staff, "note", {"note": note})

    # -- completing ---------------------------------------------------------------------

    def _finish(self, ref: str, staff: str, note: str) -> None:
        try:
            self._complete(ref, staff, note)
        except Exception as exc:  # the store failed around the operation: say so, retryable
            log.exception("request %s: completing failed", ref)
            try:
                with self._lock:
                    self._append(self.log.get(ref), staff, "failed",
                                 {"note": f"completing failed: {type(exc).__name__}"})
            except Exception:
                log.exception("request %s: could not record the failure", ref)
        finally:
            with self._lock:
                self._completing.discard(ref)

    def _complete(self, ref: str, staff: str, note: str) -> None:
        request = self.log.get(ref)
        try:
            results, pack = fulfil(self.privacy, request, staff)
        except Exception as exc:
            log.exception("request %s: %s failed", ref, request.operation)
            with self._lock:
                self._append(self.log.get(ref), staff, "failed",
                             {"note": f"{request.operation} failed: {exc}"[:500]})
            return
        if pack is not None:
            self.notify.keep_zip(ref, pack)
        with self._lock:
            request = self.log.get(ref)
            if request.status != "in_progress":  # nothing else may change it meanwhile
                raise RuntimeError(f"request {ref} became {request.status} while completing")
            request = self._append(request, staff, "completed", {
                "operation": request.operation, "results": results, "note": note})
            self.notify.mail(request, "completed", note=note, result=result_text(request),
                       attach=f"export:{ref}" if request.operation == "export" else "")

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Until every completion started so far has finished (tests, shutdown)."""
        for thread in list(self._workers):
            thread.join(timeout)
        self._workers = [t for t in self._workers if t.is_alive()]

    def overdue_digest(self, console_url: str = "") -> int:
        return self.notify.overdue_digest(console_url)

    def start(self) -> None:
        self.outbox.start()

    def stop(self) -> None:
        self.wait_idle(60)
        self.outbox.stop()

