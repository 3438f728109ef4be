"""The dashboards' two languages: Japanese first, English the other choice.

Every word a page shows is a :class:`Text` (both languages side by side, so neither can be
forgotten): panel and page titles beside their definitions (:mod:`dashboards.panels`), the
labels of figures and values in :mod:`dashboards.format`, the page furniture in :data:`UI`.
:func:`pick_locale` chooses the language: the staff member's choice (the language link in the
header, kept in a cookie for a year), else the browser's ``Accept-Language``, else Japanese.
Pure.
"""

from __future__ import annotations

from dashboards.desk_words import DESK_UI
from dashboards.text import Locale as Locale
from dashboards.text import Text as Text

LOCALES: tuple[Locale, ...] = ("ja", "en")
DEFAULT: Locale = "ja"
#: Where the staff member's choice is kept (not a secret; a preference).
COOKIE = "cmw_dash_lang"
COOKIE_MAX_AGE = 365 * 86400


def locale_of(value: str | None) -> Locale | None:
    """``ja`` / ``en`` from a language tag (``ja-JP``, ``en-GB``), else None."""
    tag = (value or "").strip().lower()[:2]
    return "en" if tag == "en" else "ja" if tag == "ja" else None


def pick_locale(choice: str | None, cookie: str | None, accept_language: str | None) -> Locale:
    """The page's language: an explicit choice (``?lang=``), the saved one, the browser's
    first language we have (by ``q``), else Japanese."""
    for value in (choice, cookie):
        found = locale_of(value)
        if found is not None:
            return found
    ranked: list[tuple[float, int, Locale]] = []
    for i, part in enumerate((accept_language or "")[:512].split(",")):
        tag, _, params = part.partition(";")
        found = locale_of(tag)
        if found is None:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            ranked.append((-q, i, found))
    return min(ranked)[2] if ranked else DEFAULT


NO_TEXT = Text("", "")

