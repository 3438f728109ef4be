"""HMAC-SHA256 under a fixed key, with the key's two pads hashed once.

``hmac.new`` and ``hmac.digest`` look the digest up in OpenSSL on every call, which costs
several microseconds on a busy server; the marker cookie of a new visitor's first page and
the session cookie are signed on the request path. Copying two pre-keyed hash states is the
same RFC 2104 computation at a fraction of the cost (a test checks it against ``hmac``).
"""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class KeyedMac:
    """``hmac.new(key, msg, hashlib.sha256).hexdigest()``, for many messages under one key."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
