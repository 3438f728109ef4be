"""A request's consent inputs are read once per distinct set of inputs, never past validity."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consent_mw import reading
from consent_mw.consent import decide, undecided
from consent_mw.cookies import CookieCodec, parse_session_cookie, session_cookie_value
from consent_mw.reading import Reader
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
    monkeypatch.setattr("consent_mw.cookies.time.time", lambda: later)
    assert not reader.read((cookie, (), b"")).state.decided


def test_the_reading_cache_stays_bounded_and_skips_huge_inputs(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reading, "READING_CACHE_SIZE", 3)
    reader, _ = _reader(make_settings())
    for n in range(5):
        reader.read((f"x={n}".encode(), (), b""))
    assert len(reader._cache) == 3
    reader.read((b"x=" + b"a" * (reading.MAX_CACHED_KEY_BYTES + 1), (), b""))
    assert len(reader._cache) == 3


@pytest.mark.parametrize("value, expected", [
    ("0123456789abcdef.65f0a1b2", ("0123456789abcdef", 0x65F0A1B2)),
    ("0123456789abcdef", ("0123456789abcdef", 0)),  # set before the time was kept
    ("0123456789abcdef.nothex", ("0123456789abcdef", 0)),
    ("bad id!.65f0a1b2", None),
    ("", None),
])
def test_session_cookie_values_parse_to_id_and_time(
        value: str, expected: tuple[str, int] | None) -> None:
    assert parse_session_cookie(value) == expected


def test_a_session_cookie_value_round_trips() -> None:
    assert parse_session_cookie(session_cookie_value("abc123", 1_700_000_000.7)) == (
        "abc123", 1_700_000_000)
