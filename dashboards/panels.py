"""Which panels exist, what each shows, and which pages group them.

A panel is one box on a page: the catalogue query that feeds it (``collector.query.catalogue``), how
its rows are drawn, and its title. A page is an ordered list of panels; who may open which page
is :mod:`dashboards.auth`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dashboards.i18n import Text

#: How a panel draws its rows: key figures, the visitors/visits/pageviews series, a table, or
#: one of the charts named by :attr:`Panel.chart`.
Show = Literal["kpis", "series", "table", "chart", "realtime"]
Chart = Literal["", "funnel", "optin", "gpc", "coverage", "goal", "steps"]


@dataclass(frozen=True, slots=True)
class Panel:
    """One box on a page: a catalogue query, how to show it, and its title."""

    id: str
    title: Text
    query: str  # a name in collector.query.catalogue.CATALOGUE
    show: Show
    dim: str | None = None  # the breakdown's dimension (a key of DIMENSIONS)
    note: Text | None = None
    chart: Chart = ""  # for show == "chart"
    wide: bool = False  # spans the page's width (a table of many columns)
    # Rows re-ordered by this column (descending) from the query's: two panels of one query
    # (pages by views, pages by exits) then cost one scan.
    order: str = ""
    refresh: int = 0  # seconds between the page's own refreshes of this panel; 0: never


def _breakdown(dim: str, title: Text, note: Text | None = None) -> Panel:
    return Panel(f"bd_{dim}", title, "breakdown", "table", dim=dim, note=note)


def _by(dim: str, title: Text) -> Panel:
    """The chosen goal's conversions by a visit's ``dim``."""
    return Panel(f"goal_{dim}", title, "goal_breakdown", "table", dim=dim, wide=True,
                 note=T("選んだ目標。訪問はその最初の値で数えます",
                        "the chosen goal; a visit counts under its first value"))


T = Text
PANELS: dict[str, Panel] = {p.id: p for p in [
    Panel("realtime", T("いまサイトにいる訪問者", "Visitors now"), "realtime", "realtime",
          note=T("直近5分間に同意のうえ閲覧した訪問者。30秒ごとに更新",
                 "visitors with consent seen in the last 5 minutes; refreshed every 30 s"),
          refresh=30, wide=True),
    Panel("kpis", T("主要指標", "Key figures"), "kpis", "kpis"),
    Panel("series", T("訪問者・ページビューの推移", "Visitors and pageviews"), "timeseries",
          "series"),
    _breakdown("path", T("よく見られたページ", "Top pages")),
    _breakdown("entry_path", T("入口ページ", "Entry pages"),
               T("サイトの外から来た訪問の最初のページ",
                 "pages that start a visit from outside the site")),
    _breakdown("channel", T("流入元", "Channels"), T("訪問がどこから来たか",
                                                    "visits by how they arrived")),
    _breakdown("referrer_host", T("参照元サイト", "Referrers")),
    _breakdown("utm_source", T("キャンペーンの参照元 (utm_source)",
                               "Campaign sources (utm_source)")),
    _breakdown("utm_medium", T("キャンペーンのメディア (utm_medium)",
                               "Campaign media (utm_medium)")),
    _breakdown("utm_campaign", T("キャンペーン (utm_campaign)", "Campaigns (utm_campaign)")),
    _breakdown("click_id_type", T("広告クリックID", "Ad click ids"),
               T("入口のURLにあった広告ネットワークのクリックIDの種類",
                 "which ad network's click id the landing carried")),
    _breakdown("search_terms", T("サイト内検索語", "Site search terms")),
    _breakdown("device_type", T("端末の種類", "Devices")),
    _breakdown("browser", T("ブラウザ", "Browsers")),
    _breakdown("os", T("OS", "Operating systems")),
    _breakdown("language", T("言語", "Languages")),
    _breakdown("network_type", T("回線の種類", "Network type"),
               T("通信速度の目安(Chromium 系ブラウザのみ)",
                 "effective connection type (Chromium browsers)")),
    _breakdown("country", T("国", "Countries"),
               T("位置情報への同意が必要です。同意がなければ(未設定)",
                 "needs location consent; (not set) without it")),
    _breakdown("region", T("地域", "Regions")),
    _breakdown("city", T("市区町村", "Cities")),
    _breakdown("event", T("カスタムイベント", "Custom events")),
    _breakdown("property", T("カスタムイベントのプロパティ", "Custom event properties")),
    # Goals: what the clinic counts as a conversion (collector.query.conversions).
    Panel("goals", T("目標", "Goals"), "goals", "table", wide=True,
          note=T("達成した訪問者が上の人数に満たない目標は数字を表示しません。"
                 "率は全訪問者に対する割合。名前を選ぶと下に詳しく表示します",
                 "a goal reached by fewer visitors than said above shows no figures; the rate "
                 "is of all visitors; pick a name for its details below")),
    Panel("goal_series", T("目標の推移", "The goal over time"), "goal_series", "chart",
          chart="goal", note=T("選んだ目標。訪問の始まった日で数えます",
                               "the chosen goal, by the day each visit began")),
    _by("channel", T("流入元別", "By channel")),
    _by("utm_source", T("キャンペーンの参照元別 (utm_source)", "By campaign source")),
    _by("utm_campaign", T("キャンペーン別 (utm_campaign)", "By campaign")),
    _by("entry_path", T("入口ページ別", "By landing page")),
    _by("device_type", T("端末別", "By device")),
    # Funnels: how far visitors get along ordered steps (collector.query.funnels).
    Panel("funnel_chart", T("ファネル", "Funnel"), "funnel", "chart", chart="steps",
          note=T("各ステップまで進んだ訪問者", "visitors who reached each step")),
    Panel("funnel", T("ステップごとの数字", "Step by step"), "funnel", "table", wide=True,
          note=T("ステップに進んだ訪問者が上の人数に満たない場合は数字を表示しません",
                 "a step reached by fewer visitors than said above shows no figures")),
    Panel("funnel_channel", T("流入元別", "By channel"), "funnel_breakdown", "table",
          dim="channel", wide=True,
          note=T("各ステップまで進んだ訪問者。訪問者は最初の流入元で数えます",
                 "visitors who reached each step, by how they first arrived")),
    Panel("funnel_utm_campaign", T("キャンペーン別 (utm_campaign)", "By campaign"),
          "funnel_breakdown", "table", dim="utm_campaign", wide=True,
          note=T("各ステップまで進んだ訪問者", "visitors who reached each step")),
    Panel("funnel_device_type", T("端末別", "By device"), "funnel_breakdown", "table",
          dim="device_type", wide=True),
    # Engagement: what the interaction beacon reports (collector.query.engagement).
    Panel("engagement", T("エンゲージメント", "Engagement"), "engagement", "kpis",
          note=T("アクセス解析に同意した訪問。閲覧時間はページのスクリプトで計測します",
                 "visits with analytics consent; engaged time needs the page's script")),
    Panel("page_engagement", T("ページの読まれ方", "How pages are read"), "page_engagement",
          "table", dim="path", wide=True,
          note=T("閲覧時間とスクロールは各ページの計測の平均。離脱はそのページで終わった訪問",
                 "mean engaged time and scroll depth of the pages' reports; exits: visits "
                 "that ended there")),
    Panel("exit_pages", T("離脱ページ", "Exit pages"), "page_engagement", "table", dim="path",
          note=T("訪問の最後に見られたページ", "the last page viewed in a visit"),
          order="exits"),
    _breakdown("interaction", T("操作", "Interactions"),
               T("クリック・タップ・フォーム送信", "clicks, taps and form submits")),
    _breakdown("outbound", T("外部リンク", "Outbound links"),
               T("リンク先のサイト別。クエリ文字列は記録しません",
                 "by the linked site; never its query string")),
    _breakdown("app", T("アプリのリンク(LINE・Instagram など)", "App links (LINE, Instagram…)"),
               T("アプリ別。アカウントは記録しません", "the app, never the account")),
    _breakdown("tel_page", T("電話タップ(ページ別)", "Phone taps by page"),
               T("電話番号は記録しません", "that a tel: link was tapped, never the number")),
    _breakdown("mailto_page", T("メールタップ(ページ別)", "E-mail taps by page"),
               T("メールアドレスは記録しません", "never the address")),
    _breakdown("download", T("ダウンロード", "Downloads")),
    _breakdown("form", T("フォーム送信", "Form submits"),
               T("フォームのIDまたは送信先。入力内容は記録しません",
                 "the form's id, or where it posts; never a value")),
    _breakdown("not_found", T("見つからないページ (404)", "Pages not found (404)"),
               T("サイトにないアドレスへのアクセス", "addresses visitors asked for that the "
                 "site does not have")),
    Panel("consent_funnel", T("バナー表示 → 選択", "Banner shown → decisions"),
          "consent_funnel", "chart", chart="funnel", note=T("同意IDの数", "distinct consent ids")),
    Panel("optin", T("カテゴリ別の同意率", "Opt-in rate per category"), "optin", "chart",
          chart="optin"),
    Panel("gpc", T("GPC(グローバル・プライバシー・コントロール)の割合",
                   "Global Privacy Control share"), "gpc", "chart", chart="gpc",
          note=T("Sec-GPC: 1 を送るブラウザからのバナー表示の割合",
                 "share of banner impressions from browsers sending Sec-GPC: 1")),
    Panel("coverage", T("同意の範囲: 匿名カウントと同意ありの詳細",
                        "Consent coverage: anonymous counts vs consented detail"), "coverage",
          "chart", chart="coverage",
          note=T("アクセス解析への同意がない閲覧は匿名で数えます(ページ・時間帯・端末のみ)",
                 "views without analytics consent are counted anonymously (path, hour, "
                 "device)")),
    Panel("anonymous_pages", T("匿名カウント(ページ別)", "Anonymous counts by page"),
          "anonymous_pages", "table", dim="path"),
    Panel("bot_hits", T("除外したボットのアクセス", "Bot hits left out"), "bot_hits", "table",
          note=T("既知のボットのアクセス(日別)。保存せず、どの数値にも含めません",
                 "known bots' hits per day: not stored, and in no other figure")),
    Panel("suppression_stats", T("利用停止", "Suppressions"), "suppression_stats", "table"),
]}


@dataclass(frozen=True, slots=True)
class Page:
    """A dashboard page: its URL segment, navigation title, and panels in display order."""

    id: str
    title: Text
    panels: tuple[str, ...]


PAGES: dict[str, Page] = {p.id: p for p in [
    Page("overview", T("概要", "Overview"),
         ("realtime", "kpis", "series", "bd_path", "bd_entry_path", "bd_channel",
          "bd_referrer_host", "bd_device_type", "bd_country")),
    Page("acquisition", T("集客", "Acquisition"),
         ("bd_channel", "bd_referrer_host", "bd_utm_source", "bd_utm_medium",
          "bd_utm_campaign", "bd_click_id_type", "bd_search_terms")),
    Page("audience", T("ユーザー", "Audience"),
         ("bd_device_type", "bd_browser", "bd_os", "bd_language", "bd_network_type",
          "bd_country", "bd_region", "bd_city")),
    Page("engagement", T("エンゲージメント", "Engagement"),
         ("engagement", "page_engagement", "exit_pages", "bd_interaction", "bd_outbound",
          "bd_app", "bd_tel_page", "bd_mailto_page", "bd_download", "bd_form",
          "bd_not_found")),
    Page("goals", T("目標", "Goals"),
         ("goals", "goal_series", "goal_channel", "goal_utm_source", "goal_utm_campaign",
          "goal_entry_path", "goal_device_type")),
    Page("funnels", T("ファネル", "Funnels"),
         ("funnel_chart", "funnel", "funnel_channel", "funnel_utm_campaign",
          "funnel_device_type")),
    Page("events", T("イベント", "Events"), ("kpis", "bd_event", "bd_property",
                                              "bd_interaction")),
    Page("consent", T("同意", "Consent"), ("consent_funnel", "optin", "gpc", "coverage",
                                            "anonymous_pages", "bot_hits")),
    Page("privacy", T("プライバシー担当", "Privacy staff"), ("suppression_stats",)),
]}


def pages_showing(panel_id: str) -> list[Page]:
    """The pages a panel appears on (a panel's data is readable by whoever opens one)."""
    return [page for page in PAGES.values() if panel_id in page.panels]
