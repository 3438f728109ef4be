"""Forwarding headers count only from trusted proxies, walked right to left."""

from __future__ import annotations

import pytest

from consent_mw.clientip import client_ip, parse_ip

LOOPBACK = ("127.0.0.1/32", "::1/128")
LB = ("127.0.0.1/32", "::1/128", "10.0.0.0/8")


def scope(peer: str | None, **headers: str) -> dict[str, object]:
    return {
        "client": (peer, 1234) if peer else None,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


XFF, FWD = "x-forwarded-for", "forwarded"

CASES = [
    # untrusted peer: headers ignored, whatever they say
    ("203.0.113.7", {"x_forwarded_for": "1.2.3.4"}, LOOPBACK, "203.0.113.7"),
    ("203.0.113.7", {"forwarded": "for=1.2.3.4"}, LOOPBACK, "203.0.113.7"),
    # trusted peer: rightmost untrusted hop
    ("127.0.0.1", {"x_forwarded_for": "198.51.100.2"}, LOOPBACK, "198.51.100.2"),
    ("127.0.0.1", {"x_forwarded_for": "6.6.6.6, 198.51.100.2"}, LOOPBACK, "198.51.100.2"),
    ("10.0.0.5", {"x_forwarded_for": "6.6.6.6, 198.51.100.2, 10.0.0.9"}, LB, "198.51.100.2"),
    # a peer in 10/8 is not trusted unless configured
    ("10.0.0.5", {"x_forwarded_for": "198.51.100.2"}, LOOPBACK, "10.0.0.5"),
    # RFC 7239, quoted IPv6 with port, IPv4 with port
    ("127.0.0.1", {"forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https'}, LOOPBACK,
     "2001:db8:cafe::17"),
    ("127.0.0.1", {"forwarded": "for=192.0.2.60:8080;proto=http;by=203.0.113.43"}, LOOPBACK,
     "192.0.2.60"),
    ("10.0.0.5", {"forwarded": "for=192.0.2.43, for=10.0.0.7"}, LB, "192.0.2.43"),
    # Only the configured header counts: the other may be the client's own (finding: a proxy
    # appending to X-Forwarded-For passed a client's Forwarded through, which was preferred)
    ("127.0.0.1", {"forwarded": "for=192.0.2.60", "x_forwarded_for": "6.6.6.6"}, LOOPBACK,
     "6.6.6.6"),
    # invalid entries end the walk and are never returned
    ("127.0.0.1", {"x_forwarded_for": "not-an-ip"}, LOOPBACK, "127.0.0.1"),
    ("127.0.0.1", {"forwarded": "for=unknown"}, LOOPBACK, "127.0.0.1"),
    ("127.0.0.1", {"forwarded": "for=_hidden"}, LOOPBACK, "127.0.0.1"),
    ("10.0.0.5", {"x_forwarded_for": "198.51.100.2, garbage, 10.0.0.9"}, LB, "10.0.0.9"),
    ("127.0.0.1", {"x_forwarded_for": ""}, LOOPBACK, "127.0.0.1"),
    # all hops trusted: the leftmost one
    ("127.0.0.1", {"x_forwarded_for": "10.1.1.1, 10.2.2.2"}, LB, "10.1.1.1"),
    # IPv6 loopback peer, IPv4-mapped addresses
    ("::1", {"x_forwarded_for": "::ffff:198.51.100.9"}, LOOPBACK, "198.51.100.9"),
    ("::ffff:203.0.113.7", {}, LOOPBACK, "203.0.113.7"),
    ("2001:db8::1", {}, LOOPBACK, "2001:db8::1"),
]


@pytest.mark.parametrize(("peer", "headers", "trusted", "expected"), CASES)
def test_client_ip(peer: str, headers: dict[str, str], trusted: tuple[str, ...],
                   expected: str) -> None:
    # Each case names one forwarding header; the rule reads the one it is configured for.
    header = FWD if "forwarded" in headers and "x_forwarded_for" not in headers else XFF
    assert client_ip(scope(peer, **headers), trusted, header) == expected


def test_a_forwarded_header_the_proxies_do_not_write_is_ignored() -> None:
    spoofed = scope("127.0.0.1", forwarded="for=203.0.113.99", x_forwarded_for="198.51.100.2")
    assert client_ip(spoofed, LOOPBACK) == "198.51.100.2"  # the default: X-Forwarded-For
    assert client_ip(spoofed, LOOPBACK, FWD) == "203.0.113.99"  # when Forwarded is the one
    only_fwd = scope("127.0.0.1", forwarded="for=203.0.113.99")
    assert client_ip(only_fwd, LOOPBACK) == "127.0.0.1"


@pytest.mark.parametrize("peer", ["testclient", "fe80::1%eth0"])
def test_an_invalid_peer_gives_none(peer: str | None) -> None:
    assert client_ip(scope(peer, x_forwarded_for="1.2.3.4"), LOOPBACK) is None


def test_behind_a_unix_socket_the_proxys_chain_names_the_client() -> None:
    # No peer address (uvicorn --uds): only local processes connect, so the peer is the
    # proxy and its header counts; without one, the client is unknown.
    assert client_ip(scope(None, x_forwarded_for="6.6.6.6, 198.51.100.2"), LOOPBACK) == (
        "198.51.100.2")
    assert client_ip(scope(None), LOOPBACK) is None
    assert client_ip(scope(None, x_forwarded_for="garbage"), LOOPBACK) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("1.2.3.4", "1.2.3.4"), ("1.2.3.4:80", "1.2.3.4"), ("[2001:db8::1]:443", "2001:db8::1"),
    ('"[2001:db8::1]"', "2001:db8::1"), ("2001:db8::1", "2001:db8::1"), ("300.1.1.1", None),
    ("[2001:db8::1", None), ("", None),
])
def test_parse_ip(text: str, expected: str | None) -> None:
    ip = parse_ip(text)
    assert (str(ip) if ip else None) == expected
