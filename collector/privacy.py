"""Visitor rights as provable operations: suppress (Art. 7), purge (Art. 6), export (Art. 5).

A person is named by ``visitor_id`` (the ``cmw_vid`` cookie) or ``user_id`` (the site's account
id, stored as ``ids.hash_user_id(key, user_id)``). A user_id covers every visitor_id that was
seen with it. Every operation is appended to the hash-chained audit trail (``collector.audit``).

Purge, in steps that are each idempotent (so an interrupted purge is simply run again):

1. intent row in the audit trail;
2. suppress every subject (ingest drops their events from now on), then wait for ingest calls
   that passed the suppression check before it;
3. lightweight ``DELETE`` of their events (hidden from every query), anonymise their consent
   records (links cut, the decision kept as proof), ``APPLY DELETED MASK`` to rewrite the parts,
   and clear the raw id from the suppression rows;
4. wait until the outdated parts (the pre-mutation copies) are gone from disk;
5. verify: zero rows by query, and no file under the store directory holding an id, raw or
   inside LZ4 blocks;
6. receipt (``purge_receipts``) and a closing audit row.

Statements that carry an id run with ``PRIVATE_SETTINGS`` (kept out of query logs). Mutation
statements are written to ``mutation_*.txt`` and ``system.mutations`` by ClickHouse, so they
match ids by ``cityHash64`` + ``SHA256`` of the column instead of by the id itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import struct
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any, Protocol

from collector import audit
from collector.store import MUTATION_SETTINGS, PRIVATE_SETTINGS, Store
from consent_mw.ids import hash_user_id, is_valid_id, subject_hash

log = logging.getLogger("consent_mw.collector.privacy")

ID_TYPES = ("visitor_id", "user_id")
_MUTATE = {**MUTATION_SETTINGS, **PRIVATE_SETTINGS}
_EVENT_ID_COLUMNS = ("visitor_id", "user_id", "consent_id")
_PURGE_TABLES = ("events", "consent_records", "suppressions")


class PrivacyError(ValueError):
    """A request the API answers with 400: malformed id, both ids or none."""


class ProgressFn(Protocol):
    def __call__(self, step: str) -> None: ...


def _no_progress(step: str) -> None:
    return None


# --- subjects -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Subject:
    """One id as events store it, and its keyed hash (what suppressions and receipts keep)."""

    id_type: str
    stored: str
    hash: str


def parse_subject(key: bytes, *, visitor_id: str | None = None,
                  user_id: str | None = None) -> Subject:
    """Exactly one of visitor_id / user_id, well-formed; user_id is hashed as events store it."""
    given = [(t, v) for t, v in (("visitor_id", visitor_id), ("user_id", user_id))
             if v not in (None, "")]
    if len(given) != 1:
        raise PrivacyError("give exactly one of visitor_id or user_id")
    id_type, value = given[0]
    if not is_valid_id(value):
        raise PrivacyError(f"{id_type} is malformed: 1-64 characters of [0-9A-Za-z_-]")
    assert value is not None
    stored = hash_user_id(key, value) if id_type == "user_id" else value
    return Subject(id_type, stored, subject_hash(key, id_type, stored))


@dataclass(slots=True)
class PersonScope:
    """Everything that identifies one person in the store, resolved from the root subject."""

    root: Subject
    visitors: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)  # stored (hashed) user ids
    consent_ids: list[str] = field(default_factory=list)

    def subjects(self, key: bytes) -> list[Subject]:
        out = [Subject("visitor_id", v, subject_hash(key, "visitor_id", v))
               for v in self.visitors]
        out += [Subject("user_id", u, subject_hash(key, "user_id", u)) for u in self.users]
        return out

    @property
    def needles(self) -> list[str]:
        """Every raw id the file scan must not find."""
        return sorted({*self.visitors, *self.users, *self.consent_ids})


# --- the ingest gate ------------------------------------------------------------------------

class IngestGate:
    """Counts ingest calls in flight, by epoch, so a purge can wait for those that started
    before its suppression (they passed the check already and may still insert)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._epoch = 0
        self._active: Counter[int] = Counter()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            with self._cond:
                epoch = self._epoch
                self._active[epoch] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                with self._cond:
                    self._active[epoch] -= 1
                    if self._active[epoch] <= 0:
                        del self._active[epoch]
                    self._cond.notify_all()
        return gated

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every call that began before now has returned."""
        with self._cond:
            self._epoch += 1
            target = self._epoch
            return self._cond.wait_for(
                lambda: all(e >= target for e in self._active), timeout=timeout)


# --- the file scan --------------------------------------------------------------------------

_LZ4, _NONE, _ZSTD, _MULTIPLE = 0x82, 0x02, 0x90, 0x91
# Delta, T64, DoubleDelta, Gorilla, FPC, GCD
_NUMERIC_CODECS = {0x92, 0x93, 0x94, 0x95, 0x98, 0x9A}
_METHODS = {_NONE, _LZ4, *range(0x90, 0x9B)}
_CHUNK = 8 * 1024 * 1024


@dataclass(slots=True)
class ScanReport:
    """What the byte scan of the store directory covered and found."""

    files: int = 0
    bytes_raw: int = 0
    bytes_decompressed: int = 0
    blocks_decoded: int = 0
    blocks_numeric: int = 0  # numeric-only codec chains: no string can be inside
    blocks_opaque: int = 0  # codecs the scan cannot decode (ZSTD...): not proven
    matches: list[str] = field(default_factory=list)
    opaque_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "bytes_raw": self.bytes_raw,
                "bytes_decompressed": self.bytes_decompressed,
                "blocks_decoded": self.blocks_decoded, "blocks_numeric": self.blocks_numeric,
                "blocks_opaque": self.blocks_opaque,
                "opaque_files": self.opaque_files[:20], "matches": self.matches}


def _contains(stream: Iterable[bytes], needles: Sequence[bytes]) -> bool:
    """Search a stream of chunks; keeps an overlap so an id split across chunks is found."""
    keep = max(len(n) for n in needles) - 1
    tail = b""
    for chunk in stream:
        window = tail + chunk
        if any(n in window for n in needles):
            return True
        tail = window[-keep:] if keep else b""
    return False


def _raw_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _decompressed_blocks(data: bytes, report: ScanReport) -> Iterator[bytes] | None:
    """ClickHouse's compressed-file framing, or None if ``data`` is not such a file.

    Each block: 16-byte checksum, method byte, UInt32 compressed size (with the 9-byte header),
    UInt32 decompressed size, payload.
    """
    pos, blocks = 0, []
    while pos < len(data):
        if pos + 25 > len(data):
            return None
        method, csize, dsize = struct.unpack_from("<BII", data, pos + 16)
        if csize < 9 or pos + 16 + csize > len(data) or method not in _METHODS:
            return None
        blocks.append((method, pos + 25, pos + 16 + csize, dsize))
        pos += 16 + csize

    def gen() -> Iterator[bytes]:
        import lz4.block  # type: ignore[import-untyped]  # clickhouse-connect's dependency

        for method, start, end, dsize in blocks:
            payload = data[start:end]
            if method == _NONE:
                out = payload
            elif method == _LZ4:
                try:
                    out = lz4.block.decompress(payload, uncompressed_size=dsize)
                except Exception:
                    report.blocks_opaque += 1
                    continue
            elif method == _MULTIPLE and payload and _NUMERIC_CODECS & set(
                    payload[1:1 + payload[0]]):
                # A chain with Delta, T64, DoubleDelta, Gorilla, FPC or GCD: ClickHouse allows these
                # on numeric columns only (e.g. _block_number), which cannot hold an id.
                report.blocks_numeric += 1
                continue
            else:
                report.blocks_opaque += 1
                continue
            report.blocks_decoded += 1
            report.bytes_decompressed += len(out)
            yield out

    return gen()


def scan_directory(root: Path, ids: Iterable[str]) -> ScanReport:
    """Look for each id in every file under ``root``: raw bytes, and inside compressed blocks."""
    needles = [i.encode("utf-8") for i in ids if i]
    report = ScanReport()
    if not needles or not root.exists():
        return report
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            size = path.stat().st_size
            report.files += 1
            report.bytes_raw += size
            hit = _contains(_raw_chunks(path), needles)
            # Column data lives in .bin files (marks files hold offsets only).
            if not hit and path.suffix == ".bin":
                opaque = report.blocks_opaque
                blocks = _decompressed_blocks(path.read_bytes(), report)
                if blocks is None and size:  # not the framing we know: unproven
                    report.blocks_opaque += 1
                hit = blocks is not None and _contains(blocks, needles)
                if report.blocks_opaque > opaque:
                    report.opaque_files.append(str(path.relative_to(root)))
        except FileNotFoundError:  # a part removed while we walked: nothing left to find
            continue
        if hit:
            report.matches.append(str(path.relative_to(root)))
    return report


# --- JSON-able rows -------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """A store value as JSON: datetimes in ISO 8601 UTC, UUIDs and IPs as text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | IPv4Address | IPv6Address | Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in rows]


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


