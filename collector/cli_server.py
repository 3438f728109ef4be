"""``consent-mw collector`` (serve the collector) and ``consent-mw retention`` (apply TTLs now)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from consent_mw.config import SettingsError

if TYPE_CHECKING:
    from collector.privacy.evidence import Notices
    from collector.settings import CollectorSettings


def _settings(store: str | None) -> CollectorSettings:
    # Imported here: `consent-mw --help` must not pay for the collector's dependencies.
    from collector.settings import CollectorSettings

    try:
        if store:
            return CollectorSettings.from_env(store=store)
        return CollectorSettings.from_env()
    except SettingsError as exc:
        raise click.ClickException(f"invalid setting {exc}") from exc


def _notices() -> Notices | None:
    """The web processes' notices for the evidence pack, when this process has their settings
    (the same ``CONSENT_MW_*`` environment); else the pack says they are not included."""
    from consent_mw.consent.notices import notice_pages
    from consent_mw.settings import Settings

    try:
        web = Settings.from_env()
    except SettingsError as exc:
        click.echo(f"evidence packs will not include the consent notices: {exc}", err=True)
        return None
    return lambda: notice_pages(web)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=click.IntRange(1, 65535))
@click.option("--store", default=None, help="Store DSN (default CONSENT_MW_STORE).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def collector(host: str, port: int, store: str | None, log_level: str) -> None:
    """Run the collector (POST /v1/events, privacy API, metrics) with uvicorn."""
    import uvicorn

    from collector.service import CollectorService
    from collector.store import StoreError

    settings = _settings(store)
    service = CollectorService(settings, notices=_notices())
    try:
        service.start()  # fail here, with a clear message, rather than inside the lifespan
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    service.stop()  # the embedded store is opened again by the app's lifespan
    from collector.gc_tuning import tune_for_ingest

    tune_for_ingest()  # this command owns the process: see collector/gc_tuning.py
    uvicorn.run(service.app, host=host, port=port, log_level=log_level)


@click.command()
@click.option("--apply", "apply_", is_flag=True, help="Apply the TTLs now (else: show them).")
@click.option("--store", default=None, help="Store DSN (default CONSENT_MW_STORE).")
def retention(apply_: bool, store: str | None) -> None:
    """Show the configured retention, or with --apply enforce it now (MATERIALIZE TTL)."""
    from collector.ddl.migrations import apply_migrations, retention_statements
    from collector.retention import apply_retention
    from collector.store import Store, StoreError

    settings = _settings(store)
    opts = settings.ddl_options
    if not apply_:
        for sql in retention_statements(opts):
            click.echo(sql)
        click.echo("(dry run: pass --apply to enforce these TTLs now)")
        return
    try:
        s = Store(settings.store)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if not s.scalar("EXISTS TABLE events"):
            # A fresh store. (On an existing one, migrations' MODIFY TTL would already drop
            # rows and the report would not show them.)
            apply_migrations(s, opts)
        report = apply_retention(s, opts)
    except Exception as exc:
        raise click.ClickException(f"retention failed: {exc}") from exc
    finally:
        s.close()
    for table, removed in report.removed.items():
        click.echo(f"{table}: {report.before[table]} rows before, {removed} removed")
