"""A first visit's page: the banner where it belongs, in the page's charset, for that page; no
cookie set; and the per-page banner cache bounded against a visitor who makes up paths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.apps import cookie_values
from support.servers import run_async

from consent_mw import ConsentMiddleware, Settings
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.config import Secret
from consent_mw.consent import banner
from consent_mw.consent._inject import body_end, injected_headers
from consent_mw.ids import subject_hash
from consent_mw.types import Receive, Scope, Send


@pytest.mark.parametrize(("body", "expected"), [
    (b"<p>x</p></body></html>", 8),
    (b"<p>x</p></BODY></html>", 8),
    (b"<p>x</p></Body></html>", 8),  # neither usual spelling: the whole page is searched
    (b"</body><p>x</p></Body>", 15),  # a later mixed-case one wins over a lower-case one
    (b"</BODY></body>", 7),
    (b"</body><!-- </body -->", 12),
    (b"<p>no end</p>", -1),
    (b"", -1),
])
def test_the_banner_goes_before_the_last_body_end_tag_in_any_case(body: bytes,
                                                                  expected: int) -> None:
    assert body_end(body) == expected
    assert body_end(body) == body.lower().rfind(b"</body")  # the plain rule it speeds up


def charset_app(content_type: bytes, body: bytes) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": body})
    return app


def client_for(app: Any, **settings: Any) -> TestClient:
    s = Settings(secret_keys=(Secret("first-visit-secret-0123456789abcdef"),), capture=False,
                 **settings)
    return TestClient(ConsentMiddleware(app, settings=s), base_url="http://testserver")


@pytest.mark.parametrize("charset", ["shift_jis", "euc-jp", "iso-2022-jp", "utf-8"])
def test_the_japanese_banner_is_encoded_in_the_pages_own_charset(charset: str) -> None:
    page = '<html lang="ja"><body><p>ようこそ</p></body></html>'.encode(charset)
    client = client_for(charset_app(f"text/html; charset={charset}".encode(), page))
    for _ in range(2):  # the second is served from the banner cache
        r = client.get("/")
        text = r.content.decode(charset)
        assert "すべて拒否する" in text and "ようこそ" in text
        assert int(r.headers["content-length"]) == len(r.content)


def test_a_charset_without_japanese_gets_character_references() -> None:
    page = b'<html lang="ja"><body><p>caf\xe9</p></body></html>'
    client = client_for(charset_app(b"text/html; charset=iso-8859-1", page))
    text = client.get("/").content.decode("latin-1")
    assert "caf\xe9" in text and "&#12377;&#12409;&#12390;" in text  # すべて


def test_each_page_gets_its_own_return_target_and_it_is_escaped() -> None:
    client = client_for(charset_app(b"text/html", b'<html lang="en"><body></body></html>'))
    for _ in range(2):
        a = client.get("/a?x=1").text
        b = client.get('/a?x="><script>').text
        assert 'name="return" value="/a?x=1"' in a
        assert 'name="return" value="/a?x=%22%3E%3Cscript%3E"' in b  # as the browser sent it
        assert '"><script>' not in b
        assert "return=/a%3Fx%3D1" in a


def test_a_visitor_who_makes_up_paths_cannot_grow_the_banner_cache() -> None:
    client = client_for(charset_app(b"text/html", b'<html lang="en"><body></body></html>'))
    banner._BYTES.clear()
    # Non-ASCII paths grow about eightfold once escaped and quoted: bounded in bytes too.
    wide = "\u3042" * (banner.MAX_CACHED_PATH - 8)
    for i in range(banner._BYTES.max_entries + 50):
        assert "cmw-banner" in client.get(f"/{i:05d}{wide}").text
        assert len(banner._BYTES) <= banner._BYTES.max_entries
        assert banner._BYTES.bytes <= banner._BYTES.max_bytes
    assert len(banner._BYTES) < banner._BYTES.max_entries  # the bytes bound it first
    banner._BYTES.clear()
    long_path = "x" * banner.MAX_CACHED_PATH
    r = client.get(f"/{long_path}")
    assert f'value="/{long_path}"' in r.text  # served, just not kept
    r = client.get("/landing?gclid=abc123")  # nor a page with a query: a click id each
    assert 'value="/landing?gclid=abc123"' in r.text
    assert not len(banner._BYTES)
    client.get("/landing")
    assert len(banner._BYTES) == 1


def test_a_first_visit_sets_no_cookie_but_leftover_ids_are_expired() -> None:
    client = client_for(charset_app(b"text/html", b'<html lang="en"><body></body></html>'))
    r = client.get("/")
    assert "set-cookie" not in r.headers and "cmw-banner" in r.text
    assert r.headers["cache-control"] == "private"
    client.cookies.set("cmw_sid", "leftover")
    r = client.get("/")
    assert "Max-Age=0" in cookie_values(r)["cmw_sid"] and "cmw-banner" in r.text


def test_an_undecided_browser_of_a_purged_person_is_reset_not_served_as_a_first_visit(
) -> None:
    # Only the banner's marker names this browser: its consent id is all a purge can match.
    s = Settings(secret_keys=(Secret("first-visit-secret-0123456789abcdef"),))
    mw = ConsentMiddleware(charset_app(b"text/html", b"<html><body></body></html>"),
                           settings=s, transport=InMemoryTransport())
    client = TestClient(mw, base_url="http://testserver")
    assert client.post("/_consent/shown", json={"locale": "en", "path": "/"},
                       headers={"origin": "http://testserver"}).status_code == 204
    marker = mw.codec.load_shown_until(client.cookies["cmw_consent_shown"])
    assert marker is not None
    assert "set-cookie" not in client.get("/").headers  # a first visit, until the purge
    assert mw.capture is not None
    gone = subject_hash(s.hash_key, "consent_id", marker.consent_id)
    mw.capture.suppressions.replace([gone], purged=[gone])
    r = client.get("/")
    cookies = cookie_values(r)
    assert "Max-Age=0" in cookies["cmw_consent_shown"]
    stored = mw.codec.load_consent(client.cookies["cmw_consent"])
    assert stored is not None and stored.state.decided
    assert "cmw-banner" not in r.text
    assert mw.stats()["failures"] == 0


@pytest.mark.parametrize(("given", "expected"), [
    ([], [(b"content-length", b"9"), (b"cache-control", b"private")]),
    ([(b"ETag", b'"x"'), (b"Last-Modified", b"then"), (b"Content-Length", b"3")],
     [(b"content-length", b"9"), (b"cache-control", b"private")]),
    ([(b"Cache-Control", b"public, max-age=60, s-maxage=600")],
     [(b"Cache-Control", b"private, max-age=60"), (b"content-length", b"9")]),
    ([(b"cache-control", b"no-store"), (b"cache-control", b"public")],
     [(b"cache-control", b"no-store"), (b"cache-control", b"public"),
      (b"content-length", b"9")]),
    ([(b"cache-control", b"max-age=5"), (b"vary", b"Accept")],
     [(b"cache-control", b"private, max-age=5"), (b"vary", b"Accept"),
      (b"content-length", b"9")]),
])
def test_a_changed_body_drops_validators_and_is_private(
        given: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]]) -> None:
    assert injected_headers(given, 9) == expected


def test_list_valued_settings_are_kept_as_tuples_and_the_banner_works() -> None:
    client = client_for(charset_app(b"text/html", b"<html><body></body></html>"),
                        locales=["ja", "en"])
    assert "Reject all" in client.get("/", headers={"accept-language": "en"}).text
    r = client.post("/_consent", data={"action": "accept_all", "return": "/"},
                    headers={"origin": "http://testserver"}, follow_redirects=False)
    assert r.status_code == 303 and "cmw_consent" in cookie_values(r)
    assert "cmw-banner" not in client.get("/").text


def test_an_app_may_run_send_as_a_task_on_a_first_visit() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.create_task(send({"type": "http.response.start", "status": 200,
                                        "headers": [(b"content-type", b"text/html")]}))
        await asyncio.ensure_future(send({"type": "http.response.body",
                                          "body": b"<html><body></body></html>"}))

    r = client_for(app).get("/")
    assert r.status_code == 200 and "cmw-banner" in r.text


def test_header_names_outside_asgi_as_bytearrays_still_get_the_banner() -> None:
    assert injected_headers([(bytearray(b"ETag"), b'"x"'),
                             (bytearray(b"Cache-Control"), b"public")], 3) == [
        (bytearray(b"Cache-Control"), b"private"), (b"content-length", b"3")]


# -- the first visit's own path (FirstVisitSend) gives what PageSend gives -----------------------

PAGE = b"<html lang='en'><body><p>x</p></body></html>"
HTML = (b"content-type", b"text/html; charset=utf-8")
#: (method, status, headers, body chunks, whether the banner goes in): what a first visit's
#: page can look like.
RESPONSES: list[tuple[str, int, list[tuple[bytes, bytes]], list[bytes], bool]] = [
    ("GET", 200, [HTML, (b"etag", b'"v1"'), (b"Cache-Control", b"public, max-age=60"),
                  (b"vary", b"Accept-Encoding"), (b"content-length", b"45")], [PAGE], True),
    ("HEAD", 200, [HTML, (b"content-length", b"45")], [PAGE], False),  # sent anyway
    ("GET", 304, [HTML, (b"etag", b'"v1"')], [b""], False),
    ("GET", 204, [HTML], [b""], False),
    ("GET", 200, [HTML, (b"content-encoding", b"gzip")], [PAGE], False),
    ("GET", 200, [HTML, (b"content-encoding", b" Identity ")], [PAGE], True),
    ("GET", 200, [HTML], [PAGE[:20], PAGE[20:]], False),  # streamed
    ("GET", 200, [(b"content-type", b"text/plain")], [b"</body>"], False),
    ("GET", 200, [HTML], [b"<p>no end</p>"], False),
    ("GET", 404, [HTML, (b"last-modified", b"x")], [PAGE], True),
    ("GET", 200, [HTML, (b"vary", b"*")], [PAGE], True),
    ("GET", 200, [HTML, (b"Vary", b"cookie"), (b"vary", b"Sec-GPC")], [PAGE], True),
    ("GET", 200, [(b"Content-Type", b"TEXT/HTML")], [PAGE], True),
    ("GET", 200, [], [PAGE], False),
]


def _served(mw: ConsentMiddleware, method: str, status: int,
            headers: list[tuple[bytes, bytes]], chunks: list[bytes],
            as_iterable: bool) -> list[dict[str, Any]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        given = iter(list(headers)) if as_iterable else list(headers)
        await send({"type": "http.response.start", "status": status, "headers": given})
        for i, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": i < len(chunks) - 1})

    mw.app = app
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append({**message, "headers": list(message.get("headers", []))})

    scope = {"type": "http", "method": method, "path": "/p", "raw_path": b"/p",
             "query_string": b"", "scheme": "http", "root_path": "", "headers": [
                 (b"host", b"testserver"), (b"accept-language", b"en")]}
    run_async(mw(scope, receive, send))  # not asyncio.run: a browser test's loop may run
    return sent


@pytest.mark.parametrize(("method", "status", "headers", "chunks", "banner"), RESPONSES)
@pytest.mark.parametrize("as_iterable", [False, True])
def test_a_first_visits_own_path_serves_what_the_general_path_does(
        method: str, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes],
        banner: bool, as_iterable: bool) -> None:
    from consent_mw.consent.categories import Tag

    tag = Tag(name="ga4", kind="google_analytics", category="analytics",
              service="google_analytics", measurement_id="G-TEST123",
              recipient={"en": "Google LLC"}, items={"en": "pages"}, purpose={"en": "stats"})
    secret = (Secret("first-visit-secret-0123456789abcdef"),)
    own = ConsentMiddleware(charset_app(b"", b""), settings=Settings(
        secret_keys=secret, capture=False))
    # With tags configured every page takes the general path (PageSend); an undecided
    # visitor is shown no tag, so the two must answer alike.
    general = ConsentMiddleware(charset_app(b"", b""), settings=Settings(
        secret_keys=secret, capture=False, tags=(tag,)))
    assert own._first_visit_path and not general._first_visit_path
    mine = _served(own, method, status, headers, chunks, as_iterable)
    theirs = _served(general, method, status, headers, chunks, as_iterable)
    assert mine == theirs
    assert (b"cmw-banner" in mine[-1]["body"]) is banner
    assert own.stats()["failures"] == 0 == general.stats()["failures"]
