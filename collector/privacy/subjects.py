"""Who a visitor-rights request is about, and how to find them in the store.

A person is named by ``visitor_id`` (the ``cmw_vid`` cookie) or ``user_id`` (the site's
account id, stored as ``ids.hash_user_id(key, user_id)``). :func:`resolve` widens that to every
id of the same person: a user id covers every visitor id seen with it and with no other
account, and both cover the consent ids their events and consent records carry and no other
visitor's do. Suppressions, purges and exports all act
on the resolved :class:`PersonScope`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from collector.errors import CollectorError
from collector.store import PRIVATE_SETTINGS, Store
from consent_mw.ids import hash_user_id, is_valid_id, subject_hash

ID_TYPES = ("visitor_id", "user_id")
#: The columns of an event, and of a consent record, that name a person: what the gate checks
#: at ingest, what dashboards exclude (``collector.query.sql.not_suppressed``) and what a
#: purge deletes or empties.
EVENT_SUBJECTS = ("visitor_id", "user_id", "consent_id")
RECORD_SUBJECTS = ("visitor_id", "consent_id")
#: Every id type a suppression can name: the two a request can name, and the consent ids
#: they resolve to (a consent record may carry a consent id and no visitor id).
SUBJECT_TYPES = ("visitor_id", "user_id", "consent_id")


class PrivacyError(CollectorError, ValueError):
    """A request the API answers with 400: malformed id, both ids or none."""


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
        """One suppression subject per id, consent ids included."""
        return [Subject(t, v, subject_hash(key, t, v))
                for t, values in (("visitor_id", self.visitors), ("user_id", self.users),
                                  ("consent_id", self.consent_ids))
                for v in values]

    @property
    def needles(self) -> list[str]:
        """Every raw id the file scan must not find."""
        return sorted({*self.visitors, *self.users, *self.consent_ids})

    def holds(self, column: str, value: str) -> bool:
        """Whether ``value`` of ``column`` (visitor_id, user_id, consent_id or a suppression's
        subject) is one of this person's ids."""
        if not value:
            return False
        if column == "visitor_id":
            return value in self.visitors
        if column == "user_id":
            return value in self.users
        if column == "consent_id":
            return value in self.consent_ids
        return value in self.visitors or value in self.users or value in self.consent_ids


def resolve(store: Store, root: Subject) -> PersonScope:
    """The visitor ids, user ids and consent ids of one person, from every table."""
    p = PRIVATE_SETTINGS
    scope = PersonScope(root)
    found: dict[str, set[str]] = {t: set() for t in SUBJECT_TYPES}
    found[root.id_type].add(root.stored)
    if root.id_type == "user_id":
        # A browser another account was also used in (a shared computer, or a login forced
        # on someone else's browser) is not this person's alone: widening to it would hand
        # one account the other's pages. The browser's own request (its signed visitor id,
        # the my-data page) still covers it.
        found["visitor_id"] |= {str(r[0]) for r in store.rows(
            "SELECT visitor_id FROM events WHERE visitor_id IN (SELECT visitor_id FROM events "
            "WHERE user_id = {u:String} AND visitor_id != '') GROUP BY visitor_id "
            "HAVING countIf(user_id NOT IN ('', {u:String})) = 0",
            {"u": root.stored}, settings=p)}
    # A purge interrupted after its events were deleted still finds the linked ids here.
    for id_type, subject in store.rows(
        "SELECT id_type, subject FROM suppressions FINAL WHERE root_hash = {h:String} "
        "AND subject != ''", {"h": root.hash}, settings=p):
        if str(id_type) in found:
            found[str(id_type)].add(str(subject))
    v, u = sorted(found["visitor_id"]), sorted(found["user_id"])
    consent = found["consent_id"]
    consent |= {str(r[0]) for r in store.rows(
        "SELECT DISTINCT consent_id FROM events WHERE (visitor_id IN {v:Array(String)} "
        "OR user_id IN {u:Array(String)}) AND consent_id != ''", {"v": v, "u": u}, settings=p)}
    consent |= {str(r[0]) for r in store.rows(
        "SELECT DISTINCT consent_id FROM consent_records WHERE visitor_id IN "
        "{v:Array(String)} AND consent_id != ''", {"v": v}, settings=p)}
    if consent:
        # A consent id another visitor's rows carry too (a consent cookie copied into another
        # browser before consent ids were re-issued with visitor ids) is not this person's
        # alone: matching it would reach the other visitor's rows.
        params = {"c": sorted(consent), "v": v}
        for table in ("events", "consent_records"):
            consent -= {str(r[0]) for r in store.rows(
                f"SELECT DISTINCT consent_id FROM {table} WHERE consent_id IN "
                "{c:Array(String)} AND visitor_id != '' AND visitor_id NOT IN "
                "{v:Array(String)}", params, settings=p)}
    scope.visitors, scope.users, scope.consent_ids = v, u, sorted(consent)
    return scope


