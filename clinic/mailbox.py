"""A real SMTP server on this machine that keeps what it receives: the demo's mail.

``make demo`` starts one and points the collector's SMTP settings at it, and the demo shows
the mails on a page, so a person can follow a privacy request end to end without a mail
account. The tests use the same server. It keeps the newest :data:`KEEP` mails, and at most
:data:`MAX_BYTES` of them, in memory only.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

KEEP = 200
MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Received:
    """One mail as received: who to, the subject, the text and any attachments."""

    at: float
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    attachments: tuple[tuple[str, bytes], ...]
    size: int


def parse(raw: bytes, sender: str, recipients: tuple[str, ...]) -> Received:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    files = tuple((part.get_filename() or "attachment", _bytes(part.get_payload(decode=True)))
                  for part in message.iter_attachments())
    return Received(at=time.time(), sender=sender, recipients=recipients,
                    subject=str(message.get("Subject", "")), text=str(text),
                    attachments=files, size=len(raw))


class Mailbox:
    """``start()`` → the port; ``received()``, newest last; ``wait_for(...)``; ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._mails: deque[Received] = deque()
        self._bytes = 0
        self._lock = threading.Condition()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = parse(bytes(envelope.content), str(envelope.mail_from),
                     tuple(str(r) for r in envelope.rcpt_tos))
        with self._lock:
            self._mails.append(mail)
            self._bytes += mail.size
            while self._mails and (len(self._mails) > KEEP or self._bytes > MAX_BYTES):
                self._bytes -= self._mails.popleft().size
            self._lock.notify_all()
        return "250 Message accepted for delivery"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> int:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._mails)

    def wait_for(self, to: str, subject_has: str = "", timeout: float = 20.0, *,
                 after: Received | None = None) -> Received:
        """The newest mail to ``to`` whose subject contains ``subject_has``, waiting for it;
        with ``after``, one that arrived after that mail (a second mail of the same kind,
        which an older one must not stand in for)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for mail in reversed(self._mails):
                    if mail is after:
                        break
                    if to in mail.recipients and subject_has in mail.subject:
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no mail to {to} with {subject_has!r} in "
                                       f"{timeout:.0f} s")
                self._lock.wait(left)


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else b""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
