"""``consent-mw suppress|unsuppress|purge|export|requests|audit``: the privacy API from a shell.

These talk HTTP to the collector (the process that owns the store), so they never import chDB.
``audit verify --store`` is the exception: it opens a store that no collector is running on.
The token (``--token``, read by click from ``CONSENT_MW_STAFF_TOKEN``, else
``CONSENT_MW_ADMIN_TOKEN``) is the person's own, so the audit trail names them, or the shared
admin token with ``--requested-by`` (read from ``USER`` when not given). ``--reason`` and a
requester are required. Output is JSON on stdout; failures exit non-zero with a one-line
reason on stderr.
About 300 lines: one command per operation of the admin API, sharing their options.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import httpx

DEFAULT_URL = "http://127.0.0.1:8000/_collector"
TOKEN_ENV = "CONSENT_MW_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a secret)
STAFF_TOKEN_ENV = "CONSENT_MW_STAFF_TOKEN"  # noqa: S105
TIMEOUT = httpx.Timeout(10.0, read=600.0)  # a purge of a large store takes a while


def _token(token: str) -> str:
    """The ``--token`` given, which click reads from the environment when it is not."""
    if not token:
        raise click.ClickException(f"set {STAFF_TOKEN_ENV} to your personal token (or "
                                   f"{TOKEN_ENV} to the collector's admin token)")
    return token


def _reason(resp: httpx.Response, url: str) -> str:
    """The collector's reason, or a line saying the URL is not a collector at all (instead
    of, say, a whole HTML 404 page)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and (body.get("message") or body.get("error")):
        return f"HTTP {resp.status_code}: {body.get('message') or body.get('error')}"
    return (f"{url} did not answer as a consent-mw collector (HTTP {resp.status_code}, "
            f"{resp.headers.get('content-type', 'no content type')}); --url must be the "
            f"collector's base URL, e.g. {DEFAULT_URL}")


def _call(method: str, url: str, path: str, token: str, *,
          params: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
          spinner: str | None = None) -> httpx.Response:
    """One request with the token; a stderr spinner while it runs; errors exit 1."""
    target = url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {_token(token)}"}
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
        raise click.ClickException(_reason(resp, url))
    if "json" not in resp.headers.get("content-type", "") and "zip" not in resp.headers.get(
            "content-type", ""):
        raise click.ClickException(_reason(resp, url))
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


class Missing(click.ClickException):
    """A required value left empty: one line, exit status 2 (a usage error)."""

    exit_code = 2


def _accountable(reason: str, requested_by: str) -> None:
    """Every operation names why and for whom: the audit trail keeps both."""
    if not reason.strip():
        raise Missing("--reason is required: say why (e.g. \"Art. 6 request #43\")")
    if not requested_by.strip():
        raise Missing("--requested-by is required: name the person who asked")


#: The person's own token first, so the audit trail names them; the shared one otherwise.
token_option = click.option(
    "--token", default="", envvar=[STAFF_TOKEN_ENV, TOKEN_ENV], show_envvar=True,
    help="your personal token, else the collector's admin token; better set in the "
         "environment (a command line is visible to other users)")


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--visitor-id", help="the cmw_vid cookie value"),
        click.option("--user-id", help="the site's account id (hashed like the middleware)"),
        click.option("--url", default=DEFAULT_URL, show_default=True,
                     help="the collector's base URL"),
        click.option("--reason", default="", help="why (required; kept in the audit trail)"),
        click.option("--requested-by", default="", envvar="USER", show_envvar=True,
                     help="who asked (with a personal token, the token's owner is "
                          "recorded)"),
        click.option("--output", type=click.Path(path_type=Path), default=None,
                     help="write to this file instead of stdout"),
        token_option,
    ]):
        fn = option(fn)
    return fn


def _operation(name: str, spinner: str | None = None) -> click.Command:
    @click.command(name=name)
    @_common
    def command(visitor_id: str | None, user_id: str | None, url: str, reason: str,
                requested_by: str, output: Path | None, token: str) -> None:
        ids = _ids(visitor_id, user_id)
        _accountable(reason, requested_by)
        body = {**ids, "reason": reason.strip(), "requested_by": requested_by.strip()}
        resp = _call("POST", url, f"/v1/privacy/{name}", token, body=body, spinner=spinner)
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
           requested_by: str, output: Path | None, token: str, fmt: str) -> None:
    """Export everything about a visitor or account (Art. 5)."""
    if fmt == "csv" and output is None:
        raise click.UsageError("--format csv writes a zip: give --output FILE")
    ids = _ids(visitor_id, user_id)
    _accountable(reason, requested_by)
    params = {**ids, "format": fmt, "reason": reason.strip(),
              "requested_by": requested_by.strip()}
    resp = _call("GET", url, "/v1/privacy/export", token, params=params,
                 spinner="exporting")
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
@token_option
def requests_(url: str, limit: int, operation: str | None, token: str) -> None:
    """List the audit trail of privacy requests, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if operation:
        params["operation"] = operation
    _emit(_call("GET", url, "/v1/privacy/requests", token, params=params).json(), None)


@click.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command()
@click.option("--url", default=None, help=f"a running collector (default {DEFAULT_URL})")
@click.option("--store", default=None,
              help="a store DSN no collector is running on (chdb:///path or http(s)://)")
@token_option
def verify(url: str | None, store: str | None, token: str) -> None:
    """Recompute the hash chain; exit 1 if a row was edited, deleted or reordered."""
    if url and store:
        raise click.UsageError("give --url or --store, not both")
    if store:
        report = _verify_store(store)
    else:
        target = (url or DEFAULT_URL).rstrip("/") + "/v1/privacy/audit/verify"
        try:
            resp = httpx.get(target, headers={"Authorization": f"Bearer {_token(token)}"},
                             timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the collector: {exc}") from None
        if resp.status_code not in (200, 409):
            raise click.ClickException(_reason(resp, url or DEFAULT_URL))
        try:
            report = resp.json()
        except ValueError:
            raise click.ClickException(_reason(resp, url or DEFAULT_URL)) from None
    _emit(report, None)
    if not report.get("ok"):
        raise click.ClickException("the audit chain is broken")


def _verify_store(dsn: str) -> dict[str, Any]:
    """Verify the chain in a store opened here: one line when it cannot be opened."""
    from collector.privacy.audit import verify_chain
    from collector.store import Store

    with _native_stderr() as native:
        try:
            s = Store(dsn)
        except Exception as exc:  # chDB's errors for a directory in use are long and varied
            said = f"{exc} {native.read()}"
            if "lock" in said.lower() or "already running" in said.lower():
                raise click.ClickException(
                    f"the store {dsn} is in use by another process (a running collector or "
                    "demo): verify through it instead, consent-mw audit verify --url URL"
                ) from None
            raise click.ClickException(f"cannot open the store {dsn}: {_first_line(exc)}; "
                                       "to verify through a running collector use --url URL"
                                       ) from None
    try:
        return verify_chain(s).as_dict()
    except Exception as exc:
        raise click.ClickException(f"cannot read the audit trail in {dsn}: "
                                   f"{_first_line(exc)}") from None
    finally:
        s.close()


class _Captured:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def _native_stderr() -> Iterator[_Captured]:
    """Capture what native code (chDB) writes straight to file descriptor 2, so a failure is
    reported once, in our words, instead of as its multi-line log."""
    with tempfile.TemporaryDirectory() as tmp:
        captured = _Captured(Path(tmp) / "stderr")
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with captured.path.open("wb") as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    yield captured
                finally:
                    os.dup2(saved, 2)
        finally:
            os.close(saved)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