# --- the operations -------------------------------------------------------------------------

class Privacy:
    """Suppress, unsuppress, purge and export against one store (owned by this process)."""

    def __init__(self, store: Store | Callable[[], Store], key: bytes, *,
                 cleanup_timeout: float = 90.0) -> None:
        self._store_fn: Callable[[], Store] = store if callable(store) else (lambda: store)
        self.key = key
        self.cleanup_timeout = cleanup_timeout
        self.gate = IngestGate()
        self._hashes: frozenset[str] = frozenset()
        self.version = 0
        self._lock = threading.RLock()  # suppression writes and the in-memory set
        self._purge_lock = threading.Lock()  # APPLY DELETED MASK is table-wide: one at a time
        self._listeners: list[Any] = []

    @property
    def store(self) -> Store:
        return self._store_fn()

    def subject(self, *, visitor_id: str | None = None, user_id: str | None = None) -> Subject:
        return parse_subject(self.key, visitor_id=visitor_id, user_id=user_id)

    # -- suppression state --------------------------------------------------------------

    def load(self) -> None:
        """Read the active suppressions into memory (at start; the table is the truth)."""
        rows = self.store.rows(
            "SELECT subject_hash, version FROM suppressions FINAL WHERE active")
        with self._lock:
            self._hashes = frozenset(str(r[0]) for r in rows)
            top = self.store.scalar("SELECT max(version) FROM suppressions")
            self.version = max(self.version, int(top or 0))
            self._notify_replace()

    def attach(self, suppression_list: Any) -> None:
        """Keep an in-process capture's ``SuppressionList`` in step (add/discard/replace)."""
        with self._lock:
            self._listeners.append(suppression_list)
            suppression_list.replace(self._hashes, self.version)

    def _notify_replace(self) -> None:
        for listener in self._listeners:
            try:
                listener.replace(self._hashes, self.version)
            except Exception:
                log.exception("suppression listener failed")

    def is_suppressed(self, id_type: str, stored_id: str) -> bool:
        """The ingest check: one HMAC per id, nothing when no one is suppressed."""
        hashes = self._hashes
        if not hashes or not stored_id:
            return False
        return subject_hash(self.key, id_type, stored_id) in hashes

    def suppression_list(self) -> dict[str, Any]:
        """What remote web processes poll: subject hashes and a version."""
        return {"hashes": sorted(self._hashes), "version": self.version}

    def _next_version(self) -> int:
        self.version = max(self.version + 1, time.time_ns() // 1000)
        return self.version

    def _write_suppressions(self, subjects: Sequence[Subject], *, active: bool, purged: bool,
                            root: Subject, reason: str, requested_by: str,
                            keep_subject: bool = True) -> None:
        if not subjects:
            return
        with self._lock:
            version = self._next_version()
            now = _now()
            rows = [[s.id_type, s.stored if keep_subject else "", s.hash, active, purged,
                     root.hash, reason, requested_by, now, version] for s in subjects]
            self.store.insert(
                "suppressions", rows,
                ["id_type", "subject", "subject_hash", "active", "purged", "root_hash",
                 "reason", "requested_by", "updated_at", "version"],
                settings=PRIVATE_SETTINGS)
            hashes = {s.hash for s in subjects}
            self._hashes = self._hashes | hashes if active else self._hashes - hashes
            self._notify_replace()

    # -- resolving a person -------------------------------------------------------------

    def resolve(self, root: Subject) -> PersonScope:
        """The visitor ids, user ids and consent ids of one person, from every table."""
        s, p = self.store, PRIVATE_SETTINGS
        scope = PersonScope(root)
        visitors: set[str] = set()
        users: set[str] = set()
        if root.id_type == "visitor_id":
            visitors.add(root.stored)
        else:
            users.add(root.stored)
            visitors |= {str(r[0]) for r in s.rows(
                "SELECT DISTINCT visitor_id FROM events WHERE user_id = {u:String} "
                "AND visitor_id != ''", {"u": root.stored}, settings=p)}
        # A purge interrupted after its events were deleted still finds the linked ids here.
        for id_type, subject in s.rows(
            "SELECT id_type, subject FROM suppressions FINAL WHERE root_hash = {h:String} "
            "AND subject != ''", {"h": root.hash}, settings=p):
            (visitors if id_type == "visitor_id" else users).add(str(subject))
        v, u = sorted(visitors), sorted(users)
        consent = {str(r[0]) for r in s.rows(
            "SELECT DISTINCT consent_id FROM events WHERE (visitor_id IN {v:Array(String)} "
            "OR user_id IN {u:Array(String)}) AND consent_id != ''", {"v": v, "u": u},
            settings=p)}
        consent |= {str(r[0]) for r in s.rows(
            "SELECT DISTINCT consent_id FROM consent_records WHERE visitor_id IN "
            "{v:Array(String)} AND consent_id != ''", {"v": v}, settings=p)}
        scope.visitors, scope.users, scope.consent_ids = v, u, sorted(consent)
        return scope

    def _match(self, column: str, values: Sequence[str]) -> str:
        """A predicate for mutation text that matches ``column IN values`` without the values.

        cityHash64 skips most rows cheaply; SHA-256 makes a false match practically impossible.
        """
        if not values:
            return "0"
        cities = self.store.scalar("SELECT arrayMap(x -> cityHash64(x), {v:Array(String)})",
                                   {"v": list(values)}, settings=PRIVATE_SETTINGS)
        shas = ", ".join(f"'{_sha(v)}'" for v in values)
        return (f"(cityHash64({column}) IN ({', '.join(str(int(c)) for c in cities)}) "
                f"AND lower(hex(SHA256({column}))) IN ({shas}))")

    def _event_pred(self, scope: PersonScope) -> str:
        return " OR ".join([self._match("visitor_id", scope.visitors),
                            self._match("user_id", scope.users),
                            self._match("consent_id", scope.consent_ids)])

    def _record_pred(self, scope: PersonScope) -> str:
        return " OR ".join([self._match("visitor_id", scope.visitors),
                            self._match("consent_id", scope.consent_ids)])

    def _counts(self, scope: PersonScope) -> dict[str, int]:
        """Rows about the person still present, by parameterised query."""
        s, p = self.store, PRIVATE_SETTINGS
        params = {"v": scope.visitors, "u": scope.users, "c": scope.consent_ids}
        events = s.scalar(
            "SELECT count() FROM events WHERE visitor_id IN {v:Array(String)} OR user_id IN "
            "{u:Array(String)} OR consent_id IN {c:Array(String)}", params, settings=p)
        records = s.scalar(
            "SELECT count() FROM consent_records WHERE visitor_id IN {v:Array(String)} OR "
            "consent_id IN {c:Array(String)}", params, settings=p)
        supp = s.scalar(
            "SELECT count() FROM suppressions WHERE subject IN {v:Array(String)} OR subject IN "
            "{u:Array(String)}", params, settings=p)
        return {"events": int(events or 0), "consent_records": int(records or 0),
                "suppressions": int(supp or 0)}

    # -- suppress / unsuppress ----------------------------------------------------------

    def suppress(self, *, visitor_id: str | None = None, user_id: str | None = None,
                 reason: str = "", requested_by: str = "") -> dict[str, Any]:
        """Stop capture and hide existing rows from dashboards and partner exports."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        scope = self.resolve(root)
        subjects = scope.subjects(self.key)
        self._write_suppressions(subjects, active=True, purged=False, root=root, reason=reason,
                                 requested_by=requested_by)
        hashes = sorted(s.hash for s in subjects)
        row = audit.append(self.store, operation="suppress", id_type=root.id_type,
                           subject_hash=root.hash, requested_by=requested_by, reason=reason,
                           outcome="done", details={"subject_hashes": hashes})
        return {"request_id": row["request_id"], "operation": "suppress",
                "id_type": root.id_type, "subject_hash": root.hash, "subject_hashes": hashes,
                "active": True, "version": self.version}

    def unsuppress(self, *, visitor_id: str | None = None, user_id: str | None = None,
                   reason: str = "", requested_by: str = "") -> dict[str, Any]:
        """Lift a suppression (rows were kept, so dashboards show them again)."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        rows = self.store.rows(
            "SELECT id_type, subject, subject_hash, purged FROM suppressions FINAL "
            "WHERE active AND (subject_hash = {h:String} OR root_hash = {h:String})",
            {"h": root.hash}, settings=PRIVATE_SETTINGS)
        subjects = [Subject(str(r[0]), str(r[1]), str(r[2])) for r in rows]
        if subjects:
            with self._lock:
                version = self._next_version()
                now = _now()
                self.store.insert(
                    "suppressions",
                    [[s.id_type, s.stored, s.hash, False, bool(r[3]), root.hash, reason,
                      requested_by, now, version] for s, r in zip(subjects, rows, strict=True)],
                    ["id_type", "subject", "subject_hash", "active", "purged", "root_hash",
                     "reason", "requested_by", "updated_at", "version"],
                    settings=PRIVATE_SETTINGS)
                self._hashes = self._hashes - {s.hash for s in subjects}
                self._notify_replace()
        hashes = sorted(s.hash for s in subjects)
        row = audit.append(self.store, operation="unsuppress", id_type=root.id_type,
                           subject_hash=root.hash, requested_by=requested_by, reason=reason,
                           outcome="done" if subjects else "not_suppressed",
                           details={"subject_hashes": hashes})
        return {"request_id": row["request_id"], "operation": "unsuppress",
                "id_type": root.id_type, "subject_hash": root.hash, "subject_hashes": hashes,
                "active": False, "version": self.version}

    # -- purge --------------------------------------------------------------------------

    def purge(self, *, visitor_id: str | None = None, user_id: str | None = None,
              reason: str = "", requested_by: str = "",
              progress: ProgressFn = _no_progress) -> dict[str, Any]:
        """Delete every row about the person, prove it, and return the receipt."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        with self._purge_lock:
            return self._purge(root, reason, requested_by, progress)

    def _purge(self, root: Subject, reason: str, requested_by: str,
               progress: ProgressFn) -> dict[str, Any]:
        store = self.store
        request_id = str(uuid.uuid4())
        requested_at = _now()
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        audit.append(store, operation="purge", id_type=root.id_type, subject_hash=root.hash,
                     requested_by=requested_by, reason=reason, outcome="started",
                     request_id=request_id)
        progress("resolving")
        scope = self.resolve(root)
        subjects = scope.subjects(self.key)
        if not subjects:  # an unknown user id: nothing links to it, but keep it out from now
            subjects = [root]
        # If the process dies after the raw ids left the store, a resume can still verify by
        # these (SHA-256 of random or already keyed ids: not the ids, not reversible).
        audit.append(store, operation="purge", id_type=root.id_type, subject_hash=root.hash,
                     requested_by=requested_by, reason=reason, outcome="resolved",
                     request_id=request_id,
                     details={"sha256": [_sha(n) for n in scope.needles],
                              "subject_hashes": sorted(s.hash for s in subjects)})
        progress("suppressing")
        before = self._counts(scope)  # before our own suppression rows, for the receipt
        self._write_suppressions(subjects, active=True, purged=False, root=root,
                                 reason=reason, requested_by=requested_by)
        if not self.gate.drain():
            log.warning("purge %s: ingest calls still running after 30 s", request_id)
        before.update({k: v for k, v in self._counts(scope).items() if k != "suppressions"})
        deleted = dict(before)
        attempts = 0
        while True:
            attempts += 1
            progress("hiding")
            event_pred = self._event_pred(scope)
            if before["events"]:
                self._hide_events(event_pred)
            timings.setdefault("hidden_s", time.perf_counter() - t0)
            progress("anonymising consent records")
            if before["consent_records"]:
                store.command(
                    "ALTER TABLE consent_records UPDATE visitor_id = '', consent_id = '', "
                    f"anonymised = true WHERE {self._record_pred(scope)}", settings=_MUTATE)
            progress("rewriting parts")
            self._rewrite_events()
            # The suppression stays (by hash) so late events keep being dropped; the raw id goes.
            self._write_suppressions(subjects, active=True, purged=True, root=root,
                                     reason=reason, requested_by=requested_by,
                                     keep_subject=False)
            self._clear_subjects([s.hash for s in subjects])
            progress("removing outdated parts")
            self._wait_outdated_parts()
            timings["physical_s"] = time.perf_counter() - t0
            progress("verifying")
            after = self._counts(scope)
            if not any(after.values()) or attempts >= 3:
                break
            log.warning("purge %s: %s rows reappeared; deleting again", request_id, after)
            before = after
            deleted["events"] += after["events"]
            deleted["consent_records"] += after["consent_records"]
        scan = (scan_directory(store.path, scope.needles)
                if store.embedded and store.path is not None else None)
        timings["verified_s"] = time.perf_counter() - t0
        receipt = self._close(
            root, request_id=request_id, requested_at=requested_at, requested_by=requested_by,
            reason=reason, subject_hashes=sorted(s.hash for s in subjects), deleted=deleted,
            after=after, scan=scan, timings=timings,
            verification="count() = 0 by query on events, consent_records and suppressions; "
            + ("no file under the store directory holds an id, raw or in LZ4 blocks"
               if scan else "no file scan: the store is a server"))
        progress("done")
        return receipt

    def _rewrite_events(self) -> None:
        """Fold patch parts and deleted masks into the parts (also leftovers of a dead run)."""
        store = self.store
        if store.scalar("SELECT count() FROM system.parts WHERE database = currentDatabase() "
                        "AND table = 'events' AND active AND startsWith(name, 'patch-')"):
            store.command("ALTER TABLE events APPLY PATCHES", settings=_MUTATE)
        if store.scalar("SELECT count() FROM system.parts WHERE database = currentDatabase() "
                        "AND table = 'events' AND active AND has_lightweight_delete"):
            store.command("ALTER TABLE events APPLY DELETED MASK", settings=_MUTATE)

    def _clear_subjects(self, subject_hashes: Sequence[str]) -> None:
        """Empty the raw id in every version of these suppression rows."""
        if not subject_hashes:
            return
        params = {"h": list(subject_hashes)}
        where = "subject_hash IN {h:Array(String)} AND subject != ''"
        if self.store.scalar(f"SELECT count() FROM suppressions WHERE {where}", params):
            self.store.command(f"ALTER TABLE suppressions UPDATE subject = '' WHERE {where}",
                               params, settings=_MUTATE)

    def _close(self, root: Subject, *, request_id: str, requested_at: datetime,
               requested_by: str, reason: str, subject_hashes: list[str],
               deleted: dict[str, int], after: dict[str, int], scan: ScanReport | None,
               timings: dict[str, float], verification: str) -> dict[str, Any]:
        """Write the receipt and the closing audit row; return the receipt."""
        store = self.store
        remaining = sum(after.values()) + (len(scan.matches) if scan else 0)
        verified_at = _now()
        receipt = {
            "receipt_id": str(uuid.uuid4()),
            "request_id": request_id,
            "requested_by": requested_by,
            "reason": reason,
            "requested_at": plain(requested_at),
            "verified_at": plain(verified_at),
            "id_type": root.id_type,
            "subject_hash": root.hash,
            "subject_hashes": subject_hashes,
            "rows_deleted": deleted,
            "remaining_by_query": after,
            "file_scan": scan.as_dict() if scan else None,
            "files_checked": scan.files if scan else 0,
            "remaining": remaining,
            "verification": verification,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        store.insert(
            "purge_receipts",
            [[uuid.UUID(receipt["receipt_id"]), requested_at, verified_at, requested_by, reason,
              root.id_type, subject_hashes, deleted, remaining, receipt["files_checked"],
              json.dumps({k: receipt[k] for k in ("request_id", "remaining_by_query",
                                                  "file_scan", "verification", "timings")},
                         sort_keys=True)]],
            ["receipt_id", "requested_at", "verified_at", "requested_by", "reason", "id_type",
             "subject_hashes", "rows_deleted", "remaining", "files_checked", "details"])
        audit.append(store, operation="purge", id_type=root.id_type, subject_hash=root.hash,
                     requested_by=requested_by, reason=reason,
                     outcome="completed" if remaining == 0 else "incomplete",
                     request_id=request_id,
                     details={"receipt_id": receipt["receipt_id"], "rows_deleted": deleted,
                              "remaining": remaining})
        return receipt

    def _hide_events(self, pred: str) -> None:
        """Lightweight delete: a patch part when the table supports it, else a mask mutation.

        A patch part is written like an insert (~0.15 s on 10M rows); the mask mutation touches
        every part (seconds). Parts written before migration 3 may refuse the patch mode.
        """
        try:
            self.store.command(f"DELETE FROM events WHERE {pred}", settings={
                **_MUTATE, "lightweight_delete_mode": "lightweight_update"})
        except Exception as exc:
            log.info("patch-part delete unavailable (%s); using a mask mutation", exc)
            self.store.command(f"DELETE FROM events WHERE {pred}", settings=_MUTATE)

    def _wait_outdated_parts(self) -> None:
        """Wait until the parts that were outdated when the mutations ended are removed."""
        tables = list(_PURGE_TABLES)
        sql = ("SELECT table, name FROM system.parts WHERE database = currentDatabase() "
               "AND table IN {t:Array(String)} AND NOT active")
        pending = {(str(a), str(b)) for a, b in self.store.rows(sql, {"t": tables})}
        deadline = time.monotonic() + self.cleanup_timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            pending &= {(str(a), str(b)) for a, b in self.store.rows(sql, {"t": tables})}
        if pending:
            log.warning("outdated parts still on disk after %.0f s: %d", self.cleanup_timeout,
                        len(pending))

    def pending_purges(self) -> list[dict[str, Any]]:
        """Purges that started and never closed (interrupted): ``resume_pending`` ends them."""
        return self.store.dicts(
            "SELECT id_type, subject_hash, toString(argMaxIf(request_id, seq, "
            "outcome = 'started')) AS request_id FROM privacy_requests "
            "WHERE operation = 'purge' GROUP BY id_type, subject_hash "
            "HAVING maxIf(seq, outcome = 'started') > "
            "maxIf(seq, outcome IN ('completed', 'incomplete')) "
            "ORDER BY subject_hash")

    def resume_pending(self) -> list[dict[str, Any]]:
        """Run every interrupted purge again; returns the new receipts.

        The raw id comes back from the person's own suppression row, which keeps it until
        the purge's last deletion step. Past that step only the SHA-256 values in the
        request's ``resolved`` audit row remain: the deletions are finished and verified by
        query on them, without a file scan (there is no raw id left to look for).
        """
        receipts = []
        for pending in self.pending_purges():
            rows = self.store.rows(
                "SELECT subject FROM suppressions FINAL WHERE subject_hash = {h:String} "
                "AND subject != ''", {"h": pending["subject_hash"]}, settings=PRIVATE_SETTINGS)
            with self._purge_lock:
                if rows:
                    root = Subject(pending["id_type"], str(rows[0][0]), pending["subject_hash"])
                    receipts.append(self._purge(root, "resume of an interrupted purge",
                                                "resume", _no_progress))
                else:
                    receipts.append(self._finish_by_sha(pending))
        return receipts

    def _finish_by_sha(self, pending: Mapping[str, Any]) -> dict[str, Any]:
        store = self.store
        root = Subject(pending["id_type"], "", pending["subject_hash"])
        started = store.rows(
            "SELECT ts, details FROM privacy_requests WHERE request_id = {r:UUID} AND "
            "outcome IN ('started', 'resolved') ORDER BY seq", {"r": pending["request_id"]})
        details = json.loads(started[-1][1]) if started else {}
        shas = [h for h in details.get("sha256", []) if isinstance(h, str) and h.isalnum()]
        subject_hashes = details.get("subject_hashes") or [root.hash]
        t0 = time.perf_counter()
        self._rewrite_events()
        self._clear_subjects(subject_hashes)
        self._wait_outdated_parts()
        listed = ", ".join(f"'{h}'" for h in shas) or "''"

        def by_sha(table: str, columns: Sequence[str]) -> int:
            pred = " OR ".join(f"lower(hex(SHA256({c}))) IN ({listed})" for c in columns)
            return int(store.scalar(f"SELECT count() FROM {table} WHERE {pred}") or 0)

        after = {"events": by_sha("events", _EVENT_ID_COLUMNS),
                 "consent_records": by_sha("consent_records", ("visitor_id", "consent_id")),
                 "suppressions": by_sha("suppressions", ("subject",))}
        requested_at = started[0][0] if started else _now()
        return self._close(
            root, request_id=pending["request_id"], requested_at=requested_at,
            requested_by="resume", reason="resume of an interrupted purge",
            subject_hashes=list(subject_hashes),
            deleted={"events": 0, "consent_records": 0, "suppressions": 0}, after=after,
            scan=None, timings={"verified_s": time.perf_counter() - t0},
            verification="resumed after the raw ids were erased: count() = 0 by query on "
            "SHA-256 of every id; no file scan (no raw id left to look for)")

    def receipts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Purge receipts, newest first (they hold hashes only)."""
        rows = self.store.dicts(
            "SELECT * FROM purge_receipts ORDER BY requested_at DESC LIMIT {n:UInt32}",
            {"n": max(1, min(limit, 10_000))})
        return _plain_rows(rows)

    # -- export -------------------------------------------------------------------------

    def export(self, *, visitor_id: str | None = None,
               user_id: str | None = None) -> dict[str, Any]:
        """Everything stored about the person (an unknown id gives empty lists)."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        scope = self.resolve(root)
        s, p = self.store, PRIVATE_SETTINGS
        params = {"v": scope.visitors, "u": scope.users, "c": scope.consent_ids}
        hashes = sorted({root.hash, *(x.hash for x in scope.subjects(self.key))})
        events = s.dicts(
            "SELECT * FROM events WHERE visitor_id IN {v:Array(String)} OR user_id IN "
            "{u:Array(String)} OR consent_id IN {c:Array(String)} ORDER BY ts",
            params, settings=p)
        records = s.dicts(
            "SELECT * FROM consent_records WHERE visitor_id IN {v:Array(String)} OR "
            "consent_id IN {c:Array(String)} ORDER BY ts", params, settings=p)
        supp = s.dicts(
            "SELECT id_type, subject, subject_hash, active, purged, reason, requested_by, "
            "updated_at FROM suppressions FINAL WHERE subject_hash IN {h:Array(String)} "
            "ORDER BY updated_at", {"h": hashes}, settings=p)
        receipts = s.dicts(
            "SELECT * FROM purge_receipts WHERE hasAny(subject_hashes, {h:Array(String)}) "
            "ORDER BY requested_at", {"h": hashes}, settings=p)
        return {
            "subject": {"id_type": root.id_type, "subject_hash": root.hash,
                        "visitor_ids": scope.visitors, "user_ids": scope.users,
                        "consent_ids": scope.consent_ids, "exported_at": plain(_now()),
                        "suppressed": root.hash in self._hashes},
            "events": _plain_rows(events),
            "consent_records": _plain_rows(records),
            "suppressions": _plain_rows(supp),
            "receipts": _plain_rows(receipts),
        }

    def export_logged(self, *, visitor_id: str | None = None, user_id: str | None = None,
                      requested_by: str = "", reason: str = "") -> dict[str, Any]:
        """``export`` plus its audit row (the API and the CLI use this)."""
        data = self.export(visitor_id=visitor_id, user_id=user_id)
        subj = data["subject"]
        audit.append(self.store, operation="export", id_type=subj["id_type"],
                     subject_hash=subj["subject_hash"], requested_by=requested_by,
                     reason=reason, outcome="done",
                     details={k: len(data[k]) for k in ("events", "consent_records",
                                                         "suppressions", "receipts")})
        return data

    def summary(self, *, visitor_id: str | None = None,
                user_id: str | None = None) -> dict[str, Any]:
        """Row counts, first/last seen and suppression state: for the staff page."""
        root = self.subject(visitor_id=visitor_id, user_id=user_id)
        scope = self.resolve(root)
        counts = self._counts(scope)
        seen = self.store.rows(
            "SELECT min(ts), max(ts) FROM events WHERE visitor_id IN {v:Array(String)} OR "
            "user_id IN {u:Array(String)}", {"v": scope.visitors, "u": scope.users},
            settings=PRIVATE_SETTINGS)
        first, last = seen[0] if seen and counts["events"] else (None, None)
        receipts = self.store.dicts(
            "SELECT toString(receipt_id) AS receipt_id, verified_at, remaining, rows_deleted "
            "FROM purge_receipts WHERE has(subject_hashes, {h:String}) ORDER BY requested_at",
            {"h": root.hash})
        return {"id_type": root.id_type, "subject_hash": root.hash,
                "linked_visitors": len(scope.visitors), "rows": counts,
                "first_seen": plain(first), "last_seen": plain(last),
                "suppressed": root.hash in self._hashes, "receipts": _plain_rows(receipts)}


# --- helpers for dashboards and partner exports --------------------------------------------

def suppressed_subjects_sql(id_type: str = "visitor_id") -> str:
    """A subquery of the stored ids under an active suppression, for ``NOT IN``."""
    if id_type not in ID_TYPES:
        raise ValueError(f"unknown id type {id_type!r}")
    return ("SELECT subject FROM suppressions FINAL WHERE active AND id_type = "
            f"'{id_type}' AND subject != ''")


def exclude_suppressed_sql(prefix: str = "") -> str:
    """A WHERE condition that drops the rows of suppressed people (``prefix`` e.g. ``"e."``)."""
    return (f"{prefix}visitor_id NOT IN ({suppressed_subjects_sql('visitor_id')}) AND "
            f"{prefix}user_id NOT IN ({suppressed_subjects_sql('user_id')})")


# --- export formats -------------------------------------------------------------------------

SECTIONS = ("events", "consent_records", "suppressions", "receipts")


def export_zip(data: Mapping[str, Any]) -> bytes:
    """The export as CSV files in a zip: subject.json plus one CSV per section."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("subject.json", json.dumps(data["subject"], indent=2, ensure_ascii=False))
        for section in SECTIONS:
            rows = data.get(section) or []
            out = io.StringIO()
            names: list[str] = []
            for row in rows:
                names += [k for k in row if k not in names]
            writer = csv.DictWriter(out, fieldnames=names)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v, ensure_ascii=False)
                                 if isinstance(v, dict | list) else v for k, v in row.items()})
            zf.writestr(f"{section}.csv", out.getvalue())
    return buf.getvalue()


