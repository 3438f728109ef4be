"""The demo's mailbox, a real SMTP server: waiting for a second mail of the same kind."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage

import pytest

from clinic.mailbox import Mailbox

TO = "hanako@example.jp"


def send(box: Mailbox, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "privacy@clinic.test", TO, subject
    message.set_content(text)
    with smtplib.SMTP(box.host, box.port, timeout=10) as smtp:
        smtp.send_message(message)


def test_after_waits_for_a_newer_mail_than_the_one_already_read(mailbox: Mailbox) -> None:
    send(mailbox, "【受付番号 R-1】確認コード", "first 111111")
    first = mailbox.wait_for(TO, "確認コード")
    assert "111111" in first.text
    later = threading.Timer(0.3, send, (mailbox, "【受付番号 R-1】確認コード", "second 222222"))
    later.start()
    try:
        second = mailbox.wait_for(TO, "確認コード", timeout=10, after=first)
    finally:
        later.join()
    assert "222222" in second.text and second is not first
    assert mailbox.wait_for(TO, "確認コード") is second  # the newest, without ``after``
    with pytest.raises(TimeoutError):
        mailbox.wait_for(TO, "確認コード", timeout=0.3, after=second)
    with pytest.raises(TimeoutError):
        mailbox.wait_for(TO, "受け付けました", timeout=0.3)  # no such subject: no stand-in
