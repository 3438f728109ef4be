"""The pure core of privacy requests: the timeline fold, the workflow gate, one-time codes, the
sealing of ids, and the words every code is shown in."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from collector.requests import codes
from collector.requests.model import (
    GROUNDS,
    KINDS,
    STATUSES,
    TRANSITIONS,
    Entry,
    RequestRefused,
    check,
    fold,
    submission,
)
from collector.requests.seal import Sealer
from collector.requests.wording import GROUND_LABELS, KIND_LABELS, STATUS_LABELS

KEY = b"k" * 32
DAY = 86_400_000


def timeline(*steps: tuple[str, dict[str, Any]], kind: str = "deletion",
             **submitted: Any) -> list[Entry]:
    data = submission(kind=kind, email="a@example.jp", lang="ja", channel="web", text="",
                      account_id=submitted.get("account_id", ""),
                      account_email=submitted.get("account_email"),
                      visitor_ids=submitted.get("visitor_ids", ["v1"]), fee_yen=1000)
    entries = [Entry("R-AAAA-AAAA", 1, 1_000, "person", "submitted", data)]
    for n, (action, d) in enumerate(steps, 2):
        entries.append(Entry("R-AAAA-AAAA", n, 1_000 * n, "sato", action, d))
    return entries


def test_the_fold_reads_the_timeline_in_order() -> None:
    r = fold(list(reversed(timeline(("verified", {"by": "email"}), ("started", {})))),
             due_days=30)
    assert r.status == "in_progress" and r.verified_by == "email"
    assert r.due_at == 2_000 + 30 * DAY and r.subjects == [("visitor_id", "v1")]


@pytest.mark.parametrize("status_steps,action,allowed", [
    ((), "start", False), ((), "complete", False), ((), "verify", True),
    ((), "refuse", True), ((("verified", {}),), "complete", True),
    ((("verified", {}), ("completed", {})), "refuse", False),
    ((("withdrawn", {}),), "verify", False),
])
def test_the_workflow_allows_only_what_the_state_allows(
        status_steps: tuple[tuple[str, dict[str, Any]], ...], action: str,
        allowed: bool) -> None:
    r = fold(timeline(*status_steps), due_days=30)
    if allowed:
        assert check(r, action) == TRANSITIONS[action][1]
    else:
        with pytest.raises(RequestRefused):
            check(r, action)


def test_completing_needs_a_verified_request_a_paid_fee_and_an_id() -> None:
    with pytest.raises(RequestRefused, match="not verified") as unverified:
        check(fold(timeline(), due_days=30), "complete")
    assert unverified.value.code == "unverified"
    disclosure = fold(timeline(("verified", {}), kind="disclosure"), due_days=30)
    assert disclosure.fee == "due"
    with pytest.raises(RequestRefused) as fee:
        check(disclosure, "complete")
    assert fee.value.code == "fee_due"
    paid = fold(timeline(("verified", {}), ("fee", {"state": "paid"}), kind="disclosure"),
                due_days=30)
    assert check(paid, "complete") == "completed"
    nothing = fold(timeline(("verified", {}), visitor_ids=[]), due_days=30)
    with pytest.raises(RequestRefused) as no_ids:
        check(nothing, "complete")
    assert no_ids.value.code == "no_ids"


def test_an_account_counts_only_when_its_email_matches() -> None:
    mine = fold(timeline(account_id="m1", account_email="A@Example.JP", visitor_ids=[]),
                due_days=30)
    other = fold(timeline(account_id="m1", account_email="b@example.jp", visitor_ids=[]),
                 due_days=30)
    unknown = fold(timeline(account_id="m1", visitor_ids=[]), due_days=30)
    assert mine.account_match is True and mine.subjects == [("user_id", "m1")]
    assert other.account_match is False and other.subjects == []
    assert unknown.account_match is None and unknown.subjects == []


def test_one_mailbox_has_one_spelling() -> None:
    from collector.requests.model import canonical_email, same_email

    assert canonical_email("Hanako+Clinic@Example.JP") == "hanako@example.jp"
    assert canonical_email("h.a.nako+x@GoogleMail.com") == "hanako@gmail.com"
    assert canonical_email("h.anako@example.jp") == "h.anako@example.jp"
    # What lets a request act on an account is the address itself: a +tag may be delivered
    # to someone else, and the code goes to the address given.
    assert same_email(" hanako@example.jp", "HANAKO@Example.jp")
    assert not same_email("hanako@example.jp", "hanako+x@example.jp")
    assert not same_email("hanako@gmail.com", "h.anako@gmail.com")
    assert not same_email("hanako@example.jp", "hanako@example.com")


def test_an_unverified_request_cannot_be_verified_after_a_week() -> None:
    code = "123456"
    sent = ("code_sent", {"hash": codes.code_hash(KEY, "R-AAAA-AAAA", code),
                          "expires": 10**15})
    r = fold(timeline(sent), due_days=30)
    assert codes.judge(r, KEY, code, 1_000 + codes.VERIFY_WINDOW_MS - 1) == "ok"
    assert codes.judge(r, KEY, code, 1_000 + codes.VERIFY_WINDOW_MS + 1) == "expired"


def test_a_code_is_judged_once_in_time_and_within_its_tries() -> None:
    code = "123456"
    sent = ("code_sent", {"hash": codes.code_hash(KEY, "R-AAAA-AAAA", code), "expires": 10**6})
    r = fold(timeline(sent), due_days=30)
    assert codes.judge(r, KEY, "12 34 56", 5_000) == "ok"  # as people type it
    assert codes.judge(r, KEY, "１２３４５６", 5_000) == "ok"  # as a Japanese IME types it
    # Not six digits is a slip, not a guess: desk.enter_code spends a try only on "wrong".
    for slip in ("", "12345", "一二三四五六", "1234567"):
        assert codes.judge(r, KEY, slip, 5_000) == "malformed", slip
    assert codes.judge(r, KEY, "654321", 5_000) == "wrong"
    assert codes.judge(r, KEY, code, 10**6 + 1) == "expired"
    assert codes.judge(r, b"other key", code, 5_000) == "wrong"
    used = fold(timeline(sent, ("code_used", {})), due_days=30)
    assert codes.judge(used, KEY, code, 5_000) == "no_code"
    tried = fold(timeline(sent, *[("code_failed", {})] * codes.MAX_TRIES), due_days=30)
    assert codes.judge(tried, KEY, code, 5_000) == "too_many"


def test_codes_are_sent_at_most_three_an_hour_and_not_twice_a_minute() -> None:
    def after(*at: int) -> Any:
        steps = [("code_sent", {"hash": "h", "expires": 10**9})] * len(at)
        entries = timeline(*steps)
        for entry, moment in zip(entries[1:], at, strict=True):
            object.__setattr__(entry, "at", moment)
        return fold(entries, due_days=30)

    assert codes.may_send(after(0), 30_000) == 31
    assert codes.may_send(after(0), 61_000) == 0
    assert codes.may_send(after(0, 100_000, 200_000), 300_000) == 3_300 + 1
    assert codes.may_send(after(0, 100_000, 200_000), 3_600_001) == 0
    # A code locked by its wrong tries: the next may go at once.
    locked = fold(timeline(("code_sent", {"hash": "h", "expires": 10**9}),
                           *[("code_failed", {})] * codes.MAX_TRIES), due_days=30)
    assert codes.may_send(locked, 30_000) == 0


def test_the_person_sees_the_dates_staff_see_in_the_sites_time_zone() -> None:
    from collector.requests.api import public_view

    r = fold(timeline(), due_days=30)
    # 20:05 UTC on 7 December is 05:05 on 8 December in Tokyo, where staff work.
    r.received_at = 1_796_601_600_000 + 20 * 3_600_000 + 5 * 60_000
    r.due_at = r.received_at + 30 * 86_400_000
    tokyo = public_view(r, "ja", tz="Asia/Tokyo")
    assert (tokyo["received_on"], tokyo["due_on"]) == ("2026年12月8日", "2027年1月7日")
    assert public_view(r, "en", tz="Asia/Tokyo")["received_on"] == "2026-12-08"
    assert public_view(r, "ja", tz="UTC")["received_on"] == "2026年12月7日"


def test_sealed_ids_share_no_bytes_with_the_ids() -> None:
    sealer = Sealer(KEY)
    data = {"visitor_ids": ["0123456789abcdef0123456789abcdef"], "user_id": "member-42",
            "note": "about 0123456789abcdef", "kind": "deletion"}
    sealed = sealer.seal(data)
    assert "0123456789abcdef" not in str(sealed) and "member-42" not in str(sealed)
    assert sealed["kind"] == "deletion"
    assert sealer.open(sealed) == data
    assert Sealer(b"another key").open(sealed)["user_id"] == ""


@pytest.mark.parametrize(("fields", "code"), [
    ({"kind": "all"}, "bad_kind"), ({"email": "x@"}, "bad_email"),
    ({"email": "a@b.c\r\nBcc: x@y.z"}, "bad_email"), ({"lang": "fr"}, "bad_lang"),
    ({"email": "(1)a@example.jp"}, "bad_email"), ({"email": "x:a@example.jp"}, "bad_email"),
    ({"email": "ä@example.jp"}, "bad_email"),
    ({"account_id": "taro.yamada@clinic"}, "bad_account_id"),
    ({"visitor_ids": ["not an id"]}, "bad_visitor_ids"),
    ({"account_id": "a b"}, "bad_account_id"), ({"text": "x" * 2001}, "text_too_long"),
    ({"visitor_ids": [str(n) for n in range(21)]}, "too_many_ids"),
])
def test_a_submission_names_the_field_it_refuses(fields: dict[str, Any], code: str) -> None:
    values: dict[str, Any] = {"kind": "deletion", "email": "a@example.jp", "lang": "ja",
                              "channel": "web", "text": "", "account_id": "",
                              "account_email": None, "visitor_ids": [], "fee_yen": 0}
    values.update(fields)
    with pytest.raises(RequestRefused) as refused:
        submission(**values)
    assert refused.value.code == code


def test_every_code_a_person_or_page_meets_has_words_in_both_languages() -> None:
    from consent_mw.consent.i18n import MESSAGES
    from consent_mw.consent.request_form import REFUSALS, VERDICTS
    from dashboards import desk_words

    for lang in ("ja", "en"):
        assert {k for k in (*REFUSALS.values(), *VERDICTS.values(), "rq_refused")
                if k not in MESSAGES[lang]} == set()
        for labels, codes_ in ((KIND_LABELS, KINDS), (STATUS_LABELS, STATUSES),
                               (GROUND_LABELS, GROUNDS)):
            assert all(labels[c][lang] for c in codes_)
    assert set(desk_words.STATUS) == set(STATUSES) and set(desk_words.KIND) == set(KINDS)
    assert set(desk_words.GROUND) == set(GROUNDS)
    assert set(VERDICTS) == set(get_args(codes.Verdict)) - {"ok"}
