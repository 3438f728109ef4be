"""Interaction events (the beacon's reports) through the real HTTP ingest into chDB."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.testclient import TestClient
from support.wire import AUTH, IPHONE_UA, batch_body, now_ms

from collector.service import CollectorService
from consent_mw.ids import subject_hash
from consent_mw.wire import INTERACTIONS

INTERACTION_FIELDS = ["target_host", "target_path", "target", "scroll_depth",
                      "engaged_seconds"]
ENRICHED = ["browser", "os", "device_type", "device_brand", "device_model", "ip", "ip_prefix",
            "country", "region", "city"]
#: One of each, as the beacon reports them: where and what kind, never a number or address.
EACH: dict[str, dict[str, Any]] = {
    "outbound": {"target_host": "partner.example", "target_path": "/booking"},
    "tel": {},
    "mailto": {},
    "app": {"target_host": "line.me", "target": "line"},
    "download": {"target_path": "/files/guide.pdf", "target": "pdf"},
    "form": {"target_path": "/reserve", "target": "reservation-form"},
    "scroll": {"scroll_depth": 75},
    "engaged": {"engaged_seconds": 42},
}


def interaction(name: str | None, **fields: Any) -> dict[str, Any]:
    """An interaction event as the web side sends it: like a custom event, no UA, no IP."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "ts": now_ms(), "kind": "interaction", "name": name,
        "consent": {"necessary": True, "analytics": True}, "host": "clinic.test",
        "path": "/access", "visitor_id": "v" + uuid.uuid4().hex, "session_id": "s1",
        "consent_id": "c1",
    }
    event.update(fields)
    return event


def post(client: TestClient, events: list[Any]) -> Any:
    return client.post("/v1/events", content=batch_body(events), headers=AUTH)


def test_each_interaction_is_stored_with_its_fields(client: TestClient,
                                                     service: CollectorService) -> None:
    assert set(EACH) == set(INTERACTIONS)
    sent = [interaction(name, **fields) for name, fields in EACH.items()]
    r = post(client, sent)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(EACH)
    rows = {r["name"]: r for r in service.store.dicts(
        "SELECT kind, name, host, path, visitor_id, session_id, consent_id, "
        f"{', '.join(INTERACTION_FIELDS)} FROM events")}
    assert set(rows) == set(EACH)
    blank = {"target_host": "", "target_path": "", "target": "", "scroll_depth": 0,
             "engaged_seconds": 0}
    for event in sent:
        row = rows[event["name"]]
        assert {c: row[c] for c in INTERACTION_FIELDS} == {**blank, **EACH[event["name"]]}
        assert (row["kind"], row["host"], row["path"]) == ("interaction", "clinic.test",
                                                           "/access")
        assert (row["visitor_id"], row["session_id"], row["consent_id"]) == (
            event["visitor_id"], "s1", "c1")


def test_a_bad_interaction_is_rejected_with_a_reason_and_the_rest_kept(
        client: TestClient, service: CollectorService) -> None:
    good = [interaction("tel"), interaction("scroll", scroll_depth=50)]
    bad = [interaction("click"), interaction(None), interaction("engaged", engaged_seconds=1801),
           interaction("scroll", scroll_depth=101)]
    r = post(client, [good[0], *bad, good[1]])
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 2
    reasons = {x["index"]: x["reason"] for x in body["rejected"]}
    assert set(reasons) == {1, 2, 3, 4}
    assert reasons[1].startswith("name: 'click' is not an interaction; expected one of "
                                 "outbound, tel, mailto, app, download, form, scroll, engaged")
    assert reasons[2].startswith("name: None is not an interaction")
    assert reasons[3].startswith("engaged_seconds:")
    assert reasons[4].startswith("scroll_depth:")
    stored = {str(r[0]) for r in service.store.rows("SELECT event_id FROM events")}
    assert stored == {e["event_id"] for e in good}
    assert 'rejected_total{reason="schema"} 4.0' in service.metrics.render().decode()


def test_scroll_depth_is_stored_in_quarters(client: TestClient,
                                            service: CollectorService) -> None:
    sent = {0: 0, 24: 0, 25: 25, 49: 25, 50.0: 50, 74: 50, 99: 75, 100: 100}
    events = [interaction("scroll", scroll_depth=d, target=str(d)) for d in sent]
    assert post(client, events).status_code == 200
    stored = dict(service.store.rows("SELECT target, scroll_depth FROM events"))
    assert stored == {str(d): q for d, q in sent.items()}


def test_no_tap_keeps_a_target_and_no_target_path_keeps_a_query(
        client: TestClient, service: CollectorService) -> None:
    """Behind the beacon, which sends neither: a sender that did would still store none."""
    sent = [interaction("tel", target="0312345678", target_path="/tel:0312345678"),
            interaction("mailto", target_host="example.com", target="a@example.com"),
            interaction("outbound", target_host="partner.example",
                        target_path="/book?name=Hanako&tel=0312345678#top")]
    assert post(client, sent).status_code == 200
    rows = {r["name"]: r for r in service.store.dicts(
        f"SELECT name, {', '.join(INTERACTION_FIELDS)} FROM events")}
    assert (rows["tel"]["target"], rows["tel"]["target_path"]) == ("", "")
    assert (rows["mailto"]["target_host"], rows["mailto"]["target"]) == ("", "")
    assert rows["outbound"]["target_path"] == "/book"


def test_interactions_are_enriched_exactly_like_custom_events(
        service: CollectorService) -> None:
    # Device only from a UA, place only under location consent, ip_prefix from an address.
    cases = {
        "bare": {},
        "located": {"ua": IPHONE_UA, "ip": "81.2.69.142",
                    "consent": {"analytics": True, "location": True}},
        "unlocated": {"ua": IPHONE_UA, "ip": "81.2.69.142",
                      "consent": {"analytics": True, "location": False}},
    }
    events = []
    for case, fields in cases.items():
        events.append(interaction("outbound", target=case, **fields))
        events.append({**interaction("outbound", target=case, **fields), "kind": "custom",
                       "name": "booking"})
    assert service.ingest.process(events).inserted_events == 6
    rows = service.store.dicts(f"SELECT kind, target, {', '.join(ENRICHED)} FROM events")
    by = {(r["kind"], r["target"]): {c: r[c] for c in ENRICHED} for r in rows}
    for case in cases:
        assert by[("interaction", case)] == by[("custom", case)], case
    assert set(by[("interaction", "bare")].values()) == {""}
    assert by[("interaction", "located")]["city"] == "London"
    assert by[("interaction", "located")]["device_type"] == "mobile"
    assert by[("interaction", "unlocated")]["country"] == ""
    assert by[("interaction", "unlocated")]["ip_prefix"] == "81.2.69.0/24"


def test_a_suppressed_visitors_interactions_are_dropped(service: CollectorService) -> None:
    blocked = interaction("download", target="pdf")
    service.gate.change([subject_hash(service.gate.key, "visitor_id", blocked["visitor_id"])],
                        active=True, purged=False, version=1)
    result = service.ingest.process([blocked, interaction("tel")])
    assert (result.accepted, result.suppressed, result.inserted_events) == (2, 1, 1)
    assert service.store.scalar("SELECT name FROM events") == "tel"
