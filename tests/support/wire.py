"""Builders for wire-format events, records and batches used by the collector tests."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

from consent_mw.wire import SCHEMA_ID

TOKEN = "collector-test-token"
GEOIP_DIR = Path(__file__).resolve().parents[1] / "data" / "geoip"  # vendored copies
GEOIP_CITY = GEOIP_DIR / "GeoIP2-City-Test.mmdb"
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def now_ms() -> int:
    return int(time.time() * 1000)


def make_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "ts": now_ms(), "kind": "pageview", "name": "pageview",
        "consent": {"necessary": True, "analytics": True}, "host": "clinic.test",
        "path": "/", "status": 200, "visitor_id": uuid.uuid4().hex, "ua": IPHONE_UA,
    }
    event.update(fields)
    return event


def make_record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": str(uuid.uuid4()), "consent_id": str(uuid.uuid4()), "ts": now_ms(),
        "event": "decided", "method": "accept_all", "component": "banner",
        "policy_version": "2024-04-23+abcdef012345", "policy_hash": "a" * 64,
        "categories": {"necessary": True, "analytics": True},
        "gcm": {"analytics_storage": "granted"},
        "gpc": False,
    }
    record.update(fields)
    return record


def batch_body(
    events: list[Any], records: list[Any] | None = None, *, batch_id: str | None = None,
    sent_at: int | None = None,
) -> bytes:
    body = {"schema": SCHEMA_ID, "sent_at": now_ms() if sent_at is None else sent_at,
            "batch_id": batch_id or str(uuid.uuid4()),
            "events": events, "consent_records": records or []}
    return gzip.compress(json.dumps(body).encode())


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Encoding": "gzip",
        "Content-Type": "application/json"}
