"""Dashboard settings from ``CONSENT_MW_DASHBOARD_*`` and the ``[dashboards]`` TOML table.

Users come from ``[dashboards.users]`` (``alice = {role = "marketing", password_hash =
"$argon2id$..."}``) or from ``CONSENT_MW_DASHBOARD_USERS`` as ``name:role:hash`` entries
separated by ``;`` or new lines (argon2 hashes contain commas, never colons or semicolons).
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.query_api import K_MAX
from consent_mw.config import Secret, SettingsError, Source

ROLES = ("marketing", "privacy", "admin")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    password_hash: str = field(repr=False)


def parse_users(raw: Any) -> dict[str, User]:
    """Users from a TOML table or the ``name:role:hash;...`` environment form."""
    if raw is None:
        return {}
    items: list[tuple[str, str, str]] = []
    if isinstance(raw, str):
        for entry in raw.replace("\n", ";").split(";"):
            if not entry.strip():
                continue
            parts = entry.strip().split(":", 2)
            if len(parts) != 3:
                raise SettingsError("dashboard_users", "each entry must be name:role:hash")
            items.append((parts[0], parts[1], parts[2]))
    elif isinstance(raw, Mapping):
        for name, spec in raw.items():
            if not isinstance(spec, Mapping):
                raise SettingsError(f"users.{name}", "expected {role, password_hash}")
            items.append((str(name), str(spec.get("role", "")),
                          str(spec.get("password_hash", ""))))
    else:
        raise SettingsError("users", "expected a table of users")
    users: dict[str, User] = {}
    for name, role, password_hash in items:
        if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise SettingsError("users", f"invalid user name {name!r}")
        if role not in ROLES:
            raise SettingsError(f"users.{name}.role", f"must be one of {', '.join(ROLES)}")
        if not password_hash.startswith("$argon2"):
            raise SettingsError(f"users.{name}.password_hash",
                                "must be an argon2 hash (consent-mw dashboards --hash-password)")
        users[name] = User(name, role, password_hash)
    return users


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """What the dashboards need; build with :meth:`from_env` or by keyword."""

    users: Mapping[str, User] = field(default_factory=dict)
    session_secret: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(32)))
    session_max_age: int = 8 * 3600
    cookie_name: str = "cmw_dash"
    secure_cookie: bool = False  # set behind HTTPS
    k: int = 5  # minimum distinct visitors (or counts) behind any number shown
    tz: str = "Asia/Tokyo"
    top_n: int = 10
    cache_seconds: int = 0  # > 0: new events may show this late; privacy changes never do
    title: str = "consent-mw dashboards"
    privacy_links: tuple[tuple[str, str], ...] = (
        ("Privacy staff console (suppress, purge, export)", "/_collector/v1/privacy/staff"),
        ("Collector API reference (OpenAPI)", "/_collector/openapi.json"),
    )

    def __post_init__(self) -> None:
        if not 2 <= self.k <= K_MAX:
            raise SettingsError("dashboard_k", f"must be between 2 and {K_MAX}")
        try:
            zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError("dashboard_tz", f"unknown time zone {self.tz!r}") from None
        if len(self.session_secret.value) < 16:
            raise SettingsError("dashboard_secret", "must be at least 16 characters")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, toml_path: str | None = None,
                 **overrides: Any) -> DashboardSettings:
        env = dict(os.environ if env is None else env)
        src = Source.load("dashboards", env=env, toml_path=toml_path)
        values: dict[str, Any] = {
            "users": parse_users(env.get("CONSENT_MW_DASHBOARD_USERS")
                                 or src.table.get("users")),
            "k": src.integer("dashboard_k", int(src.table.get("k", 5)), minimum=2),
            "tz": src.text("dashboard_tz", str(src.table.get("tz", "Asia/Tokyo"))),
            "secure_cookie": src.flag("dashboard_secure_cookie",
                                      bool(src.table.get("secure_cookie", False))),
            "cache_seconds": src.integer("dashboard_cache_seconds",
                                         int(src.table.get("cache_seconds", 0)), minimum=0),
            "session_max_age": src.integer("dashboard_session_max_age",
                                           int(src.table.get("session_max_age", 8 * 3600)),
                                           minimum=60),
        }
        secret = src.raw("dashboard_secret") or src.table.get("secret_key")
        if secret:
            values["session_secret"] = Secret(str(secret))
        values.update(overrides)
        return cls(**values)
