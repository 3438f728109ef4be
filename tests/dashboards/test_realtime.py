"""Realtime: who is on the site in the last five minutes, never fewer than k of them, never
cached, and refreshed by the page itself."""

from __future__ import annotations

from typing import Any

from support.dashboards import insert_events, present

from collector.privacy.operations import Privacy
from collector.query import run as query_run
from dashboards.backends import CachedBackend, StoreBackend

KEY = b"realtime-test-key-0123456789"


def realtime(store: Any, k: int = 5) -> dict[str, dict[str, int]]:
    rows = query_run.run(store, "realtime", {"k": k})
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["dim"], {})["(other)" if r["is_other"] else r["key"]] = r["visitors"]
    return out


def test_realtime_counts_the_last_five_minutes_by_page_and_source(store: Any) -> None:
    insert_events(store, present("a", 6, path="/treatments/futae")
                  + present("b", 5, path="/", channel="social")
                  + present("c", 2, path="/privacy")  # too few for a row of their own
                  + present("old", 9, ago=400)  # left six minutes ago
                  + present("fut", 9, ago=-600))  # a clock ten minutes ahead is not "now"
    assert realtime(store) == {
        "now": {"": 13},
        "path": {"/treatments/futae": 6, "/": 5},  # "other" holds 2 visitors: dropped
        "channel": {"search": 8, "social": 5},
    }


def test_under_k_visitors_now_nothing_is_shown(store: Any, login: Any) -> None:
    insert_events(store, present("a", 4))
    assert realtime(store) == {}
    html = login("marketing").get("/dashboards/overview").text
    section = html.split('id="panel-realtime"')[1].split("</section>")[0]
    assert "いまサイトにいる訪問者は 5 人未満です。" in section and "<ol>" not in section


def test_a_suppressed_visitor_is_not_on_the_site(store: Any) -> None:
    insert_events(store, present("a", 5))
    assert realtime(store)["now"] == {"": 5}
    Privacy(store, KEY).suppress(visitor_id="a0000".ljust(32, "0"))
    assert realtime(store) == {}


def test_realtime_is_never_answered_from_the_cache(store: Any) -> None:
    cached = CachedBackend(StoreBackend(store))
    params = {"k": 5}
    assert cached.run("realtime", params, version="v1") == []
    insert_events(store, present("a", 5))
    # The same data version (a cached answer would be stale): realtime asks again.
    assert [r["visitors"] for r in cached.run("realtime", params, version="v1")
            if r["dim"] == "now"] == [5]


def test_the_panel_alone_is_served_to_whoever_may_read_it(store: Any, login: Any,
                                                          app: Any) -> None:
    from starlette.testclient import TestClient

    insert_events(store, present("a", 7, path="/treatments/datsumo"))
    client = login("marketing")
    section = client.get("/dashboards/panel/realtime").text
    assert section.lstrip().startswith('<section class="panel panel-realtime')
    assert "<strong>7</strong>" in section and "/treatments/datsumo" in section
    assert "検索" in section  # the source reads as what it is
    assert client.get("/dashboards/panel/bd_path").status_code == 404  # not a refreshing one
    assert TestClient(app).get("/dashboards/panel/realtime").status_code == 401
    assert login("privacy").get("/dashboards/panel/realtime").status_code == 403


def test_landings_without_a_session_are_no_one_now(store: Any) -> None:
    """A landing stored without a session id matches no present visit; and with fewer than k
    people now, no source row is shown either."""
    landed = [{**row, "session_id": ""} for row in present("nos", 6, ago=1200)]
    now_one = [{**row, "session_id": ""} for row in present("one", 1)]
    insert_events(store, landed + now_one)
    assert realtime(store) == {}
    insert_events(store, present("a", 5, channel="ad"))
    assert realtime(store)["channel"] == {"ad": 5}  # not the session-less landings
