"""Passwords (argon2id), signed session cookies (itsdangerous) and who may see which page."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dashboards.settings import ROLES, User

_HASHER = PasswordHasher()
# A fixed hash to verify against for unknown users, so timing does not reveal who exists.
_DUMMY = _HASHER.hash(secrets.token_hex(8))

#: Page → roles that may open it. Marketing never gets the privacy-staff page.
PAGE_ROLES: dict[str, frozenset[str]] = {
    "overview": frozenset({"marketing", "admin"}),
    "acquisition": frozenset({"marketing", "admin"}),
    "audience": frozenset({"marketing", "admin"}),
    "events": frozenset({"marketing", "admin"}),
    "consent": frozenset({"marketing", "privacy", "admin"}),
    "privacy": frozenset({"privacy", "admin"}),
}


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(users: Mapping[str, User], name: str, password: str) -> User | None:
    """The user when the password matches; None otherwise (constant work either way)."""
    user = users.get(name)
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    return user


def demo_users(password: str | None = None) -> tuple[dict[str, User], str]:
    """One user per role sharing ``password`` (generated when None), and text to print."""
    password = password or secrets.token_urlsafe(12)
    hashed = hash_password(password)
    users = {role: User(role, role, hashed) for role in ROLES}
    printable = "dashboard logins (user / password): " + ", ".join(
        f"{role} / {password}" for role in ROLES)
    return users, printable


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str


class Sessions:
    """Signed, time-limited session cookies; the role is re-checked against config on use."""

    def __init__(self, secret: str, max_age: int) -> None:
        self._s = URLSafeTimedSerializer(secret, salt="consent-mw.dashboards.session")
        self.max_age = max_age

    def dump(self, user: User) -> str:
        return self._s.dumps({"u": user.name, "r": user.role})

    def load(self, cookie: str | None, users: Mapping[str, User]) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._s.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user = users.get(str(data.get("u")))
        # A user removed from config, or whose role changed, is logged out.
        if user is None or user.role != data.get("r"):
            return None
        return Session(user.name, user.role)
