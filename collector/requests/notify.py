"""Telling people: a request's mail composed in its person's language, the daily overdue list
for the privacy staff, and the disclosure zips held for the mail that carries them.

:class:`Notifier` queues mail on the outbox (``collector.requests.mail``), which sends and
retries it, and records each on the request's timeline (``mailed``). It also keeps one
mailbox's mail within :data:`MAILS_PER_EMAIL_DAY` a day, however many requests it is spread
over: the form must not become a way to mail-bomb someone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from collector.privacy.operations import Privacy
from collector.requests.fulfil import export_again
from collector.requests.log import RequestLog, now_ms
from collector.requests.mail import Outbox
from collector.requests.model import DAY_MS, Request, RequestRefused
from collector.requests.wording import local_day, mail_fields
from collector.settings import CollectorSettings
from collector.store import Store

log = logging.getLogger(__name__)

MAILS_PER_EMAIL_DAY = 20
ZIP_BYTES = 64 * 1024 * 1024




class Notifier:
    """Mail about requests (see the module docstring). ``open_requests`` lists the requests
    the overdue check looks at."""

    def __init__(self, store: Callable[[], Store], settings: CollectorSettings, *,
                 log_: RequestLog, privacy: Privacy, key: bytes,
                 open_requests: Callable[[], list[Request]]) -> None:
        self.settings = settings
        self.log = log_
        self.privacy = privacy
        self.open_requests = open_requests
        self.outbox = Outbox(store, settings, attachments=self._attachment,
                             after_round=self.overdue_digest, key=key)
        self._lock = threading.Lock()
        self._zips: dict[str, bytes] = {}  # ref → the export completing made, until mailed
        self._digest_day = ""

    def budget(self, email_key: str) -> None:
        """RequestRefused when one more mail would pass the mailbox's daily budget."""
        if self.log.count_since("mailed", now_ms() - DAY_MS, email_key) >= MAILS_PER_EMAIL_DAY:
            raise RequestRefused("too_many_requests",
                                 "too many mails to this address today; try again tomorrow")

    def mail(self, request: Request, template: str, *, secret: tuple[str, int] | None = None,
             attach: str = "", **values: object) -> None:
        """Queue ``template`` to the request's person and note it on the timeline."""
        today = local_day(now_ms(), self.settings.rollup_tz)
        fields = mail_fields(request, self.settings.requests_url, today, values)
        mail = self.outbox.queue(ref=request.ref, template=template, lang=request.lang,
                                 recipient=request.email, values=fields, attach=attach,
                                 secret=secret)
        self.log.append(request.ref, "system", "mailed",
                        {"mail_id": mail.mail_id, "template": template},
                        seq=self.log.next_seq(request.ref),
                        email_key=request.email_key)

    def keep_zip(self, ref: str, pack: bytes) -> None:
        """Hold a disclosure's zip for its mail, the newest first within :data:`ZIP_BYTES`
        (an evicted one, or one larger than that, is made again when its mail is sent)."""
        if len(pack) > ZIP_BYTES:
            return
        with self._lock:
            self._zips.pop(ref, None)
            self._zips[ref] = pack
            while sum(map(len, self._zips.values())) > ZIP_BYTES and len(self._zips) > 1:
                self._zips.pop(next(iter(self._zips)))

    def _attachment(self, name: str) -> tuple[str, bytes] | None:
        if not name.startswith("export:"):
            return None
        ref = name.split(":", 1)[1]
        with self._lock:
            pack = self._zips.pop(ref, None)  # used once: no copy outlives the mail
        if pack is None:  # a retry, a restart: made again from what the store holds now
            pack = export_again(self.privacy, self.log.get(ref))
        return f"my-data-{ref}.zip", pack

    def overdue_digest(self, console_url: str = "") -> int:
        """Once a day, mail the privacy staff the open requests past their due date (with a
        link to ``console_url``, else the configured console)."""
        console_url = console_url or self.settings.console_url
        to = self.settings.privacy_staff_email
        today = local_day(now_ms(), self.settings.rollup_tz)
        if not to or self._digest_day == today:
            return 0
        late = [r for r in self.open_requests() if r.overdue(now_ms())]
        self._digest_day = today
        if not late:
            return 0
        tz = self.settings.rollup_tz
        listing = "\n".join(f"- {r.ref}  {r.kind}  due {local_day(r.due_at, tz)}" for r in late)
        self.outbox.queue(ref="", template="overdue", lang="ja", recipient=to,
                          values={"count": len(late), "listing": listing,
                                  "console": console_url})
        log.info("overdue digest: %d requests", len(late))
        return len(late)