# --- wiring into the collector -------------------------------------------------------------

def install(service: Any) -> Privacy:
    """Give a CollectorService its privacy operations, through its public hooks.

    Ingest's suppression check and its in-flight gate are replaced here, so the collector's
    own files need no knowledge of visitor rights.
    """
    existing = getattr(service, "privacy", None)
    if isinstance(existing, Privacy):
        return existing
    if not service.settings.hash_key_bytes:
        log.warning("no hash key configured (CONSENT_MW_USER_ID_KEY or CONSENT_MW_SECRET_KEY): "
                    "user ids and suppression hashes will not match the web processes'")
    privacy = Privacy(lambda: service.store, service.settings.hash_key_bytes)
    service.privacy = privacy
    ingest = service.ingest
    ingest.suppressed = privacy.is_suppressed
    setattr(ingest, "process", privacy.gate.wrap(ingest.process))  # noqa: B010
    service.on_start.append(lambda svc: privacy.load())
    service.on_start.append(lambda svc: threading.Thread(
        target=_resume_quietly, args=(privacy,), name="privacy-resume", daemon=True).start())
    return privacy


def _resume_quietly(privacy: Privacy) -> None:
    try:
        for receipt in privacy.resume_pending():
            log.warning("finished an interrupted purge: receipt %s", receipt["receipt_id"])
    except Exception:  # the store may be closing; the next start tries again
        log.exception("resuming interrupted purges failed")


class InProcessRights:
    """The ``rights`` object of ``consent_mw.self_service.SelfService``, in the collector's
    own process."""

    def __init__(self, service: Any) -> None:
        self.privacy = install(service)

    def export(self, visitor_id: str) -> dict[str, Any]:
        return self.privacy.export_logged(visitor_id=visitor_id, requested_by="self-service",
                                          reason="visitor request")

    def purge(self, visitor_id: str, reason: str, requested_by: str) -> dict[str, Any]:
        return self.privacy.purge(visitor_id=visitor_id, reason=reason,
                                  requested_by=requested_by)