#: Page furniture: the filter bar, notes, buttons, the login and error pages.
UI: dict[str, Text] = {
    "period": Text("期間", "Period"),
    "from": Text("開始", "From"),
    "to": Text("終了", "To"),
    "series": Text("グラフの単位", "Series"),
    "compare": Text("比較", "Compare with"),
    "apply": Text("表示", "Apply"),
    "filtered_by": Text("絞り込み:", "Filtered by:"),
    "remove_filter": Text("この絞り込みを外す", "remove this filter"),
    "k_note": Text("訪問者が {k} 人未満の行は「(その他)」にまとめ、"
                   "{k} 人未満の数値は – で示します。",
                   "Rows with fewer than {k} distinct visitors are folded into “(other)”; "
                   "figures from fewer than {k} show as –."),
    "consent_filter_note": Text(
        "同意記録はこの絞り込みの対象外です。匿名カウントはページと端末の種類でのみ絞り込めます(それ以外では空になります)。",
        "Consent records are not filtered by these; anonymous counts only by path and device "
        "type (otherwise they stay empty)."),
    "below_k": Text("該当する訪問者が {k} 人未満のため表示できません。",
                    "Fewer than {k} visitors match: nothing to show."),
    "no_previous": Text("比較する期間にはデータがありません。",
                        "The compared period has no data."),
    "prev": Text("比較", "vs"),
    "no_data": Text("この期間のデータはありません。", "No data in this period."),
    "nothing_visitors": Text("表示できる行がありません(訪問者 {k} 人以上の行がありません)。",
                             "Nothing to show (no row reaches {k} visitors)."),
    "nothing_views": Text("表示できる行がありません(計測 {k} 件以上の行がありません)。",
                          "Nothing to show (no row reaches {k} counted views)."),
    "csv": Text("CSV", "CSV"),
    "notes": Text("メモ", "Notes"),
    "note_day": Text("日付", "Day"),
    "note_text": Text("内容", "Note"),
    "note_placeholder": Text("例: 春のキャンペーン開始、テレビで紹介", "e.g. spring campaign "
                             "launched, mentioned on TV"),
    "note_add": Text("メモを追加", "Add note"),
    "note_delete": Text("削除", "Remove"),
    "note_delete_confirm": Text("削除する(元に戻せません)", "Remove (cannot be undone)"),
    "done_saved": Text("保存しました。", "Saved."),
    "done_removed": Text("削除しました。", "Removed."),
    "segment": Text("セグメント", "Segment"),
    "segment_none": Text("なし", "None"),
    "segment_name": Text("この絞り込みを保存:", "Save these filters as:"),
    "segment_placeholder": Text("例: LINE経由のスマホ", "e.g. phones from LINE"),
    "segment_save": Text("保存", "Save"),
    "segments_saved": Text("保存したセグメント", "Saved segments"),
    "goal_shown": Text("詳しく表示中の目標:", "Goal shown in detail:"),
    "goal_pick": Text("目標の表で名前を選ぶと切り替わります",
                      "pick a goal's name in the table to switch"),
    "no_goals": Text("目標はまだありません。「目標の設定」から追加してください",
                     "No goals yet: add one under “Set up goals”"),
    "goal_setup": Text("目標の設定", "Set up goals"),
    "goal_add": Text("目標を追加", "Add the goal"),
    "goal_name": Text("名前", "Name"),
    "goal_name_placeholder": Text("例: カウンセリング予約", "e.g. counselling booked"),
    "goal_kind": Text("種類", "Kind"),
    "goal_page_fields": Text("ページの閲覧", "Page viewed"),
    "goal_path": Text("パス(* は任意の文字列)", "Path (* is any characters)"),
    "goal_event_fields": Text("カスタムイベント", "Custom event"),
    "goal_event": Text("イベント名", "Event name"),
    "goal_property": Text("プロパティ(任意)", "Property (optional)"),
    "goal_equals": Text("その値", "equal to"),
    "goal_interaction_fields": Text("操作", "Interaction"),
    "goal_interaction": Text("操作の種類", "Interaction"),
    "goal_target": Text("対象(任意: アプリ名・リンク先のホスト・ファイル・フォームID)",
                        "Target (optional: app, link host, file or form id)"),
    "goal_engaged_fields": Text("閲覧時間", "Engaged time"),
    "goal_seconds": Text("1回の訪問で何秒以上", "Seconds in one visit, at least"),
    "goal_value": Text("1件あたりの価値(円・任意)", "Value per conversion (yen, optional)"),
    "funnel_shown": Text("表示するファネル:", "Funnel shown:"),
    "funnel_broken": Text("目標が削除されたため表示できません",
                          "cannot be shown: one of its goals was removed"),
    "no_funnels": Text("ファネルはまだありません。「ファネルの設定」から追加してください",
                       "No funnels yet: add one under “Set up funnels”"),
    "funnel_setup": Text("ファネルの設定", "Set up funnels"),
    "funnel_add": Text("ファネルを追加", "Add the funnel"),
    "funnel_name_placeholder": Text("例: LP → 施術 → 予約", "e.g. landing → treatment → booked"),
    "funnel_within": Text("期間", "Within"),
    "funnel_one_visit": Text("1回の訪問内", "one visit"),
    "funnel_days": Text("{n}日以内", "{n} days"),
    "funnel_steps_note": Text("2〜8ステップ。各ステップは目標か、ページのパスです。"
                              "空の行は使われません",
                              "2 to 8 steps, each a goal or a page path; empty rows are "
                              "left out"),
    "funnel_step": Text("ステップ{n}", "Step {n}"),
    "funnel_step_goal": Text("目標", "Goal"),
    "funnel_step_page": Text("(ページのパスを使う)", "(use the page path)"),
    "goal_fields_note": Text("選んだ種類の欄だけが使われます",
                             "only the chosen kind's fields are used"),
    "realtime_visitors": Text("人がサイトにいます", "visitors on the site"),
    "realtime_below_k": Text("いまサイトにいる訪問者は {k} 人未満です。",
                             "Fewer than {k} visitors are on the site now."),
    "realtime_pages": Text("見られているページ", "Pages now"),
    "realtime_sources": Text("流入元", "Sources"),
    "realtime_updated": Text("{time} 時点", "as of {time}"),
    "log_in": Text("ログイン", "Log in"),
    "log_out": Text("ログアウト", "Log out"),
    "user": Text("ユーザー名", "User"),
    "password": Text("パスワード", "Password"),
    "other_language": Text("English", "日本語"),
    "cannot_show": Text("表示できません", "Cannot show this"),
    "back": Text("ダッシュボードに戻る", "Back to the dashboards"),
    "privacy_tools": Text("プライバシー担当者のツール", "Privacy staff tools"),
    "privacy_tools_note": Text(
        "開示・削除・利用停止のご請求は「ご請求」で受け付け、本人確認のうえ対応します。"
        "集計の画面に個人が表示されることはありません。",
        "Disclosure, deletion and suspension requests are handled under Requests, once the "
        "person is verified. The figures never show an individual visitor."),
    # what views.py answers with
    "unavailable": Text("分析データに接続できません。しばらくしてからもう一度お試しください。",
                        "The analytics store is unavailable; try again shortly."),
    "failed": Text("ダッシュボードが応答できませんでした。しばらくしてからもう一度お試しください。",
                   "The dashboard could not answer; try again shortly."),
    "no_page": Text("そのページはありません。", "No such page."),
    "login_required": Text("ログインしてください。", "Please log in."),
    "forbidden": Text("このページを開く権限がありません。", "Your role cannot open this page."),
    "cross_site": Text("他のサイトからのフォーム送信は受け付けません。",
                       "Cross-site form posts are refused."),
    "expired": Text("このフォームは期限切れです。ページを再読み込みしてください。",
                    "This form has expired; reload the page."),
    "too_many": Text("ログインの失敗が続きました。{s} 秒後にもう一度お試しください。",
                     "Too many failed logins. Try again in {s} seconds."),
    "busy": Text("サーバーが混み合っています。少し待ってからお試しください。",
                 "The server is busy. Try again in a moment."),
    "wrong_login": Text("ユーザー名またはパスワードが違います。",
                        "Unknown user or wrong password."),
}
# The request console's words join the rest (kept in their own module for length).
assert not set(DESK_UI) & set(UI), "a wording key is defined twice"
UI.update(DESK_UI)

