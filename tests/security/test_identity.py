"""Finding 1: a visitor reaches only their own data. A ``cmw_vid`` the signed consent cookie
does not bind gets nothing, deletes nothing, and files nothing under the id it names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from support.servers import SECRET, Browser, Demo, Served, serve, wait_for

from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.transport import InProcessRights
from consent_mw.config import Secret
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.consent.self_service import SelfService
from consent_mw.settings import Settings


def victim_with_history(demo: Demo) -> tuple[Browser, str]:
    victim = demo.browser()
    vid = victim.accept_all()
    assert victim.get("/search?q=victim-secret-term").status_code == 200
    demo.flush()
    assert demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                             {"v": vid}) >= 1
    return victim, vid


def test_a_swapped_visitor_cookie_downloads_nothing_of_the_other_visitor(demo: Demo) -> None:
    _, victim_id = victim_with_history(demo)
    attacker = demo.browser()
    attacker.accept_all()
    attacker.http.cookies.set("cmw_vid", victim_id, domain="127.0.0.1")
    export = attacker.get("/_consent/my-data")
    # The swapped id is not bound: this request mints a fresh one, which has no data.
    assert export.status_code == 403
    assert victim_id not in export.text and "victim-secret-term" not in export.text


def test_a_swapped_visitor_cookie_deletes_nothing_of_the_other_visitor(demo: Demo) -> None:
    _, victim_id = victim_with_history(demo)
    attacker = demo.browser()
    attacker.accept_all()
    attacker.http.cookies.set("cmw_vid", victim_id, domain="127.0.0.1")
    deleted = attacker.post("/_consent/my-data/delete", data={"confirm": "yes"},
                            headers={"accept": "application/json"})
    assert deleted.status_code == 403  # nothing bound to this browser to delete
    assert demo.parts.service.privacy.purges.waiting() == []
    assert not demo.parts.service.privacy.is_suppressed("visitor_id", victim_id)
    assert demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                             {"v": victim_id}) >= 1


def test_an_id_planted_in_a_browser_never_files_its_browsing(demo: Demo) -> None:
    attacker = demo.browser()
    planted = attacker.accept_all()  # an id the attacker knows, issued to the attacker
    victim = demo.browser()
    victim.http.cookies.set("cmw_vid", planted, domain="127.0.0.1")
    victim.accept_all()
    victim.get("/search?q=victim-secret-term")
    victim.get("/treatments/datsumo")
    demo.flush()
    assert demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String} AND "
                             "path != '/_consent'", {"v": planted}) == 0
    assert victim.cookie("cmw_vid") != planted


def test_an_attackers_pages_are_never_filed_under_the_victims_id(demo: Demo) -> None:
    _, victim_id = victim_with_history(demo)
    before = demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                               {"v": victim_id})
    attacker = demo.browser()
    attacker.accept_all()
    attacker.http.cookies.set("cmw_vid", victim_id, domain="127.0.0.1")
    for _ in range(3):
        attacker.get("/search?q=attacker-poison")
    demo.flush()
    assert demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                             {"v": victim_id}) == before
    assert demo.store.scalar("SELECT count() FROM consent_records WHERE visitor_id = "
                             "{v:String} AND event != 'decided'", {"v": victim_id}) == 0


def test_a_consent_cookie_planted_in_another_browser_reaches_nothing_of_it(demo: Demo) -> None:
    attacker = demo.browser()
    attacker.accept_all()
    attacker.get("/treatments/datsumo")
    victim = demo.browser()
    victim.http.cookies.set("cmw_consent", attacker.cookie("cmw_consent") or "",
                            domain="127.0.0.1")
    victim.get("/search?q=victim-secret-term")
    victim.get("/treatments/datsumo")
    victim_id = victim.cookie("cmw_vid")
    assert victim_id and victim_id != attacker.cookie("cmw_vid")
    demo.flush()
    export = attacker.get("/_consent/my-data")
    assert export.status_code == 200
    assert "victim-secret-term" not in export.text and victim_id not in export.text
    deleted = attacker.post("/_consent/my-data/delete", data={"confirm": "yes"},
                            headers={"accept": "application/json"})
    status_url = deleted.json()["status_url"]
    wait_for(lambda: attacker.get(status_url, headers={"accept": "application/json"}).json()[
        "status"] == "completed", what="the attacker's purge")
    assert demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String}",
                             {"v": victim_id}) >= 2
    # The victim's browser is not reset by the attacker's deletion.
    again = victim.get("/")
    assert "cmw_vid" not in {c.split("=")[0] for c in again.headers.get_list("set-cookie")}
    assert victim.cookie("cmw_vid") == victim_id


def test_a_decision_made_with_a_copied_consent_cookie_gets_its_own_consent_id(
        demo: Demo) -> None:
    owner = demo.browser()
    owner.accept_all()
    codec = demo.parts.middleware.codec
    theirs = codec.load_consent(owner.cookie("cmw_consent")).state.consent_id
    other = demo.browser()
    other.http.cookies.set("cmw_consent", owner.cookie("cmw_consent") or "",
                           domain="127.0.0.1")
    refused = other.post("/_consent", json={"action": "reject_all"})
    assert refused.status_code == 200
    mine = codec.load_consent(other.cookie("cmw_consent")).state.consent_id
    assert mine != theirs and refused.json()["consent_id"] == mine
    demo.flush()
    records = demo.store.dicts("SELECT consent_id, event FROM consent_records "
                               "WHERE event = 'withdrawn'")
    assert records == [{"consent_id": mine, "event": "withdrawn"}]
    export = owner.get("/_consent/my-data").json()
    assert all(r["consent_id"] == theirs for r in export["consent_records"])


def test_a_copied_banner_marker_gives_two_browsers_two_consent_ids(demo: Demo) -> None:
    first = demo.browser()
    first.get("/")
    first.report_shown()
    marker = first.cookie("cmw_consent_shown")
    assert marker
    second = demo.browser()
    second.http.cookies.set("cmw_consent_shown", marker, domain="127.0.0.1")
    first.accept_all()
    second.accept_all()
    codec = demo.parts.middleware.codec
    ids = {codec.load_consent(b.cookie("cmw_consent")).state.consent_id  # type: ignore[union-attr]
           for b in (first, second)}
    assert len(ids) == 2 and codec.load_shown(marker) not in ids


def test_a_consent_cookie_without_its_visitor_id_opens_no_data_and_deletes_nothing(
        demo: Demo) -> None:
    owner = demo.browser()
    owner.accept_all()
    owner.get("/treatments/datsumo")
    other = demo.browser()
    other.http.cookies.set("cmw_consent", owner.cookie("cmw_consent") or "",
                           domain="127.0.0.1")
    assert other.get("/_consent/my-data").status_code == 403  # an id minted just now: no data
    deleted = other.post("/_consent/my-data/delete", data={"confirm": "yes"})
    assert deleted.status_code == 403
    assert demo.parts.service.privacy.purges.waiting() == []
    assert demo.store.scalar("SELECT count() FROM privacy_requests") == 0


# --- any mix of two visitors' cookies ---------------------------------------------------------
# (Last in the module: its store stays open for the module, and chDB opens one per process.)

class Site:
    def __init__(self, served: Served, service: CollectorService) -> None:
        self.served, self.service = served, service


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A site with self-service and a limit high enough for hypothesis's many requests."""
    store = tmp_path_factory.mktemp("jars") / "store"
    key = "jar-test-user-id-key-0123456789"
    service = CollectorService(CollectorSettings(store=f"chdb://{Path(store)}",
                                                 hash_key=Secret(key)))
    service.start()

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<html><body>page</body></html>")

    settings = Settings(secret_keys=(Secret(SECRET),), policy_text="p",
                        user_id_key=Secret(key), flush_interval=0.05)
    app = ConsentMiddleware(Starlette(routes=[Route("/", page)]), settings=settings,
                            transport=service.transport,
                            self_service=SelfService(settings, limit=100_000, address_limit=100_000,
                                                     rights=InProcessRights(service.privacy)))
    served = serve(app)
    try:
        yield Site(served, service)
    finally:
        served.stop()
        service.stop()


