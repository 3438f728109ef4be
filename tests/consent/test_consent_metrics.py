"""The web process's capture stats as Prometheus text at ``settings.metrics_path``: served to
loopback or a bearer token, read when scraped, never a page view, off by default.

Served by a real uvicorn server where the peer is loopback; a peer elsewhere is a direct
ASGI call with the scope's ``client`` set (and, where this machine has an address off
loopback, a server bound on it).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from support.apps import middleware_of, starlette_app
from support.servers import run_async, serve, wait_for

from consent_mw import ConsentMiddleware
from consent_mw.capture.counters import DROP_REASONS
from consent_mw.capture.transport import InMemoryTransport
from consent_mw.config import Secret
from consent_mw.consent.metrics import StatsCollector
from consent_mw.consent.middleware import ERROR_PLACES
from consent_mw.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PATH = "/_metrics"
TOKEN = "scrape-token-0123456789"
PLAIN = "text/plain; version=0.0.4; charset=utf-8"
ALWAYS = ["consent_mw_capture_queued", "consent_mw_capture_queued_bytes",
          "consent_mw_capture_sent_total", "consent_mw_capture_records_sent_total",
          "consent_mw_capture_rejected_total", "consent_mw_capture_spooled",
          "consent_mw_capture_spool_batches", "consent_mw_capture_worker_errors_total",
          "consent_mw_capture_spool_bytes", "consent_mw_capture_in_flight",
          "consent_mw_capture_collector_up"]
MakeSettings = Callable[..., Settings]


def samples(text: str) -> dict[str, float]:
    """Every sample, as ``name{label=value,...}`` (or the bare name): the text parsed by the
    client's own parser, so a malformed exposition fails here."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


@contextmanager
def site(make_settings: MakeSettings, **overrides: Any
         ) -> Iterator[tuple[str, ConsentMiddleware, InMemoryTransport]]:
    """The test app behind the middleware with metrics on, served by uvicorn on loopback."""
    transport = InMemoryTransport()
    app = starlette_app(make_settings(metrics_path=PATH, **overrides), transport=transport)
    mw = middleware_of(SimpleNamespace(app=app))
    served = serve(app)
    try:
        yield served.url, mw, transport
    finally:
        served.stop()


