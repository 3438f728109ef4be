"""``consent-mw dashboards`` (serve them alone) and ``consent-mw seed`` (synthetic traffic)."""

from __future__ import annotations

import os
import time

import click

from consent_mw.config import SettingsError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--store", "store_dsn", envvar="CONSENT_MW_STORE", default=None,
              help="chdb:///path or http(s)://user:pass@host:8123/db")
@click.option("--collector-url", envvar="CONSENT_MW_COLLECTOR_URL", default=None,
              help="Query through this collector (required for a chdb:// store).")
@click.option("--query-token", envvar="CONSENT_MW_QUERY_TOKEN", default=None,
              help="The collector's query_token (env CONSENT_MW_QUERY_TOKEN).")
@click.option("--admin-token", envvar="CONSENT_MW_ADMIN_TOKEN", default=None,
              help="The collector's admin token, for the privacy-request console "
                   "(env CONSENT_MW_ADMIN_TOKEN; with --collector-url).")
@click.option("--config", "toml_path", default=None, help="TOML file with [dashboards].")
@click.option("--hash-password", is_flag=True,
              help="Prompt for a password, print its argon2 hash for the users config, exit.")
def dashboards(host: str, port: int, store_dsn: str | None, collector_url: str | None,
               query_token: str | None, admin_token: str | None, toml_path: str | None,
               hash_password: bool) -> None:
    """Serve the marketing dashboards on their own."""
    from collector.accounts import hash_password as make_hash

    if hash_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        click.echo(make_hash(password))
        return
    import uvicorn

    from dashboards.app import create_dashboards
    from dashboards.backends import Backend, CollectorBackend, StoreBackend
    from dashboards.desk_backend import HttpDesk
    from dashboards.settings import DashboardSettings

    try:
        settings = DashboardSettings.from_env(toml_path=toml_path)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.users:
        raise click.ClickException(
            "no dashboard users: set CONSENT_MW_DASHBOARD_USERS='name:role:hash;...' or "
            "[dashboards.users] (hash with: consent-mw dashboards --hash-password)")
    backend: Backend
    if collector_url:
        if not query_token:
            raise click.ClickException("--collector-url needs --query-token (the collector's "
                                       "query_token)")
        backend = CollectorBackend(collector_url, query_token)
    elif store_dsn and store_dsn.startswith("chdb:"):
        raise click.ClickException(
            "a chdb:// store is owned by the one process that opened it (the collector); "
            "these dashboards run in another process, so pass --collector-url and "
            "--query-token to query through the collector's read-only /v1/query")
    elif store_dsn:
        from collector.store import Store

        backend = StoreBackend(Store(store_dsn))
    else:
        raise click.ClickException("pass --store http(s)://... or --collector-url")
    # The request console acts through the collector that owns the requests and the mail.
    desk = HttpDesk(collector_url, admin_token) if collector_url and admin_token else None
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    async def home(request: object) -> RedirectResponse:
        return RedirectResponse("/dashboards/")

    app = Starlette(routes=[Route("/", home),
                            Mount("/dashboards", app=create_dashboards(settings, backend,
                                                                       desk=desk))])
    uvicorn.run(app, host=host, port=port, log_level="info")


@click.command()
@click.option("--events", default=100_000, show_default=True, type=int)
@click.option("--days", default=30, show_default=True, type=int)
@click.option("--store", "store_dsn", envvar="CONSENT_MW_STORE",
              default=lambda: f"chdb://{os.path.abspath('var/consent-mw.chdb')}",
              show_default="chdb://./var/consent-mw.chdb")
@click.option("--rng-seed", default=1, show_default=True, type=int)
def seed(events: int, days: int, store_dsn: str, rng_seed: int) -> None:
    """Insert synthetic clinic traffic (events and consent records) into a store."""
    from collector.ddl.migrations import apply_migrations
    from collector.ddl.tables import DdlOptions
    from collector.store import Store, StoreError
    from dashboards.seed import seed as run_seed

    if events < 0 or days < 1:
        raise click.ClickException("--events must be >= 0 and --days >= 1")
    try:
        store = Store(store_dsn)
    except StoreError as exc:
        raise click.ClickException(
            f"{exc} (is a collector already using this chDB store?)") from None
    try:
        apply_migrations(store, DdlOptions())
        started = time.perf_counter()
        counts = run_seed(store, events, days, rng_seed)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    click.echo(f"seeded {counts['events']:,} events and {counts['consent_records']:,} consent "
               f"records over {days} days in {elapsed:.1f}s ({store.masked_dsn})")
