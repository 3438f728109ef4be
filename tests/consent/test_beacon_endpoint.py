"""``POST /_consent/beacon`` and the beacon's script in pages, through a real uvicorn server
with an in-memory transport: what is accepted arrives as interaction events, everything else
is refused with a reason and nothing of it is queued, and the page never pays for it."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jsonschema
import pytest
from support.apps import middleware_of, starlette_app
from support.servers import Browser, serve

import consent_mw
from consent_mw import ConsentMiddleware, wire
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.config import Secret
from consent_mw.consent.beacon import ADDRESS_FACTOR, render_beacon
from consent_mw.consent.endpoints import hashed_name
from consent_mw.ids import subject_hash
from consent_mw.settings import Settings

PER_MINUTE = 20
BEACON = "/_consent/beacon"
PHONE = "090-1234-5678"
SCRIPT = Path(consent_mw.__file__).parent / "static" / "beacon.js"


class Site:
    """The test app with the beacon on, served by uvicorn; its middleware and transport."""

    def __init__(self, url: str, mw: ConsentMiddleware, transport: InMemoryTransport) -> None:
        self.url, self.mw, self.transport = url, mw, transport
        self.browsers: list[Browser] = []

    def visitor(self, decision: str | None = "accept_all") -> Browser:
        browser = Browser(self.url)
        self.browsers.append(browser)
        if decision is not None:
            assert browser.post("/_consent", json={"action": decision}).status_code == 200
        return browser

    def events_of(self, browser: Browser) -> list[dict[str, Any]]:
        """The non-pageview events of one visitor (by the ids its cookies hold)."""
        capture = self.mw.capture
        assert capture is not None and capture.force_flush(5.0)
        vid = browser.cookie("cmw_vid")
        return [e for e in self.transport.events
                if e["kind"] in ("interaction", "custom") and vid and e.get("visitor_id") == vid]

    def site_events(self) -> int:
        """How many interaction and custom events were sent so far, from anyone."""
        capture = self.mw.capture
        assert capture is not None and capture.force_flush(5.0)
        return sum(e["kind"] in ("interaction", "custom") for e in self.transport.events)

    def dropped(self, reason: str) -> int:
        capture = self.mw.capture
        assert capture is not None
        return int(capture.stats()["dropped"][reason])

    def no_errors(self) -> None:
        stats = self.mw.stats()
        assert stats["failures"] == 0 and not any(stats["errors"].values()), stats


def make_site(**overrides: Any) -> Iterator[Site]:
    transport = InMemoryTransport()
    settings = Settings(secret_keys=(Secret("beacon-test-secret-0123456789"),),
                        policy_text="beacon policy", flush_interval=0.05,
                        beacon_per_minute=PER_MINUTE, beacon_path_hosts=("partner.example",),
                        **{"beacon": True, **overrides})
    app = starlette_app(settings, transport=transport)
    mw = middleware_of(SimpleNamespace(app=app))
    served = serve(app)
    site = Site(served.url, mw, transport)
    try:
        yield site
    finally:
        for browser in site.browsers:
            browser.close()
        served.stop()


@pytest.fixture(scope="module")
def served_site() -> Iterator[Site]:
    yield from make_site()


@pytest.fixture
def site(served_site: Site) -> Iterator[Site]:
    yield served_site
    while served_site.browsers:
        served_site.browsers.pop().close()


def report(browser: Browser, *events: dict[str, Any], **headers: str) -> httpx.Response:
    """What beacon.js sends: a text/plain string from the page's origin."""
    return browser.post(BEACON, content=json.dumps({"events": list(events)}),
                        headers={"content-type": "text/plain;charset=UTF-8", **headers})


