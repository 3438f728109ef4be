"""Both languages everywhere: every word a page shows exists in Japanese and English, every
stored code has a label, and the language is chosen as the docs say."""

from __future__ import annotations

import pytest

from collector.query.params import DIMENSIONS
from consent_mw import wire
from dashboards import format as f
from dashboards import i18n
from dashboards.i18n import Text, pick_locale
from dashboards.panels import PAGES, PANELS


@pytest.mark.parametrize(("choice", "cookie", "accept", "expected"), [
    (None, None, None, "ja"),
    (None, None, "en-US,en;q=0.9", "en"),
    (None, None, "fr-FR,en;q=0.5,ja;q=0.8", "ja"),  # the browser prefers Japanese to English
    (None, None, "ja;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
    (None, None, "de-DE,fr;q=0.9", "ja"),  # neither: Japanese
    (None, "en", "ja-JP", "en"),  # the staff member's saved choice wins over the browser
    ("ja", "en", "en-US", "ja"),  # and a choice made now over the saved one
    ("xx", "<script>", "en;q=abc", "ja"),  # junk is ignored, never an error
])
def test_the_language_is_chosen_as_documented(choice: str | None, cookie: str | None,
                                              accept: str | None, expected: str) -> None:
    assert pick_locale(choice, cookie, accept) == expected


def every_text() -> list[Text]:
    texts: list[Text] = [*i18n.UI.values(), *i18n.PRESET_LABELS.values(),
                         *i18n.GRAIN_LABELS.values(), *i18n.ROLE_LABELS.values(),
                         *i18n.COMPARE_LABELS.values(), *f.COMPARED_NAMES.values()]
    texts += [p.title for p in PANELS.values()] + [p.note for p in PANELS.values() if p.note]
    texts += [p.title for p in PAGES.values()]
    texts += [label for label, _ in [*f.KPI_LABELS.values(), *f.ENGAGEMENT_LABELS.values()]]
    texts += [*f.DIM_LABELS.values(), *f.COUNT_HEADERS.values(), f.OTHER, f.NOT_SET]
    texts += [t for values in f.VALUE_LABELS.values() for t in values.values()]
    texts += [name for _, name in f.SERIES_NAMES]
    texts += [h for cols in f.PAGE_COLUMNS.values() for _, h, _ in cols]
    return texts


def test_every_word_exists_in_both_languages() -> None:
    texts = every_text()
    assert len(texts) > 200
    assert all(t.ja and t.en for t in texts), [t for t in texts if not (t.ja and t.en)]
    # Japanese is Japanese: every Japanese label that differs from its English one has kana
    # or kanji (a label left in English would be caught here).
    # Some words are Latin in Japanese too; the language link names the other language.
    latin_in_japanese = {"OS", "SNS", "English"}
    untranslated = [t for t in texts
                    if t.ja != t.en and t.ja.isascii() and t.ja not in latin_in_japanese]
    assert untranslated == []


def test_every_dimension_and_stored_code_has_a_label() -> None:
    assert set(f.DIM_LABELS) == set(DIMENSIONS)
    assert set(f.VALUE_LABELS["channel"]) == set(wire.CHANNELS)
    assert set(f.VALUE_LABELS["device_type"]) == set(wire.DEVICE_TYPES) - {"bot"}
    assert set(f.VALUE_LABELS["interaction"]) == set(wire.INTERACTIONS) - {"scroll", "engaged"}
    assert set(f.VALUE_LABELS["method"]) == set(wire.RECORD_METHODS)
    assert set(f.VALUE_LABELS["step"]) >= {"shown", "decided", "updated", "withdrawn"}


@pytest.mark.parametrize(("seconds", "ja", "en"), [
    (0, "0秒", "0s"), (42.4, "42秒", "42s"), (125, "2分05秒", "2m 05s"),
    (3599.6, "1時間00分", "1h 00m"), (3780, "1時間03分", "1h 03m"),
])
def test_durations_read_as_times(seconds: float, ja: str, en: str) -> None:
    assert f.fmt(seconds, "dur", "ja") == ja and f.fmt(seconds, "dur", "en") == en
    assert f.fmt(None, "dur") == f.MISSING


def test_codes_read_as_what_they_mean_and_unknown_values_as_they_are() -> None:
    assert f.row_label("mobile", False, "device_type", "ja") == "スマートフォン"
    assert f.row_label("mobile", False, "device_type", "en") == "Mobile"
    assert f.row_label("/treatments/futae", False, "path") == "/treatments/futae"
    assert f.row_label("", False, "country", "ja") == "(未設定)"
    assert f.row_label("JP", True, "country", "en") == "(other)"
