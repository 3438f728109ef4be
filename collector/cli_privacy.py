"""``consent-mw suppress|unsuppress|purge|export|requests|audit``: the privacy API from a shell.

These talk HTTP to the collector (the process that owns the store), so they never import chDB.
``audit verify --store`` is the exception: it opens a store that no collector is running on.
The token comes from ``CONSENT_MW_ADMIN_TOKEN``. Output is JSON on stdout; failures exit
non-zero with the server's reason on stderr.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000/_collector"
TOKEN_ENV = "CONSENT_MW_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a secret)
TIMEOUT = httpx.Timeout(10.0, read=600.0)  # a purge of a large store takes a while


def _token() -> str:
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise click.ClickException(f"set {TOKEN_ENV} to the collector's admin token")
    return token


def _reason(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        return str(body.get("message") or body.get("error") or body)
    except ValueError:
        return resp.text[:300] or resp.reason_phrase


def _call(method: str, url: str, path: str, *, params: dict[str, Any] | None = None,
          body: dict[str, Any] | None = None, spinner: str | None = None) -> httpx.Response:
    """One request with the admin token; a stderr spinner while it runs; errors exit 1."""
    target = url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {_token()}"}
    stop = threading.Event()
    spin: threading.Thread | None = None
    if spinner and sys.stderr.isatty():
        def run() -> None:
            start, frames, i = time.monotonic(), "|/-\\", 0
            while not stop.wait(0.2):
                click.echo(f"\r{spinner} {frames[i % 4]} {time.monotonic() - start:.0f}s",
                           err=True, nl=False)
                i += 1
            click.echo("\r" + " " * 40 + "\r", err=True, nl=False)
        spin = threading.Thread(target=run, daemon=True)
        spin.start()
    elif spinner:
        click.echo(f"{spinner}...", err=True)
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            resp = client.request(method, target, params=params, json=body, headers=headers)
    except httpx.ConnectError as exc:
        raise click.ClickException(f"cannot reach the collector at {url}: {exc}") from None
    except httpx.HTTPError as exc:
        raise click.ClickException(f"request to {target} failed: {exc}") from None
    finally:
        stop.set()
        if spin is not None:
            spin.join()
    if resp.status_code >= 400:
        raise click.ClickException(f"HTTP {resp.status_code}: {_reason(resp)}")
    return resp


def _emit(data: Any, output: Path | None) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"written to {output}", err=True)


def _ids(visitor_id: str | None, user_id: str | None) -> dict[str, str]:
    if bool(visitor_id) == bool(user_id):
        raise click.UsageError("give exactly one of --visitor-id or --user-id")
    return {"visitor_id": visitor_id} if visitor_id else {"user_id": str(user_id)}


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--visitor-id", help="the cmw_vid cookie value"),
        click.option("--user-id", help="the site's account id (hashed like the middleware)"),
        click.option("--url", default=DEFAULT_URL, show_default=True,
                     help="the collector's base URL"),
        click.option("--reason", default="", help="why (kept in the audit trail)"),
        click.option("--requested-by", default=lambda: os.environ.get("USER", ""),
                     help="who asked (default: $USER)"),
        click.option("--output", type=click.Path(path_type=Path), default=None,
                     help="write to this file instead of stdout"),
    ]):
        fn = option(fn)
    return fn


def _operation(name: str, spinner: str | None = None) -> click.Command:
    @click.command(name=name)
    @_common
    def command(visitor_id: str | None, user_id: str | None, url: str, reason: str,
                requested_by: str, output: Path | None) -> None:
        body = {**_ids(visitor_id, user_id), "reason": reason, "requested_by": requested_by}
        resp = _call("POST", url, f"/v1/privacy/{name}", body=body, spinner=spinner)
        data = resp.json()
        _emit(data, output)
        if name == "purge" and data.get("remaining", 0) != 0:
            raise click.ClickException(f"purge incomplete: {data['remaining']} remaining")

    return command


suppress = _operation("suppress")
suppress.help = "Suppress a visitor or account (Art. 7): stop capture, hide rows, keep them."
unsuppress = _operation("unsuppress")
unsuppress.help = "Lift a suppression."
purge = _operation("purge", spinner="purging")
purge.help = "Delete every row about a visitor or account (Art. 6) and print the receipt."


@click.command()
@_common
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json",
              show_default=True, help="json, or csv files in a zip (needs --output)")
def export(visitor_id: str | None, user_id: str | None, url: str, reason: str,
           requested_by: str, output: Path | None, fmt: str) -> None:
    """Export everything about a visitor or account (Art. 5)."""
    if fmt == "csv" and output is None:
        raise click.UsageError("--format csv writes a zip: give --output FILE")
    params = {**_ids(visitor_id, user_id), "format": fmt, "reason": reason,
              "requested_by": requested_by}
    resp = _call("GET", url, "/v1/privacy/export", params=params, spinner="exporting")
    if fmt == "csv":
        assert output is not None
        output.write_bytes(resp.content)
        click.echo(f"written to {output}", err=True)
        return
    _emit(resp.json(), output)


@click.command(name="requests")
@click.option("--url", default=DEFAULT_URL, show_default=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--operation", default=None, help="only this operation")
def requests_(url: str, limit: int, operation: str | None) -> None:
    """List the audit trail of privacy requests, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if operation:
        params["operation"] = operation
    _emit(_call("GET", url, "/v1/privacy/requests", params=params).json(), None)


@click.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command()
@click.option("--url", default=None, help=f"a running collector (default {DEFAULT_URL})")
@click.option("--store", default=None,
              help="a store DSN no collector is running on (chdb:///path or http(s)://)")
def verify(url: str | None, store: str | None) -> None:
    """Recompute the hash chain; exit 1 if a row was edited, deleted or reordered."""
    if url and store:
        raise click.UsageError("give --url or --store, not both")
    if store:
        from collector.audit import verify_chain
        from collector.store import Store

        s = Store(store)
        try:
            report = verify_chain(s).as_dict()
        finally:
            s.close()
    else:
        target = (url or DEFAULT_URL).rstrip("/") + "/v1/privacy/audit/verify"
        try:
            resp = httpx.get(target, headers={"Authorization": f"Bearer {_token()}"},
                             timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the collector: {exc}") from None
        if resp.status_code not in (200, 409):
            raise click.ClickException(f"HTTP {resp.status_code}: {_reason(resp)}")
        report = resp.json()
    _emit(report, None)
    if not report.get("ok"):
        raise click.ClickException("the audit chain is broken")
