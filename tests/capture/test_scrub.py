"""Personal data the policy says is never captured is removed from every kept value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent_mw.scrub import luhn_ok, scrub

REMOVED = [
    # e-mail
    ("taro.yamada@example.co.jp", "[email]"),
    ("/members/hanako+clinic@gmail.com/edit", "/members/[email]/edit"),
    ("ref=taro%40example.com", "ref=[email]"),
    ("ＨＡＮＡＫＯ＠ＥＸＡＭＰＬＥ．ＪＰ まで", "[email] まで"),
    ("予約確認 suzuki_ichiro@docomo.ne.jp へ送信", "予約確認 [email] へ送信"),
    # Japanese phone numbers
    ("03-1234-5678", "[phone]"),
    ("090-1234-5678", "[phone]"),
    ("080 1234 5678", "[phone]"),
    ("09012345678", "[phone]"),
    ("0120-123-456", "[phone]"),
    ("0800-123-4567", "[phone]"),
    ("050-3123-4567", "[phone]"),
    ("0467-12-3456", "[phone]"),
    ("(03)1234-5678", "[phone]"),
    ("03(1234)5678", "[phone]"),
    ("０３－１２３４－５６７８", "[phone]"),
    ("０９０ー１２３４ー５６７８", "[phone]"),
    ("電話番号は090-1234-5678です", "電話番号は[phone]です"),
    ("tel:0312345678", "tel:[phone]"),
    # international
    ("+81 90 1234 5678", "[phone]"),
    ("+81-3-1234-5678", "[phone]"),
    ("+81 (0)3 1234 5678", "[phone]"),
    ("+1 (415) 555-2671", "[phone]"),
    ("+44 20 7946 0958", "[phone]"),
    ("＋８１ ９０ １２３４ ５６７８", "[phone]"),
    # cards (Luhn-valid test numbers)
    ("4111 1111 1111 1111", "[card]"),
    ("4111-1111-1111-1111", "[card]"),
    ("5555555555554444", "[card]"),
    ("3530 1113 3330 0000", "[card]"),  # JCB
    ("3782 822463 10005", "[card]"),  # Amex, 15 digits
    ("card=4012888888881881&x=1", "card=[card]&x=1"),
    ("４１１１ １１１１ １１１１ １１１１", "[card]"),
    # several in one value
    ("山田 03-1234-5678 yamada@example.jp", "山田 [phone] [email]"),
]

KEPT = [
    "2024-04-23",
    "2024-04-23T10:00:00+09:00",
    "2024/04/23 10:30",
    "¥12,000",
    "12,000円",
    "〒170-0013",
    "170-0013",
    "060-0001",  # Sapporo zip: starts with 0 but is not a phone
    "/treatments/whitening?page=2",
    "SKU-AB-1234-5678",
    "4901234567894",  # JAN product code: passes Luhn by chance, is not a card
    "4111-1111-1111-1112",  # fails Luhn
    "order 12345678901234",
    "v1.2.3+build.45",
    "インプラント 費用 相場",
    "ホワイトニング コーヒー",
    "0000000000",
    "品番 0120",
    "@clinic_tokyo",
    "",
]


@pytest.mark.parametrize(("value", "expected"), REMOVED)
def test_personal_data_is_replaced_by_a_marker(value: str, expected: str) -> None:
    assert scrub(value) == expected


@pytest.mark.parametrize("value", KEPT)
def test_ordinary_values_survive_unchanged(value: str) -> None:
    assert scrub(value) == value


def test_luhn_check_accepts_valid_and_refuses_altered_numbers() -> None:
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")


def test_scrub_is_idempotent_on_its_own_output() -> None:
    once = scrub("連絡先 090-1234-5678 / taro@example.jp / 4111 1111 1111 1111")
    assert scrub(once) == once


# -- properties: generated personal data never survives, whatever surrounds it ---------------

SURROUNDING = st.text(alphabet="あいうえお予約費用 abcxyz/-_.,", max_size=20)
FULLWIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")


def luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.sampled_from([14, 15, 16, 19]))
    body = draw(st.sampled_from(["4", "51", "35", "37", "62"]))
    body += "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=length - 1 - len(body),
                                  max_size=length - 1 - len(body))))
    digits = luhn_complete(body)
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


@st.composite
def jp_phones(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from([(2, 4, 4), (3, 4, 4), (4, 2, 4), (3, 3, 4), (4, 3, 3)]))
    groups = ["0" + str(draw(st.integers(1, 9)))
              + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=shape[0] - 2,
                                      max_size=shape[0] - 2)))]
    for size in shape[1:]:
        groups.append("".join(draw(st.lists(st.sampled_from("0123456789"), min_size=size,
                                            max_size=size))))
    sep = draw(st.sampled_from(["-", " ", ""]))
    phone = sep.join(groups)
    return phone.translate(FULLWIDTH) if draw(st.booleans()) else phone


@settings(max_examples=200, deadline=None)
@given(before=SURROUNDING, after=SURROUNDING, card=cards())
def test_generated_cards_never_survive(before: str, after: str, card: str) -> None:
    out = scrub(f"{before} {card} {after}")
    assert "[card]" in out and card not in out


@settings(max_examples=200, deadline=None)
@given(before=SURROUNDING, after=SURROUNDING, phone=jp_phones())
def test_generated_japanese_phones_never_survive(before: str, after: str, phone: str) -> None:
    out = scrub(f"{before} {phone} {after}")
    assert phone not in out


@settings(max_examples=200, deadline=None)
@given(user=st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True),
       domain=st.from_regex(r"[a-z]{2,10}\.(co\.jp|ne\.jp|com|jp)", fullmatch=True),
       before=SURROUNDING)
def test_generated_emails_never_survive(user: str, domain: str, before: str) -> None:
    out = scrub(f"{before} {user}@{domain}")
    assert "@" not in out and "[email]" in out


@settings(max_examples=200, deadline=None)
@given(year=st.integers(1990, 2030), month=st.integers(1, 12), day=st.integers(1, 28),
       price=st.integers(0, 9_999_999), zipcode=st.integers(0, 9_999_999))
def test_generated_dates_prices_and_zips_survive(year: int, month: int, day: int, price: int,
                                                 zipcode: int) -> None:
    z = f"{zipcode:07d}"
    text = f"{year}-{month:02d}-{day:02d} ¥{price:,} 〒{z[:3]}-{z[3:]}"
    assert scrub(text) == text
