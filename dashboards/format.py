"""How the dashboards write numbers, and the words a page shows beside them, in both languages.

Counts get thousands separators, rates a percentage with one decimal, durations read as a
time (``2分18秒`` / ``2m 18s``), and a missing figure (below k, or nothing to divide by) an en
dash. The labels of key figures, table columns, dimensions, values (a channel, a device, an
interaction kind, a consent decision) and chart series are here rather than beside the code
that chooses them, so the words a page shows can be read, and changed, in one place; each is
a :class:`~dashboards.i18n.Text`. Panel and page titles belong to their definitions
(:mod:`dashboards.panels`). A value without a label shows as it is stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from dashboards.i18n import NO_TEXT, Locale, Text

#: How a figure is written: a count, a percentage of a 0..1 ratio, a two-decimal number, a
#: duration in seconds, a scroll depth (a 0..100 mean), or an amount in yen.
Kind = Literal["int", "pct", "dec", "dur", "depth", "yen"]
Number = int | float
Labels = dict[str, tuple[Text, Kind]]

MISSING = "–"  # below k, or a rate with nothing to divide by
OTHER = Text("(その他)", "(other)")  # the row every group under k is folded into
NOT_SET = Text("(未設定)", "(not set)")  # empty: no consent for it, or the browser did not say

#: Key figure → (label, how it is written), in display order.
KPI_LABELS: Labels = {
    "visitors": (Text("訪問者", "Visitors"), "int"), "visits": (Text("訪問", "Visits"), "int"),
    "pageviews": (Text("ページビュー", "Pageviews"), "int"),
    "views_per_visit": (Text("訪問あたりページ数", "Views per visit"), "dec"),
    "bounce_rate": (Text("直帰率", "Bounce rate"), "pct"),
}
#: The engagement panel's figures (``collector.query.engagement``), in display order.
ENGAGEMENT_LABELS: Labels = {
    "visits": (Text("訪問", "Visits"), "int"),
    "duration_median": (Text("滞在時間(中央値)", "Visit duration (median)"), "dur"),
    "duration_mean": (Text("滞在時間(平均)", "Visit duration (mean)"), "dur"),
    "engaged_mean": (Text("訪問あたり閲覧時間", "Engaged time per visit"), "dur"),
    "engaged_bounce_rate": (Text("直帰率(閲覧10秒未満)", "Bounce rate (engaged under 10 s)"),
                            "pct"),
}

#: Each dimension by name: a breakdown's first column, a filter chip.
DIM_LABELS: dict[str, Text] = {
    "path": Text("ページ", "Page"), "entry_path": Text("入口ページ", "Entry page"),
    "channel": Text("流入元", "Channel"), "referrer_host": Text("参照元", "Referrer"),
    "utm_source": Text("utm_source", "utm_source"), "utm_medium": Text("utm_medium", "utm_medium"),
    "utm_campaign": Text("キャンペーン", "Campaign"),
    "click_id_type": Text("広告クリックID", "Ad click id"),
    "search_terms": Text("サイト内検索語", "Search terms"),
    "device_type": Text("端末の種類", "Device"), "browser": Text("ブラウザ", "Browser"),
    "os": Text("OS", "OS"), "language": Text("言語", "Language"),
    "network_type": Text("回線", "Network"), "country": Text("国", "Country"),
    "region": Text("地域", "Region"), "city": Text("市区町村", "City"),
    "event": Text("イベント", "Event"), "property": Text("プロパティ", "Property"),
    "interaction": Text("操作", "Interaction"), "outbound": Text("リンク先", "Host"),
    "app": Text("アプリ", "App"), "tel_page": Text("ページ", "Page"),
    "mailto_page": Text("ページ", "Page"), "download": Text("ファイル", "File"),
    "form": Text("フォーム", "Form"), "not_found": Text("ページ(404)", "Page (404)"),
}

#: What a breakdown's count column counts: landings start a visit, so they count visits.
COUNT_HEADERS: dict[str, Text] = {
    "entry_path": Text("訪問", "Visits"), "channel": Text("訪問", "Visits"),
    "referrer_host": Text("訪問", "Visits"), "click_id_type": Text("訪問", "Visits"),
    "search_terms": Text("検索", "Searches"), "utm_source": Text("訪問", "Visits"),
    "utm_medium": Text("訪問", "Visits"), "utm_campaign": Text("訪問", "Visits"),
    "event": Text("件数", "Events"), "property": Text("件数", "Events"),
    "interaction": Text("件数", "Events"), "outbound": Text("クリック", "Clicks"),
    "app": Text("タップ", "Taps"), "tel_page": Text("タップ", "Taps"),
    "mailto_page": Text("タップ", "Taps"), "download": Text("ダウンロード", "Downloads"),
    "form": Text("送信", "Submits"),
}
DEFAULT_COUNT_HEADER = Text("ページビュー", "Pageviews")
VISITORS_HEADER = Text("訪問者", "Visitors")
ANONYMOUS_HEADERS = (Text("閲覧数(匿名カウント)", "Views (counted)"),)
SUPPRESSION_HEADERS = (Text("利用停止中", "Active"), Text("削除済み", "Purged"))
BOT_HEADERS = (Text("同意あり", "With consent"), Text("匿名カウント", "Counted anonymously"),
               Text("ボットのアクセス", "Bot hits"))
BOT_TOTAL = Text("期間の合計", "Period total")
#: What a goal's conversions were worth: shown only when some row has a value.
VALUE_COLUMNS: tuple[tuple[str, Text, Kind], ...] = (
    ("value", Text("価値", "Value"), "yen"),
    ("value_per_conversion", Text("1件あたり", "Per conversion"), "yen"),
    ("value_per_visitor", Text("訪問者あたり", "Per visitor"), "yen"))
#: The columns of the page engagement and exit page tables, with how each is written.
PAGE_COLUMNS: dict[str, tuple[tuple[str, Text, Kind], ...]] = {
    "page_engagement": (
        ("visitors", Text("訪問者", "Visitors"), "int"),
        ("views", Text("ページビュー", "Pageviews"), "int"),
        ("engaged_mean", Text("閲覧時間", "Engaged time"), "dur"),
        ("scroll_mean", Text("スクロール", "Scroll depth"), "depth"),
        ("exits", Text("離脱", "Exits"), "int"), ("exit_rate", Text("離脱率", "Exit rate"), "pct")),
    "exit_pages": (
        ("exits", Text("離脱", "Exits"), "int"), ("exit_rate", Text("離脱率", "Exit rate"), "pct"),
        ("views", Text("ページビュー", "Pageviews"), "int")),
    # Goals (collector.query.conversions): every goal, then one goal by a visit's dimension.
    "goals": (
        ("conversions", Text("コンバージョン", "Conversions"), "int"),
        ("converted_visitors", Text("達成した訪問者", "Converting visitors"), "int"),
        ("rate", Text("コンバージョン率", "Conversion rate"), "pct"),
        *VALUE_COLUMNS),
    "goal_breakdown": (
        ("visitors", Text("訪問者", "Visitors"), "int"),
        ("converted_visitors", Text("達成した訪問者", "Converting visitors"), "int"),
        ("conversions", Text("コンバージョン", "Conversions"), "int"),
        ("rate", Text("コンバージョン率", "Conversion rate"), "pct"),
        *VALUE_COLUMNS),
    "funnel": (
        ("visitors", Text("訪問者", "Visitors"), "int"),
        ("from_previous", Text("前のステップから", "From the previous step"), "pct"),
        ("from_start", Text("最初から", "From the first step"), "pct"),
        ("dropped", Text("離脱", "Dropped"), "int")),
}
GOAL_HEADER = Text("目標", "Goal")
STEP_HEADER = Text("ステップ", "Step")
REACHED_END = Text("最後まで", "Reached the end")
#: How a goal's definition reads (``collector.query.goals``), by kind.
GOAL_KIND_LABELS: dict[str, Text] = {
    "page": Text("ページの閲覧", "Page viewed"),
    "event": Text("カスタムイベント", "Custom event"),
    "interaction": Text("操作(クリック・タップ・送信)", "Interaction (click, tap, submit)"),
    "engaged": Text("閲覧時間", "Engaged time"),
}
GOAL_SECONDS = Text("{n}秒以上", "at least {n} s")
GOAL_VALUE = Text("1件 {value}", "{value} each")

#: Values shown by what they mean rather than their code, per dimension (or chart field).
VALUE_LABELS: dict[str, dict[str, Text]] = {
    "channel": {"direct": Text("直接", "Direct"), "search": Text("検索", "Search"),
                "social": Text("SNS", "Social"), "ad": Text("広告", "Ads"),
                "referral": Text("他サイト", "Referral"), "internal": Text("サイト内", "Internal")},
    "device_type": {"desktop": Text("パソコン", "Desktop"),
                    "mobile": Text("スマートフォン", "Mobile"),
                    "tablet": Text("タブレット", "Tablet"), "other": Text("その他", "Other")},
    "interaction": {"outbound": Text("外部リンク", "Outbound link"),
                    "tel": Text("電話タップ", "Phone tap"),
                    "mailto": Text("メールタップ", "E-mail tap"),
                    "app": Text("アプリのリンク", "App link"),
                    "download": Text("ダウンロード", "Download"),
                    "form": Text("フォーム送信", "Form submit")},
    "country": {"JP": Text("日本", "Japan"), "US": Text("アメリカ", "United States"),
                "KR": Text("韓国", "South Korea"), "TW": Text("台湾", "Taiwan"),
                "CN": Text("中国", "China"), "GB": Text("イギリス", "United Kingdom"),
                "FR": Text("フランス", "France")},
    # consent analytics (the Consent page's charts)
    "step": {"shown": Text("バナー表示", "Banner shown"), "decided": Text("選択", "Decided"),
             "updated": Text("変更", "Updated"), "withdrawn": Text("撤回", "Withdrawn")},
    "method": {"accept_all": Text("すべて同意", "Accept all"),
               "reject_all": Text("すべて拒否", "Reject all"),
               "save": Text("選んで保存", "Saved a choice"), "gpc": Text("GPC", "GPC"),
               "api": Text("API", "API"), "none": Text("操作なし", "No action")},
    "category": {"analytics": Text("アクセス解析", "Analytics"),
                 "location": Text("位置情報", "Location"),
                 "marketing": Text("広告", "Marketing"), "necessary": Text("必須", "Necessary")},
    "id_type": {"visitor_id": Text("訪問者ID", "Visitor id"),
                "user_id": Text("ユーザーID", "User id"),
                "consent_id": Text("同意ID", "Consent id")},
}

#: The visitors/visits/pageviews series: row column → legend name.
SERIES_NAMES: tuple[tuple[str, Text], ...] = (
    ("visitors", Text("訪問者", "Visitors")), ("visits", Text("訪問", "Visits")),
    ("pageviews", Text("ページビュー", "Pageviews")))
#: A goal's series (``goal_series``): row column → legend name.
GOAL_SERIES_NAMES: tuple[tuple[str, Text], ...] = (
    ("conversions", Text("コンバージョン", "Conversions")),
    ("converted_visitors", Text("達成した訪問者", "Converting visitors")))
#: A series of the compared period, by what it is compared with: its legend is the series's
#: name in this pattern.
COMPARED_NAMES: dict[str, Text] = {
    "previous": Text("{name}(前の期間)", "{name} (previous period)"),
    "year": Text("{name}(前年同期)", "{name} (a year earlier)"),
}
#: The note the dashboards put by themselves where a consent-banner / policy version began.
POLICY_CHANGE = Text("同意バナー・ポリシーの版 {version} を表示開始",
                     "Consent banner and policy version {version} first shown")
POLICY_MARK = Text("バナー変更", "Banner change")  # its short label on the chart
GPC_SHARE = Text("GPCの割合", "GPC share")
CONSENTED_PAGEVIEWS = Text("同意ありのページビュー", "Consented pageviews")
ANONYMOUS_COUNTS = Text("匿名カウント", "Anonymous counts")


def fmt(value: Number | None, kind: Kind = "int", locale: Locale = "ja") -> str:
    """A figure as the page shows it: ``12,345``, ``38.2%``, ``2.41``, ``2分05秒``, ``62%``,
    or ``–``."""
    if value is None:
        return MISSING
    if kind == "pct":
        return f"{100 * float(value):.1f}%"
    if kind == "dec":
        return f"{float(value):.2f}"
    if kind == "dur":
        return duration(float(value), locale)
    if kind == "depth":
        return f"{float(value):.0f}%"
    if kind == "yen":
        return f"¥{round(float(value)):,}"
    return f"{int(value):,}"


FUNNEL_WITHIN = {0: Text("1回の訪問内", "within one visit"),
                 1: Text("{n}日以内", "within {n} days")}
REMOVED_GOAL = Text("(削除された目標)", "(a removed goal)")


def funnel_text(definition: Mapping[str, object], goal_names: Mapping[str, str],
                locale: Locale = "ja") -> str:
    """A stored funnel in words: ``予約ページ → カウンセリング予約 · 1回の訪問内``."""
    steps = definition.get("steps")
    names = []
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, Mapping) and step.get("goal"):
            names.append(goal_names.get(str(step["goal"]), REMOVED_GOAL(locale)))
        elif isinstance(step, Mapping):
            names.append(str(step.get("path", "")))
    days = definition.get("days")
    within = (FUNNEL_WITHIN[0](locale) if not days
              else FUNNEL_WITHIN[1](locale).format(n=days))
    return " → ".join(names) + " · " + within


def goal_text(definition: Mapping[str, object], locale: Locale = "ja") -> str:
    """A stored goal's definition in words: ``カスタムイベント: reservation (treatment =
    botox)``, ``操作(…): アプリのリンク line``, ``閲覧時間: 60秒以上``; and its value."""
    kind = str(definition.get("kind", ""))
    label = GOAL_KIND_LABELS.get(kind)
    head = label(locale) if label else kind
    if kind == "page":
        what = str(definition.get("path", ""))
    elif kind == "event":
        what = str(definition.get("event", ""))
        if definition.get("property"):
            what += f" ({definition['property']} = {definition.get('equals', '')})"
    elif kind == "interaction":
        what = value_label("interaction", str(definition.get("interaction", "")), locale)
        if definition.get("target"):
            what += f" {definition['target']}"
    else:
        what = GOAL_SECONDS(locale).format(n=definition.get("seconds", ""))
    text = f"{head}: {what}"
    value = definition.get("value")
    if isinstance(value, int) and value:
        text += " · " + GOAL_VALUE(locale).format(value=fmt(value, "yen", locale))
    return text


def duration(seconds: float, locale: Locale = "ja") -> str:
    """``42秒`` / ``42s``, ``2分05秒`` / ``2m 05s``, ``1時間03分`` / ``1h 03m``."""
    whole = round(seconds)
    ja = locale != "en"
    if whole < 60:
        return f"{whole}秒" if ja else f"{whole}s"
    if whole < 3600:
        m, s = divmod(whole, 60)
        return f"{m}分{s:02d}秒" if ja else f"{m}m {s:02d}s"
    h, m = whole // 3600, whole // 60 % 60
    return f"{h}時間{m:02d}分" if ja else f"{h}h {m:02d}m"


def change(current: Number | None, previous: Number | None) -> str:
    """The change from the previous period, ``+12.5%`` / ``-3.0%``; "" when there is none."""
    if current is None or previous is None or not previous:
        return ""
    delta = (float(current) - float(previous)) / float(previous)
    if math.isnan(delta):
        return ""
    return f"{'+' if delta >= 0 else ''}{100 * delta:.1f}%"


def value_label(dim: str | None, key: str, locale: Locale = "ja") -> str:
    """A stored value as the page shows it: its meaning when it is a known code."""
    label = VALUE_LABELS.get(dim or "", {}).get(key)
    return label(locale) if label is not None else key


def row_label(key: str, other: bool, dim: str | None = None, locale: Locale = "ja") -> str:
    """A breakdown row's label: its value (by what it means, when a code), or what stands in
    for a folded or empty one."""
    if other:
        return OTHER(locale)
    if key == "":
        return NOT_SET(locale)
    return value_label(dim, key, locale)


def count_header(dim: str | None) -> Text:
    return COUNT_HEADERS.get(dim or "", DEFAULT_COUNT_HEADER)


def key_header(dim: str | None) -> Text:
    return DIM_LABELS.get(dim or "", NO_TEXT)
