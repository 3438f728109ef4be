"""Dashboard settings from ``CONSENT_MW_DASHBOARD_*`` and the ``[dashboards]`` TOML table.

Accounts are the staff accounts (``collector.accounts``): ``CONSENT_MW_STAFF_USERS`` or the
``[staff.users]`` table, shared with the privacy-staff console. ``CONSENT_MW_DASHBOARD_USERS``
and ``[dashboards.users]`` are still read when those are unset.
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.accounts import Account, staff_accounts
from collector.query.params import K_MAX
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, FORWARDED_HEADERS
from consent_mw.config import Secret, SettingsError, Source

DEFAULT_TRUSTED_PROXIES = ("127.0.0.1/32", "::1/128")


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """What the dashboards need; build with :meth:`from_env` or by keyword."""

    users: Mapping[str, Account] = field(default_factory=dict)
    session_secret: Secret = field(default_factory=lambda: Secret(secrets.token_urlsafe(32)))
    session_max_age: int = 8 * 3600
    cookie_name: str = "cmw_dash"
    secure_cookie: bool = False  # set behind HTTPS
    k: int = 5  # minimum distinct visitors (or counts) behind any number shown
    tz: str = "Asia/Tokyo"
    top_n: int = 10
    cache_seconds: int = 0  # > 0: new events may show this late; privacy changes never do
    title: str = "consent-mw dashboards"
    #: Peers whose X-Forwarded-For names the client (login throttling keys on the client).
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    forwarded_header: str = DEFAULT_FORWARDED_HEADER  # the one header those proxies write
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
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise SettingsError("forwarded_header", f"must be one of {FORWARDED_HEADERS}")
        if len(self.session_secret.value) < 16:
            raise SettingsError("dashboard_secret", "must be at least 16 characters")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, toml_path: str | None = None,
                 **overrides: Any) -> DashboardSettings:
        env = dict(os.environ if env is None else env)
        src = Source.load("dashboards", env=env, toml_path=toml_path)
        values: dict[str, Any] = {
            "users": staff_accounts(env, toml_path),
            "trusted_proxies": src.strings("trusted_proxies", DEFAULT_TRUSTED_PROXIES),
            "forwarded_header": src.text("forwarded_header", DEFAULT_FORWARDED_HEADER).lower(),
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
