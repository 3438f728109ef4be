"""Reading and writing the middleware's cookies: signed consent, visitor, session, banner-shown.

``cmw_consent`` is signed with itsdangerous under its own salt; the first of
``settings.secret_keys`` signs and every key verifies, so keys can be rotated. Anything
that does not verify cleanly is treated as *no decision* and never raises.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from dataclasses import dataclass
from typing import NamedTuple

from itsdangerous import BadData, URLSafeTimedSerializer

from consent_mw.bounded import BoundedCache
from consent_mw.consent.decision import parse_payload, to_payload
from consent_mw.ids import VISITOR_ID_RE, is_valid_id, visitor_binding
from consent_mw.mac import KeyedMac
from consent_mw.settings import Settings
from consent_mw.state import ConsentState

MAX_COOKIE_LEN = 4096
SHOWN_MAX_AGE = 30 * 60  # a consent-less visitor yields at most one `shown` record per 30 min
VERIFIED_CACHE_SIZE = 4096
VERIFIED_CACHE_BYTES = 4 * 1024 * 1024
_BINDING_LEN = 32
#: How far ahead of this server's clock a marker's time may be (another web process's clock).
CLOCK_SLACK = 60
_RECORD_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def parse_cookie_header(values: list[bytes]) -> dict[str, list[str]]:
    """Every value of every cookie name, so duplicates can be noticed (and distrusted)."""
    cookies: dict[str, list[str]] = {}
    for raw in values:
        text = raw.decode("latin-1")
        for part in text.split(";"):
            name, sep, value = part.partition("=")
            if not sep:
                continue
            name = name.strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, []).append(value)
    return cookies


def single(cookies: dict[str, list[str]], name: str) -> str | None:
    """The cookie's value when it is present exactly once; duplicates count as absent."""
    values = cookies.get(name)
    if not values or len(values) != 1 or len(values[0]) > MAX_COOKIE_LEN:
        return None
    return values[0]