def test_reports_of_a_consenting_visitor_arrive_as_interaction_events(site: Site) -> None:
    browser = site.visitor()
    sent = [{"k": "out", "p": "/en", "u": f"https://partner.example/book/{PHONE}"},
            {"k": "out", "p": "/en", "u": "https://line.me/R/ti/p/@someaccount"},
            {"k": "tel", "p": "/en"}, {"k": "mailto", "p": "/en"},
            {"k": "download", "p": "/en", "u": "/files/price.pdf"},
            {"k": "form", "p": "/contact", "id": "contact", "a": "/contact/send"},
            {"k": "scroll", "p": "/en", "d": 80}, {"k": "engaged", "p": "/en", "s": 4000},
            {"k": "custom", "p": "/en", "n": "book-now"}]
    r = report(browser, *sent)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["cache-control"] == "no-store"
    events = site.events_of(browser)
    for event in events:
        jsonschema.validate(event, wire.EVENT_SCHEMA)
        assert event["host"] == "127.0.0.1"  # as on its pageviews: the port is not kept
        assert event["session_id"] and event["consent_id"]
        assert event["consent"]["analytics"] is True
    seen = [(e["kind"], e["name"], e["path"], e.get("target_host"), e.get("target_path"),
             e.get("target"), e.get("scroll_depth"), e.get("engaged_seconds"))
            for e in events]
    assert seen == [
        ("interaction", "outbound", "/en", "partner.example", "/book/[phone]", None, None, None),
        ("interaction", "app", "/en", "line.me", None, "line", None, None),
        ("interaction", "tel", "/en", None, None, None, None, None),
        ("interaction", "mailto", "/en", None, None, None, None, None),
        ("interaction", "download", "/en", None, "/files/price.pdf", "pdf", None, None),
        ("interaction", "form", "/contact", None, "/contact/send", "contact", None, None),
        ("interaction", "scroll", "/en", None, None, None, 75, None),
        ("interaction", "engaged", "/en", None, None, None, None, wire.MAX_ENGAGED_SECONDS),
        ("custom", "book-now", "/en", None, None, None, None, None),
    ]
    assert PHONE not in json.dumps(events) and "someaccount" not in json.dumps(events)
    site.no_errors()


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "", "Sec-Fetch-Site": "cross-site"},
])
def test_cross_site_reports_are_refused(site: Site, headers: dict[str, str]) -> None:
    browser = site.visitor()
    if headers.get("Origin") == "":  # no Origin at all: Sec-Fetch-Site decides
        browser.http.headers.pop("origin", None)
        r = browser.http.post(BEACON, content=json.dumps({"events": [{"k": "tel", "p": "/"}]}),
                              headers={k: v for k, v in headers.items() if v})
    else:
        r = report(browser, {"k": "tel", "p": "/"}, **headers)
    assert r.status_code == 403
    assert r.json() == {"error": "cross_site", "message": "cross-site reports are refused"}
    assert site.events_of(browser) == []
    site.no_errors()


