"""Builders for the privacy tests: wire events and records, direct store rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from support.wire import TOKEN, now_ms

ADMIN = "admin-test-token-0123456789"
#: The collector token the web side sends: the one the shared collector fixtures configure.
COLLECT = TOKEN
KEY = b"privacy-test-hash-key-0123456789"
#: A privacy-staff account with a password and a personal token, and a marketing one.
STAFF, STAFF_PASSWORD, STAFF_TOKEN = "sato", "sato-password-0123", "cmw_sato-personal-token-0123"
MARKETER, MARKETER_TOKEN = "ito", "cmw_ito-personal-token-0123"
ORIGIN = {"Origin": "http://testserver"}


def staff_accounts() -> dict[str, Any]:
    from collector.accounts import Account, hash_password, token_digest

    hashed = hash_password(STAFF_PASSWORD)
    return {STAFF: Account(STAFF, "privacy", hashed, (token_digest(STAFF_TOKEN),)),
            MARKETER: Account(MARKETER, "marketing", hashed, (token_digest(MARKETER_TOKEN),))}


def why(**fields: Any) -> dict[str, Any]:
    """A privacy API body: the ids, and the reason and requester the API requires."""
    return {"reason": "Art. 7 request", "requested_by": "dpo", **fields}


def vid() -> str:
    return uuid.uuid4().hex


def wire_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "ts": now_ms(), "kind": "pageview", "name": "pageview",
        "consent": {"necessary": True, "analytics": True}, "host": "clinic.test",
        "path": "/", "status": 200,
    }
    event.update({k: v for k, v in fields.items() if v is not None})
    return event


def wire_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": str(uuid.uuid4()), "consent_id": str(uuid.uuid4()), "ts": now_ms(),
        "event": "decided", "method": "accept_all", "component": "banner",
        "policy_version": "2024-04-23+abcdef012345", "policy_hash": "a" * 64,
        "categories": {"necessary": True, "analytics": True},
        "gcm": {"analytics_storage": "granted"}, "gpc": False,
    }
    record.update(fields)
    return record


EVENT_COLS = ["event_id", "ts", "kind", "name", "path", "visitor_id", "user_id", "consent_id"]


def insert_events(store: Any, n: int, *, visitor_id: str = "", user_id: str = "",
                  consent_id: str = "", path: str = "/p") -> None:
    """Rows straight into the store (the core tests run without a collector)."""
    now = datetime.now(UTC)
    rows = [[uuid.uuid4(), now, "pageview", "pageview", path, visitor_id, user_id, consent_id]
            for _ in range(n)]
    store.insert("events", rows, EVENT_COLS)


def insert_record(store: Any, *, visitor_id: str, consent_id: str, event: str = "decided"
                  ) -> None:
    store.insert("consent_records", [[uuid.uuid4(), consent_id, visitor_id,
                                      datetime.now(UTC), event, "accept_all", "banner",
                                      "2024-04-23+abcdef012345", "a" * 64,
                                      {"analytics": True}, False]],
                 ["record_id", "consent_id", "visitor_id", "ts", "event", "method",
                  "component", "policy_version", "policy_hash", "categories", "gpc"])
