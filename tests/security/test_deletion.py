"""Findings 6 and 7: deleting stops recording, and purged stays purged: no later request, and
no batch replayed from a web process's spool, writes a purged id into the store again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from support.servers import SECRET, Browser, Demo, free_port, serve, wait_for

from collector.privacy.disk_scan import scan_directory
from collector.service import CollectorService
from collector.settings import CollectorSettings
from consent_mw.config import Secret
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.settings import Settings

GA = "googletagmanager.com"


def ids_of(demo: Demo, browser: Browser) -> tuple[str, str]:
    stored = demo.parts.middleware.codec.load_consent(browser.cookie("cmw_consent"))  # type: ignore[union-attr]
    assert stored is not None and stored.state.consent_id
    return str(browser.cookie("cmw_vid")), stored.state.consent_id


def carrying(demo: Demo, vid: str, cid: str) -> dict[str, int]:
    demo.flush()
    p = {"v": vid, "c": cid}
    return {
        "events": demo.store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String} "
                                    "OR consent_id = {c:String}", p),
        "records": demo.store.scalar("SELECT count() FROM consent_records WHERE visitor_id = "
                                     "{v:String} OR consent_id = {c:String}", p),
    }


def test_deleting_my_data_stops_recording_and_the_google_tag(demo: Demo) -> None:
    visitor = demo.browser()
    visitor.accept_all()
    assert GA in visitor.get("/treatments/datsumo").text
    vid, cid = ids_of(demo, visitor)
    page = visitor.get("/_consent/my-data")
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"  # no clickjacking
    deleted = visitor.post("/_consent/my-data/delete", data={"confirm": "yes"})
    assert deleted.status_code == 202
    assert "cmw_vid" not in visitor.cookies() and "cmw_sid" not in visitor.cookies()
    pages_before = demo.store.scalar("SELECT count() FROM events WHERE kind = 'pageview'")
    for path in ("/", "/treatments/datsumo", "/search?q=after-delete"):
        page = visitor.get(path)
        assert page.status_code == 200 and GA not in page.text
        assert 'id="cmw-banner"' not in page.text  # the choice stays the visitor's
    demo.flush()
    # Nothing identifying is recorded afterwards: only anonymous counts.
    assert demo.store.scalar("SELECT count() FROM events WHERE kind = 'pageview'") <= (
        pages_before)
    link = deleted.text.split('href="/_consent/my-data/status?ref=')[1].split('"')[0]
    wait_for(lambda: "残っていないことを確認しました" in visitor.get(
        "/_consent/my-data/status?ref=" + link.replace("&amp;", "&")).text, what="receipt")
    assert carrying(demo, vid, cid) == {"events": 0, "records": 0}
    assert demo.store.path is not None
    assert scan_directory(demo.store.path, [vid, cid]).matches == []
    # Only a new, explicit decision records again, under new ids.
    new_vid = visitor.accept_all()
    assert new_vid != vid


def test_a_browser_purged_by_staff_never_writes_its_old_ids_again(demo: Demo) -> None:
    visitor = demo.browser()
    visitor.accept_all()
    visitor.get("/search?q=before-purge")
    vid, cid = ids_of(demo, visitor)
    token = demo.parts.admin_token[0]
    receipt = httpx.post(demo.url + "/_collector/v1/privacy/purge", timeout=120,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"visitor_id": vid, "reason": "Art. 6 request by phone",
                               "requested_by": "sato"}).json()
    assert receipt["remaining"] == 0
    # The same browser comes back, browses, and saves its preferences (accept all again).
    visitor.get("/")
    visitor.get("/search?q=after-purge")
    assert visitor.post("/_consent", json={"action": "accept_all"}).status_code == 200
    visitor.get("/treatments/datsumo")
    assert carrying(demo, vid, cid) == {"events": 0, "records": 0}
    assert demo.store.path is not None
    assert scan_directory(demo.store.path, [vid, cid]).matches == []
    withdrawn = demo.store.scalar("SELECT count() FROM consent_records WHERE event = "
                                  "'withdrawn' AND visitor_id = ''")
    assert withdrawn == 1


def test_a_record_waiting_in_a_spool_during_a_purge_leaves_nothing_after_the_replay(
        tmp_path: Path) -> None:
    key = "spool-test-user-id-key-0123456789"
    token = "spool-test-collector-token-0123"
    service = CollectorService(CollectorSettings(
        store=f"chdb://{tmp_path / 'store'}", hash_key=Secret(key),
        collector_token=Secret(token)))
    service.start()
    port = free_port()  # the collector's, not listening yet: the web process sees it down

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<html><body>page</body></html>")

    settings = Settings(secret_keys=(Secret(SECRET),), policy_text="p", user_id_key=Secret(key),
                        collector_url=f"http://127.0.0.1:{port}", collector_token=Secret(token),
                        spool_dir=tmp_path / "spool", flush_interval=0.05,
                        suppression_refresh=0.2)
    web = serve(ConsentMiddleware(Starlette(routes=[Route("/", page)]), settings=settings))
    collector: Any = None
    try:
        browser = Browser(web.url)
        vid = browser.accept_all()
        browser.get("/")
        mw: Any = web.server.config.app
        cid = mw.codec.load_consent(browser.cookie("cmw_consent")).state.consent_id
        wait_for(lambda: mw.capture.stats()["spooled"] >= 2, what="the record in the spool")
        # The purge runs while the record waits: the person is asked for by id.
        receipt = service.privacy.purge(visitor_id=vid, reason="Art. 6", requested_by="sato")
        assert receipt["remaining"] == 0, receipt
        collector = serve(service.app, port=port)  # the collector answers again
        wait_for(lambda: mw.capture.stats()["spooled"] == 0, 60, "the spool replayed")
        store = service.store
        p = {"v": vid, "c": cid}
        assert store.scalar("SELECT count() FROM consent_records WHERE visitor_id = {v:String} "
                            "OR consent_id = {c:String}", p) == 0
        assert store.scalar("SELECT count() FROM events WHERE visitor_id = {v:String} "
                            "OR consent_id = {c:String}", p) == 0
        assert store.scalar("SELECT count() FROM consent_records WHERE anonymised") >= 1
        assert store.path is not None
        assert scan_directory(store.path, [vid, cid]).matches == []
        browser.close()
    finally:
        web.stop()
        if collector is not None:
            collector.stop()
        service.stop()
