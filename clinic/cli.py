"""``consent-mw demo``: clinic site, consent middleware, collector and dashboards, one process."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

DEFAULT_SEED_DAYS = 30


def default_store() -> str:
    return f"chdb://{Path.cwd() / 'var' / 'consent-mw.chdb'}"


def check_store_dsn(dsn: str) -> str:
    """A usable DSN or a UsageError naming the problem (before anything heavy is imported)."""
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        if not parts.path or parts.path == "/":
            raise click.BadParameter("chdb DSN needs a directory: chdb:///path/to/store",
                                     param_hint="--store")
        return dsn
    if parts.scheme in {"http", "https"}:
        if not parts.hostname:
            raise click.BadParameter("missing host in the ClickHouse URL", param_hint="--store")
        return dsn
    raise click.BadParameter(
        f"unsupported scheme {parts.scheme!r}: use chdb:///path or http(s)://host:8123",
        param_hint="--store",
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now, so "port in use" is a clear error before the store is opened."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.BadParameter(f"cannot resolve {host!r}: {exc}", param_hint="--host") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use; pick another with --port"
            ) from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else host  # noqa: S104 - display only
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--store", "store_dsn", envvar="CONSENT_MW_STORE", default=None,
              help="chdb:///path or http(s)://… ClickHouse (env CONSENT_MW_STORE); "
                   "default chdb://<cwd>/var/consent-mw.chdb.")
@click.option("--seed", "seed_events", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed this many synthetic events (30 days) when the store is empty.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request with the client's IP (off: consent applies to logs too).")
def demo(host: str, port: int, store_dsn: str | None, seed_events: int, log_level: str,
         access_log: bool) -> None:
    """Serve the demo clinic site with consent gating, collector and dashboards."""
    dsn = check_store_dsn(store_dsn or default_store())

    from clinic.secret import SecretError, load_or_create_secret

    var_dir = Path.cwd() / "var"
    try:
        secret_key, secret_from = load_or_create_secret(var_dir / "secret_key")
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None

    sock = bind_socket(host, port)
    try:
        _serve(sock, host, port, dsn, secret_key, secret_from, seed_events, log_level,
               access_log)
    finally:
        sock.close()


def _serve(
    sock: socket.socket, host: str, port: int, dsn: str, secret_key: str, secret_from: str,
    seed_events: int, log_level: str, access_log: bool,
) -> None:
    import uvicorn

    from clinic.app import DemoParts, build_demo_app, seed_if_empty
    from collector.store import StoreError
    from consent_mw.config import SettingsError

    try:
        app = build_demo_app(dsn, secret_key=secret_key, seed_events=seed_events,
                             site_url=_base_url(host, port))
    except SettingsError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    parts: DemoParts = app.state.demo

    try:
        # Open the store (and seed it) before serving so a bad store is a clear error, not a
        # traceback from inside the server's startup.
        parts.start_mail()
        parts.service.start()
        if seed_events:
            click.echo(f"Seeding {seed_events} synthetic events if the store is empty…")
            parts.seeded = seed_if_empty(parts.store, seed_events)
            parts.seed_events = 0  # done: the lifespan must not try again
            click.echo(f"  seeded: {parts.seeded}" if parts.seeded else "  store not empty")
    except StoreError as exc:
        parts.service.stop()
        parts.stop_mail()
        raise click.ClickException(str(exc)) from None

    base = _base_url(host, port)
    _print_banner(base, dsn, secret_from, parts)

    # No access log by default: it would record every visitor's IP address and full URL
    # (search terms, ad click ids) whatever they consented to. No proxy-header rewriting
    # either: the consent middleware alone decides which proxies to trust for the client IP.
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", server_header=False,
                            access_log=access_log, proxy_headers=False)
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it has shut down; a handler that
    # ignores it turns a clean Ctrl-C / SIGTERM shutdown into exit status 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _ignore)
    try:
        server.run(sockets=[sock])
    finally:
        parts.service.stop()
        parts.stop_mail()
    if not server.started:
        raise click.ClickException("the demo failed to start (see the log above)")
    click.echo("consent-mw demo stopped.")


def _ignore(signum: int, frame: Any) -> None:
    """Placeholder handler: uvicorn installs its own while serving."""


def _print_banner(base: str, dsn: str, secret_from: str, parts: Any) -> None:
    lines = [
        "",
        "consent-mw demo",
        f"  clinic site (ja)      {base}/",
        f"  clinic site (en)      {base}/en/",
        f"  cookie settings       {base}{parts.settings.prefix}/preferences",
        f"  external transmission {base}{parts.settings.prefix}/external-transmission",
        f"  dashboards            {base}/dashboards/",
        f"  privacy requests      {base}{parts.settings.prefix}/requests",
        f"  request console       {base}/dashboards/requests   (log in as privacy)",
        f"  collector health      {base}/_collector/healthz",
        f"  collector metrics     {base}/_collector/metrics",
        f"  store                 {parts.service.store.masked_dsn}",
        f"  secret key from       {secret_from}",
    ]
    if parts.dashboard_users:
        passwords = set(parts.dashboard_users.values())
        users = ", ".join(parts.dashboard_users)
        shown = passwords.pop() if len(passwords) == 1 else "(see CONSENT_MW_DEMO_PASSWORD)"
        origin = ("CONSENT_MW_DEMO_PASSWORD" if os.environ.get("CONSENT_MW_DEMO_PASSWORD")
                  else "generated for this run")
        lines.append(f"  dashboard logins      {users}")
        lines.append(f"  dashboard password    {shown}   ({origin})")
    else:
        lines.append("  dashboard logins      from CONSENT_MW_DASHBOARD_USERS / consent-mw.toml")
    if parts.mailbox is not None:
        lines.append(f"  demo mailbox          {base}/demo/mail   (SMTP on port "
                     f"{parts.mailbox.port})")
    token, origin = parts.admin_token
    if origin.startswith("generated"):
        lines.append(f"  privacy admin token   {token}   ({origin})")
    else:
        lines.append(f"  privacy admin token   from {origin}")
    lines.append("")
    click.echo("\n".join(lines), file=sys.stdout)
