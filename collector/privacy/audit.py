"""The append-only, hash-chained audit trail of visitor-rights operations (``privacy_requests``).

Each row carries ``prev_hash`` (the previous row's ``row_hash``) and
``row_hash = sha256(prev_hash + canonical JSON of the row's other fields)``. ``verify_chain``
recomputes the chain: an edited row breaks its own hash, a deleted row leaves a gap in ``seq``
and a broken link, a reordered row breaks the links. Rows never hold a raw id, only
``subject_hash``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.store import Store

GENESIS = "0" * 64
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIELDS = ("seq", "request_id", "ts", "operation", "id_type", "subject_hash", "requested_by",
          "reason", "outcome", "details")
_COLUMNS = (*FIELDS, "prev_hash", "row_hash")
# One writer per store (the owning process), so a process lock keeps seq gap-free.
_LOCK = threading.Lock()


def ms_to_datetime(ms: int) -> datetime:
    """Exact: a float of seconds would round some milliseconds away and break the hash."""
    return EPOCH + timedelta(milliseconds=ms)


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: its fields as sorted, compact JSON (ts in ms)."""
    return json.dumps({k: row[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(row)).hexdigest()


def _select(where: str = "") -> str:
    return (
        "SELECT seq, toString(request_id) AS request_id, toUnixTimestamp64Milli(ts) AS ts, "
        "operation, id_type, subject_hash, requested_by, reason, outcome, details, prev_hash, "
        f"row_hash FROM privacy_requests {where} ORDER BY seq"
    )


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    row["seq"] = int(row["seq"])
    row["ts"] = int(row["ts"])
    return row


def append(
    store: Store,
    *,
    operation: str,
    id_type: str,
    subject_hash: str,
    requested_by: str,
    reason: str,
    outcome: str,
    details: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """Append one row at the end of the chain and return it."""
    with _LOCK:
        last = store.rows("SELECT seq, row_hash FROM privacy_requests ORDER BY seq DESC LIMIT 1")
        seq, prev = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS)
        row: dict[str, Any] = {
            "seq": seq,
            "request_id": request_id or str(uuid.uuid4()),
            "ts": int(time.time() * 1000),
            "operation": operation,
            "id_type": id_type,
            "subject_hash": subject_hash,
            "requested_by": requested_by,
            "reason": reason,
            "outcome": outcome,
            "details": json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":")),
        }
        row["prev_hash"] = prev
        row["row_hash"] = row_hash(prev, row)
        values = [row[c] for c in _COLUMNS]
        values[_COLUMNS.index("ts")] = ms_to_datetime(row["ts"])
        store.insert("privacy_requests", [values], _COLUMNS)
        return row


def listing(
    store: Store, *, limit: int = 100, subject_hash: str | None = None,
    operation: str | None = None,
) -> list[dict[str, Any]]:
    """The newest rows first, optionally for one subject or operation."""
    conds: list[str] = []
    params: dict[str, Any] = {}
    if subject_hash:
        conds.append("subject_hash = {h:String}")
        params["h"] = subject_hash
    if operation:
        conds.append("operation = {op:String}")
        params["op"] = operation
    where = ("WHERE " + " AND ".join(conds)) if conds else ""
    sql = _select(where) + " DESC LIMIT {limit:UInt32}"
    params["limit"] = max(1, min(int(limit), 10_000))
    return [_normalise(r) for r in store.dicts(sql, params)]


def chain_until(store: Store, stop: datetime) -> list[dict[str, Any]]:
    """Every row written before ``stop``, in chain order (the evidence pack's prefix)."""
    # ``ts`` in the WHERE is the select's alias: milliseconds since the epoch.
    return [_normalise(r) for r in store.dicts(
        _select("WHERE ts < {b:Int64}"), {"b": int(stop.timestamp() * 1000)})]


@dataclass(slots=True)
class ChainReport:
    """What ``verify_chain`` found: ok, rows checked, and the first problem if any."""

    ok: bool
    rows: int
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "problems": self.problems}


def verify_chain(store: Store, *, max_problems: int = 20) -> ChainReport:
    """Recompute every link and hash; report edited, deleted or reordered rows."""
    rows = [_normalise(r) for r in store.dicts(_select())]
    problems: list[dict[str, Any]] = []
    prev = GENESIS
    for expected_seq, row in enumerate(rows, start=1):
        if row["seq"] != expected_seq:
            problems.append({"seq": row["seq"], "problem": "gap_or_duplicate",
                             "expected_seq": expected_seq})
        if row["prev_hash"] != prev:
            problems.append({"seq": row["seq"], "problem": "broken_link"})
        if row_hash(row["prev_hash"], row) != row["row_hash"]:
            problems.append({"seq": row["seq"], "problem": "row_edited"})
        prev = row["row_hash"]
        if len(problems) >= max_problems:
            break
    return ChainReport(ok=not problems, rows=len(rows), problems=problems)
