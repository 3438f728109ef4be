"""Request mail: templates in the person's language, an outbox in the store, an SMTP sender.

A mail is rendered when it is queued and kept in ``rights_mail`` with its status. The sender
thread tries it at once and retries a failure with growing waits (:data:`BACKOFF`), up to
:data:`MAX_ATTEMPTS`; every try is a newer version of the row, so the request's page shows
"sent", "will retry: <error>" or "gave up: <error>". Without an SMTP host the mail stays
"waiting for SMTP". Nothing is dropped silently.

Who a mail is to, what it says and why it failed are sealed in the store like the request's
ids (``collector.requests.seal``). Two things never rest in the store at all:

- a one-time code: the stored body shows ``••••••``; the real one is held in memory for its
  retries until the code expires (after a restart the person asks for a new code);
- an export: the outbox names what to attach (``export:<ref>``) and the sender asks the desk
  to build it when it sends, so no copy of a person's data outlives the mail.

Templates are ``templates/<name>.<lang>.txt``: a ``Subject:`` line, a blank line, the body,
with ``$name`` fields (``string.Template``). A clinic's own folder (``mail_templates``)
overrides any of them.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from collector.errors import CollectorError
from collector.requests.log import now_ms
from collector.requests.seal import Sealer
from collector.settings import CollectorSettings
from collector.store import PRIVATE_SETTINGS, Store

log = logging.getLogger(__name__)

DEFAULTS = Path(__file__).resolve().parent / "templates"
TEMPLATES = ("acknowledgement", "code", "completed", "refused", "fee", "overdue")
MAX_ATTEMPTS = 6
BACKOFF = (0, 30, 120, 600, 1800, 3600)  # seconds before try n (n from 1)
COLUMNS = ["mail_id", "ref", "template", "lang", "recipient", "subject", "body", "attach",
           "status", "attempts", "last_error", "created_at", "updated_at", "version"]
MASK = "••••••"
#: What to attach, by the outbox's ``attach`` name: (file name, bytes), or None.
Attachments = Callable[[str], "tuple[str, bytes] | None"]


class TemplateError(CollectorError, ValueError):
    """A template the clinic wrote cannot be used (raised at start, naming the file)."""


def load_templates(folder: Path | None) -> dict[tuple[str, str], tuple[str, str]]:
    """(name, lang) → (subject, body) templates: the defaults, then the clinic's folder."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for base in (DEFAULTS, folder):
        if base is None:
            continue
        for path in sorted(base.glob("*.*.txt")):
            name, lang = path.name.split(".")[:2]
            text = path.read_text(encoding="utf-8")
            head, _, body = text.partition("\n\n")
            if not head.startswith("Subject:") or not body.strip():
                raise TemplateError(f"{path}: must start with 'Subject: ...', a blank line, "
                                    "then the body")
            found[(name, lang)] = (head[len("Subject:"):].strip(), body)
    missing = [f"{n}.{lang}" for n in TEMPLATES for lang in ("ja", "en")
               if (n, lang) not in found]
    if missing:
        raise TemplateError(f"mail templates missing: {', '.join(missing)}")
    return found