@pytest.mark.parametrize("decision", ["reject_all", None])
def test_without_analytics_nothing_is_queued_and_the_refusal_is_counted(
        site: Site, decision: str | None) -> None:
    # Forged by hand: same-origin headers, a valid body, the visitor's own cookies.
    browser = site.visitor(decision)
    before, queued = site.dropped("no_consent"), site.site_events()
    r = report(browser, {"k": "tel", "p": "/"}, {"k": "custom", "p": "/", "n": "cta"},
               **{"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 403
    assert r.json()["error"] == "no_consent"
    assert site.dropped("no_consent") == before + 2  # each report, as track() counts
    assert site.site_events() == queued
    assert browser.cookie("cmw_vid") is None
    site.no_errors()


def test_a_browser_without_its_visitor_id_is_refused(site: Site) -> None:
    browser = site.visitor()
    browser.http.cookies.delete("cmw_vid")
    r = report(browser, {"k": "tel", "p": "/"})
    assert r.status_code == 403 and r.json()["error"] == "no_visitor"
    site.no_errors()


def test_an_oversized_body_is_refused(site: Site) -> None:
    browser = site.visitor()
    r = report(browser, {"k": "custom", "p": "/" + "a" * 2000, "n": "x"},
               {"k": "custom", "p": "/" + "b" * 2000, "n": "y"},
               {"k": "tel", "p": "/" + "c" * 200})
    assert r.status_code == 413
    assert r.json() == {"error": "too_large", "message": "body larger than 4096 bytes"}
    assert site.events_of(browser) == []
    site.no_errors()


@pytest.mark.parametrize(("body", "reason"), [
    (b"not json", "invalid JSON"),
    (b'{"events": {"k": "tel"}}', '"events" must be a list of 1 to 10 reports'),
    (b'{"events": [{"k": "tel", "p": "/"}], "x": 1}', 'expected a JSON object'),
    (b'{"events": [{"k": "tel", "p": "/"}, {"k": "sms", "p": "/"}]}', "events[1]: unknown kind"),
    (b'{"events": [{"k": "tel", "p": "/", "n": "090"}]}', "events[0]: 'tel' reports carry"),
    (b'{"events": [{"k": "scroll", "p": "/", "d": 250}]}', "events[0]: 'd' must be an integer"),
    (b'{"events": [{"k": "out", "p": "/", "u": "/x"}]}', "events[0]: an outbound link"),
    (b'{"events": [{"k": "tel", "p": "x"}]}', "events[0]: 'p' must be the page's path"),
])
def test_a_bad_body_is_refused_with_a_reason_and_nothing_of_it_is_kept(
        site: Site, body: bytes, reason: str) -> None:
    browser = site.visitor()
    r = browser.post(BEACON, content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert reason in r.json()["message"]
    assert site.events_of(browser) == []  # not even the batch's good first report
    site.no_errors()


def test_other_methods_and_media_types_are_refused(site: Site) -> None:
    browser = site.visitor()
    r = browser.get(BEACON, headers={"accept": "application/json"})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    r = browser.post(BEACON, content=b"events", headers={"content-type": "text/html"})
    assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"
    site.no_errors()


def test_the_rate_limit_is_per_visitor_and_counts_reports(site: Site) -> None:
    browser, neighbour = site.visitor(), site.visitor()  # same address, another visitor
    tel = {"k": "tel", "p": "/"}
    for _ in range(PER_MINUTE // 10):
        assert report(browser, *[tel] * 10).status_code == 204
    r = report(browser, tel)
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 60 // PER_MINUTE + 1
    assert report(neighbour, tel).status_code == 204
    assert len(site.events_of(browser)) == PER_MINUTE
    site.no_errors()


def test_visitor_ids_minted_from_one_address_share_its_bucket(site: Site) -> None:
    """A visitor id costs one decision, so one address can mint many; they do not each get
    a fresh budget: what one address reports a minute is bounded too."""
    tel = {"k": "tel", "p": "/"}
    # An address of this test's own (the server trusts the loopback proxy's header), so the
    # budget it spends is not the other tests'.
    address = {"x-forwarded-for": "198.51.100.77"}
    sent = refused = 0
    for _ in range(ADDRESS_FACTOR + 2):  # more visitors than the address's budget covers
        browser = site.visitor()
        for _ in range(PER_MINUTE // 10):
            status = report(browser, *[tel] * 10, **address).status_code
            sent += status == 204
            refused += status == 429
    assert refused > 0
    assert sent * 10 <= PER_MINUTE * ADDRESS_FACTOR
    site.no_errors()


def test_a_suppressed_visitor_is_dropped_like_their_custom_events(site: Site) -> None:
    browser = site.visitor()
    capture = site.mw.capture
    assert capture is not None
    vid = browser.cookie("cmw_vid")
    assert vid is not None
    capture.suppressions.add(subject_hash(site.mw.settings.hash_key, "visitor_id", vid))
    before = site.dropped("suppressed")
    try:
        r = report(browser, {"k": "tel", "p": "/"}, {"k": "custom", "p": "/", "n": "cta"})
        assert r.status_code == 204
        assert site.events_of(browser) == []
        assert site.dropped("suppressed") == before + 2
    finally:
        capture.suppressions.discard(subject_hash(site.mw.settings.hash_key, "visitor_id", vid))
    site.no_errors()


def test_a_purged_visitor_is_refused(site: Site) -> None:
    browser = site.visitor()
    capture = site.mw.capture
    assert capture is not None
    vid = browser.cookie("cmw_vid")
    assert vid is not None
    gone = subject_hash(site.mw.settings.hash_key, "visitor_id", vid)
    capture.suppressions.replace([gone], purged=[gone])
    try:
        r = report(browser, {"k": "tel", "p": "/"})
        assert r.status_code == 403 and r.json()["error"] == "no_consent"
        assert site.events_of(browser) == []
    finally:
        capture.suppressions.replace([])
    site.no_errors()


def script_tag(html: str) -> str | None:
    at = html.find('<script src="/_consent/static/beacon.')
    return None if at < 0 else html[at:html.index("</script>", at) + 9]


def test_the_script_is_in_the_pages_of_consenting_visitors_only(site: Site) -> None:
    digest = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]
    accepted, rejected, undecided = site.visitor(), site.visitor("reject_all"), site.visitor(None)
    for _ in range(2):  # the first page and a returning visitor's (the settled path)
        tag = script_tag(accepted.get("/en").text)
        assert tag == (f'<script src="/_consent/static/beacon.{digest}.js" defer '
                       'data-cmw-beacon="/_consent/beacon" data-cmw-downloads="pdf,doc,docx,'
                       'xls,xlsx,ppt,pptx,csv,txt,zip,jpg,jpeg,png,mp4,mp3"></script>')
        assert script_tag(rejected.get("/en").text) is None
        page = undecided.get("/en").text
        assert script_tag(page) is None and 'id="cmw-banner"' in page
    # Whatever the consent, responses the middleware never changes stay as they were.
    for path in ("/json", "/gzip", "/stream", "/static/page.html"):
        assert "beacon" not in accepted.get(path).text
    head = accepted.http.head("/")
    assert head.status_code == 200 and head.content == b""
    site.no_errors()


def test_the_hashed_script_is_cached_for_a_year(site: Site) -> None:
    tag = script_tag(site.visitor().get("/en").text)
    assert tag is not None
    src = tag.split('"')[1]
    r = httpx.get(site.url + src)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(r.content).hexdigest()[:12] == src.split(".")[-2]
    plain = httpx.get(site.url + "/_consent/static/beacon.js")
    assert plain.content == r.content
    assert plain.headers["cache-control"] == "public, max-age=3600"
    assert httpx.get(site.url + "/_consent/static/beacon.000000000000.js").status_code == 404
    site.no_errors()


def test_the_script_element_names_the_hashed_file_and_escapes_settings(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(beacon=True, beacon_download_extensions=('pdf"><x', "zip"))
    tag = render_beacon(settings, "beacon.0123456789ab.js")
    assert tag == ('<script src="/_consent/static/beacon.0123456789ab.js" defer '
                   'data-cmw-beacon="/_consent/beacon" '
                   'data-cmw-downloads="pdf&quot;&gt;&lt;x,zip"></script>')


def test_the_script_is_small_and_named_by_its_content() -> None:
    body = SCRIPT.read_bytes()
    assert len(gzip.compress(body, 9)) < 2048  # the budget; docs/capture.md has it
    assert hashed_name("beacon.js", body) == \
        f"beacon.{hashlib.sha256(body).hexdigest()[:12]}.js"
    assert b"eval(" not in body and b"innerHTML" not in body  # strict CSP, no markup


@pytest.fixture
def beacon_off(make_settings: Callable[..., Settings]) -> Iterator[Site]:
    yield from make_site(beacon=False)


def test_with_the_beacon_off_there_is_no_script_and_no_route(beacon_off: Site) -> None:
    browser = beacon_off.visitor()
    assert script_tag(browser.get("/en").text) is None
    assert report(browser, {"k": "tel", "p": "/"}).status_code == 404
    assert beacon_off.mw.beacon_tag is None and beacon_off.mw._settled_path
    beacon_off.no_errors()


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    return response.status_code, response.content, sorted(
        (k, v) for k, v in response.headers.multi_items() if k != "date")


def test_returning_visitors_keep_the_settled_path_and_get_the_full_paths_page(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The beacon's script element is the same bytes on every page, so a returning visitor
    who granted analytics gets it on the settled path: byte for byte the page the full path
    makes, without reading the request again."""
    accepted, rejected = site.visitor(), site.visitor("reject_all")
    accepted.get("/nolang")
    rejected.get("/en")  # both returning visitors from here on
    full_reads: list[str] = []
    original = site.mw.read_request

    def spy(scope: Any, reading: Any = None, **kw: Any) -> Any:
        full_reads.append(scope["path"])
        return original(scope, reading, **kw)

    monkeypatch.setattr(site.mw, "read_request", spy)
    fast_rejected, fast_accepted = rejected.get("/en"), accepted.get("/nolang")
    assert full_reads == []
    assert script_tag(fast_accepted.text) is not None and script_tag(fast_rejected.text) is None
    monkeypatch.setattr(site.mw, "_settled_path", False)
    full_rejected, full_accepted = rejected.get("/en"), accepted.get("/nolang")
    assert full_reads == ["/en", "/nolang"]
    assert comparable(fast_rejected) == comparable(full_rejected)
    assert comparable(fast_accepted) == comparable(full_accepted)
    site.no_errors()
