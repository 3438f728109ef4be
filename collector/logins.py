"""The logins of the dashboards and the privacy-staff console, defended the same way.

- :class:`LoginGuard`: after a few failures, each account and each client address (resolved
  through the trusted proxies) must wait, doubling up to 15 minutes; a success clears the
  account. Over the limit the answer is 429 with ``Retry-After``, before any password work.
- :class:`PasswordChecker`: at most ``max_concurrent`` argon2 checks run at once (each takes
  64 MiB); others wait up to a few seconds, then get a 503. Memory stays bounded however many
  logins arrive together.
- :class:`SessionStore`: sessions live on the server. The cookie holds a signed random id;
  logout deletes the session, so a copied cookie stops working.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import anyio
import anyio.to_thread
from itsdangerous import BadData, URLSafeSerializer

from collector.accounts import Account, verify_password
from collector.errors import CollectorError


class LoginGuard:
    """Failed logins per key (an account, an address). Within the first ``free`` attempts,
    tries in flight count as attempts: a burst of concurrent logins cannot all get through
    before the first failure is recorded. After ``free`` failures the next try must wait
    ``base * 2**(n - free)`` seconds after the last one, at most ``cap``, and only one try at a
    time is let through.

    Use: ``wait = begin(*keys)``; None means go ahead, and ``finish(*keys, failed=...)`` must
    follow (``succeeded(key)`` clears a key after a good password).
    """

    def __init__(self, *, free: int = 5, base: float = 1.0, cap: float = 900.0,
                 max_keys: int = 65_536) -> None:
        self.free, self.base, self.cap, self.max_keys = free, base, cap, max_keys
        # key -> (failures, monotonic time of the last failure, attempts in flight)
        self._state: OrderedDict[str, tuple[int, float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float | None:
        failures, last, flying = self._state.get(key, (0, 0.0, 0))
        if failures + flying < self.free:
            return None
        if failures >= self.free:
            ready = last + min(self.cap, self.base * 2.0 ** (failures - self.free))
            if ready > now:
                return ready - now
            if not flying:
                return None  # the one try the delay allows
        return 1.0  # the budget is taken by tries in flight: come back in a moment

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until any of ``keys`` may try again, or None (reserves nothing)."""
        now = time.monotonic()
        with self._lock:
            waits = [w for w in (self._wait(k, now) for k in keys) if w is not None]
        return max(waits) if waits else None

    def begin(self, *keys: str) -> float | None:
        """Reserve an attempt for every key, or return the seconds to wait (reserving
        nothing)."""
        now = time.monotonic()
        with self._lock:
            waits = [w for w in (self._wait(k, now) for k in keys) if w is not None]
            if waits:
                return max(waits)
            for key in keys:
                failures, last, flying = self._state.get(key, (0, 0.0, 0))
                self._put(key, (failures, last, flying + 1))
        return None

    def finish(self, *keys: str, failed: bool) -> None:
        """End the attempt :meth:`begin` reserved; a failure counts against every key."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                failures, last, flying = self._state.get(key, (0, 0.0, 1))
                self._put(key, (failures + 1, now, flying - 1) if failed
                          else (failures, last, max(0, flying - 1)))

    def succeeded(self, key: str) -> None:
        """A good password clears the account's failures (its tries in flight stay)."""
        with self._lock:
            found = self._state.get(key)
            if found is not None:
                self._put(key, (0, 0.0, found[2]))

    def _put(self, key: str, value: tuple[int, float, int]) -> None:
        state = self._state
        state[key] = value
        state.move_to_end(key)
        while len(state) > self.max_keys:
            state.popitem(last=False)


class LoginBusy(CollectorError, RuntimeError):
    """Too many password checks at once; answered 503 with Retry-After."""


class PasswordChecker:
    """argon2 verification, at most ``max_concurrent`` at a time, off the event loop."""

    def __init__(self, *, max_concurrent: int = 2, wait: float = 5.0) -> None:
        self._limiter = anyio.CapacityLimiter(max_concurrent)
        self.wait = wait

    async def verify(self, accounts: Mapping[str, Account], name: str,
                     password: str) -> Account | None:
        """The account when the password matches; None otherwise (the same work either
        way). Raises :class:`LoginBusy` when no check could start within ``wait``."""
        try:
            with anyio.fail_after(self.wait):
                await self._limiter.acquire()
        except TimeoutError:
            raise LoginBusy("too many logins at once; try again in a moment") from None
        try:
            return await anyio.to_thread.run_sync(verify_password, accounts, name, password)
        finally:
            self._limiter.release()


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """What a login attempt came to: an account, or a wait (throttled or busy), or neither
    (wrong user or password)."""

    account: Account | None = None
    retry_after: float | None = None  # throttled: 429 with Retry-After
    busy: bool = False  # no password check could start: 503


class Logins:
    """The one login rule of the dashboards and the staff console: throttle, then check."""

    def __init__(self, *, guard: LoginGuard | None = None,
                 checker: PasswordChecker | None = None) -> None:
        self.guard = guard or LoginGuard()
        self.checker = checker or PasswordChecker()

    async def attempt(self, accounts: Mapping[str, Account], name: str, password: str, *,
                      address: str) -> LoginOutcome:
        """Check ``name``/``password`` from the client at ``address`` (a ``client_key``)."""
        keys = ("user:" + name, address)
        wait = self.guard.begin(*keys)
        if wait is not None:
            return LoginOutcome(retry_after=wait)
        failed = False
        try:
            account = await self.checker.verify(accounts, name, password)
            failed = account is None
        except LoginBusy:
            return LoginOutcome(busy=True)
        finally:
            self.guard.finish(*keys, failed=failed)
        if account is not None:
            self.guard.succeeded(keys[0])
        return LoginOutcome(account=account)


# --- sessions ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Session:
    user: str
    role: str
    csrf: str  # bound to this session: forms carry it back
    expires: float


class SessionStore:
    """Server-side sessions: the cookie names one, signed; logout ends it for every copy.

    In memory, bounded (the oldest sessions end first); a restart logs everyone out, which
    fails safe. One process serves a given console, so nothing needs sharing.
    """

    def __init__(self, secret: str, *, salt: str, max_age: int,
                 max_sessions: int = 10_000) -> None:
        self._signer = URLSafeSerializer(secret, salt=salt)
        self.max_age = max_age
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, account: Account) -> str:
        """A new session for ``account``; returns the cookie value."""
        sid = secrets.token_hex(16)
        session = Session(account.name, account.role, secrets.token_urlsafe(24),
                          time.time() + self.max_age)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return str(self._signer.dumps(sid))

    def _sid(self, cookie: str | None) -> str | None:
        if not cookie or len(cookie) > 256:
            return None
        try:
            sid = self._signer.loads(cookie)
        except BadData:
            return None
        return sid if isinstance(sid, str) else None

    def get(self, cookie: str | None, accounts: Mapping[str, Account]) -> Session | None:
        """The live session of this cookie. A session ends at logout, at its age limit, and
        when its account is removed or changes role."""
        sid = self._sid(cookie)
        if sid is None:
            return None
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            account = accounts.get(session.user)
            if (session.expires < time.time() or account is None
                    or account.role != session.role):
                del self._sessions[sid]
                return None
        return session

    def end(self, cookie: str | None) -> None:
        sid = self._sid(cookie)
        if sid is not None:
            with self._lock:
                self._sessions.pop(sid, None)
