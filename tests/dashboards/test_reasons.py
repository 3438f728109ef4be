"""A refusal reads as a sentence in the page's language, never as the collector's English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboards.reasons import BAD_INPUT, GENERAL, REFUSALS, explain

ROOT = Path(__file__).resolve().parents[2]
#: What staff can meet on a phone, as the collector words it (each checked below to have its
#: own Japanese sentence, not the general one).
MET_BY_STAFF = [
    "end: must not be before start",
    "to must not be before from",
    "grain: hourly series cover at most 31 days",
    "grain: key figures with their series come by day or week",
    "date range: at most 400 days",
    "a pack covers at most 366 days",
    "dates: between 1971-01-01 and 2199-12-31",
    "start: expected a date YYYY-MM-DD",
    "start: '2026-02-31' is not a valid date",
    "from and to must be dates (YYYY-MM-DD)",
    "path: required for this kind of goal",
    "name: 1 to 60 characters",
    "value: between 0 and 100000000",
    "text: a note needs some text",
    "text: at most 500 characters",
    "name: a goal called '予約' exists already",
    'name: a funnel called "春\'s" exists already',  # repr quotes with " around a '
    "filters: at most 8",
    "day: must be within 400 days of today",
    "days: 0 (one visit) to 90",
    "author: expected the staff member's name",
    "note_id: not a note",
    "goals: at most 50; remove one first",
    "filters: a segment needs at least one filter",
    "path: a pattern starts with / (use * for any characters)",
    "steps: 2 to 8 steps",
    "step 2: no such goal",
    "step 1: path: a pattern starts with / (use * for any characters)",
    "goal: no such goal",
    "visitor_id is malformed: 1-64 characters of [0-9A-Za-z_-]",
    "give exactly one of visitor_id or user_id",
]


@pytest.mark.parametrize("reason", MET_BY_STAFF)
def test_each_reason_staff_meet_has_its_own_japanese_sentence(reason: str) -> None:
    words = explain(reason, "ja")
    assert words != GENERAL
    # No English word, field name or code: "ID" and the characters an id may hold are all.
    assert not re.search(r"[a-z]{2,}|_id\b", words), words


def test_numbers_and_names_from_the_reason_are_kept() -> None:
    assert "31 日" in explain("grain: hourly series cover at most 31 days", "ja")
    assert "名前は 1〜60 文字" in explain("name: 1 to 60 characters", "ja")
    assert "「予約」" in explain("name: a goal called '予約' exists already", "ja")
    assert "ページのパス" in explain("path: required for this kind of goal", "ja")
    assert explain("step 1: path: a pattern starts with /", "ja").startswith("ステップ 1: ")


def test_an_unknown_reason_is_a_general_sentence_in_japanese_and_as_is_in_english() -> None:
    assert explain("unknown parameters: x", "ja") == GENERAL
    assert explain("unknown parameters: x", "en") == BAD_INPUT + "unknown parameters: x"


def test_every_refusal_the_request_desk_raises_has_words() -> None:
    # RequestRefused("code", ...) and its subclasses' super().__init__("code", ...).
    raised = {code for path in (ROOT / "collector" / "requests").glob("*.py")
              for code in re.findall(r'(?:RequestRefused|super\(\).__init__)\(\s*"([a-z_]+)"',
                                     path.read_text())}
    assert "unknown_request" in raised
    assert raised and raised - set(REFUSALS) == set()
    assert explain("the disclosure fee is due", "ja", "fee_due") == REFUSALS["fee_due"].ja


def test_the_audit_reads_the_collectors_own_reasons_as_words() -> None:
    from dashboards.desk_words import audit_reason as reason

    assert reason("self-service deletion").ja == "ご本人による削除"
    assert reason("privacy request R-AB12-CD34").ja == "ご請求 R-AB12-CD34"
    assert reason("privacy request R-AB12-CD34: the export mailed again").ja.endswith("(再送)")
    assert reason("evidence pack 2026-12-01..2026-12-07").ja == "証跡パック 2026-12-01〜2026-12-07"
    assert reason("窓口で本人確認").ja == "窓口で本人確認"  # what staff typed stays as typed
