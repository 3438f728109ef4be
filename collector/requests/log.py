"""The ``rights_requests`` table: every request's timeline, appended to and read back.

Rows are only appended. A request's state is :func:`collector.requests.model.fold` over its
rows, so reading is "every row of that reference, in order". Requests are few (a clinic gets a
handful a month), so the queue reads them all and filters in Python.

Appends are made under the desk's lock (``collector.requests.desk``), which gives each entry
its sequence number: one collector process runs the desk, as one process owns a chDB store.
Statements that carry an e-mail or a reference run with ``PRIVATE_SETTINGS``; ids are sealed
on the way in and opened on the way out (``collector.requests.seal``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from collector.requests.model import (
    REF,
    Entry,
    Request,
    UnknownRequest,
    canonical_email,
    fold,
)
from collector.requests.seal import Sealer
from collector.store import PRIVATE_SETTINGS, Store

COLUMNS = ["ref", "seq", "at", "actor", "action", "email_key", "data"]
_SELECT = ("SELECT ref, seq, toUnixTimestamp64Milli(at), actor, action, email_key, data "
           "FROM rights_requests")
#: Crockford's base32: no I, L, O or U, so a number read out on the phone is not misheard.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ref() -> str:
    """``R-XXXX-XXXX``: 40 random bits, short enough to read out on the phone."""
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"R-{chars[:4]}-{chars[4:]}"


def now_ms() -> int:
    return int(time.time() * 1000)




class RequestLog:
    """Timelines in one store: :meth:`append`, :meth:`get`, :meth:`every`."""

    def __init__(self, store: Callable[[], Store], *, due_days: int, key: bytes) -> None:
        self._store = store
        self.due_days = due_days
        self._sealer = Sealer(key)
        self._key = key

    def _entry(self, row: tuple[Any, ...]) -> Entry:
        return Entry(ref=str(row[0]), seq=int(row[1]), at=int(row[2]), actor=str(row[3]),
                     action=str(row[4]), email_key=str(row[5]),
                     data=self._sealer.open(json.loads(str(row[6]) or "{}")))

    @property
    def store(self) -> Store:
        return self._store()

    def entries(self, ref: str) -> list[Entry]:
        if not REF.fullmatch(ref):
            return []
        rows = self.store.rows(_SELECT + " WHERE ref = {r:String} ORDER BY seq", {"r": ref},
                               settings=PRIVATE_SETTINGS)
        return [self._entry(r) for r in rows]

    def _fold(self, entries: list[Entry]) -> Request | None:
        """The request, or None when its submission is gone: each row expires on its own
        (``requests_ttl`` from its time), so a request past its retention loses its first
        row days before its last. What is left is being removed, not a request to show."""
        entries = sorted(entries, key=lambda e: e.seq)
        if not entries or entries[0].action != "submitted":
            return None
        return fold(entries, due_days=self.due_days)

    def get(self, ref: str) -> Request:
        """The request, or UnknownRequest."""
        request = self._fold(self.entries(ref))
        if request is None:
            raise UnknownRequest()
        return request

    def next_seq(self, ref: str) -> int:
        """The number of the entry to append after ``ref``'s last one, read from the store:
        a request read before a mail was noted on it would give that mail's number again."""
        return max((e.seq for e in self.entries(ref)), default=0) + 1

    def append(self, ref: str, actor: str, action: str, data: Mapping[str, Any],
               *, seq: int, email_key: str, at: int | None = None) -> Entry:
        entry = Entry(ref=ref, seq=seq, at=at if at is not None else now_ms(), actor=actor,
                      action=action, data=dict(data))
        self.store.insert("rights_requests", [[
            entry.ref, entry.seq, datetime.fromtimestamp(entry.at / 1000, UTC), entry.actor,
            entry.action, email_key,
            json.dumps(self._sealer.seal(entry.data), ensure_ascii=False, sort_keys=True,
                       separators=(",", ":"))]], COLUMNS, settings=PRIVATE_SETTINGS)
        return entry

    def email_key(self, email: str) -> str:
        """The keyed hash of a mailbox (:func:`canonical_email`) the limits count by."""
        return hmac.new(self._key, canonical_email(email).encode(), hashlib.sha256).hexdigest()

    def count_since(self, action: str, since_ms: int, email_key: str | None = None) -> int:
        """How many ``action`` entries since ``since_ms`` (for one mailbox, if given)."""
        where = "action = {a:String} AND at >= {t:DateTime64(3, 'UTC')}"
        params: dict[str, Any] = {"a": action,
                                  "t": datetime.fromtimestamp(since_ms / 1000, UTC)}
        if email_key is not None:
            where += " AND email_key = {k:String}"
            params["k"] = email_key
        return int(self.store.scalar(f"SELECT count() FROM rights_requests WHERE {where}",
                                     params, settings=PRIVATE_SETTINGS) or 0)

    def before(self, ref: str, stop_ms: int) -> Request | None:
        """The request as its timeline stood before ``stop_ms`` (None if it did not exist)."""
        return self._fold([e for e in self.entries(ref) if e.at < stop_ms])

    def refs_received(self, start_ms: int, stop_ms: int) -> list[str]:
        rows = self.store.rows(
            "SELECT ref FROM rights_requests WHERE action = 'submitted' AND at >= "
            "{a:DateTime64(3, 'UTC')} AND at < {b:DateTime64(3, 'UTC')} ORDER BY at, ref",
            {"a": datetime.fromtimestamp(start_ms / 1000, UTC),
             "b": datetime.fromtimestamp(stop_ms / 1000, UTC)}, settings=PRIVATE_SETTINGS)
        return [str(r[0]) for r in rows]

    def every(self) -> list[Request]:
        """Every request, newest first."""
        grouped: dict[str, list[Entry]] = {}
        for row in self.store.rows(_SELECT + " ORDER BY ref, seq", settings=PRIVATE_SETTINGS):
            entry = self._entry(row)
            grouped.setdefault(entry.ref, []).append(entry)
        requests = [r for r in map(self._fold, grouped.values()) if r is not None]
        return sorted(requests, key=lambda r: r.received_at, reverse=True)

