"""The verified-cookie cache never outlives the cookie's validity."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from consent_mw.consent import cookies
from consent_mw.consent.cookies import CookieCodec
from consent_mw.consent.decision import decide, undecided
from consent_mw.settings import Settings


def _accepted_cookie(codec: CookieCodec, settings: Settings) -> str:
    state = decide(settings, undecided(settings), action="accept_all")
    return codec.dump_consent(state)


def test_a_cached_cookie_is_refused_once_it_has_expired(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(consent_max_age=3600)
    codec = CookieCodec(settings)
    value = _accepted_cookie(codec, settings)
    assert codec.load_consent(value) is not None  # verified, now cached

    later = time.time() + 3601
    monkeypatch.setattr(cookies.time, "time", lambda: later)
    assert codec.load_consent(value) is None
    assert value not in codec._verified


def test_a_tampered_cookie_is_not_cached_and_stays_refused(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    codec = CookieCodec(settings)
    value = _accepted_cookie(codec, settings)
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    assert codec.load_consent(tampered) is None
    assert codec.load_consent(tampered) is None
    assert tampered not in codec._verified


def test_the_cache_stays_bounded(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cookies, "VERIFIED_CACHE_SIZE", 3)
    settings = make_settings()
    codec = CookieCodec(settings)
    values: list[Any] = [_accepted_cookie(codec, settings) for _ in range(5)]
    for v in values:
        assert codec.load_consent(v) is not None
    assert len(codec._verified) == 3
