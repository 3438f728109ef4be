"""One piece of wording in both languages (``dashboards.i18n`` says how they are chosen)."""

from __future__ import annotations

from typing import Literal, NamedTuple

Locale = Literal["ja", "en"]


class Text(NamedTuple):
    """One piece of wording in both languages."""

    ja: str
    en: str

    def __call__(self, locale: Locale) -> str:
        return self.en if locale == "en" else self.ja
