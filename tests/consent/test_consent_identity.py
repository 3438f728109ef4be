"""A visitor id counts only when the signed consent cookie binds it to this browser."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient
from support.apps import ORIGIN, cookie_values, starlette_app

from consent_mw.consent.cookies import CookieCodec
from consent_mw.consent.decision import decide, undecided
from consent_mw.consent.records import MemorySink
from consent_mw.ids import new_visitor_id
from consent_mw.settings import Settings


def _plant(client: TestClient, name: str, value: str) -> None:
    """Set a cookie as the site itself would have (the jar's domain for the test host)."""
    client.cookies.set(name, value, domain="testserver.local")


def _accept(client: TestClient) -> str:
    r = client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    assert r.status_code == 200
    return str(client.cookies["cmw_vid"])


def test_a_swapped_visitor_cookie_is_replaced_not_believed(
        make_settings: Callable[..., Settings]) -> None:
    client = TestClient(starlette_app(make_settings(capture=False)))
    mine = _accept(client)
    victim = new_visitor_id()
    _plant(client, "cmw_vid", victim)
    r = client.get("/ctx")
    seen = r.json()["visitor_id"]
    assert seen not in (victim, mine, None)
    # The response binds the new id: the consent cookie is re-signed alongside it.
    cookies = cookie_values(r)
    assert cookies["cmw_vid"].startswith(f"cmw_vid={seen};")
    assert "cmw_consent" in cookies
    assert client.get("/ctx").json()["visitor_id"] == seen


def test_an_id_planted_before_the_decision_is_never_adopted(
        make_settings: Callable[..., Settings]) -> None:
    client = TestClient(starlette_app(make_settings(capture=False)))
    planted = new_visitor_id()
    _plant(client, "cmw_vid", planted)
    assert _accept(client) != planted


def test_a_consent_cookie_from_before_binding_keeps_the_decision_but_not_the_id(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(capture=False)
    codec = CookieCodec(settings)
    legacy = codec.dump_consent(decide(settings, undecided(settings), action="accept_all"))
    old_id = new_visitor_id()
    client = TestClient(starlette_app(settings))
    _plant(client, "cmw_consent", legacy)
    _plant(client, "cmw_vid", old_id)
    r = client.get("/ctx")
    body = r.json()
    assert body["decided"] and body["categories"]["analytics"]
    assert body["visitor_id"] not in (None, old_id)
    rebound = codec.load_consent(client.cookies["cmw_consent"])
    assert rebound is not None and rebound.binds(body["visitor_id"])
    # The decision and its lifetime are unchanged by the re-signing; its consent id is new,
    # as for any decision given a new visitor id (a consent id never spans two visitors).
    before = codec.load_consent(legacy)
    assert before is not None
    assert rebound.state.categories == before.state.categories
    assert rebound.state.decided_at == before.state.decided_at
    assert rebound.state.consent_id != before.state.consent_id
    assert "Max-Age=0" not in cookie_values(r)["cmw_consent"]


def test_a_consent_cookie_copied_into_another_browser_shares_no_ids_with_it(
        make_settings: Callable[..., Settings]) -> None:
    records = MemorySink()
    settings = make_settings(capture=False)
    attacker = TestClient(starlette_app(settings, record_sink=records))
    attacker.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    victim = TestClient(starlette_app(settings, record_sink=records))
    _plant(victim, "cmw_consent", str(attacker.cookies["cmw_consent"]))
    page = victim.get("/ctx").json()
    assert page["decided"] and page["visitor_id"] != attacker.cookies["cmw_vid"]
    codec = CookieCodec(settings)
    mine = codec.load_consent(attacker.cookies["cmw_consent"])
    theirs = codec.load_consent(victim.cookies["cmw_consent"])
    assert mine is not None and theirs is not None
    assert mine.state.consent_id != theirs.state.consent_id
    # The carried-over decision is recorded under the new consent id, linked to the old one.
    carried = [r for r in records.records if r["consent_id"] == theirs.state.consent_id]
    assert carried and carried[0]["event"] == "updated"
    assert carried[0]["previous_record_id"] == mine.record_id


def test_the_bound_id_is_stable_and_not_reissued(make_settings: Callable[..., Settings]) -> None:
    client = TestClient(starlette_app(make_settings(capture=False)))
    vid = _accept(client)
    for _ in range(3):
        r = client.get("/ctx")
        assert r.json()["visitor_id"] == vid
        assert "cmw_vid" not in cookie_values(r) and "cmw_consent" not in cookie_values(r)


def test_changing_a_decision_keeps_the_bound_id(make_settings: Callable[..., Settings]) -> None:
    client = TestClient(starlette_app(make_settings(capture=False)))
    vid = _accept(client)
    r = client.post("/_consent", json={"categories": {"analytics": True}},
                    headers={"origin": ORIGIN})
    assert r.json()["visitor_id"] == vid


def test_host_prefixed_cookie_names_work_and_are_always_secure(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(capture=False, consent_cookie="__Host-cmw_consent",
                             visitor_cookie="__Host-cmw_vid", session_cookie="__Host-cmw_sid")
    client = TestClient(starlette_app(settings), base_url="https://testserver")
    r = client.post("/_consent", json={"action": "accept_all"},
                    headers={"origin": "https://testserver"})
    lines = r.headers.get_list("set-cookie")
    assert {line.split("=", 1)[0] for line in lines} >= {"__Host-cmw_consent",
                                                         "__Host-cmw_vid", "__Host-cmw_sid"}
    assert all("Secure" in line and "Path=/" in line and "Domain" not in line
               for line in lines)
    vid = r.json()["visitor_id"]
    assert client.get("/ctx").json()["visitor_id"] == vid


def test_host_prefixed_cookies_are_secure_even_when_a_proxy_hides_https(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(capture=False, consent_cookie="__Host-cmw_consent",
                             visitor_cookie="__Host-cmw_vid", session_cookie="__Host-cmw_sid")
    client = TestClient(starlette_app(settings))  # plain http, as behind a TLS proxy
    r = client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    assert all("; Secure" in line for line in r.headers.get_list("set-cookie"))
