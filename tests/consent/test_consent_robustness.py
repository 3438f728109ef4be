"""Bad input never becomes a 500, nor a failure the middleware serves over: random headers,
cookies, paths and bodies."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from support.apps import middleware_of, starlette_app

from consent_mw.settings import Settings

header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200)
paths = st.sampled_from(["/", "/en", "/ctx", "/json", "/_consent", "/_consent/preferences",
                         "/_consent/external-transmission", "/_consent/static/banner.js",
                         "/_consent/my-data", "/.well-known/gpc.json", "/_consent/x"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=paths, query=header_text, cookie=header_text, gpc=header_text,
       lang=header_text, method=st.sampled_from(["GET", "POST", "HEAD"]),
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded",
                              "text/plain", ""]),
       body=st.binary(max_size=300))
def test_random_requests_never_fail_with_a_server_error(
    make_settings: Callable[..., Settings], path: str, query: str, cookie: str, gpc: str,
    lang: str, method: str, ctype: str, body: bytes,
) -> None:
    client = TestClient(starlette_app(make_settings()), raise_server_exceptions=True)
    mw = middleware_of(client)
    headers = {"cookie": cookie, "sec-gpc": gpc, "accept-language": lang,
               "origin": "http://testserver", "content-type": ctype}
    r = client.request(method, path, params={"return": query, "lang": query},
                        headers={k: v.encode("latin-1") for k, v in headers.items() if v.strip()},
                        content=body if method == "POST" else None)
    assert r.status_code < 500
    # Bad input is answered (400s, no decision), never a failure served over.
    assert mw.stats()["failures"] == 0, mw.stats()["errors"]
