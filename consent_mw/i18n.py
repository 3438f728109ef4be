"""Banner and page wording (ja, en) and choosing the locale of a response."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from consent_mw.settings import Settings

MESSAGES: dict[str, dict[str, str]] = {
    "ja": {
        "banner_title": "クッキーとアクセス解析について",
        "banner_text": "当サイトは、あなたの同意がある場合に限り、アクセス解析や広告のための"
        "情報を取得します。同意しなくてもサイトはすべて利用できます。"
        "選択はいつでも「プライバシー設定」から変更・撤回できます。",
        "accept_all": "すべて同意する",
        "reject_all": "すべて拒否する",
        "settings": "設定",
        "prefs_title": "プライバシー設定",
        "prefs_intro": "カテゴリごとに同意を選べます。あらかじめ選択されている項目はありません。"
        "いつでも変更・撤回できます。",
        "save": "選択を保存する",
        "withdraw": "すべて撤回する(必須以外を拒否)",
        "always_on": "常に有効・無効にできません",
        "covers": "対象となる情報",
        "purpose": "利用目的",
        "retention": "保存期間",
        "services": "個別のサービス",
        "external_link": "外部送信に関する公表事項",
        "saved": "設定を保存しました。",
        "status_decided": "現在の設定を表示しています。",
        "status_undecided": "まだ選択されていません。",
        "gpc_notice": "お使いのブラウザーはグローバル・プライバシー・コントロール(GPC)を"
        "送信しています。広告・マーケティングは、ここで明示的に選択しない限り拒否として扱います。",
        "back": "元のページに戻る",
        "my_data": "あなたのデータ",
        "download": "データをダウンロードする",
        "delete": "データを削除する",
        "ext_title": "外部送信に関する公表事項",
        "ext_intro": "電気通信事業法第27条の12に基づき、当サイトが利用者の端末から外部に送信させる"
        "情報について公表します。各送信は、該当するカテゴリに同意した場合にのみ行われます。",
        "ext_none": "現在、外部送信を行うタグはありません。",
        "recipient": "送信先",
        "items": "送信される情報",
        "opt_out": "オプトアウト",
        "category": "カテゴリ",
        "prefs_link": "プライバシー設定",
    },
    "en": {
        "banner_title": "Cookies and analytics",
        "banner_text": "We collect analytics and advertising data only if you agree. "
        "The whole site works without it. You can change or withdraw your choice at any time "
        "under Privacy settings.",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "settings": "Settings",
        "prefs_title": "Privacy settings",
        "prefs_intro": "Choose per category. Nothing is pre-selected. "
        "You can change or withdraw your choice at any time.",
        "save": "Save my choices",
        "withdraw": "Withdraw all (refuse everything optional)",
        "always_on": "always on, cannot be turned off",
        "covers": "Data covered",
        "purpose": "Purpose",
        "retention": "Retention",
        "services": "Individual services",
        "external_link": "External transmission notice",
        "saved": "Your choices were saved.",
        "status_decided": "These are your current choices.",
        "status_undecided": "You have not made a choice yet.",
        "gpc_notice": "Your browser sends Global Privacy Control (GPC). Marketing is treated as "
        "refused unless you explicitly choose it here.",
        "back": "Back to the page",
        "my_data": "Your data",
        "download": "Download my data",
        "delete": "Delete my data",
        "ext_title": "External transmission notice",
        "ext_intro": "Under Article 27-12 of Japan's Telecommunications Business Act we publish "
        "what this site has your browser send to third parties. Each transmission happens only "
        "if you consented to its category.",
        "ext_none": "No tags currently send data to third parties.",
        "recipient": "Recipient",
        "items": "Data sent",
        "opt_out": "Opt-out",
        "category": "Category",
        "prefs_link": "Privacy settings",
    },
}

_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


def t(locale: str, key: str) -> str:
    return MESSAGES.get(locale, MESSAGES["en"]).get(key) or MESSAGES["en"][key]


def text(value: Mapping[str, str], locale: str, default_locale: str = "ja") -> str:
    """A configured text in the locale, falling back to the default, then to any."""
    return value.get(locale) or value.get(default_locale) or next(iter(value.values()), "")


def from_html(body: bytes) -> str | None:
    """The primary subtag of ``<html lang=...>`` in the start of a page, if any."""
    match = _HTML_LANG.search(body[:4096])
    return match.group(1).decode("ascii").lower() if match else None


_PRIMARY_TAG = re.compile(r"^[a-z]{2,8}$")


@functools.lru_cache(maxsize=1024)  # browsers send a handful of distinct headers
def ranked_languages(header: str) -> tuple[str, ...]:
    """Primary language subtags of ``Accept-Language``, most wanted first.

    Highest q first, header order on ties; q=0, unparsable q and malformed tags are left out.
    """
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-", 1)[0].lower()
        if quality > 0 and _PRIMARY_TAG.match(primary):
            ranked.append((-quality, index, primary))
    return tuple(primary for _, _, primary in sorted(ranked))


def from_accept_language(header: str, supported: tuple[str, ...]) -> str | None:
    """The supported locale the visitor ranks highest (q-values honoured)."""
    return next((lang for lang in ranked_languages(header) if lang in supported), None)


def choose_locale(settings: Settings, *, html_lang: str | None = None,
                  accept_language: str = "") -> str:
    """The page's own language first, then Accept-Language, then the default (ja)."""
    supported = tuple(loc for loc in settings.locales if loc in MESSAGES)
    if html_lang and html_lang in supported:
        return html_lang
    return from_accept_language(accept_language, supported) or settings.default_locale
