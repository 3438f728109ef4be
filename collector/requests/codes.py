"""One-time codes that prove a person reads the e-mail address a request names. Pure.

A code is six digits, drawn with ``secrets``. Only its keyed hash is kept (HMAC-SHA256 over
the request's reference and the code, under the collector's hash key), so the store holds
nothing that opens a request. A code:

- works once: the entry that accepts it also spends it;
- expires after :data:`TTL_MS`;
- allows :data:`MAX_TRIES` wrong tries, after which only a new code helps;
- can be sent :data:`MAX_SENDS` times an hour per request, and not again within a minute
  while the last one is still unused (a person who used theirs may ask for the next at once),
  and :data:`MAX_CODES` times in a request's life;
- verifies only a request younger than :data:`VERIFY_WINDOW_MS` (an older unverified one is
  asked again), and shows a closed one only for :data:`STATUS_WINDOW_MS` after it closed.

Wrong tries are also counted per mailbox across its requests (``collector.requests.desk``:
:data:`WRONG_PER_EMAIL_DAY` a day). A guesser aiming at one person's requests therefore has
10 tries a day against a million values, one chance in 100,000 a day, while every try lands
on a timeline and every code lands in that person's mailbox.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from typing import Literal

from collector.requests.model import Request

TTL_MS = 15 * 60_000
MAX_TRIES = 5
MAX_SENDS = 3
MAX_CODES = 6
WRONG_PER_EMAIL_DAY = 10
VERIFY_WINDOW_MS = 7 * 86_400_000
STATUS_WINDOW_MS = 30 * 86_400_000
SEND_WINDOW_MS = 3_600_000
RESEND_AFTER_MS = 60_000

#: ``malformed``: not six digits (an empty box, a slip of the finger): not a try at the code.
Verdict = Literal["ok", "wrong", "malformed", "expired", "no_code", "too_many"]


def draw() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(key: bytes, ref: str, code: str) -> str:
    return hmac.new(key, f"{ref}\x00{code}".encode(), hashlib.sha256).hexdigest()


def judge(request: Request, key: bytes, code: str, now: int) -> Verdict:
    """What ``code`` is worth against the request's current code, at ``now`` (ms)."""
    if not request.code_hash:
        return "no_code"
    if request.status == "received" and now - request.received_at > VERIFY_WINDOW_MS:
        return "expired"
    if request.code_tries >= MAX_TRIES:
        return "too_many"
    if now > request.code_expires:
        return "expired"
    # A Japanese input method types full-width digits (１４２７７２): the same code.
    given = "".join(str(unicodedata.decimal(ch)) for ch in code if ch.isdecimal())
    if len(given) != 6:
        return "malformed"
    if not hmac.compare_digest(code_hash(key, request.ref, given), request.code_hash):
        return "wrong"
    return "ok"


def may_send(request: Request, now: int) -> int:
    """0 if a new code may be sent now, else the seconds to wait."""
    recent = [at for at in request.codes_sent if now - at < SEND_WINDOW_MS]
    # A code locked by wrong tries is no reason to wait for the next one.
    if (recent and request.code_hash and request.code_tries < MAX_TRIES
            and now - recent[-1] < RESEND_AFTER_MS):
        return (RESEND_AFTER_MS - (now - recent[-1])) // 1000 + 1
    if len(recent) >= MAX_SENDS:
        return (SEND_WINDOW_MS - (now - recent[0])) // 1000 + 1
    return 0
