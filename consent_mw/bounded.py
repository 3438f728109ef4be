"""Caches keyed on what requests send, bounded in bytes as well as in entries.

Anything a visitor sends can be made large, so a cache that counts entries only can be made to
hold gigabytes (4,096 entries of a 256 KB header is 1 GiB). Every cache keyed on request data
goes through :class:`BoundedCache`, which charges each entry what the caller says it costs and
evicts the oldest entries until both limits hold.

It takes no lock: the middleware's caches are used from the event loop and the capture
worker's from its one thread. Two threads racing on one cache can at worst evict one entry too
many, never corrupt it.
"""

from __future__ import annotations

import contextlib
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

#: What an entry costs beyond the bytes the caller counts: the dict slot, the key tuple and
#: the value object. Rounded up, so the byte limit is a real bound on what the cache holds.
ENTRY_OVERHEAD = 512
#: What one request header costs beyond its name and value: its tuple and two bytes objects.
#: The capture queue charges a queued page its header list at this rate (2,000 headers of empty
#: values still weigh a quarter of a megabyte).
HEADER_OVERHEAD = 128


class BoundedCache(Generic[K, V]):
    """A dict with at most ``max_entries`` entries and ``max_bytes`` of charged size.

    ``get`` is the dict's own bound ``get``: the hot path pays one C call for a lookup.
    """

    __slots__ = ("_data", "_sizes", "bytes", "get", "max_bytes", "max_entries")

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a bounded cache needs room for at least one entry")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: dict[K, V] = {}
        self._sizes: dict[K, int] = {}
        self.bytes = 0
        self.get = self._data.get

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def put(self, key: K, value: V, size: int) -> bool:
        """Keep ``value`` under ``key``, charged ``size`` bytes plus the entry overhead;
        False (and nothing kept) when one entry alone would exceed the byte limit."""
        cost = size + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return False
        self.pop(key)
        data, sizes = self._data, self._sizes
        while data and (len(data) >= self.max_entries or self.bytes + cost > self.max_bytes):
            self._evict_oldest()
        data[key] = value
        sizes[key] = cost
        self.bytes += cost
        return True

    def pop(self, key: K) -> None:
        self._data.pop(key, None)
        cost = self._sizes.pop(key, 0)
        self.bytes -= cost

    def clear(self) -> None:
        self._data.clear()  # never a new dict: ``get`` is bound to this one
        self._sizes.clear()
        self.bytes = 0

    def _evict_oldest(self) -> None:
        with contextlib.suppress(StopIteration, RuntimeError, KeyError):
            self.pop(next(iter(self._data)))
