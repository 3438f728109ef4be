"""What the middleware read from one request: its consent inputs and per-request flags."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from consent_mw.consent.cookies import StoredConsent
from consent_mw.consent.reading import Reading


class Incoming:
    """The shared :class:`Reading` of a request's consent inputs, plus per-request flags.
    Other headers are decoded only when asked for."""

    __slots__ = (
        "_headers",
        "forget",
        "new_session",
        "new_visitor",
        "raw_headers",
        "reading",
        "rebound",
        "secure",
    )

    def __init__(self, raw_headers: Iterable[tuple[bytes, bytes]], reading: Reading, *,
                 secure: bool) -> None:
        self.raw_headers = raw_headers
        self.reading = reading
        self.secure = secure
        self.new_visitor = False
        self.new_session = False
        #: The browser carries the ids of a purged person: reset it on this response.
        self.forget = False
        #: A new consent id for a stored decision that gets a new visitor id here.
        self.rebound: str | None = None
        self._headers: dict[bytes, list[bytes]] | None = None

    @property
    def headers(self) -> dict[bytes, list[bytes]]:
        if self._headers is None:
            result: dict[bytes, list[bytes]] = {}
            for key, value in self.raw_headers:
                result.setdefault(bytes(key).lower(), []).append(bytes(value))
            self._headers = result
        return self._headers

    def header(self, name: bytes) -> str | None:
        values = self.headers.get(name)
        return values[0].decode("latin-1") if values else None

    # The reading, under the names the endpoints use.
    @property
    def cookies(self) -> Mapping[str, list[str]]:
        return self.reading.cookies

    @property
    def stored(self) -> StoredConsent | None:
        return self.reading.stored

    @property
    def gpc(self) -> bool:
        return self.reading.gpc

    @property
    def visitor_id(self) -> str | None:
        return self.reading.visitor_id

    @property
    def session_id(self) -> str | None:
        return self.reading.session_id

    @property
    def shown_cid(self) -> str | None:
        return self.reading.shown_cid

    @property
    def owned(self) -> bool:
        """Whether the stored decision is provably this browser's: its signed cookie binds
        the visitor id this request carries. Only then does its consent id carry on; any
        other stored decision (one without analytics, so without an id to bind, or a cookie
        copied from elsewhere) continues under a new consent id when it is recorded again."""
        return self.reading.stored is not None and self.reading.visitor_id is not None