def merged(scopes: Sequence[PersonScope]) -> PersonScope:
    """Every id of every scope, as one (a batch of purges acts on them together)."""
    out = PersonScope(scopes[0].root if scopes else Subject("visitor_id", "", ""))
    out.visitors = sorted({v for s in scopes for v in s.visitors})
    out.users = sorted({u for s in scopes for u in s.users})
    out.consent_ids = sorted({c for s in scopes for c in s.consent_ids})
    return out


def count_rows(store: Store, scopes: Sequence[PersonScope]) -> list[dict[str, int]]:
    """Rows about each person still present, by parameterised query: one grouped query per
    table for the whole batch, attributed to each scope in Python."""
    if not scopes:
        return []
    union = merged(scopes)
    params = {"v": union.visitors, "u": union.users, "c": union.consent_ids}
    p = PRIVATE_SETTINGS
    events = store.rows(
        "SELECT visitor_id, user_id, consent_id, count() FROM events WHERE visitor_id IN "
        "{v:Array(String)} OR user_id IN {u:Array(String)} OR consent_id IN {c:Array(String)} "
        "GROUP BY visitor_id, user_id, consent_id", params, settings=p)
    records = store.rows(
        "SELECT visitor_id, consent_id, count() FROM consent_records WHERE visitor_id IN "
        "{v:Array(String)} OR consent_id IN {c:Array(String)} GROUP BY visitor_id, consent_id",
        params, settings=p)
    supp = store.rows(
        "SELECT subject, count() FROM suppressions WHERE subject IN {v:Array(String)} OR "
        "subject IN {u:Array(String)} OR subject IN {c:Array(String)} GROUP BY subject",
        params, settings=p)
    out = []
    for scope in scopes:
        out.append({
            "events": sum(int(n) for vid, uid, cid, n in events
                          if scope.holds("visitor_id", str(vid))
                          or scope.holds("user_id", str(uid))
                          or scope.holds("consent_id", str(cid))),
            "consent_records": sum(int(n) for vid, cid, n in records
                                   if scope.holds("visitor_id", str(vid))
                                   or scope.holds("consent_id", str(cid))),
            "suppressions": sum(int(n) for subject, n in supp
                                if scope.holds("subject", str(subject))),
        })
    return out


def match_sql(store: Store, column: str, values: Sequence[str]) -> str:
    """A predicate for mutation text that matches ``column IN values`` without the values.

    ClickHouse writes mutation statements to disk (``mutation_*.txt``, ``system.mutations``),
    so they must not carry an id. cityHash64 skips most rows cheaply; SHA-256 makes a false
    match practically impossible.
    """
    if not values:
        return "0"
    cities = store.scalar("SELECT arrayMap(x -> cityHash64(x), {v:Array(String)})",
                          {"v": list(values)}, settings=PRIVATE_SETTINGS)
    shas = ", ".join(f"'{sha256_hex(v)}'" for v in values)
    return (f"(cityHash64({column}) IN ({', '.join(str(int(c)) for c in cities)}) "
            f"AND lower(hex(SHA256({column}))) IN ({shas}))")


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


def plain_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in rows]


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)