#: The view's choices, by their query-string value.
PRESET_LABELS: dict[str, Text] = {
    "today": Text("今日", "Today"), "yesterday": Text("昨日", "Yesterday"),
    "7d": Text("過去7日", "Last 7 days"), "30d": Text("過去30日", "Last 30 days"),
    "90d": Text("過去90日", "Last 90 days"), "this_month": Text("今月", "This month"),
    "last_month": Text("先月", "Last month"), "custom": Text("期間を指定", "Custom"),
}
GRAIN_LABELS: dict[str, Text] = {
    "auto": Text("自動", "Auto"), "hour": Text("1時間", "Hour"), "day": Text("1日", "Day"),
    "week": Text("1週間", "Week"),
}
COMPARE_LABELS: dict[str, Text] = {
    "previous": Text("前の期間", "Previous period"), "year": Text("前年同期", "A year earlier"),
    "off": Text("比較しない", "Nothing"),
}
ROLE_LABELS: dict[str, Text] = {
    "marketing": Text("マーケティング", "marketing"),
    "privacy": Text("プライバシー担当", "privacy"), "admin": Text("管理者", "admin"),
}
#: How a date reads, for the range line and the charts' axes (the year is always shown).
DATE_FORMAT: dict[Locale, str] = {"ja": "%Y/%m/%d", "en": "%Y-%m-%d"}
