"""Known bots are no people: their events are counted in bot_hits, never stored or shown."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from support.wire import AUTH, batch_body, make_event

from collector.query import run as query_run

GOOGLEBOT_UA = ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
DESKTOP_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/130.0.0.0 Safari/537.36")
PATHS = ["/", "/treatments", "/access", "/reservation"]


def _today() -> dict[str, Any]:
    today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo")).date().isoformat()
    return {"start": today, "end": today, "tz": "Asia/Tokyo", "k": 2}


def figures(store: Any) -> dict[str, Any]:
    """Every figure the dashboards read, over today."""
    span = _today()
    out: dict[str, Any] = {"kpis": query_run.run(store, "kpis", span),
                           "series": query_run.run(store, "timeseries",
                                                   {**span, "grain": "hour"}),
                           "coverage": query_run.run(store, "coverage", span),
                           "anonymous": query_run.run(store, "anonymous_pages", span)}
    for dim in ("path", "device_type", "browser", "os", "entry_path"):
        out[dim] = query_run.run(store, "breakdown", {**span, "dim": dim})
    return out


def bot_hits(store: Any) -> dict[str, int]:
    return {str(k): int(n) for k, n in store.rows(
        "SELECT kind, sum(hits) FROM bot_hits GROUP BY kind")}


def visits(ua: str, visitors: int = 3) -> list[dict[str, Any]]:
    return [make_event(ua=ua, path=path, visitor_id=f"v{v}",
                       session_id=f"s{v}")
            for v in range(visitors) for path in PATHS]


def post(client: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post("/v1/events", content=batch_body(events), headers=AUTH)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_the_same_traffic_from_googlebot_changes_only_the_bot_count(
        client: Any, service: Any) -> None:
    store = service.store
    empty = figures(store)
    answer = post(client, visits(GOOGLEBOT_UA))
    # Accepted (the web side never retries them), counted, not stored.
    assert answer["accepted"] == 12 and answer["bots"] == 12 and answer["rejected"] == []
    assert figures(store) == empty
    assert store.scalar("SELECT count() FROM events") == 0
    assert bot_hits(store) == {"pageview": 12}
    assert 'collector_bots_total{kind="pageview"} 12.0' in client.get("/metrics").text

    answer = post(client, visits(DESKTOP_UA))
    assert answer["bots"] == 0
    after = figures(store)
    assert after["kpis"][0]["visitors"] == 3 and after["kpis"][0]["pageviews"] == 12
    assert [r["key"] for r in after["device_type"]] == ["desktop"]
    assert bot_hits(store) == {"pageview": 12}  # the browser's traffic is no bot's
    assert store.scalar("SELECT count() FROM events WHERE device_type = 'bot'") == 0


def test_an_anonymous_count_from_a_bot_is_counted_not_stored(client: Any,
                                                             service: Any) -> None:
    store = service.store
    count = {"kind": "anonymous", "consent": {"necessary": True}, "visitor_id": None,
             "ua": None, "status": None}
    events = [make_event(**count, device_type="bot", path="/"),
              make_event(**count, device_type="mobile", path="/")]
    for e in events:
        e.pop("ua"), e.pop("visitor_id"), e.pop("status")
    answer = post(client, events)
    assert answer["accepted"] == 2 and answer["bots"] == 1
    assert store.rows("SELECT kind, device_type FROM events") == [("anonymous", "mobile")]
    assert bot_hits(store) == {"anonymous": 1}
    hour = store.scalar("SELECT any(hour) FROM bot_hits")
    assert hour == hour.replace(minute=0, second=0)
