"""``consent-mw demo``: argument errors, and a real uvicorn run that starts, serves and stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support.servers import free_port

from consent_mw_cli.main import main

CONSENT_MW = Path(sys.executable).parent / "consent-mw"
START_TIMEOUT = 90.0


def test_unsupported_store_scheme_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--store", "mysql://db/x", "--port", "1"])
    assert result.exit_code == 2
    assert "unsupported scheme 'mysql'" in result.output


def test_store_from_environment_is_validated_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo"], env={"CONSENT_MW_STORE": "chdb://"})
    assert result.exit_code == 2
    assert "needs a directory" in result.output


def test_bad_port_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--port", "70000"])
    assert result.exit_code == 2
    assert "--port" in result.output


def test_port_in_use_fails_clearly_before_opening_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            main, ["demo", "--port", str(port), "--store", f"chdb://{tmp_path / 'store'}"],
            env={"CONSENT_MW_SECRET_KEY": ""},
        )
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert not (tmp_path / "store").exists()


def test_unreachable_store_fails_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["demo", "--port", str(free_port()), "--store", "http://127.0.0.1:1/db"],
        env={"CONSENT_MW_SECRET_KEY": "cli-test-secret-0123456789"},
    )
    assert result.exit_code == 1
    assert "cannot open store http://127.0.0.1:1/db" in result.output
    assert "Traceback" not in result.output


@contextmanager
def running_demo(cwd: Path, *, seed: int = 0) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``consent-mw demo`` in a subprocess on a free port, with its store under ``cwd``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENT_MW_")}
    args = [str(CONSENT_MW), "demo", "--host", "127.0.0.1", "--port", str(port),
            "--store", f"chdb://{cwd / 'store'}", "--seed", str(seed), "--log-level", "info"]
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo exited early ({proc.returncode}):\n{proc.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/_collector/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("demo did not answer in time")
            time.sleep(0.3)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def stop(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"demo ignored signal {sig}:\n{out}")
    return proc.returncode, out


def accept_all(client: httpx.Client) -> None:
    response = client.post("/_consent", data={"action": "accept_all", "return": "/"},
                           headers={"origin": str(client.base_url).rstrip("/")})
    assert response.status_code == 303, response.text


@pytest.mark.slow
def test_demo_serves_stops_cleanly_and_keeps_cookies_valid_across_restarts(
    tmp_path: Path,
) -> None:
    with running_demo(tmp_path, seed=300) as (proc, base):
        with httpx.Client(base_url=base, timeout=10) as client:
            home = client.get("/")
            assert home.status_code == 200
            assert '<html lang="ja">' in home.text
            assert 'id="cmw-banner"' in home.text
            accept_all(client)
            assert 'id="cmw-banner"' not in client.get("/").text
            cookies = dict(client.cookies)
            dash = client.get("/dashboards/", follow_redirects=False)
            assert dash.status_code in (200, 302, 303, 401)
        code, out = stop(proc, signal.SIGINT)
    assert code == 0, out
    assert "/dashboards/" in out and "/_collector/metrics" in out
    assert "Application startup complete" in out
    # No access log: it would keep every visitor's IP and URL regardless of consent.
    assert '"GET / HTTP/1.1"' not in out
    secret = tmp_path / "var" / "secret_key"
    assert secret.stat().st_mode & 0o777 == 0o600

    # Same cwd: the generated secret is reused, so the consent cookie is still honoured.
    with running_demo(tmp_path) as (proc, base):
        with httpx.Client(base_url=base, timeout=10, cookies=cookies) as client:
            assert 'id="cmw-banner"' not in client.get("/en/").text
        code, out = stop(proc, signal.SIGTERM)
    assert code == 0, out


@pytest.mark.browser
@pytest.mark.slow
def test_home_page_screenshots_with_the_banner(
    tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    with running_demo(tmp_path) as (proc, base):
        for locale, path, text in (("ja", "/", "クッキー設定"), ("en", "/en/", "Cookie settings")):
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
            try:
                page.goto(base + path)
                assert page.locator("html").get_attribute("lang") == locale
                banner = page.locator("#cmw-banner")
                banner.wait_for(state="visible", timeout=10_000)
                assert text in page.content()
                page.screenshot(path=str(artifacts / f"demo-{locale}.png"), full_page=False)
            finally:
                page.close()
        # On a phone, in Japanese: the page, its contact links included, fits the width.
        phone = browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP",
                                 is_mobile=True, has_touch=True, device_scale_factor=2)
        try:
            phone.goto(base + "/")
            phone.locator("#cmw-banner").wait_for(state="visible", timeout=10_000)
            assert phone.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"), "overflows"
            for href in ("tel:0300000000", "/static/price-list.pdf"):
                assert phone.locator(f'a[href="{href}"]').is_visible()
            phone.screenshot(path=str(artifacts / "demo-ja-390.png"), full_page=True)
        finally:
            phone.close()
        code, out = stop(proc, signal.SIGTERM)
    assert code == 0, out
    assert (artifacts / "demo-ja.png").stat().st_size > 10_000
