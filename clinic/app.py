"""The whole demo in one process: clinic site + consent middleware + collector + dashboards.

One process owns the embedded chDB store, so the collector is mounted in-process and the
middleware hands batches to it through ``CollectorService.transport`` instead of HTTP. Mounted
apps' lifespans do not run, so this app's lifespan starts and stops the collector and flushes
capture.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp

from clinic.content import POLICY_LABEL, policy_text
from clinic.mail_page import mail_routes
from clinic.mailbox import Mailbox
from clinic.site import create_site
from collector.accounts import demo_accounts
from collector.logins import Logins
from collector.service import CollectorService
from collector.settings import CollectorSettings
from collector.store import Store
from collector.transport import InProcessIntake, InProcessRights
from consent_mw.capture.pipeline import Capture
from consent_mw.config import Secret
from consent_mw.consent.categories import Tag
from consent_mw.consent.middleware import ConsentMiddleware
from consent_mw.consent.notices import notice_pages
from consent_mw.consent.self_service import SelfService
from consent_mw.settings import Settings
from dashboards.app import create_dashboards
from dashboards.backends import Params, Rows, StoreBackend
from dashboards.desk_backend import LocalDesk
from dashboards.seed import seed
from dashboards.settings import DashboardSettings

GA_MEASUREMENT_ID = "G-DEMO000000"

#: The demo's one third-party tag: gated by analytics consent and listed in the
#: external-transmission notice (電気通信事業法 第27条の12).
GOOGLE_ANALYTICS = Tag(
    name="google_analytics",
    kind="google_analytics",
    category="analytics",
    service="google_analytics",
    measurement_id=GA_MEASUREMENT_ID,
    recipient={"ja": "Google LLC", "en": "Google LLC"},
    items={
        "ja": "閲覧したページのURL、参照元、日時、ブラウザ・端末の情報、IPアドレス、Cookie 識別子",
        "en": "URL of the pages viewed, referrer, time, browser and device information, "
        "IP address, cookie identifier",
    },
    purpose={
        "ja": "アクセス解析(サイトの利用状況の把握と改善)",
        "en": "Analytics: understanding and improving how the site is used",
    },
    opt_out={
        "ja": "クッキー設定で「アクセス解析」または「Google アナリティクス」をオフにしてください。",
        "en": "Turn off Analytics or Google Analytics in the cookie settings.",
    },
    opt_out_url="https://tools.google.com/dlpage/gaoptout",
)


def demo_settings(secret_key: str, **overrides: Any) -> Settings:
    """Middleware settings for the demo: the clinic's policy, the GA tag, env still applies."""
    values: dict[str, Any] = {
        "secret_keys": (Secret(secret_key),),
        "policy_label": POLICY_LABEL,
        "policy_text": policy_text(),
        "tags": (GOOGLE_ANALYTICS,),
        # The beacon reports taps on the phone number, LINE, the booking site and the price
        # list; the booking site's paths are the clinic's own, so they are kept.
        "beacon": True,
        "beacon_path_hosts": ("reserve.example.com",),
    }
    values.update(overrides)
    return Settings.from_env(**values)


@dataclass(slots=True, kw_only=True)
class DemoParts:
    """Handles on the composed pieces, for the CLI (banner URLs) and tests (flush)."""

    settings: Settings
    service: CollectorService
    middleware: ConsentMiddleware | None = None
    capture: Capture | None = None
    dashboards: ASGIApp | None = None
    dashboard_users: Mapping[str, str] = field(default_factory=dict)
    admin_token: tuple[str, str] = ("", "")  # (token, where it came from)
    seed_events: int = 0
    seeded: dict[str, int] | None = None
    #: The demo's own SMTP server, when no SMTP host is configured (``/demo/mail`` shows it).
    mailbox: Mailbox | None = None

    def start_mail(self) -> None:
        if self.mailbox is not None and not self.mailbox.running:
            self.mailbox.start()

    def stop_mail(self) -> None:
        if self.mailbox is not None:
            self.mailbox.stop()

    @property
    def store(self) -> Store:
        return self.service.store

    def flush(self, timeout: float = 5.0) -> bool:
        """Push everything captured so far into the store (tests, shutdown)."""
        if self.capture is None:
            return True
        return self.capture.force_flush(timeout)


#: The demo clinic's goals: a reservation, a phone tap, a LINE add, ... (collector.goals).
DEMO_GOALS = Path(__file__).resolve().parent / "goals.toml"


#: The demo site's members and the e-mail each registered with: the site's hook that lets a
#: request naming a member id be checked against the e-mail given (consent_mw.consent.
#: request_form). A real site looks its own member records up.
DEMO_MEMBERS: dict[str, str] = {"member-0001": "hanako@example.jp",
                                "member-0002": "taro@example.jp"}


def seed_if_empty(store: Store, events: int, *, days: int = 30) -> dict[str, int] | None:
    """Synthetic history for the dashboards, only into a store that has no events yet."""
    if events <= 0 or int(store.scalar("SELECT count() FROM events")) > 0:
        return None
    return seed(store, events=events, days=days)


