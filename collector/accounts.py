"""Staff accounts: who may read the dashboards or act on visitors' rights.

Every such person has an account: a name, a role (``marketing``, ``privacy``, ``admin``), an
argon2id password hash and, optionally, the SHA-256 of personal API tokens. Accounts come from
configuration (``CONSENT_MW_STAFF_USERS`` or ``[staff.users]``, see :func:`parse_accounts`);
the collector's shared admin token stays for machines, and what it does is recorded with the
name its caller gives, marked as such. How people log in with them is ``collector.logins``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from consent_mw.config import SettingsError, Source

ROLES = ("marketing", "privacy", "admin")
#: Roles that may act on visitors' rights (the staff console, the admin API as a person).
PRIVACY_ROLES = frozenset({"privacy", "admin"})

_HASHER = PasswordHasher()
# A fixed hash to verify against for unknown users, so timing does not reveal who exists.
_DUMMY = _HASHER.hash(secrets.token_hex(8))


@dataclass(frozen=True, slots=True)
class Account:
    """One staff member."""

    name: str
    role: str
    password_hash: str = field(repr=False)
    token_sha256: tuple[str, ...] = field(default=(), repr=False)


def token_digest(token: str) -> str:
    """What configuration keeps of a personal token: its SHA-256, hex. Tokens are random and
    long, so a fast hash is enough (and lets every API call be checked cheaply)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh personal token and the digest to put in the account's configuration."""
    token = "cmw_" + secrets.token_urlsafe(32)
    return token, token_digest(token)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def parse_accounts(raw: Any, *, field_name: str = "staff_users") -> dict[str, Account]:
    """Accounts from a TOML table (``sato = {role = "privacy", password_hash = "$argon2id$...",
    tokens = ["<sha256>"]}``) or the environment form ``name:role:hash[:sha256,...]``,
    entries separated by ``;`` or new lines (argon2 hashes hold commas, never colons)."""
    if raw is None:
        return {}
    items: list[tuple[str, str, str, tuple[str, ...]]] = []
    if isinstance(raw, str):
        for entry in raw.replace("\n", ";").split(";"):
            if not entry.strip():
                continue
            parts = entry.strip().split(":", 3)
            if len(parts) < 3:
                raise SettingsError(field_name, "each entry must be name:role:hash[:tokens]")
            tokens = tuple(t for t in (parts[3].split(",") if len(parts) > 3 else ()) if t)
            items.append((parts[0], parts[1], parts[2], tokens))
    elif isinstance(raw, Mapping):
        for name, spec in raw.items():
            if not isinstance(spec, Mapping):
                raise SettingsError(f"{field_name}.{name}",
                                    "expected {role, password_hash, tokens}")
            tokens = spec.get("tokens", ())
            if not isinstance(tokens, list | tuple) or not all(isinstance(t, str)
                                                               for t in tokens):
                raise SettingsError(f"{field_name}.{name}.tokens", "expected a list of digests")
            items.append((str(name), str(spec.get("role", "")),
                          str(spec.get("password_hash", "")), tuple(tokens)))
    else:
        raise SettingsError(field_name, "expected a table of users")
    accounts: dict[str, Account] = {}
    for name, role, password_hash, tokens in items:
        if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise SettingsError(field_name, f"invalid user name {name!r}")
        if role not in ROLES:
            raise SettingsError(f"{field_name}.{name}.role",
                                f"must be one of {', '.join(ROLES)}")
        if not password_hash.startswith("$argon2"):
            raise SettingsError(f"{field_name}.{name}.password_hash",
                                "must be an argon2 hash (consent-mw staff hash-password)")
        for digest in tokens:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise SettingsError(f"{field_name}.{name}.tokens",
                                    "each token is kept as its SHA-256 in hex "
                                    "(consent-mw staff new-token)")
        accounts[name] = Account(name, role, password_hash, tokens)
    return accounts


def staff_accounts(env: Mapping[str, str], toml_path: str | None = None) -> dict[str, Account]:
    """The staff accounts: ``CONSENT_MW_STAFF_USERS`` or ``[staff.users]``, else the older
    dashboard-only ``CONSENT_MW_DASHBOARD_USERS`` or ``[dashboards.users]``. The collector and
    the dashboards both read them here, so a person has one login for both."""
    staff = Source.load("staff", env=env, toml_path=toml_path)
    raw = env.get("CONSENT_MW_STAFF_USERS") or staff.table.get("users")
    if raw:
        return parse_accounts(raw)
    dashboards = Source.load("dashboards", env=env, toml_path=toml_path)
    return parse_accounts(env.get("CONSENT_MW_DASHBOARD_USERS")
                          or dashboards.table.get("users"), field_name="dashboard_users")


def account_for_token(accounts: Mapping[str, Account], token: str) -> Account | None:
    """The account a personal token belongs to (constant-time over every digest)."""
    digest = token_digest(token)
    found: Account | None = None
    for account in accounts.values():
        for known in account.token_sha256:
            if hmac.compare_digest(known, digest):
                found = account
    return found


def demo_accounts(password: str) -> dict[str, Account]:
    """One account per role sharing ``password`` (the demo prints it)."""
    hashed = hash_password(password)
    return {role: Account(role, role, hashed) for role in ROLES}


def verify_password(accounts: Mapping[str, Account], name: str,
                    password: str) -> Account | None:
    account = accounts.get(name)
    try:
        _HASHER.verify(account.password_hash if account else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return account
