"""A request's consent inputs are read once per distinct set of inputs, never past validity."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consent_mw.config import Secret
from consent_mw.consent import reading
from consent_mw.consent.cookies import CookieCodec
from consent_mw.consent.decision import decide, undecided
from consent_mw.consent.reading import Reader
from consent_mw.settings import Settings


def _reader(settings: Settings) -> tuple[Reader, CookieCodec]:
    codec = CookieCodec(settings)
    return Reader(settings, codec), codec


def _cookie(codec: CookieCodec, settings: Settings) -> bytes:
    state = decide(settings, undecided(settings), action="accept_all")
    return f"cmw_consent={codec.dump_consent(state)}".encode()


def test_the_same_inputs_give_the_same_reading_without_rereading(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    reader, codec = _reader(settings)
    cookie = _cookie(codec, settings)
    first = reader.read((cookie, (), b"en"))
    assert first.state.decided and first.locale == "en"
    assert reader.read((cookie, (), b"en")) is first


def test_sec_gpc_and_accept_language_are_part_of_what_is_read(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    reader, codec = _reader(settings)
    cookie = _cookie(codec, settings)
    plain = reader.read((cookie, (), b"en"))
    with_gpc = reader.read((cookie, (b"1",), b"en"))
    assert plain.state.granted("marketing") and not with_gpc.state.granted("marketing")
    assert with_gpc.state.gpc_applied
    assert reader.read((cookie, (), b"ja")).locale == "ja"


def test_a_cached_reading_ends_when_its_consent_cookie_expires(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(consent_max_age=30)  # shorter than the reading TTL
    reader, codec = _reader(settings)
    cookie = _cookie(codec, settings)
    assert reader.read((cookie, (), b"")).state.decided
    later = time.time() + 31
    monkeypatch.setattr(reading.time, "time", lambda: later)
    monkeypatch.setattr("consent_mw.consent.cookies.time.time", lambda: later)
    assert not reader.read((cookie, (), b"")).state.decided


def test_the_reading_cache_stays_bounded_in_entries(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reading, "READING_CACHE_SIZE", 3)
    reader, _ = _reader(make_settings())
    for n in range(5):
        reader.read((f"x={n}".encode(), (), b""))
    assert len(reader._cache) == 3


def test_the_reading_cache_stays_bounded_in_bytes_whatever_the_headers_weigh(
    make_settings: Callable[..., Settings],
) -> None:
    reader, _ = _reader(make_settings())
    big_gpc = (b"1" * 250_000,)
    for n in range(200):
        reader.read((f"x={n};".encode() + b"a" * 15_000, big_gpc, b"en" * 200))
    assert reader._cache.bytes <= reading.READING_CACHE_BYTES
    assert all(len(v) <= reading.MAX_GPC_VALUE for k in reader._cache._data for v in k[1])


@pytest.mark.parametrize("cookie, gpc, language, expected", [
    (b"a" * (reading.MAX_COOKIE_HEADER + 1), (), b"en", (b"", (), b"en")),
    (b"a=1", (b"1" * 17,), b"en", (b"a=1", (), b"en")),
    (b"a=1", (b"1",) * 9, b"en", (b"a=1", (b"1",) * 4, b"en")),
    (b"a=1", (b"1",), b"e" * 513, (b"a=1", (b"1",), b"")),
    (b"a=1", (b"1",), b"en", (b"a=1", (b"1",), b"en")),
])
def test_a_header_value_over_its_cap_is_read_as_absent(
        cookie: bytes, gpc: tuple[bytes, ...], language: bytes,
        expected: tuple[bytes, tuple[bytes, ...], bytes]) -> None:
    assert reading.capped_key(cookie, gpc, language) == expected


def test_an_oversized_sec_gpc_header_counts_as_no_gpc(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    reader, codec = _reader(settings)
    read = reader.read_headers([(b"cookie", _cookie(codec, settings)),
                                (b"sec-gpc", b"1" + b" " * 4 * 1024 * 1024)])
    assert not read.gpc and read.state.granted("marketing")


def test_a_session_cookie_round_trips_only_with_the_visitor_it_was_issued_to(
    make_settings: Callable[..., Settings],
) -> None:
    codec = CookieCodec(make_settings())
    value = codec.dump_session("abc123", "a" * 32, 1_700_000_000.7)
    assert codec.load_session(value, "a" * 32) == ("abc123", 1_700_000_000)
    assert codec.load_session(value, "b" * 32) is None
    sid, stamp, tag = value.split(".")
    assert codec.load_session(f"{sid}.{stamp}.{'0' * len(tag)}", "a" * 32) is None
    assert codec.load_session(f"other1.{stamp}.{tag}", "a" * 32) is None
    assert codec.load_session(f"{sid}.{int(stamp, 16) + 1:x}.{tag}", "a" * 32) is None


@pytest.mark.parametrize("value", [
    "0123456789abcdef.65f0a1b2",  # issued before sessions were bound: no tag
    "0123456789abcdef",
    "bad id!.65f0a1b2." + "0" * 32,
    "",
])
def test_session_cookies_without_a_valid_tag_are_absent(
        make_settings: Callable[..., Settings], value: str) -> None:
    assert CookieCodec(make_settings()).load_session(value, "a" * 32) is None


def test_a_session_cookie_survives_a_key_rotation(
    make_settings: Callable[..., Settings],
) -> None:
    old = make_settings()
    value = CookieCodec(old).dump_session("abc123", "a" * 32, 1_700_000_000)
    rotated = make_settings(secret_keys=(Secret("a-new-signing-key-0123456789"),
                                         *old.secret_keys))
    assert CookieCodec(rotated).load_session(value, "a" * 32) == ("abc123", 1_700_000_000)


def test_tens_of_thousands_of_repeated_headers_are_read_in_one_pass_and_capped(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    reader, codec = _reader(settings)
    cookie = _cookie(codec, settings)
    many_gpc = reader.read_headers([(b"sec-gpc", b"1")] * 70_000 + [(b"cookie", cookie)])
    assert many_gpc.gpc and many_gpc.state.decided  # at most 4 values kept; "1" is one
    split = [(b"cookie", cookie)] + [(b"cookie", b"a=1")] * (reading.MAX_COOKIE_FIELDS - 1)
    assert reader.read_headers(split).state.decided  # HTTP/2's field per cookie, up to 32
    flood = [(b"cookie", cookie)] + [(b"cookie", b"a=1")] * reading.MAX_COOKIE_FIELDS
    assert not reader.read_headers(flood).state.decided  # past the cap: read as absent
