"""Synthetic clinic traffic for demos and benchmarks, generated inside ClickHouse.

Rows are produced by ``INSERT ... SELECT FROM numbers()``: sessions are numbered, each
session expands (``arrayJoin(range(len))``) into its events, and every attribute is a
deterministic hash of ``(rng_seed, session, event)`` picked from weighted lists. Python never
touches a row, so 10M events take seconds, not minutes.

Consent mix per visitor: ~40% gave no analytics consent (their views are anonymous hourly
counts: path + device type only), then analytics only, analytics + location, and everything
(marketing adds utm and click ids). ~12% send GPC, which refuses marketing. Every IP is from
the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

Then what the interaction beacon would have reported about those page views (scroll depth,
engaged time, taps on the demo site's phone, LINE, booking and download links, its two forms),
for the ~92% of consenting visitors whose browsers run scripts. ``seed.traffic`` holds the
weighted lists, ``seed.statements`` the ``INSERT ... SELECT`` statements that index them.
"""

from __future__ import annotations

import time

from collector.query.rollup import mark_range_dirty
from collector.store import Store
from dashboards.seed.statements import (
    BOT_HITS_SQL,
    BOT_PERCENT,
    EVENTS_SQL,
    INTERACTIONS_SQL,
    JS_PERCENT,
    RECORDS_SQL,
)
from dashboards.seed.traffic import MEAN_SESSION, first_day, statement_params

__all__ = ["seed"]

CHUNK_SESSIONS = 1_000_000


def seed(store: Store, events: int, days: int, rng_seed: int = 1,
         *, end: int | None = None) -> dict[str, int]:
    """Insert about ``events`` events over the last ``days`` days, the interactions the
    beacon reports about them (on top), and their consent records.

    Deterministic for a given ``rng_seed`` and ``end`` (epoch seconds, default now). Returns
    the counts written. Bots get neither events nor consent records, only hits in ``bot_hits``.
    """
    if events < 0 or days < 1:
        raise ValueError("events must be >= 0 and days >= 1")
    end = int(time.time()) if end is None else end
    sessions = int(events / MEAN_SESSION * 1.05) + 1
    visitors = max(1, int(sessions * 0.6))
    params = statement_params(rng_seed, days, end)
    params["visitors"] = visitors
    before = int(store.scalar("SELECT count() FROM events"))
    # The interactions are drawn from the page views written from here on.
    since = store.scalar("SELECT now64(3) - INTERVAL 1 SECOND")
    written = 0
    first = 0
    while written < events and first < sessions * 2:
        chunk = {**params, "first_session": first, "sessions": CHUNK_SESSIONS,
                 "limit": events - written}
        store.command(EVENTS_SQL, chunk, settings={"max_insert_threads": 2})
        written = int(store.scalar("SELECT count() FROM events")) - before
        first += CHUNK_SESSIONS
    store.command(INTERACTIONS_SQL, {**params, "since": since, "js": JS_PERCENT},
                  settings={"max_insert_threads": 2})
    interactions = int(store.scalar("SELECT count() FROM events")) - before - written
    records_before = int(store.scalar("SELECT count() FROM consent_records"))
    # Only visitors whose first session was generated get records (s = v for v < sessions).
    record_visitors = min(visitors, first)
    for start in range(0, record_visitors, CHUNK_SESSIONS):
        store.command(RECORDS_SQL, {**params, "first_visitor": start,
                                    "visitor_count": min(CHUNK_SESSIONS,
                                                         record_visitors - start)})
    records = int(store.scalar("SELECT count() FROM consent_records")) - records_before
    bots_before = int(store.scalar("SELECT sum(hits) FROM bot_hits"))
    store.command(BOT_HITS_SQL, {**params, "hours": days * 24,
                                 "rate": max(1, events * BOT_PERCENT // 100 // (days * 48))})
    bot_hits = int(store.scalar("SELECT sum(hits) FROM bot_hits")) - bots_before
    # Days already rolled up now have more events: dashboards scan them until rebuilt.
    mark_range_dirty(store, first_day(end, days), end)
    return {"events": written, "interactions": interactions, "consent_records": records,
            "visitors": visitors, "bot_hits": bot_hits}