@pytest.fixture(scope="module")
def two_visitors(site: Site) -> dict[str, dict[str, str]]:
    jars = {}
    for who in ("a", "b"):
        browser = Browser(site.served.url)
        browser.accept_all()
        browser.get("/")
        jars[who] = browser.cookies()
        browser.close()
    assert app_capture(site).force_flush(10)
    return jars


def app_capture(site: Site) -> Any:
    app = site.served.server.config.app
    return getattr(app, "capture", None) or app.app.capture  # uvicorn may wrap it


NAMES = ("cmw_consent", "cmw_vid", "cmw_sid")
JAR = st.lists(st.tuples(st.sampled_from(("a", "b")), st.sampled_from(NAMES)), max_size=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(jar=JAR)
def test_no_mix_of_two_visitors_cookies_reaches_the_others_data_or_id(
        site: Site, two_visitors: dict[str, dict[str, str]],
        jar: list[tuple[str, str]]) -> None:
    header = "; ".join(f"{name}={two_visitors[who][name]}" for who, name in jar)
    ids = {who: two_visitors[who]["cmw_vid"] for who in ("a", "b")}

    def may_be(who: str) -> bool:
        """The one way to be ``who``: their consent cookie and their id, each exactly once."""
        return (jar.count((who, "cmw_consent")) == 1 and jar.count((who, "cmw_vid")) == 1
                and sum(n == "cmw_consent" for _, n in jar) == 1
                and sum(n == "cmw_vid" for _, n in jar) == 1)

    with httpx.Client(base_url=site.served.url, timeout=30) as http:
        status = http.get("/_consent", headers={"cookie": header}).json()
        export = http.get("/_consent/my-data", headers={"cookie": header})
    for who, vid in ids.items():
        if status["visitor_id"] == vid:
            assert may_be(who), (jar, status)
        if export.status_code == 200:
            if vid in export.json()["subject"]["visitor_ids"]:
                assert may_be(who), jar
        else:
            assert export.status_code == 403  # no bound id: nothing to serve