def scrape(url: str, **headers: str) -> dict[str, float]:
    r = httpx.get(url + PATH, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return samples(r.text)


async def host_app(scope: Any, receive: Any, send: Any) -> None:
    """A host app that says it was reached."""
    body = json.dumps({"app": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def call(mw: ConsentMiddleware, path: str = PATH, *, client: tuple[str, int] | None,
         method: str = "GET", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    """One request straight into the middleware, from ``client``: status, headers, body."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": client,
             "server": ("127.0.0.1", 8000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run_async(mw(scope, receive, send))
    start = sent[0]
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent[1:]))


def test_metrics_are_served_to_loopback_and_move_with_capture(make_settings: MakeSettings) -> None:
    started = time.time()
    with site(make_settings, flush_interval=0.05) as (url, mw, transport):
        r = httpx.get(url + PATH)
        assert r.status_code == 200
        assert r.headers["content-type"] == PLAIN
        assert r.headers["cache-control"] == "no-store"
        first = samples(r.text)
        assert set(ALWAYS) <= set(first)
        assert {f"consent_mw_capture_dropped_total{{reason={r}}}" for r in DROP_REASONS} \
            <= set(first)
        assert {f"consent_mw_errors_total{{place={p}}}" for p in ERROR_PLACES} <= set(first)
        assert first["consent_mw_capture_sent_total"] == 0

        for path in ("/en", "/", "/en"):
            assert httpx.get(url + path).status_code == 200
        wait_for(lambda: scrape(url)["consent_mw_capture_sent_total"] == 3, 30, "3 sent")
        now = scrape(url)
        capture = mw.stats()["capture"]
        assert now["consent_mw_capture_sent_total"] == capture["sent"] == len(transport.events)
        assert capture["last_sent_at"] is not None
        assert started <= now["consent_mw_capture_last_sent_timestamp_seconds"] <= time.time()
        assert now["consent_mw_capture_collector_up"] == 1

        for _ in range(3):  # scraping is not visiting: nothing more is sent
            scrape(url)
        assert mw.capture is not None and mw.capture.force_flush(5.0)
        assert scrape(url)["consent_mw_capture_sent_total"] == 3
        assert all(e.get("path") != PATH for e in transport.events)


def test_a_forced_drop_is_counted_under_its_reason(make_settings: MakeSettings) -> None:
    # One place in the queue and no flush for a minute: the second page cannot be queued.
    with site(make_settings, queue_size=1, flush_interval=60) as (url, mw, _):
        before = scrape(url)
        assert before["consent_mw_capture_dropped_total{reason=queue_full}"] == 0
        httpx.get(url + "/en")
        httpx.get(url + "/en")
        after = scrape(url)
        assert after["consent_mw_capture_queued"] == 1
        assert after["consent_mw_capture_queued_bytes"] > 0
        assert after["consent_mw_capture_dropped_total{reason=queue_full}"] == 1
        assert mw.stats()["capture"]["dropped"]["queue_full"] == 1
        assert all(after[f"consent_mw_capture_dropped_total{{reason={r}}}"] == 0
                   for r in DROP_REASONS if r != "queue_full")


def test_a_settled_visitor_scraping_gets_the_metrics_not_the_app(
        make_settings: MakeSettings) -> None:
    with site(make_settings, flush_interval=0.05) as (url, mw, transport), \
            httpx.Client(base_url=url) as browser:
        r = browser.post("/_consent", json={"action": "accept_all"}, headers={"origin": url})
        assert r.status_code == 200 and browser.cookies.get("cmw_vid")
        cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
        assert mw.reader.read_headers([(b"cookie", cookies.encode())]).settled
        for _ in range(2):  # the second answer comes from the remembered route
            r = browser.get(PATH)
            assert r.status_code == 200 and r.headers["content-type"] == PLAIN
            assert "consent_mw_capture_sent_total" in samples(r.text)
        browser.get("/en")
        assert mw.capture is not None and mw.capture.force_flush(5.0)
        paths = [e.get("path") for e in transport.events]
        assert "/en" in paths and PATH not in paths


@pytest.mark.parametrize("forwarded", [{"x-forwarded-for": "127.0.0.1"},
                                       {"forwarded": "for=127.0.0.1"}, {}])
def test_a_peer_off_loopback_is_refused_whatever_it_claims(
        make_settings: MakeSettings, forwarded: dict[str, str]) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    status, headers, body = call(mw, client=("203.0.113.5", 1234), headers=forwarded)
    assert status == 403
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert error["error"] == "forbidden" and "loopback" in error["message"]


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_every_loopback_peer_may_read(make_settings: MakeSettings, peer: str) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    status, headers, body = call(mw, client=(peer, 1234))
    assert status == 200 and headers["content-type"] == PLAIN
    assert "consent_mw_errors_total" in body.decode()


def test_a_loopback_peer_relaying_someone_else_is_refused(make_settings: MakeSettings) -> None:
    # A reverse proxy on the same host connects from loopback for every visitor.
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    for relayed in ({"x-forwarded-for": "203.0.113.5"}, {"x-real-ip": "203.0.113.5"},
                    {"forwarded": "for=203.0.113.5"}, {"cf-connecting-ip": "203.0.113.5"},
                    {"true-client-ip": "203.0.113.5"}, {"x-client-ip": "203.0.113.5"},
                    {"x-forwarded-host": "site.example"}, {"x-forwarded-proto": "https"},
                    {"via": "1.1 proxy"}):
        assert call(mw, client=("127.0.0.1", 1234), headers=relayed)[0] == 403, relayed


def test_the_token_opens_the_metrics_to_other_peers(make_settings: MakeSettings) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH,
                                                            metrics_token=Secret(TOKEN)))
    away = ("203.0.113.5", 1234)
    status, headers, body = call(mw, client=away, headers={"authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "consent_mw_errors_total" in body.decode()
    for given in (None, "Bearer wrong-token", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
                  f"Basic {TOKEN}", "Bearer ", "Bearer täst"):
        status, headers, body = call(mw, client=away,
                                     headers={"authorization": given} if given else {})
        assert status == 401, given
        assert headers["www-authenticate"] == "Bearer"
        assert json.loads(body)["error"] == "unauthorized"
    assert call(mw, client=("127.0.0.1", 1))[0] == 200  # loopback needs no token


def _address_off_loopback() -> str | None:
    """This machine's address on its default route, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_a_real_peer_off_loopback_is_refused_through_the_server(
        make_settings: MakeSettings) -> None:
    address = _address_off_loopback()
    if address is None:
        pytest.skip("this machine has no address off loopback")
    app = starlette_app(make_settings(metrics_path=PATH, metrics_token=Secret(TOKEN)))
    served = serve(app, host=address)
    try:
        # uvicorn believes forwarding headers from 127.0.0.1 only: this peer is not.
        r = httpx.get(served.url + PATH, headers={"x-forwarded-for": "127.0.0.1"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = httpx.get(served.url + PATH, headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and "consent_mw_errors_total" in r.text
    finally:
        served.stop()


def test_metrics_are_off_by_default(make_settings: MakeSettings) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings())
    assert mw.metrics is None
    for path in ("/metrics", PATH):
        status, _, body = call(mw, path, client=("127.0.0.1", 1))
        assert status == 200 and json.loads(body) == {"app": path}


def test_only_get_and_head_are_answered(make_settings: MakeSettings) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    status, headers, body = call(mw, client=("127.0.0.1", 1), method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert json.loads(body)["error"] == "method_not_allowed"
    status, headers, body = call(mw, client=("127.0.0.1", 1), method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert headers["content-type"] == PLAIN


def test_a_scraper_asking_for_openmetrics_gets_it(make_settings: MakeSettings) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    status, headers, body = call(mw, client=("127.0.0.1", 1), headers={
        "accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_without_capture_only_the_middleware_errors_are_exported(
        make_settings: MakeSettings) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH))
    assert mw.capture is None
    found = samples(call(mw, client=("127.0.0.1", 1))[2].decode())
    assert found == {f"consent_mw_errors_total{{place={p}}}": 0 for p in ERROR_PLACES}


def test_a_failing_read_is_a_503_and_counted(make_settings: MakeSettings,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    mw = ConsentMiddleware(host_app, settings=make_settings(metrics_path=PATH),
                           transport=InMemoryTransport())
    assert mw.capture is not None

    def broken() -> dict[str, Any]:
        raise RuntimeError("stats broke")

    monkeypatch.setattr(mw.capture, "stats", broken)
    status, _, body = call(mw, client=("127.0.0.1", 1))
    assert status == 503 and json.loads(body)["error"] == "unavailable"
    assert mw.errors["metrics"] == 1


def test_two_middlewares_in_one_process_keep_their_own_figures(
        make_settings: MakeSettings) -> None:
    with site(make_settings, flush_interval=0.05) as (busy, mw, _), \
            site(make_settings, flush_interval=0.05) as (idle, _, _):
        for _ in range(2):
            httpx.get(busy + "/en")
        assert mw.capture is not None and mw.capture.force_flush(5.0)
        assert scrape(busy)["consent_mw_capture_sent_total"] == 2
        assert scrape(idle)["consent_mw_capture_sent_total"] == 0
        text = httpx.get(busy + PATH).text
        assert text.count("\nconsent_mw_capture_sent_total ") == 1
    assert b"consent_mw_" not in generate_latest(REGISTRY)  # never the global registry


def test_figures_capture_adds_later_are_exported_when_present() -> None:
    stats: dict[str, Any] = {"errors": {"capture": 2}, "capture": {
        "queued": 3, "sent": 7, "dropped": {"queue_full": 4, "a_new_reason": 1},
        "spool_bytes": 4096, "last_sent_at": 1_700_000_000.5, "collector": "unreachable"}}
    registry = CollectorRegistry()
    registry.register(StatsCollector(lambda: stats, counter=CounterMetricFamily,
                                     gauge=GaugeMetricFamily))
    found = samples(generate_latest(registry).decode())
    assert found["consent_mw_errors_total{place=capture}"] == 2
    assert found["consent_mw_capture_queued"] == 3
    assert found["consent_mw_capture_sent_total"] == 7
    assert found["consent_mw_capture_spool_bytes"] == 4096
    assert found["consent_mw_capture_last_sent_timestamp_seconds"] == 1_700_000_000.5
    assert found["consent_mw_capture_collector_up"] == 0
    assert found["consent_mw_capture_dropped_total{reason=queue_full}"] == 4
    assert found["consent_mw_capture_dropped_total{reason=a_new_reason}"] == 1
    assert all(f"consent_mw_capture_dropped_total{{reason={r}}}" in found for r in DROP_REASONS)
    assert "consent_mw_capture_rejected_total" not in found  # not reported: not made up

    stats["capture"].update(last_sent_at=None, collector="up")  # never sent yet
    del stats["capture"]["spool_bytes"]
    found = samples(generate_latest(registry).decode())  # read again at this scrape
    assert "consent_mw_capture_last_sent_timestamp_seconds" not in found
    assert "consent_mw_capture_spool_bytes" not in found
    assert found["consent_mw_capture_collector_up"] == 1


WITHOUT_CLIENT = """
import asyncio
import sys

sys.modules["prometheus_client"] = None  # as if the [metrics] extra were not installed

from consent_mw import ConsentMiddleware, Settings
from consent_mw.config import Secret, SettingsError


async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def get(mw):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await mw({"type": "http", "method": "GET", "path": "/", "headers": [],
              "client": ("127.0.0.1", 1)}, receive, send)
    return sent[0]["status"]


keys = (Secret("k" * 32),)
print(asyncio.run(get(ConsentMiddleware(app, settings=Settings(secret_keys=keys)))))
try:
    ConsentMiddleware(app, settings=Settings(secret_keys=keys, metrics_path="/_metrics"))
except SettingsError as exc:
    print(exc.field)
    print(exc)
"""


def test_metrics_without_prometheus_client_is_a_one_line_settings_error() -> None:
    result = subprocess.run([sys.executable, "-c", WITHOUT_CLIENT], cwd=ROOT,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "204",  # without the path, a web process needs no prometheus-client
        "metrics_path",
        "metrics_path: needs prometheus-client: pip install 'consent-mw[metrics]'",
    ]
