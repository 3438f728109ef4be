"""Remove e-mail addresses, phone numbers and card numbers from values we keep (pure).

Every kept value (path, search terms, referrer, campaign values, custom-event properties,
traits) goes through :func:`scrub` before it leaves the worker. Matching runs on a copy in
which full-width forms (０-９, ＠, ＋, －, （ ）, the long-vowel bar ー ...) are folded to ASCII
one character for one character, so offsets line up and the original text around a match is
kept as written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"

# 1:1 fold: full-width ASCII block (U+FF01-FF5E) to ASCII, dash look-alikes to "-",
# ideographic space to " ". Keeping the length equal is what lets us map spans back.
_FOLD: dict[int, int] = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FOLD.update({ord(c): ord("-") for c in "‐‑‒–—―−ーｰ"})
_FOLD[0x3000] = ord(" ")

# "%40" too: referrers and raw paths arrive percent-encoded.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}(?:@|%40)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
    re.ASCII,
)
# 13-19 digits, single spaces or dashes between groups; confirmed by the Luhn check.
_CARD_RE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])", re.ASCII)
# International: +CC then groups, optional "(0)" trunk prefix; 8-15 digits in all (E.164).
_INTL_RE = re.compile(
    r"(?<![0-9A-Za-z+])\+\d{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\(?\d{1,5}\)?){2,5}(?![0-9A-Za-z])",
    re.ASCII,
)
# Japanese domestic: a leading 0, 10 or 11 digits, separated by "-", " ", "." or parentheses:
# 03-1234-5678, 090-1234-5678, 0120-123-456, (03)1234-5678, 03(1234)5678, 09012345678.
_JP_RE = re.compile(
    r"(?<![0-9A-Za-z])(?:\(0\d{1,4}\)|0\d{1,4})[ .-]?(?:\(\d{1,4}\)|\d{1,4})[ .-]?\d{3,4}"
    r"(?![0-9A-Za-z])",
    re.ASCII,
)
_JP_PLAIN_RE = re.compile(r"(?<![0-9A-Za-z])0\d{9,10}(?![0-9A-Za-z])", re.ASCII)


def _digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if index % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def ean13_ok(digits: str) -> bool:
    total = sum((3 if i % 2 else 1) * (ord(ch) - 48) for i, ch in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == ord(digits[12]) - 48


def _is_card(match: str) -> bool:
    digits = _digits(match)
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1 or not luhn_ok(digits):
        return False
    # A 13-digit JAN/EAN product code can pass Luhn by chance; 13-digit cards are all but gone.
    return not (len(digits) == 13 and ean13_ok(digits))


def _is_intl_phone(match: str) -> bool:
    return 8 <= len(_digits(match.replace("(0)", ""))) <= 15


def _is_jp_phone(match: str) -> bool:
    digits = _digits(match)
    # 10 digits for landlines and 0120, 11 for 070/080/090/050/0800; never "00..." (intl prefix).
    return len(digits) in (10, 11) and digits[1] != "0"


def _replace(folded: str, original: str, pattern: re.Pattern[str], marker: str,
             accept: Callable[[str], bool] | None) -> tuple[str, str]:
    out_f: list[str] = []
    out_o: list[str] = []
    last = 0
    for m in pattern.finditer(folded):
        if accept is not None and not accept(m.group()):
            continue
        out_f.append(folded[last:m.start()])
        out_o.append(original[last:m.start()])
        out_f.append(marker)
        out_o.append(marker)
        last = m.end()
    if last == 0:
        return folded, original
    out_f.append(folded[last:])
    out_o.append(original[last:])
    return "".join(out_f), "".join(out_o)


def _may_hold_pii(folded: str) -> bool:
    # Cheap pre-check: nothing to do without "@" / "%40" or a run of digits.
    return "@" in folded or "%40" in folded or any("0" <= ch <= "9" for ch in folded)


#: Longer values are scrubbed without being cached, so the cache holds at most
#: CACHE_ENTRIES * CACHED_LENGTH characters whatever requests send.
CACHE_ENTRIES = 4096
CACHED_LENGTH = 1024
#: A marker is never less than a quarter of what it replaces (a 23-character card number
#: becomes "[card]"), and nothing it replaces is longer than an e-mail address (254).
MAX_SHRINK = 4
LONGEST_MATCH = 320


def scrub(value: str) -> str:
    """``value`` with e-mails, phone numbers and Luhn-valid card numbers replaced by markers."""
    if len(value) > CACHED_LENGTH:
        return _scrub(value)
    return _cached(value)


def scrub_capped(value: str, limit: int) -> str:
    """``scrub(value)[:limit]`` without scrubbing more of ``value`` than can reach the result:
    the first ``limit`` characters out come from at most ``MAX_SHRINK * limit`` characters in,
    and anything to be replaced that starts there ends within ``LONGEST_MATCH`` more."""
    return scrub(value[:MAX_SHRINK * limit + LONGEST_MATCH])[:limit]


@functools.lru_cache(maxsize=CACHE_ENTRIES)  # paths and search terms repeat; regexes are costly
def _cached(value: str) -> str:
    return _scrub(value)


def _scrub(value: str) -> str:
    if not value:
        return value
    folded = value.translate(_FOLD)
    if not _may_hold_pii(folded):
        return value
    # Cards first: a card number contains runs that would otherwise look like phone numbers.
    folded, original = _replace(folded, value, _CARD_RE, CARD, _is_card)
    folded, original = _replace(folded, original, _EMAIL_RE, EMAIL, None)
    folded, original = _replace(folded, original, _INTL_RE, PHONE, _is_intl_phone)
    folded, original = _replace(folded, original, _JP_RE, PHONE, _is_jp_phone)
    folded, original = _replace(folded, original, _JP_PLAIN_RE, PHONE, _is_jp_phone)
    return original


def scrub_optional(value: str | None) -> str | None:
    return None if value is None else scrub(value)
