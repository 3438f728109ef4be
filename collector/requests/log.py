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

import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from collector.requests.model import REF, Entry, Request, UnknownRequest, fold, same_email
from collector.requests.seal import Sealer
from collector.store import PRIVATE_SETTINGS, Store

COLUMNS = ["ref", "seq", "at", "actor", "action", "data"]
_SELECT = ("SELECT ref, seq, toUnixTimestamp64Milli(at), actor, action, data "
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

    def _entry(self, row: tuple[Any, ...]) -> Entry:
        return Entry(ref=str(row[0]), seq=int(row[1]), at=int(row[2]), actor=str(row[3]),
                     action=str(row[4]), data=self._sealer.open(json.loads(str(row[5]) or "{}")))

    @property
    def store(self) -> Store:
        return self._store()

    def entries(self, ref: str) -> list[Entry]:
        if not REF.fullmatch(ref):
            return []
        rows = self.store.rows(_SELECT + " WHERE ref = {r:String} ORDER BY seq", {"r": ref},
                               settings=PRIVATE_SETTINGS)
        return [self._entry(r) for r in rows]

    def get(self, ref: str) -> Request:
        """The request, or UnknownRequest."""
        entries = self.entries(ref)
        if not entries:
            raise UnknownRequest()
        return fold(entries, due_days=self.due_days)

    def append(self, ref: str, actor: str, action: str, data: Mapping[str, Any],
               *, seq: int, at: int | None = None) -> Entry:
        entry = Entry(ref=ref, seq=seq, at=at if at is not None else now_ms(), actor=actor,
                      action=action, data=dict(data))
        self.store.insert("rights_requests", [[
            entry.ref, entry.seq, datetime.fromtimestamp(entry.at / 1000, UTC), entry.actor,
            entry.action, json.dumps(self._sealer.seal(entry.data), ensure_ascii=False,
                                     sort_keys=True, separators=(",", ":"))]], COLUMNS,
            settings=PRIVATE_SETTINGS)
        return entry

    def every(self) -> list[Request]:
        """Every request, newest first."""
        grouped: dict[str, list[Entry]] = {}
        for row in self.store.rows(_SELECT + " ORDER BY ref, seq", settings=PRIVATE_SETTINGS):
            entry = self._entry(row)
            grouped.setdefault(entry.ref, []).append(entry)
        requests = [fold(e, due_days=self.due_days) for e in grouped.values()]
        return sorted(requests, key=lambda r: r.received_at, reverse=True)

    def by_email(self, email: str) -> list[Request]:
        """Requests from one address (a duplicate is its own request, never a shortcut)."""
        return [r for r in self.every() if same_email(r.email, email)]
