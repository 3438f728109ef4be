"""Dashboard logins: throttled per account and per address, bounded password work, and
sessions that end on the server."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient
from support.dashboards import ORIGIN, PASSWORD

from collector import accounts, logins
from collector.logins import LoginBusy, LoginGuard, PasswordChecker


def in_thread(fn: Any, *args: Any) -> Any:
    """Run in a fresh thread: the browser tests keep an event loop in the main one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def attempt(client: TestClient, user: str, password: str) -> Any:
    return client.post("/dashboards/login", data={"username": user, "password": password},
                       headers={"Origin": ORIGIN})


def test_failed_logins_lock_the_account_with_growing_delays_before_any_password_check(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    real = accounts.verify_password

    def counting(users: Any, name: str, password: str) -> Any:
        checks.append(name)
        return real(users, name, password)

    monkeypatch.setattr(logins, "verify_password", counting)
    statuses = [attempt(client, "marketing", "wrong").status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = attempt(client, "marketing", PASSWORD)  # even the right password waits
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert len(checks) == 5  # the locked attempt cost no argon2 work


def fail(guard: LoginGuard, key: str) -> None:
    assert guard.begin(key) is None
    guard.finish(key, failed=True)


def test_the_delay_doubles_and_a_success_clears_the_account(
        monkeypatch: pytest.MonkeyPatch) -> None:
    guard = LoginGuard(free=2, base=10.0, cap=35.0)
    fail(guard, "user:a")
    fail(guard, "user:a")
    first = guard.retry_after("user:a")
    clock = time.monotonic()
    monkeypatch.setattr(logins.time, "monotonic", lambda: clock + 11)
    fail(guard, "user:a")
    second = guard.retry_after("user:a")
    assert first is not None and second is not None
    assert 9 < first <= 10 and 19 < second <= 20
    for step in range(5):
        monkeypatch.setattr(logins.time, "monotonic", lambda s=step: clock + 100 * (s + 1))
        fail(guard, "user:a")
    assert guard.retry_after("user:a") <= 35  # type: ignore[operator]  # capped
    guard.succeeded("user:a")
    assert guard.retry_after("user:a") is None


def test_tries_in_flight_count_so_a_burst_cannot_all_get_through() -> None:
    guard = LoginGuard(free=5)
    let_through = [guard.begin("user:a", "ip:1") for _ in range(60)]
    assert let_through.count(None) == 5  # the rest wait, before any check has failed
    for _ in range(5):
        guard.finish("user:a", "ip:1", failed=True)
    assert guard.begin("user:a") is not None


def test_sixty_concurrent_wrong_passwords_check_at_most_five(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[str] = []
    real = accounts.verify_password

    def slow(users: Any, name: str, password: str) -> Any:
        checks.append(name)
        time.sleep(0.05)  # every check overlaps the others
        return real(users, name, password)

    monkeypatch.setattr(logins, "verify_password", slow)

    async def burst() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
            async def one() -> int:
                r = await http.post("/dashboards/login", headers={"Origin": ORIGIN},
                                    data={"username": "marketing", "password": "wrong"})
                return r.status_code

            return list(await asyncio.gather(*(one() for _ in range(60))))

    statuses = in_thread(asyncio.run, burst())
    assert len(checks) <= 5 and statuses.count(401) == len(checks)
    assert set(statuses) <= {401, 429}


def test_one_address_trying_many_accounts_is_throttled_too(client: TestClient) -> None:
    for n in range(5):
        assert attempt(client, f"nobody{n}", "wrong").status_code == 401
    assert attempt(client, "someone-else", "wrong").status_code == 429


def test_logout_ends_the_session_for_a_copied_cookie(login: Any, client: TestClient) -> None:
    login("marketing")
    copied = client.cookies.get("cmw_dash")
    page = client.get("/dashboards/overview")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    cross = client.post("/dashboards/logout", data={"csrf": csrf},
                        headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert client.get("/dashboards/overview").status_code == 200  # still logged in
    out = client.post("/dashboards/logout", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert out.status_code == 303
    client.cookies.set("cmw_dash", copied, path="/dashboards/")
    assert client.get("/dashboards/overview").status_code == 303  # back to the login form


def test_a_cross_site_login_is_refused(client: TestClient) -> None:
    r = client.post("/dashboards/login", data={"username": "marketing", "password": PASSWORD},
                    headers={"Origin": "https://evil.example"})
    assert r.status_code == 403


def test_at_most_two_password_checks_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(users: Any, name: str, password: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    monkeypatch.setattr(logins, "verify_password", slow)
    checker = PasswordChecker(max_concurrent=2, wait=10)

    async def many() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(checker.verify, {}, "x", "y")

    in_thread(anyio.run, many)
    assert peak == 2


def test_a_login_that_cannot_start_its_check_in_time_is_told_to_retry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logins, "verify_password",
                        lambda users, name, password: time.sleep(0.5))
    checker = PasswordChecker(max_concurrent=1, wait=0.1)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await checker.verify({}, "x", "y")
            outcomes.append("checked")
        except LoginBusy:
            outcomes.append("busy")

    async def two() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(one)
            tg.start_soon(one)

    in_thread(anyio.run, two)
    assert sorted(outcomes) == ["busy", "checked"]
