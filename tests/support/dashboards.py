"""Rows and constants of the dashboard tests: the seeded range, one pageview row, visitors."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import Any

PASSWORD = "test-password-1"
TZ = dt.timezone(dt.timedelta(hours=9))
# Seeded data ends at a fixed instant so ranges are stable: 2026-06-30 12:00 JST.
END = int(dt.datetime(2026, 6, 30, 12, 0, tzinfo=TZ).timestamp())
RANGE = {"preset": "custom", "start": "2026-06-17", "end": "2026-06-30"}
ORIGIN = "http://testserver"


def seeded_dsn(template: Path, tmp_path: Path) -> str:
    """A private copy of the seeded template, as a DSN for the ``store`` fixture."""
    copy = tmp_path / "seeded.chdb"
    # The Atomic database engine links tables into store/ with relative symlinks: keep them.
    shutil.copytree(template, copy, symlinks=True)
    return f"chdb://{copy}"


def event(**kw: Any) -> dict[str, Any]:
    """One consented pageview row with sensible defaults; override any column."""
    row: dict[str, Any] = {
        "event_id": uuid.uuid4(), "ts": dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC),
        "kind": "pageview", "name": "pageview", "path": "/", "channel": "direct",
        "referrer_host": "", "visitor_id": "", "session_id": "", "consent_id": "",
        "user_id": "", "country": "JP", "browser": "Chrome", "os": "Windows",
        "device_type": "desktop", "search_terms": "",
    }
    row.update(kw)
    return row


def insert_events(store: Any, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    store.insert("events", [[r[c] for c in cols] for r in rows], cols)


def visitors(prefix: str, n: int, **kw: Any) -> list[dict[str, Any]]:
    """``n`` visitors with one session of one pageview each."""
    return [event(visitor_id=f"{prefix}{i:04d}".ljust(32, "0"), session_id=f"{prefix}s{i}",
                  consent_id=f"{prefix}c{i}", **kw) for i in range(n)]
