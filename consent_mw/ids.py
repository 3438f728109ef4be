"""Identifiers: random ids the middleware issues and keyed hashes of ids it must not keep.

The collector imports these too, so a person's id hashes the same way everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import secrets
from collections import deque

ID_RE = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
VISITOR_ID_RE = re.compile(r"^[0-9a-f]{32}$")
ID_TYPES = ("visitor_id", "user_id", "consent_id")


def new_visitor_id() -> str:
    """A random 128-bit id, hex: the ``cmw_vid`` cookie."""
    return secrets.token_hex(16)


def new_session_id() -> str:
    return secrets.token_hex(8)


#: The variant digit of a random UUID, by the random digit it replaces (RFC 9562: 10xx).
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


class _RandomPool:
    """16-byte chunks of ``os.urandom``, drawn 4 KiB at a time.

    A new visitor's first page draws two random ids (its consent id and its ``shown``
    record's), and a ``getrandom`` call costs several microseconds on a virtual machine: one
    call serves 256 ids. ``popleft`` is atomic, so threads never share a chunk; the pool is
    emptied in a forked child, which must not reuse its parent's randomness.
    """

    _CHUNKS = 256

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()

    def take(self) -> bytes:
        try:
            return self._chunks.popleft()
        except IndexError:
            blob = os.urandom(16 * self._CHUNKS)
            self._chunks.extend(blob[i:i + 16] for i in range(16, len(blob), 16))
            return blob[:16]

    def clear(self) -> None:
        self._chunks.clear()


_random = _RandomPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.clear)


def random_uuid() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` writes it, with 122 bits
    from ``os.urandom`` (through :class:`_RandomPool`) at a tenth of ``uuid4``'s cost."""
    h = _random.take().hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def new_consent_id() -> str:
    return random_uuid()


class _EventIds:
    """UUIDv8 strings (RFC 9562): 74 random bits per process, then a 48-bit counter.

    The capture worker names every event; ``str(uuid.uuid4())`` costs about 2 µs, which is a
    visible share of a request's budget. A random per-process prefix keeps ids unique across
    processes (the collector deduplicates on them); it is redrawn after ``fork`` and, should
    the counter ever run out (2**48 events), before it would wrap.
    """

    _LAST = 0xFFFFFFFFFFFF

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        r = secrets.randbits(74)
        variant = 0x8 | ((r >> 12) & 0x3)  # RFC 9562 variant: binary 10xx
        self._prefix = (f"{r >> 42:08x}-{(r >> 26) & 0xFFFF:04x}-8{(r >> 14) & 0xFFF:03x}-"
                        f"{variant:x}{r & 0xFFF:03x}-")
        self._counter = itertools.count()

    def __call__(self) -> str:
        n = next(self._counter)  # atomic under the GIL
        if n > self._LAST:
            self.reseed()
            n = next(self._counter)
        return f"{self._prefix}{n:012x}"

    def take(self, count: int) -> list[str]:
        """``count`` ids at once, for a batch: about half the cost of one call per id.

        Each ``next`` is atomic, so ids drawn concurrently by another thread interleave
        with these but never repeat.
        """
        numbers = list(itertools.islice(self._counter, count))
        if numbers and numbers[-1] > self._LAST:
            self.reseed()
            numbers = list(itertools.islice(self._counter, count))
        template = self._prefix + "%012x"
        return [template % n for n in numbers]


_event_ids = _EventIds()
new_event_id = _event_ids.__call__  # a bound method: cheaper to call than the instance
new_event_ids = _event_ids.take
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_event_ids.reseed)


def visitor_binding(visitor_id: str) -> str:
    """What a signed consent cookie holds to bind a visitor id to the browser it was issued to.

    The signature over the payload is what makes the binding trustworthy; hashing only keeps
    the raw id out of the necessary cookie. No key: a key rotation must not unbind everyone.
    """
    return hashlib.sha256(b"consent-mw.vid:" + visitor_id.encode("ascii")).hexdigest()[:32]


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256, hex, truncated to 128 bits: stable per key, useless without it."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def hash_user_id(key: bytes, user_id: str) -> str:
    """The form in which a site's account id is stored (events.user_id)."""
    return keyed_hash(key, "user:" + user_id)


def subject_hash(key: bytes, id_type: str, stored_id: str) -> str:
    """What a suppression keeps: a keyed hash of the id as events store it."""
    return keyed_hash(key, f"subject:{id_type}:{stored_id}")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None