@dataclass(frozen=True, slots=True)
class Mail:
    mail_id: str
    ref: str
    template: str
    lang: str
    recipient: str
    subject: str
    body: str
    attach: str
    status: str  # pending, sent, retrying, failed, no_smtp
    attempts: int
    last_error: str
    created_at: int
    updated_at: int

    def row(self, version: int, seal: Callable[[str], str]) -> list[Any]:
        """The stored row: who it is to, what it says and why it failed are sealed."""
        return [self.mail_id, self.ref, self.template, self.lang, seal(self.recipient),
                self.subject, seal(self.body), self.attach, self.status, self.attempts,
                seal(self.last_error), _dt(self.created_at), _dt(self.updated_at), version]


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Outbox:
    """Queue mail, send it (a thread, or :meth:`send_due` by hand), and say what became of
    it. ``attachments`` builds what a mail names in ``attach``."""

    def __init__(self, store: Callable[[], Store], settings: CollectorSettings, *,
                 attachments: Attachments, key: bytes, interval: float = 5.0,
                 after_round: Callable[[], object] | None = None) -> None:
        self._store = store
        self._sealer = Sealer(key)
        self.settings = settings
        self.templates = load_templates(settings.mail_templates)
        self.attachments = attachments
        self.interval = interval
        self.after_round = after_round  # the desk's daily overdue digest rides this thread
        self._secret_bodies: dict[str, tuple[str, int]] = {}  # mail_id → (body, until ms)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._version = now_ms() * 1000

    @property
    def store(self) -> Store:
        return self._store()

    def render(self, template: str, lang: str, values: Mapping[str, object]) -> tuple[str, str]:
        subject, body = self.templates[(template, lang if lang in ("ja", "en") else "ja")]
        fields = {k: str(v) for k, v in values.items()}
        return (string.Template(subject).safe_substitute(fields),
                string.Template(body).safe_substitute(fields))

    def queue(self, *, ref: str, template: str, lang: str, recipient: str,
              values: Mapping[str, object], attach: str = "",
              secret: tuple[str, int] | None = None) -> Mail:
        """Render and store a mail, and wake the sender. ``secret`` = (the value to mask in
        the stored body, until when the real body may be sent)."""
        subject, body = self.render(template, lang, values)
        mail_id = uuid.uuid4().hex
        stored = body
        if secret is not None:
            stored = body.replace(secret[0], MASK)
            with self._lock:
                self._secret_bodies[mail_id] = (body, secret[1])
        now = now_ms()
        mail = Mail(mail_id=mail_id, ref=ref, template=template, lang=lang,
                    recipient=recipient, subject=subject, body=stored, attach=attach,
                    status="pending", attempts=0, last_error="", created_at=now,
                    updated_at=now)
        self._write(mail)
        self._wake.set()
        return mail

    def _write(self, mail: Mail) -> None:
        with self._lock:
            self._version = max(self._version + 1, now_ms() * 1000)
            version = self._version
        self.store.insert("rights_mail", [mail.row(version, self._sealer.seal_text)], COLUMNS,
                          settings=PRIVATE_SETTINGS)

    def _select(self, where: str, params: Mapping[str, Any]) -> list[Mail]:
        rows = self.store.rows(
            "SELECT mail_id, ref, template, lang, recipient, subject, body, attach, status, "
            "attempts, last_error, toUnixTimestamp64Milli(created_at), "
            "toUnixTimestamp64Milli(updated_at) FROM rights_mail FINAL WHERE " + where +
            " ORDER BY created_at", params, settings=PRIVATE_SETTINGS)
        o = self._sealer.open_text
        return [Mail(str(r[0]), str(r[1]), str(r[2]), str(r[3]), o(str(r[4])), str(r[5]),
                     o(str(r[6])), str(r[7]), str(r[8]), int(r[9]), o(str(r[10])), int(r[11]),
                     int(r[12])) for r in rows]

    def for_ref(self, ref: str) -> list[Mail]:
        return self._select("ref = {r:String}", {"r": ref})

    def waiting(self) -> list[Mail]:
        return self._select("status IN ('pending', 'retrying', 'no_smtp')", {})

    # -- sending ------------------------------------------------------------------------

    def send_due(self) -> int:
        """Try every mail whose turn has come; the number sent."""
        sent = 0
        now = now_ms()
        with self._lock:  # codes past their time are never sent: forget them
            for mail_id in [m for m, (_, until) in self._secret_bodies.items() if until < now]:
                del self._secret_bodies[mail_id]
        for mail in self.waiting():
            wait = BACKOFF[min(mail.attempts, len(BACKOFF) - 1)] * 1000
            if mail.attempts and now - mail.updated_at < wait:
                continue
            sent += self._try(mail)
        return sent

    def _try(self, mail: Mail) -> int:
        if not self.settings.smtp_host:
            if mail.status != "no_smtp":
                self._write(_with(mail, status="no_smtp", last_error="no SMTP server is "
                                  "configured (CONSENT_MW_SMTP_HOST)"))
            return 0
        body = mail.body
        with self._lock:
            held = self._secret_bodies.get(mail.mail_id)
        if MASK in body:
            if held is None or now_ms() > held[1]:
                self._write(_with(mail, status="failed", last_error="the code expired before "
                                  "it could be sent; the person can ask for a new one"))
                return 0
            body = held[0]
        try:
            attachment = self.attachments(mail.attach) if mail.attach else None
            self._smtp(mail, body, attachment)
        except Exception as exc:  # any failure is recorded on the mail and retried
            attempts = mail.attempts + 1
            status = "failed" if attempts >= MAX_ATTEMPTS else "retrying"
            # The error may name the recipient: it is kept sealed on the mail, not logged.
            log.warning("mail %s for %s: try %d failed (%s)", mail.template, mail.ref,
                        attempts, type(exc).__name__)
            self._write(_with(mail, status=status, attempts=attempts,
                              last_error=str(exc)[:300] or type(exc).__name__))
            return 0
        with self._lock:
            self._secret_bodies.pop(mail.mail_id, None)
        self._write(_with(mail, status="sent", attempts=mail.attempts + 1, last_error=""))
        return 1

    def _smtp(self, mail: Mail, body: str, attachment: tuple[str, bytes] | None) -> None:
        s = self.settings
        message = EmailMessage()
        message["From"] = s.mail_from
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message["X-Consent-MW-Request"] = mail.ref
        message.set_content(body)
        if attachment is not None:
            name, data = attachment
            message.add_attachment(data, maintype="application", subtype="zip", filename=name)
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=15) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password.value)
            smtp.send_message(message)

    def retry(self, mail_id: str) -> bool:
        """Staff's "send again" for a mail that gave up: back to pending, tries from zero."""
        found = self._select("mail_id = {m:String}", {"m": mail_id})
        if not found or found[0].status == "sent":
            return False
        self._write(_with(found[0], status="pending", attempts=0))
        self._wake.set()
        return True

    # -- the thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="consent-mw-mail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=20)

    def kick(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            # Apart: a digest that fails must not hold back a person's code or receipt.
            if self.after_round is not None:
                try:
                    self.after_round()
                except Exception:
                    log.exception("request mail: the round's digest failed")
            try:
                self.send_due()
            except Exception:  # the store may be briefly unavailable; the next round retries
                log.exception("request mail: sending round failed")


def _with(mail: Mail, **changes: Any) -> Mail:
    values = {name: getattr(mail, name) for name in Mail.__slots__}
    values.update(changes, updated_at=now_ms())
    return Mail(**values)