def build_demo_app(
    store_dsn: str,
    *,
    secret_key: str,
    seed_events: int = 0,
    dashboard_password: str | None = None,
    admin_token: str | None = None,
    settings_overrides: Mapping[str, Any] | None = None,
    site_url: str = "",
) -> Starlette:
    """The composed demo; ``app.state.demo`` is its :class:`DemoParts`. ``site_url`` is where
    the demo is served (for the links in request mail)."""
    settings = demo_settings(secret_key, **dict(settings_overrides or {}))
    # The collector hashes ids with the middleware's key, so suppressions and purges match.
    collector_settings = CollectorSettings.from_env(
        store=store_dsn, hash_key=Secret(settings.hash_key.decode("utf-8")))
    if collector_settings.goals_file is None:  # the clinic's own, unless one is configured
        collector_settings = replace(collector_settings, goals_file=DEMO_GOALS)
    admin_from = "CONSENT_MW_ADMIN_TOKEN"
    changes: dict[str, Any] = {}
    if not collector_settings.admin_token:
        # So the admin API can be tried; printed at start, never stored.
        admin_from = "generated for this run"
        changes["admin_token"] = Secret(admin_token or secrets.token_urlsafe(18))
    if not collector_settings.collector_token:
        # The demo's capture hands batches over in-process; nothing should post over HTTP,
        # and without a token any local client (a proxy in front included) could.
        changes["collector_token"] = Secret(secrets.token_urlsafe(24))
    dashboard_settings, demo_passwords = _dashboard_settings(secret_key, dashboard_password)
    if not collector_settings.staff_users:  # the staff console logs in the same people
        changes["staff_users"] = dashboard_settings.users
    mailbox = None
    if collector_settings.smtp_host is None:
        # Request mail goes to a real SMTP server on this machine, shown at /demo/mail.
        mailbox = Mailbox()
        changes.update(smtp_host=mailbox.host, smtp_port=mailbox.port, smtp_starttls=False,
                       mail_from="privacy@aladdin-clinic.example")
    if site_url and not collector_settings.requests_url:
        changes["requests_url"] = f"{site_url.rstrip('/')}{settings.prefix}/requests/status"
    if not collector_settings.console_url:  # the console replaces the collector's page
        changes["console_url"] = (f"{site_url.rstrip('/')}/dashboards/requests" if site_url
                                  else "/dashboards/requests")
    collector_settings = replace(collector_settings, **changes)
    logins = Logins()  # one throttle: the dashboards and the staff console share accounts
    service = CollectorService(collector_settings, logins=logins,
                               notices=lambda: notice_pages(settings))
    parts = DemoParts(settings=settings, service=service, seed_events=seed_events,
                      admin_token=(collector_settings.admin_token.value, admin_from),
                      dashboard_users=demo_passwords, mailbox=mailbox)
    routes: list[BaseRoute] = [Mount("/_collector", app=service.app)]
    if mailbox is not None:
        routes += mail_routes(mailbox, settings.prefix)

    dashboards = create_dashboards(dashboard_settings, _ServiceStoreBackend(service),
                                   logins=logins,
                                   desk=LocalDesk(lambda: service.desk, service.notices))
    parts.dashboards = dashboards
    routes.append(Mount("/dashboards", app=dashboards))

    rights = InProcessRights(service.privacy)
    site = create_site(consent_prefix=settings.prefix, self_service=True)
    self_service = SelfService(settings, rights=rights, intake=InProcessIntake(service.desk),
                               account_email=DEMO_MEMBERS.get)
    middleware = ConsentMiddleware(site, settings=settings, transport=service.transport,
                                   self_service=self_service)
    parts.middleware = middleware
    parts.capture = middleware.capture
    if parts.capture is not None:
        # A suppression takes effect in this process's capture at once, not at next poll.
        rights.privacy.attach(parts.capture.suppressions)
    routes.append(Mount("", app=middleware))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # chDB calls block; keep them off the event loop.
        parts.start_mail()
        await run_in_threadpool(service.start)
        try:
            if parts.seed_events:
                parts.seeded = await run_in_threadpool(seed_if_empty, service.store,
                                                       parts.seed_events)
            if parts.capture is not None:
                parts.capture.start()
            yield
        finally:
            if parts.capture is not None:
                await run_in_threadpool(parts.capture.shutdown, 5.0)
            await run_in_threadpool(service.stop)
            parts.stop_mail()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.demo = parts
    return app


class _ServiceStoreBackend:
    """Dashboard queries on the collector's store, which opens only when the lifespan runs."""

    def __init__(self, service: CollectorService) -> None:
        self.service = service

    def run(self, name: str, params: Params) -> Rows:
        return StoreBackend(self.service.store).run(name, params)

    def add_item(self, item: str, body: Mapping[str, object], author: str) -> str:
        return StoreBackend(self.service.store).add_item(item, body, author)

    def delete_item(self, item: str, item_id: str, author: str) -> bool:
        return StoreBackend(self.service.store).delete_item(item, item_id, author)

    def for_page(self) -> StoreBackend:
        return StoreBackend(self.service.store).for_page()


def _dashboard_settings(secret_key: str, password: str | None
                        ) -> tuple[DashboardSettings, dict[str, str]]:
    """The dashboards' settings, with one demo login per role when none are configured; and
    those logins' passwords, to print."""
    env = os.environ
    settings = DashboardSettings.from_env()
    changes: dict[str, Any] = {}
    passwords: dict[str, str] = {}
    if not settings.users:  # no configured users: one demo login per role
        password = password or env.get("CONSENT_MW_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        users = demo_accounts(password)
        changes["users"] = users
        passwords = {name: password for name in users}
    if not env.get("CONSENT_MW_DASHBOARD_SECRET"):
        # Derived from the demo's persistent key, so dashboard logins survive a restart too.
        derived = hmac.new(secret_key.encode(), b"consent-mw demo dashboards", "sha256")
        changes["session_secret"] = Secret(derived.hexdigest())
    if changes:
        settings = replace(settings, **changes)
    return settings, passwords