def _canonical(token: str) -> bool:
    """Each dot-separated part is canonical base64url: rejects bit-flips that decode the same."""
    for part in token.lstrip(".").split("."):
        try:
            padded = part + "=" * (-len(part) % 4)
            decoded = base64.urlsafe_b64decode(padded.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return False
        if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != part:
            return False
    return True


class ShownMarker(NamedTuple):
    """A verified banner-shown marker (``cmw_consent_shown``)."""

    consent_id: str
    record_id: str | None  # of the ``shown`` record: the decision links to it
    until: float  # when the marker expires (s since the epoch)


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """A verified consent cookie: the decision plus bookkeeping kept beside it."""

    state: ConsentState
    gpc_recorded: bool = False
    record_id: str | None = None
    signed_at: int = 0  # seconds since epoch; for re-issuing without extending Max-Age
    #: ``ids.visitor_binding`` of the visitor id issued to this browser, if any: the only
    #: visitor id the middleware will accept from it.
    visitor_binding: str | None = None

    def binds(self, visitor_id: str | None) -> bool:
        """Whether ``visitor_id`` is the one this consent was issued with."""
        binding = self.visitor_binding
        return (binding is not None and visitor_id is not None
                and hmac.compare_digest(visitor_binding(visitor_id), binding))


class CookieCodec:
    """Signs and verifies the middleware's cookies for one Settings; built once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # itsdangerous signs with the *last* key; settings list the signing key first.
        keys = [k.value for k in reversed(settings.secret_keys)]
        self._consent = URLSafeTimedSerializer(keys, salt=settings.cookie_salt)
        # The session cookie and the banner marker are not signed payloads: one is re-issued
        # once a minute, the other on every new visitor's first page, and both must stay
        # cheap. An HMAC tag over their few fields does the job. Every key verifies.
        self._session_keys = [KeyedMac((settings.cookie_salt + ".sid:" + k.value).encode())
                              for k in settings.secret_keys]
        self._shown_keys = [KeyedMac((settings.cookie_salt + ".shown:" + k.value).encode())
                            for k in settings.secret_keys]
        # A marker counts for the policy version it was shown under only.
        self._shown_policy = settings.policy_version.encode("utf-8")
        # Verifying a cookie (base64, HMAC, zlib, JSON) costs more than a whole bare request;
        # a returning visitor sends the same value on every page, so each distinct value is
        # verified once. Only verified values are cached, and their age is checked on each hit.
        self._verified: BoundedCache[str, StoredConsent] = BoundedCache(
            max_entries=VERIFIED_CACHE_SIZE, max_bytes=VERIFIED_CACHE_BYTES)

    # consent -----------------------------------------------------------------------------
    def dump_consent(self, state: ConsentState, *, gpc_recorded: bool = False,
                     record_id: str | None = None, visitor_id: str | None = None) -> str:
        """The signed cookie value; ``visitor_id`` is bound to it (see :meth:`StoredConsent.
        binds`)."""
        return self._consent.dumps(to_payload(
            state, gpc_recorded=gpc_recorded, record_id=record_id,
            visitor_binding=visitor_binding(visitor_id) if visitor_id else None))

    def load_consent(self, value: str | None) -> StoredConsent | None:
        """The decision in a cookie value, or None for anything not clean, current and ours."""
        if not value or len(value) > MAX_COOKIE_LEN:
            return None
        cached = self._verified.get(value)
        if cached is not None:
            if self._current(cached, time.time()):
                return cached
            self._verified.pop(value)
            return None
        stored = self._verify(value)
        if stored is not None:
            self._verified.put(value, stored, 2 * len(value))
        return stored

    def _current(self, stored: StoredConsent, now: float) -> bool:
        return now <= self.expires_at(stored)

    def expires_at(self, stored: StoredConsent) -> float:
        """When a verified consent stops counting (s): re-signing never extends it."""
        decided = (stored.state.decided_at or 0) // 1000
        return float(min(stored.signed_at, decided) + self.settings.consent_max_age)

    def _verify(self, value: str) -> StoredConsent | None:
        if not _canonical(value):
            return None
        try:
            payload, signed_at = self._consent.loads(
                value, max_age=self.settings.consent_max_age, return_timestamp=True
            )
        except (BadData, ValueError, TypeError, UnicodeError):
            return None
        state = parse_payload(payload, self.settings)
        # The decision time bounds the lifetime too, so re-signing never extends it.
        if state is None or (state.decided_at or 0) // 1000 + self.settings.consent_max_age < (
            time.time()
        ):
            return None
        assert isinstance(payload, dict)  # parse_payload checked
        rid = payload.get("r")
        binding = payload.get("vb")
        return StoredConsent(
            state=state,
            gpc_recorded=payload.get("gr") is True,
            record_id=rid if isinstance(rid, str) and len(rid) <= 64 else None,
            signed_at=int(signed_at.timestamp()),
            visitor_binding=(binding if isinstance(binding, str)
                             and len(binding) == _BINDING_LEN else None),
        )

    # session ------------------------------------------------------------------------------
    def _session_tag(self, mac: KeyedMac, visitor_id: str, session_id: str, stamp: str
                     ) -> str:
        message = f"{visitor_id}:{session_id}:{stamp}".encode("ascii")
        return mac.hexdigest(message)[:_BINDING_LEN]

    def dump_session(self, session_id: str, visitor_id: str, now: float) -> str:
        """``cmw_sid``: ``<id>.<when set, unix seconds hex>.<tag>``. The time lets the
        middleware slide the cookie once a minute instead of on every response; the tag binds
        the session to the visitor id, so a session cookie is only ever the server's."""
        stamp = f"{int(now):x}"
        tag = self._session_tag(self._session_keys[0], visitor_id, session_id, stamp)
        return f"{session_id}.{stamp}.{tag}"

    def load_session(self, value: str | None, visitor_id: str | None
                     ) -> tuple[str, int] | None:
        """(session id, when set) from a ``cmw_sid`` issued with ``visitor_id``, else None."""
        if not value or visitor_id is None or len(value) > 128:
            return None
        sid, _, rest = value.partition(".")
        stamp, _, tag = rest.partition(".")
        if (valid_session_id(sid) is None or not 0 < len(stamp) <= 10
                or not all(c in "0123456789abcdef" for c in stamp)
                or len(tag) != _BINDING_LEN):
            return None
        for key in self._session_keys:
            if hmac.compare_digest(self._session_tag(key, visitor_id, sid, stamp), tag):
                return sid, int(stamp, 16)
        return None

    # banner-shown marker -----------------------------------------------------------------
    def _shown_tag(self, mac: KeyedMac, consent_id: str, record_id: str, stamp: str) -> str:
        message = f"{consent_id}:{record_id}:{stamp}:".encode("ascii") + self._shown_policy
        return mac.hexdigest(message)[:_BINDING_LEN]

    def dump_shown(self, consent_id: str, record_id: str | None = None, *,
                   now: float | None = None) -> str:
        """The banner-shown marker, ``<consent id>.<record id>.<when, hex>.<tag>``: the
        consent id and record id of the ``shown`` record, for this policy version."""
        if not is_valid_id(consent_id):
            raise ValueError("a shown marker needs a valid consent id")
        rid = record_id if record_id and _RECORD_ID_RE.fullmatch(record_id) else ""
        stamp = f"{int(time.time() if now is None else now):x}"
        tag = self._shown_tag(self._shown_keys[0], consent_id, rid, stamp)
        return f"{consent_id}.{rid}.{stamp}.{tag}"

    def load_shown(self, value: str | None) -> str | None:
        """The consent id of a recent ``shown`` record for this policy version, if any."""
        shown = self.load_shown_until(value)
        return shown.consent_id if shown else None

    def load_shown_until(self, value: str | None) -> ShownMarker | None:
        """:meth:`load_shown`, the record's id and when the marker expires."""
        if not value or len(value) > 160:
            return None
        parts = value.split(".")
        if len(parts) != 4:
            return None
        cid, rid, stamp, tag = parts
        if (not is_valid_id(cid) or (rid and not _RECORD_ID_RE.fullmatch(rid))
                or not 0 < len(stamp) <= 10 or not all(c in "0123456789abcdef" for c in stamp)
                or len(tag) != _BINDING_LEN):
            return None
        issued = int(stamp, 16)
        now = time.time()
        if not now - SHOWN_MAX_AGE <= issued <= now + CLOCK_SLACK:
            return None
        for key in self._shown_keys:
            if hmac.compare_digest(self._shown_tag(key, cid, rid, stamp), tag):
                return ShownMarker(cid, rid or None, float(issued + SHOWN_MAX_AGE))
        return None


def valid_visitor_id(value: str | None) -> str | None:
    return value if value and VISITOR_ID_RE.fullmatch(value) else None


def valid_session_id(value: str | None) -> str | None:
    return value if value and is_valid_id(value) and len(value) <= 32 else None


def set_cookie(name: str, value: str, *, max_age: int, secure: bool, path: str = "/") -> str:
    """A ``Set-Cookie`` value: always HttpOnly and SameSite=Lax; Secure over https, and always
    for ``__Host-``/``__Secure-`` names (browsers refuse them otherwise, and behind a
    TLS-terminating proxy the request itself may look like plain http)."""
    secure = secure or name.startswith(("__Host-", "__Secure-"))
    parts = [f"{name}={value}", f"Max-Age={max(0, int(max_age))}", f"Path={path}",
             "HttpOnly", "SameSite=Lax"]
    if max_age <= 0:
        parts.insert(2, "Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def expire_cookie(name: str, *, secure: bool) -> str:
    return set_cookie(name, "", max_age=0, secure=secure)


def remaining_max_age(stored: StoredConsent, settings: Settings) -> int:
    """Seconds left on a consent cookie, so re-signing it never extends its lifetime."""
    decided = (stored.state.decided_at or 0) // 1000
    return max(0, decided + settings.consent_max_age - int(time.time()))
