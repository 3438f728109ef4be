"""Rows and constants of the dashboard tests: the seeded range, one pageview row, visitors,
interaction events beside seeded visits."""

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


def queries_run(monkeypatch: Any) -> list[str]:
    """The names of the catalogue queries run from now on (``collector.query.run.run``), in
    order: what a page asks of the store."""
    from collector.query import run as query_run

    ran: list[str] = []
    run = query_run.run

    def counted(store: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        ran.append(name)
        return run(store, name, *args, **kwargs)

    monkeypatch.setattr(query_run, "run", counted)
    return ran


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


#: (name, fields) cycled through by :func:`interactions_beside`: every kind the beacon reports.
INTERACTION_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("outbound", {"target_host": "partner.example", "target_path": "/booking"}),
    ("tel", {}), ("mailto", {}), ("app", {"target_host": "line.me", "target": "line"}),
    ("download", {"target_path": "/files/guide.pdf", "target": "pdf"}),
    ("form", {"target_path": "/reserve", "target": "reservation-form"}),
    ("scroll", {"scroll_depth": 75}), ("engaged", {"engaged_seconds": 42}),
]
COPIED = ("visitor_id", "session_id", "consent_id", "path", "channel", "referrer_host",
          "utm_source", "utm_medium", "utm_campaign", "click_id_type", "search_terms",
          "network_type", "device_type", "browser", "os", "language", "country", "region",
          "city")


def interactions_beside(store: Any, sessions: int = 400, strangers: int = 30
                        ) -> list[dict[str, Any]]:
    """Interaction rows that would move every figure if any query counted them.

    One a second after the first pageview of ``sessions`` visits (single-page visits
    first, which such an event would stop being bounces), carrying that pageview's page,
    landing, campaign, device and place; and ``strangers`` from visitors and sessions seen
    nowhere else, spread over the seeded days (enough of them to pass k).
    """
    # Aliases unlike the columns: ClickHouse would read a same-named alias in WHERE.
    cols = ", ".join(f"argMin({c}, ts) AS v_{c}" for c in COPIED)
    visits = store.dicts(
        f"SELECT min(ts) AS v_ts, {cols}, countIf(kind = 'pageview') AS v_views FROM events "
        "WHERE kind = 'pageview' AND session_id != '' "
        "GROUP BY session_id, toDate(ts, 'Asia/Tokyo') "
        "ORDER BY v_views, v_session_id LIMIT {n:UInt32}", {"n": sessions})
    rows: list[dict[str, Any]] = []
    for i, visit in enumerate(visits):
        name, fields = INTERACTION_KINDS[i % len(INTERACTION_KINDS)]
        rows.append(event(**{c: visit[f"v_{c}"] for c in COPIED},
                          ts=visit["v_ts"] + dt.timedelta(seconds=1), kind="interaction",
                          name=name, properties={"plan": "basic"}, **_interaction(fields)))
    first = dt.datetime(2026, 6, 17, 3, 0, tzinfo=dt.UTC)
    for i in range(strangers):
        name, fields = INTERACTION_KINDS[i % len(INTERACTION_KINDS)]
        stranger = event(ts=first + dt.timedelta(hours=11 * i), kind="interaction", name=name,
                         visitor_id=f"ix{i:04d}".ljust(32, "0"), session_id=f"ix-s{i}",
                         consent_id=f"ix-c{i}", path="/", properties={},
                         **_interaction(fields))
        rows.append({**{c: "" for c in COPIED}, **stranger})
    return rows


def _interaction(fields: dict[str, Any]) -> dict[str, Any]:
    # Every row names every column, so insert_events can take the first row's columns.
    return {"target_host": "", "target_path": "", "target": "", "scroll_depth": 0,
            "engaged_seconds": 0, **fields}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def present(prefix: str, n: int, *, path: str = "/", channel: str = "search",
            ago: float = 60) -> list[dict[str, Any]]:
    """``n`` visitors who landed from ``channel`` ten minutes ago and view ``path`` now."""
    rows = []
    for i in range(n):
        who = {"visitor_id": f"{prefix}{i:04d}".ljust(32, "0"), "session_id": f"{prefix}s{i}",
               "consent_id": f"{prefix}c{i}"}
        rows.append(event(**who, ts=utc_now() - dt.timedelta(minutes=10), path="/lp/futae-spring",
                          channel=channel))
        rows.append(event(**who, event_id=uuid.uuid4(), ts=utc_now() - dt.timedelta(seconds=ago),
                          path=path, channel="internal"))
    return rows
