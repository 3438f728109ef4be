"""The client's IP address: the direct peer, or what trusted proxies say it is (pure).

``X-Forwarded-For`` and ``Forwarded`` (RFC 7239) are anyone's to forge, so they count only
when the direct peer is a trusted proxy (``settings.trusted_proxies``, loopback by default),
and only the one header the proxies write (``forwarded_header``, ``x-forwarded-for`` by
default) is read: a proxy that appends to one passes the other through from the client, so
reading both, or preferring the other, lets a client name any address.
The chain is walked right to left, past trusted hops; the first untrusted address is the
client. An entry that is not an IP address ends the walk (everything left of it is
unverifiable) and is never returned.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Hops considered, from the right (the nearest): no deployment has more trusted proxies than
#: this, and the chain is a cache key, so its size must not be the client's to choose.
MAX_HOPS = 16
MAX_HOP_LENGTH = 64  # "[IPv6 with zone]:port", quoted, fits


@lru_cache(maxsize=32)
def parse_networks(nets: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in nets)


def parse_ip(value: str) -> IPAddress | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:443`` or ``2001:db8::1``."""
    text = value.strip().strip('"').strip()
    if not text:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    if "%" in text:  # zone ids never identify a remote client
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: IPAddress, networks: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k.lower() == name]


FORWARDED_HEADERS = ("x-forwarded-for", "forwarded")
DEFAULT_FORWARDED_HEADER = "x-forwarded-for"


def forwarded_chain(headers: Iterable[tuple[bytes, bytes]],
                    header: str = DEFAULT_FORWARDED_HEADER) -> list[str]:
    """Hops named by ``header`` (``x-forwarded-for``, or ``forwarded`` in RFC 7239's form),
    left to right. The other header is ignored."""
    if header == "forwarded":
        forwarded = _header_values(headers, b"forwarded")
        if not forwarded:
            return []
        chain: list[str] = []
        for element in ",".join(forwarded).split(","):
            node = ""
            for pair in element.split(";"):
                key, _, val = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    node = val.strip()
            chain.append(node)  # an element without for= is an unknown hop
        return chain
    xff = _header_values(headers, b"x-forwarded-for")
    return [part.strip() for part in ",".join(xff).split(",")] if xff else []


def client_ip(scope: Mapping[str, Any], trusted_proxies: tuple[str, ...],
              header: str = DEFAULT_FORWARDED_HEADER) -> str | None:
    """The client address for this ASGI scope, as a string, or None when unknown.

    A server on a Unix socket has no peer address (``scope["client"]`` is None): only
    processes on this machine can reach it, so the peer is the proxy in front and counts as
    trusted, and the chain names the client.
    """
    chain = forwarded_chain(scope.get("headers") or (), header)[-MAX_HOPS:]
    # A hop too long to be an address ends the walk like any non-address would.
    hops = tuple(h if len(h) <= MAX_HOP_LENGTH else "" for h in chain)
    client = scope.get("client")
    peer = str(client[0])[:MAX_HOP_LENGTH] if client else None
    return _resolve(peer, hops, trusted_proxies)


@functools.lru_cache(maxsize=4096)  # the same peers and proxy chains come back constantly
def _resolve(peer_text: str | None, chain: tuple[str, ...], trusted_proxies: tuple[str, ...]
             ) -> str | None:
    networks = parse_networks(trusted_proxies)
    if peer_text is None:  # a Unix socket: the local proxy
        current: IPAddress | None = None
    else:
        peer = parse_ip(peer_text)
        if peer is None:
            return None
        if not _trusted(peer, networks):
            return str(peer)
        current = peer
    for hop in reversed(chain):
        ip = parse_ip(hop)
        if ip is None:
            break
        current = ip
        if not _trusted(ip, networks):
            break
    return None if current is None else str(current)
