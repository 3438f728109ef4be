"""The signed consent cookie: rotation, tampering, expiry, duplicates, foreign cookies."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from consent_mw.config import Secret
from consent_mw.consent.cookies import CookieCodec, parse_cookie_header, set_cookie, single
from consent_mw.consent.decision import decide, to_payload, undecided
from consent_mw.settings import Settings

Make = Callable[..., Settings]
KEY_A = "first-key-aaaaaaaaaaaaaaaa"
KEY_B = "second-key-bbbbbbbbbbbbbbb"


@pytest.fixture
def settings(make_settings: Make) -> Settings:
    return make_settings()


def accepted(settings: Settings) -> str:
    return CookieCodec(settings).dump_consent(
        decide(settings, undecided(settings), action="accept_all"))


def test_a_signed_decision_round_trips(settings: Settings) -> None:
    stored = CookieCodec(settings).load_consent(accepted(settings))
    assert stored is not None and stored.state.decided and stored.state.granted("marketing")


def test_first_key_signs_and_every_key_verifies(make_settings: Make) -> None:
    old = make_settings(secret_keys=(Secret(KEY_A),))
    rotated = make_settings(secret_keys=(Secret(KEY_B), Secret(KEY_A)))
    only_new = make_settings(secret_keys=(Secret(KEY_B),))
    old_cookie = accepted(old)
    assert CookieCodec(rotated).load_consent(old_cookie) is not None
    new_cookie = accepted(rotated)
    assert CookieCodec(only_new).load_consent(new_cookie) is not None  # signed with KEY_B
    assert CookieCodec(only_new).load_consent(old_cookie) is None  # KEY_A retired


def test_cookie_signed_with_another_salt_is_foreign(settings: Settings) -> None:
    payload = to_payload(decide(settings, undecided(settings), action="accept_all"))
    foreign = URLSafeTimedSerializer(settings.secret_keys[0].value, salt="itsdangerous")
    assert CookieCodec(settings).load_consent(foreign.dumps(payload)) is None
    # Starlette's session cookie uses the same library and key, but another salt.
    session = URLSafeTimedSerializer(settings.secret_keys[0].value, salt="cookie-session")
    assert CookieCodec(settings).load_consent(session.dumps(payload)) is None


def test_expired_cookie_is_no_decision(make_settings: Make) -> None:
    settings = make_settings(consent_max_age=60)
    state = decide(settings, undecided(settings), action="accept_all",
                   now=int((time.time() - 120) * 1000))
    cookie = CookieCodec(settings).dump_consent(state)
    assert CookieCodec(settings).load_consent(cookie) is None


def test_consent_stays_valid_within_max_age(make_settings: Make) -> None:
    settings = make_settings(consent_max_age=600)
    state = decide(settings, undecided(settings), action="accept_all",
                   now=int((time.time() - 120) * 1000))
    assert CookieCodec(settings).load_consent(CookieCodec(settings).dump_consent(state))


@pytest.mark.parametrize("value", ["", "garbage", "a.b.c", "." * 10, "x" * 5000, "é.ü.ß"])
def test_unparsable_cookie_is_no_decision(settings: Settings, value: str) -> None:
    assert CookieCodec(settings).load_consent(value) is None


def test_duplicated_cookie_counts_as_absent(settings: Settings) -> None:
    good = accepted(settings)
    cookies = parse_cookie_header([f"cmw_consent={good}; cmw_consent={good}".encode()])
    assert single(cookies, "cmw_consent") is None
    assert single(parse_cookie_header([f"a=1; cmw_consent={good}".encode()]),
                  "cmw_consent") == good


def test_stale_policy_cookie_is_no_decision(make_settings: Make) -> None:
    cookie = accepted(make_settings(policy_text="one"))
    assert CookieCodec(make_settings(policy_text="two")).load_consent(cookie) is None


def test_set_cookie_flags() -> None:
    plain = set_cookie("n", "v", max_age=10, secure=False)
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain
    assert "Max-Age=10" in plain
    assert set_cookie("n", "v", max_age=10, secure=True).endswith("; Secure")
    assert "Max-Age=0" in set_cookie("n", "", max_age=0, secure=False)


def test_shown_marker_is_bound_to_the_policy_version(make_settings: Make) -> None:
    a, b = make_settings(policy_text="one"), make_settings(policy_text="two")
    marker = CookieCodec(a).dump_shown("abc-123")
    assert CookieCodec(a).load_shown(marker) == "abc-123"
    assert CookieCodec(b).load_shown(marker) is None


def test_shown_marker_carries_its_record_verifies_with_any_key_and_expires(
        make_settings: Make) -> None:
    from consent_mw.config import Secret
    from consent_mw.consent.cookies import SHOWN_MAX_AGE

    old = make_settings(secret_keys=(Secret("old-key-0123456789abcdef"),))
    rotated = make_settings(secret_keys=(Secret("new-key-0123456789abcdef"),
                                         Secret("old-key-0123456789abcdef")))
    rid = "0a1b2c3d-0000-4000-8000-000000000000"
    marker = CookieCodec(old).dump_shown("abc-123", rid)
    shown = CookieCodec(rotated).load_shown_until(marker)
    assert shown is not None and (shown.consent_id, shown.record_id) == ("abc-123", rid)
    cid, record, stamp, tag = marker.split(".")
    forged = [f"abd-123.{record}.{stamp}.{tag}", f"{cid}..{stamp}.{tag}",
              f"{cid}.{record}.{int(stamp, 16) + 1:x}.{tag}", marker + "x", marker[:-1] + "0"]
    assert all(CookieCodec(old).load_shown(f) is None for f in forged if f != marker)
    stale = CookieCodec(old).dump_shown("abc-123", rid, now=time.time() - SHOWN_MAX_AGE - 1)
    ahead = CookieCodec(old).dump_shown("abc-123", rid, now=time.time() + 3600)
    assert CookieCodec(old).load_shown(stale) is None and CookieCodec(old).load_shown(ahead) is None
    assert CookieCodec(make_settings()).load_shown(marker) is None  # another key entirely


def test_keyed_mac_is_hmac_sha256() -> None:
    import hashlib
    import hmac

    from consent_mw.mac import KeyedMac

    for key in (b"", b"k", b"x" * 64, b"y" * 65, bytes(range(200))):
        for message in (b"", b"abc", bytes(range(256)) * 3):
            assert KeyedMac(key).hexdigest(message) == hmac.new(
                key, message, hashlib.sha256).hexdigest()


def test_random_uuids_are_version_4_and_distinct() -> None:
    import uuid

    from consent_mw.ids import random_uuid

    drawn = [random_uuid() for _ in range(2000)]  # more than one pool refill
    assert len(set(drawn)) == len(drawn)
    for value in drawn[:300]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=%; "


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                     HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_mutations_of_a_valid_cookie_never_grant_anything(
    make_settings: Make, data: st.DataObject
) -> None:
    settings = make_settings()
    codec = CookieCodec(settings)
    original = codec.dump_consent(decide(settings, undecided(settings), action="accept_all"))
    chars = list(original)
    edits = data.draw(st.lists(st.tuples(st.sampled_from(["replace", "insert", "delete"]),
                                         st.integers(0, 10_000),
                                         st.sampled_from(ALPHABET)), min_size=1, max_size=4))
    for op, index, ch in edits:
        index = index % max(len(chars), 1)  # the cookie's length varies with compression
        if op == "replace" and chars:
            chars[index] = ch
        elif op == "insert":
            chars.insert(index, ch)
        elif chars:
            del chars[index]
    mutated = "".join(chars)
    if mutated == original:
        return
    stored = codec.load_consent(mutated)
    assert stored is None, f"mutated cookie {mutated!r} was accepted"


@hsettings(max_examples=100, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flip=st.sampled_from(["analytics", "location", "marketing"]))
def test_resigning_with_a_wrong_key_cannot_grant(make_settings: Make, flip: str) -> None:
    settings = make_settings()
    rejected = decide(settings, undecided(settings), action="reject_all")
    forged = replace(rejected, categories={**rejected.categories, flip: True})
    attacker = make_settings(secret_keys=(Secret("attacker-key-zzzzzzzzzzzz"),))
    assert CookieCodec(settings).load_consent(CookieCodec(attacker).dump_consent(forged)) is None


def test_non_canonical_base64_that_decodes_to_the_same_signature_is_rejected(
    settings: Settings,
) -> None:
    # A 20-byte signature is 27 base64 characters: the last one carries 2 unused bits, so
    # flipping its lowest bit decodes to the same bytes and would otherwise still verify.
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    cookie = accepted(settings)
    twin = cookie[:-1] + b64[b64.index(cookie[-1]) ^ 1]
    assert twin != cookie
    assert CookieCodec(settings).load_consent(twin) is None
