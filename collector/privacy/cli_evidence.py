"""``consent-mw evidence --from DATE --to DATE --out pack.zip``: the evidence pack, from a shell.

Like the other privacy verbs it asks the collector that owns the store
(``GET /v1/privacy/evidence``), so a web-only install runs it. What the pack holds is
``collector.privacy.evidence``; its ``index.html`` explains each file in Japanese and English.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from collector.privacy.cli import DEFAULT_URL, _call, token_option


@click.command()
@click.option("--from", "start", required=True, help="first day (YYYY-MM-DD, UTC)")
@click.option("--to", "end", required=True, help="last day, included (YYYY-MM-DD, UTC)")
@click.option("--out", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the zip")
@click.option("--url", default=DEFAULT_URL, show_default=True)
@click.option("--requested-by", default="", envvar="USER", show_envvar=True,
              help="who asks (with a personal token, the token's owner is recorded)")
@token_option
def evidence(start: str, end: str, output: Path, url: str, requested_by: str,
             token: str) -> None:
    """Write the evidence pack for a period: policy versions, notices, consent records,
    privacy requests and receipts, the verified audit chain, retention."""
    resp = _call("GET", url, "/v1/privacy/evidence", token, spinner="building the pack",
                 params={"from": start, "to": end, "requested_by": requested_by.strip()})
    try:
        output.write_bytes(resp.content)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"written to {output} (sha256 {hashlib.sha256(resp.content).hexdigest()})",
               err=True)
