"""``consent-mw staff``: make the secrets a staff account's configuration holds."""

from __future__ import annotations

import click


@click.group()
def staff() -> None:
    """Staff accounts: password hashes and personal API tokens for CONSENT_MW_STAFF_USERS."""


@staff.command("hash-password")
def hash_password() -> None:
    """Prompt for a password and print its argon2 hash for the account's configuration."""
    from collector.accounts import hash_password as make_hash

    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise click.ClickException("use at least 12 characters")
    click.echo(make_hash(password))


@staff.command("new-token")
@click.option("--user", required=True, help="the account the token acts as")
def new_token(user: str) -> None:
    """Print a new personal token (give it to the person) and the SHA-256 to add to the
    account's tokens; only the digest is ever configured."""
    from collector.accounts import new_token as make_token

    token, digest = make_token()
    click.echo(f"token for {user} (shown once; the person sets CONSENT_MW_STAFF_TOKEN to it):")
    click.echo(f"  {token}")
    click.echo("add to the account's tokens, e.g. in [staff.users] of consent-mw.toml:")
    click.echo(f'  {user} = {{ role = "privacy", password_hash = "...", tokens = ["{digest}"] }}')
