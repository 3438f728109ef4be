"""Dashboard settings from ``CONSENT_MW_DASHBOARD_*`` and the ``[dashboards]`` TOML table.

Accounts are the staff accounts (``collector.accounts``): ``CONSENT_MW_STAFF_USERS`` or the
``[staff.users]`` table, shared with the privacy-staff console. ``CONSENT_MW_DASHBOARD_USERS``
and ``[dashboards.users]`` are still read when those are unset.

Each default is written once, on its field; :meth:`DashboardSettings.from_env` falls back to
it. Every check is in ``__post_init__``, so settings built by keyword are checked the same way.
"""

from __future__ import annotations

import os
import secrets
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field

from collector.accounts import Account, staff_accounts
from collector.query.params import K_MAX
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, FORWARDED_HEADERS
from consent_mw.config import Secret, SettingsError, Source

#: ``[dashboards]`` keys written without the ``dashboard_`` their variables carry
#: (``k = 7`` is ``CONSENT_MW_DASHBOARD_K=7``); the long spelling wins when both are there.
SHORT_TOML_KEYS = {
    "k": "dashboard_k",
    "tz": "dashboard_tz",
    "secure_cookie": "dashboard_secure_cookie",
    "cache_seconds": "dashboard_cache_seconds",
    "session_max_age": "dashboard_session_max_age",
    "secret_key": "dashboard_secret",
}
MIN_SECRET = 16
MIN_SESSION = 60


def _random_secret() -> Secret:
    """Sessions signed with a key that dies with the process: a restart logs everyone out."""
    return Secret(secrets.token_urlsafe(32))


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """What the dashboards need; build with :meth:`from_env` or by keyword."""

    users: Mapping[str, Account] = field(default_factory=dict, repr=False)
    session_secret: Secret = field(default_factory=_random_secret)
    session_max_age: int = 8 * 3600  # seconds
    cookie_name: str = "cmw_dash"
    secure_cookie: bool = False  # set behind HTTPS
    k: int = 5  # minimum distinct visitors (or counts) behind any number shown
    tz: str = "Asia/Tokyo"
    top_n: int = 10  # rows of a breakdown table before "(other)"
    cache_seconds: int = 0  # > 0: new events may show this late; privacy changes never do
    title: str = "consent-mw dashboards"
    #: Peers whose X-Forwarded-For names the client (login throttling keys on the client).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    forwarded_header: str = DEFAULT_FORWARDED_HEADER  # the one header those proxies write
    #: More links on the privacy staff page, after the request console and the audit trail:
    #: (label, URL). Staff see pages, never raw JSON.
    privacy_links: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 2 <= self.k <= K_MAX:
            raise SettingsError("dashboard_k", f"must be between 2 and {K_MAX}")
        try:
            zoneinfo.ZoneInfo(self.tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError("dashboard_tz", f"unknown time zone {self.tz!r}") from None
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise SettingsError("forwarded_header", f"must be one of {FORWARDED_HEADERS}")
        if len(self.session_secret.value) < MIN_SECRET:
            raise SettingsError("dashboard_secret", f"must be at least {MIN_SECRET} characters")
        if self.session_max_age < MIN_SESSION:
            raise SettingsError("dashboard_session_max_age",
                                f"must be >= {MIN_SESSION}, got {self.session_max_age}")
        if self.cache_seconds < 0:
            raise SettingsError("dashboard_cache_seconds",
                                f"must be >= 0, got {self.cache_seconds}")
        if not 1 <= self.top_n <= 500:  # the catalogue's own bound on a breakdown's rows
            raise SettingsError("top_n", "must be between 1 and 500")
        if not self.cookie_name:
            raise SettingsError("cookie_name", "must not be empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 toml_path: str | os.PathLike[str] | None = None) -> DashboardSettings:
        """Settings from ``env`` (default ``os.environ``) and the ``[dashboards]`` table;
        anything unset keeps its field's default. Change more with ``dataclasses.replace``."""
        loaded = Source.load("dashboards", env=env, toml_path=toml_path)
        table = {SHORT_TOML_KEYS[key]: value for key, value in loaded.table.items()
                 if key in SHORT_TOML_KEYS}
        table.update({key: value for key, value in loaded.table.items()
                      if key not in SHORT_TOML_KEYS})
        src = Source(env=loaded.env, table=table)
        default = cls()  # what each field holds when nothing sets it
        return cls(
            users=staff_accounts(src.env, None if toml_path is None else str(toml_path)),
            session_secret=src.secret("dashboard_secret") or default.session_secret,
            session_max_age=src.integer("dashboard_session_max_age", default.session_max_age),
            secure_cookie=src.flag("dashboard_secure_cookie", default.secure_cookie),
            k=src.integer("dashboard_k", default.k),
            tz=src.text("dashboard_tz", default.tz),
            cache_seconds=src.integer("dashboard_cache_seconds", default.cache_seconds),
            trusted_proxies=src.strings("trusted_proxies", default.trusted_proxies),
            forwarded_header=src.text("forwarded_header", default.forwarded_header).lower(),
        )
