"""Findings 3, 10 and 11 against the served demo: logins are throttled, logout ends the
session on the server, every staff action names its person, and the CLI says what is wrong
in a line."""

from __future__ import annotations

import subprocess
import sys

import httpx
from support.servers import PASSWORD, ROOT, Browser, Demo


def test_fifty_wrong_passwords_in_a_row_try_only_five(demo: Demo) -> None:
    browser = demo.browser()
    statuses = [browser.post("/dashboards/login", data={"username": "marketing",
                                                         "password": f"guess-{n}"}).status_code
                for n in range(50)]
    assert statuses.count(401) == 5 and statuses.count(429) == 45
    right = browser.post("/dashboards/login", data={"username": "marketing",
                                                     "password": PASSWORD})
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1


def test_the_dashboards_and_the_staff_console_share_one_throttle(demo: Demo) -> None:
    browser = demo.browser()
    tried = [browser.post(path, data={"username": "admin", "password": "wrong"}).status_code
             for path in ["/dashboards/login"] * 8 + ["/_collector/v1/privacy/staff/login"] * 8]
    assert tried.count(401) == 5  # five tries for the account, wherever they are made


def login(browser: Browser, path: str, user: str) -> None:
    r = browser.post(path, data={"username": user, "password": PASSWORD})
    assert r.status_code == 303, r.text


def test_dashboard_logout_ends_the_session_for_a_copied_cookie(demo: Demo) -> None:
    browser = demo.browser()
    login(browser, "/dashboards/login", "marketing")
    copied = browser.cookie("cmw_dash")
    page = browser.get("/dashboards/overview")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    cross = browser.http.post("/dashboards/logout", data={"csrf": csrf},
                              headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert browser.post("/dashboards/logout", data={"csrf": csrf}).status_code == 303
    thief = httpx.get(demo.url + "/dashboards/overview", cookies={"cmw_dash": copied or ""},
                      follow_redirects=False)
    assert thief.status_code == 303 and "/login" in thief.headers["location"]


def test_staff_actions_name_the_person_and_staff_logout_cannot_come_from_elsewhere(
        demo: Demo) -> None:
    visitor = demo.browser()
    vid = visitor.accept_all()
    visitor.get("/")
    demo.flush()
    staff = demo.browser()
    base = "/_collector/v1/privacy/staff"
    login(staff, base + "/login", "privacy")
    page = staff.get(base, params={"id_type": "visitor_id", "id": vid})
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    done = staff.post(base + "/action", data={
        "csrf": csrf, "action": "purge", "id_type": "visitor_id", "id": vid,
        "reason": "Art. 6 request by letter", "confirm": "PURGE"})
    assert done.status_code == 200 and "purge: done" in done.text
    who = {r["requested_by"] for r in demo.store.dicts(
        "SELECT requested_by FROM privacy_requests WHERE operation = 'purge'")}
    assert who == {"privacy"}  # the account's name, not a shared "staff"
    copied = staff.cookie("cmw_staff")
    forged = httpx.post(demo.url + base + "/logout", data={"csrf": csrf},
                        headers={"Origin": "https://evil.example"},
                        cookies={"cmw_staff": copied or ""})
    assert forged.status_code == 403
    assert staff.post(base + "/logout", data={"csrf": csrf}).status_code == 303
    after = httpx.get(demo.url + base, cookies={"cmw_staff": copied or ""})
    # The copy is logged out too: without a session the old page sends it to the console.
    assert after.status_code == 303 and after.headers["location"].endswith(
        "/dashboards/requests")


def cli(*args: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "consent_mw_cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "CONSENT_MW_ADMIN_TOKEN": token})


def test_the_cli_explains_a_url_that_is_not_a_collector_in_one_line(demo: Demo) -> None:
    result = cli("export", "--visitor-id", "a" * 32, "--url", demo.url, "--reason", "r",
                 "--requested-by", "sato", token=demo.parts.admin_token[0])
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "did not answer as a consent-mw collector" in errors[0]
    assert "<html" not in result.stderr.lower() and "Traceback" not in result.stderr


def test_audit_verify_on_a_store_another_process_owns_is_one_line(demo: Demo) -> None:
    assert demo.store.path is not None
    result = cli("audit", "verify", "--store", f"chdb://{demo.store.path}", token="x")
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--url" in lines[0], result.stderr
