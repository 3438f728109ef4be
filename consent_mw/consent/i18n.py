"""Banner and page wording (ja, en) and choosing the locale of a response."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from consent_mw.consent.request_words import REQUEST_MESSAGES
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
        "prefs_intro_decided": "カテゴリごとに同意を選べます。チェックは、いまの設定です。"
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
        "gpc_banner": "お使いのブラウザーはグローバル・プライバシー・コントロール(GPC)を送信して"
        "いるため、「すべて同意する」を選んでも広告・マーケティングはオフのままです。"
        "変えるときは「設定」からどうぞ。",
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
        "back_to_site": "サイトに戻る",
        "md_nothing_title": "記録されたデータはありません",
        "md_no_visitor": "このブラウザーにはアクセス解析の識別子がないため、あなたに結び付く記録は"
        "ありません。アクセス解析に同意していない間の閲覧は、匿名の集計としてだけ数えています。",
        "md_delete_title": "データの削除",
        "md_delete_text": "このブラウザーの識別子で記録されたページ閲覧とイベントをすべて削除し、"
        "以後の記録を止めます。同意の記録は、何に同意したかの証拠として、あなたとの結び付きを"
        "消したうえで保存します。",
        "md_delete_button": "データを削除する",
        "md_requested_title": "削除を受け付けました",
        "md_requested_text": "記録は止まり、このブラウザーの同意は「すべて拒否」に戻りました。"
        "データの削除と、削除できたことの確認は数分で終わります。",
        "md_reference": "受付番号",
        "md_check_status": "削除の状況を確認する",
        "md_keep_link": "このリンクを控えておくと、後で結果を確認できます。",
        "md_status_title": "削除の状況",
        "md_status_pending": "削除を処理しています。しばらくしてから、このページを"
        "再読み込みしてください。",
        "md_status_done": "データを削除し、残っていないことを確認しました。",
        "md_status_incomplete": "一部の削除を確認できませんでした。お手数ですが、お問い合わせ窓口へ"
        "受付番号をお知らせください。",
        "md_deleted_events": "削除したページ閲覧・イベント",
        "md_anonymised_records": "結び付きを消した同意の記録",
        "md_verified_at": "確認日時",
        "md_receipt": "受領番号",
        "md_kept": "保存を続けるもの",
        "md_kept_text": "同意の記録(いつ、どの説明に対して、何を選んだか)は、法令に基づく証拠として"
        "最長5年保存します。あなたの識別子との結び付きは消去しています。",
        "md_unknown": "このリンクに当たる削除の依頼は見つかりませんでした。",
        "md_busy": "ただいま混み合っています。しばらくしてからもう一度お試しください。",
        "md_unavailable": "ただいま処理できません。しばらくしてからもう一度お試しください。",
        "md_rate_limited": "短い時間に多くの依頼がありました。しばらくしてから"
        "もう一度お試しください。",
        "md_cross_site": "他のサイトから送られた依頼は受け付けていません。",
        "md_not_confirmed": "削除の確認が取れませんでした。もう一度ボタンを押してください。",
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
        "prefs_intro_decided": "Choose per category. The ticks show your current choices. "
        "You can change or withdraw them at any time.",
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
        "gpc_banner": "Your browser sends Global Privacy Control (GPC), so advertising and "
        "marketing stay off even if you accept all. To change that, use Settings.",
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
        "back_to_site": "Back to the site",
        "md_nothing_title": "Nothing is recorded about you",
        "md_no_visitor": "This browser has no analytics identifier, so nothing recorded here is "
        "linked to you. While analytics is not consented to, visits are only counted "
        "anonymously.",
        "md_delete_title": "Delete my data",
        "md_delete_text": "This deletes every page view and event recorded under this browser's "
        "identifier and stops further recording. Consent records are kept as proof of what "
        "was agreed, with every link to you removed.",
        "md_delete_button": "Delete my data",
        "md_requested_title": "Your deletion is under way",
        "md_requested_text": "Recording has stopped, and this browser's consent is back to "
        "\u201creject all\u201d. Deleting your data and verifying that nothing is left takes a "
        "few minutes.",
        "md_reference": "Reference",
        "md_check_status": "Check the deletion",
        "md_keep_link": "Keep this link to check the result later.",
        "md_status_title": "Deletion status",
        "md_status_pending": "Your deletion is being processed. Reload this page in a little "
        "while.",
        "md_status_done": "Your data was deleted, and we verified that none is left.",
        "md_status_incomplete": "Part of the deletion could not be verified. Please contact us "
        "with the reference below.",
        "md_deleted_events": "Page views and events deleted",
        "md_anonymised_records": "Consent records unlinked from you",
        "md_verified_at": "Verified at",
        "md_receipt": "Receipt",
        "md_kept": "What is kept",
        "md_kept_text": "Consent records (when, against which notice, what was chosen) are kept "
        "for up to 5 years as legal proof, with the link to your identifiers erased.",
        "md_unknown": "No deletion request matches this link.",
        "md_busy": "We are busy right now. Please try again shortly.",
        "md_unavailable": "This cannot be done right now. Please try again later.",
        "md_rate_limited": "Too many requests in a short time. Please try again later.",
        "md_cross_site": "Requests sent from other sites are refused.",
        "md_not_confirmed": "The deletion was not confirmed. Please press the button again.",
    },
}
for _locale, _words in REQUEST_MESSAGES.items():  # the request pages' sentences
    MESSAGES[_locale].update(_words)

_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


def t(locale: str, key: str) -> str:
    return MESSAGES.get(locale, MESSAGES["en"]).get(key) or MESSAGES["en"][key]


def text(value: Mapping[str, str], locale: str, default_locale: str = "ja") -> str:
    """A configured text in the locale, falling back to the default, then to any."""
    return value.get(locale) or value.get(default_locale) or next(iter(value.values()), "")


def from_html(body: bytes) -> str | None:
    """The primary subtag of ``<html lang=...>`` in the start of a page, if any."""
    match = _HTML_LANG.search(body, 0, 4096)  # bounds, not a slice: no copy of the start
    return match.group(1).decode("ascii").lower() if match else None


_PRIMARY_TAG = re.compile(r"^[a-z]{2,8}$")


MAX_ACCEPT_LANGUAGE = 512  # browsers send a few dozen characters


def ranked_languages(header: str) -> tuple[str, ...]:
    """Primary language subtags of ``Accept-Language``, most wanted first.

    Highest q first, header order on ties; q=0, unparsable q and malformed tags are left out.
    A header over ``MAX_ACCEPT_LANGUAGE`` characters counts as absent.
    """
    if len(header) > MAX_ACCEPT_LANGUAGE:
        return ()
    return _ranked_languages(header)


@functools.lru_cache(maxsize=1024)  # browsers send a handful of distinct headers
def _ranked_languages(header: str) -> tuple[str, ...]:
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


@functools.lru_cache(maxsize=64)  # configured tuples: a handful per process
def supported_locales(locales: tuple[str, ...]) -> tuple[str, ...]:
    """The configured locales the banner has messages for, in configured order."""
    return tuple(loc for loc in locales if loc in MESSAGES)


def choose_locale(settings: Settings, *, html_lang: str | None = None,
                  accept_language: str = "") -> str:
    """The page's own language first, then Accept-Language, then the default (ja)."""
    supported = supported_locales(settings.locales)
    if html_lang and html_lang in supported:
        return html_lang
    return from_accept_language(accept_language, supported) or settings.default_locale
