"""Ids on a request's timeline, and what people wrote, are kept sealed.

A request names the person's visitor ids (and account id). If its timeline held them as they
are, the purge that completes a deletion would find them on disk afterwards, and its file scan
would rightly fail: the request log would be a second copy of what was deleted. So they are
encrypted (``cryptography``'s Fernet: AES-CBC with an HMAC, a random IV per value) under a key
derived from the collector's hash key, and opened only to run the operation. The sealed value
shares no bytes with the id, so no scan, query log or copy of the table shows it. The
e-mail address, the person's text and staff notes are sealed the same way (a note may quote
an id), and so are the outbox's recipients, bodies and errors (``collector.requests.mail``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

#: Timeline fields that hold ids or what a person or staff member wrote (a note may quote an
#: id): a list, or one value.
SEALED = ("visitor_ids", "visitor_id", "user_id", "account_id", "email", "text", "note")


class Sealer:
    def __init__(self, key: bytes) -> None:
        derived = hashlib.sha256(b"consent-mw request ids\x00" + key).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for name in SEALED:
            value = out.get(name)
            if isinstance(value, list):
                out[name] = [self._seal(str(v)) for v in value]
            elif isinstance(value, str) and value:
                out[name] = self._seal(value)
        return out

    def open(self, data: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for name in SEALED:
            value = out.get(name)
            if isinstance(value, list):
                out[name] = [self._open(str(v)) for v in value]
            elif isinstance(value, str) and value:
                out[name] = self._open(value)
        return out

    def seal_text(self, value: str) -> str:
        return self._seal(value) if value else ""

    def open_text(self, value: str) -> str:
        return self._open(value) if value else ""

    def _seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def _open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            return ""  # sealed under another key (the hash key changed): nothing to act on
