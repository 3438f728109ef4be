"""Settings parsing, day boundaries in the site's time zone, and the two commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.dashboards import RANGE, event, insert_events

from collector.accounts import demo_accounts, hash_password, verify_password
from consent_mw.config import Secret, SettingsError
from dashboards.cli import dashboards, seed
from dashboards.settings import DashboardSettings


def test_users_from_env_and_toml(tmp_path: Path) -> None:
    h = hash_password("pw-123456")
    s = DashboardSettings.from_env(env={"CONSENT_MW_DASHBOARD_USERS":
                                        f"hanako:marketing:{h};taro:privacy:{h}"})
    assert {u: s.users[u].role for u in s.users} == {"hanako": "marketing", "taro": "privacy"}
    assert verify_password(s.users, "hanako", "pw-123456") is not None
    assert verify_password(s.users, "hanako", "wrong") is None
    assert verify_password(s.users, "nobody", "pw-123456") is None
    toml = tmp_path / "c.toml"
    toml.write_text(f'[dashboards]\nk = 7\n[dashboards.users]\nadmin = {{ role = "admin", '
                    f'password_hash = "{h}" }}\n', encoding="utf-8")
    s2 = DashboardSettings.from_env(env={}, toml_path=str(toml))
    assert s2.k == 7 and s2.users["admin"].role == "admin"


@pytest.mark.parametrize("users, field", [
    ("hanako:boss:$argon2id$x", "role"),
    ("hanako:marketing:plaintext", "password_hash"),
    ("just-a-name", "name:role:hash"),
    ("hanako:marketing:$argon2id$x:nothex", "tokens"),
])
def test_bad_users_are_refused_with_the_field(users: str, field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        DashboardSettings.from_env(env={"CONSENT_MW_DASHBOARD_USERS": users})


def test_k_below_two_is_refused() -> None:
    with pytest.raises(SettingsError, match="k"):
        DashboardSettings(k=1)


def test_nothing_set_gives_the_fields_defaults() -> None:
    built, default = DashboardSettings.from_env(env={}), DashboardSettings()
    for name in DashboardSettings.__dataclass_fields__:
        if name != "session_secret":  # random per process unless configured
            assert getattr(built, name) == getattr(default, name), name


@pytest.mark.parametrize("variable, value, field", [
    ("CONSENT_MW_DASHBOARD_SESSION_MAX_AGE", "10", "dashboard_session_max_age"),
    ("CONSENT_MW_DASHBOARD_CACHE_SECONDS", "-1", "dashboard_cache_seconds"),
    ("CONSENT_MW_DASHBOARD_SECRET", "short", "dashboard_secret"),
    ("CONSENT_MW_DASHBOARD_TZ", "Mars/Olympus", "dashboard_tz"),
])
def test_settings_are_checked_alike_from_env_and_by_keyword(variable: str, value: str,
                                                            field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        DashboardSettings.from_env(env={variable: value})
    keyword = {"dashboard_session_max_age": {"session_max_age": 10},
               "dashboard_cache_seconds": {"cache_seconds": -1},
               "dashboard_secret": {"session_secret": Secret("short")},
               "dashboard_tz": {"tz": "Mars/Olympus"}}[field]
    with pytest.raises(SettingsError, match=field):
        DashboardSettings(**keyword)  # type: ignore[arg-type]


def test_toml_short_keys_and_their_long_spelling(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[dashboards]\nk = 7\ntz = "UTC"\ncache_seconds = 30\n'
                    'dashboard_k = 9\nsecret_key = "0123456789abcdef-toml"\n',
                    encoding="utf-8")
    s = DashboardSettings.from_env(env={}, toml_path=str(toml))
    assert (s.k, s.tz, s.cache_seconds) == (9, "UTC", 30)
    assert s.session_secret.value == "0123456789abcdef-toml"
    s = DashboardSettings.from_env(env={"CONSENT_MW_DASHBOARD_K": "11"}, toml_path=str(toml))
    assert s.k == 11


def test_demo_users_cover_every_role_with_one_password() -> None:
    users = demo_accounts("demo-pass-1")
    assert sorted(u.role for u in users.values()) == ["admin", "marketing", "privacy"]
    assert all(verify_password(users, n, "demo-pass-1") for n in users)


def test_days_begin_at_midnight_in_the_site_time_zone(store: Any, login: Any) -> None:
    # 2026-06-16 15:30 UTC is 2026-06-17 00:30 in Tokyo: inside a range starting 06-17.
    inside = [event(visitor_id=f"{i:032d}", session_id=f"s{i}",
                    ts=dt.datetime(2026, 6, 16, 15, 30, tzinfo=dt.UTC)) for i in range(5)]
    # 2026-06-16 14:30 UTC is 23:30 on the 16th in Tokyo: outside.
    outside = [event(visitor_id=f"9{i:031d}", session_id=f"t{i}",
                     ts=dt.datetime(2026, 6, 16, 14, 30, tzinfo=dt.UTC)) for i in range(5)]
    insert_events(store, inside + outside)
    client = login("marketing")
    kpis = client.get("/dashboards/api/kpis", params=RANGE).json()["rows"][0]
    assert kpis["visitors"] == 5
    series = client.get("/dashboards/api/series", params={**RANGE, "grain": "hour"}).json()
    assert series["rows"][0]["bucket"] == "2026-06-17 00:00:00"


def test_dashboards_refuse_a_chdb_store_they_cannot_own(tmp_path: Path) -> None:
    h = hash_password("pw-123456")
    result = CliRunner().invoke(dashboards, ["--store", f"chdb://{tmp_path}/s"],
                                env={"CONSENT_MW_DASHBOARD_USERS": f"a:admin:{h}"})
    assert result.exit_code != 0
    assert "--collector-url" in result.output and "owned" in result.output


def test_dashboards_need_users(tmp_path: Path) -> None:
    result = CliRunner().invoke(dashboards, ["--collector-url", "http://127.0.0.1:1",
                                             "--query-token", "t"],
                                env={"CONSENT_MW_DASHBOARD_USERS": ""})
    assert result.exit_code != 0 and "no dashboard users" in result.output


def test_seed_command_fills_a_store(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path}/seeded"
    result = CliRunner().invoke(seed, ["--events", "3000", "--days", "3", "--store", dsn])
    assert result.exit_code == 0, result.output
    assert "seeded 3,000 events" in result.output
