"""What staff read when the collector refuses their input: its reason in their language.

The collector's refusals (``QueryError``, ``WriteRefused``, ``PrivacyError``,
``RequestRefused``) carry a reason written for a program's author ("end: must not be before
start"). A page shows it as is only in English. In Japanese a page shows the sentence below
that matches it: by the refusal's code when it has one, else by the reason's pattern, else a
general sentence, never the English text, a field name or a config key. Pure.
"""

from __future__ import annotations

import re

from dashboards.text import Locale, Text

#: How a refusal is introduced in English, where the reason follows as the collector says it.
BAD_INPUT = "Bad input: "
#: What a Japanese page says for a reason no pattern below knows.
GENERAL = "入力内容を確認して、もう一度お試しください。"

#: The request desk's refusals (``collector.requests.model.RequestRefused.code``).
REFUSALS: dict[str, Text] = {
    "fee_due": Text("開示の手数料がまだ記録されていません。先に「支払い済み」か「免除」を"
                    "記録してください。", "The disclosure fee is due: record it as paid or "
                    "waived first."),
    "note_required": Text("本人確認の方法をメモに書いてください(例: 窓口で身分証を確認)。",
                          "Say how the identity was confirmed."),
    "no_ids": Text("このご請求にはまだ識別子が結び付いていません。下の照会で見つけた識別子を"
                   "先に追加してください。", "No id is linked to this request yet."),
    "unverified": Text("本人確認がまだ済んでいません。先に本人確認をしてください。",
                       "The request is not verified yet."),
    "bad_state": Text("いまの状態のご請求には、この操作はできません。",
                      "The request's state does not allow this."),
    "busy": Text("このご請求はいま処理中です。少し待ってから画面を再読み込みしてください。",
                 "The request is being processed; reload in a moment."),
    "closed": Text("このご請求はすでに終了しています。", "The request is closed."),
    "no_fee": Text("このご請求に手数料はかかりません。", "This request has no fee."),
    "bad_fee": Text("手数料の記録の仕方を選んでください。", "Choose how the fee was settled."),
    "bad_ground": Text("対応しない理由を選んでください。", "Choose the ground for refusing."),
    "no_staff": Text("担当者名がありません。ログインし直してください。",
                     "No staff member is named; log in again."),
    "note_too_long": Text("メモが長すぎます。短くしてください。", "The note is too long."),
    "bad_kind": Text("ご請求の種類を選んでください。", "Choose the kind of request."),
    "bad_email": Text("メールアドレスを正しく入力してください。",
                      "Enter a valid e-mail address."),
    "bad_channel": Text("受付の方法を選んでください。", "Choose how the request came in."),
    "bad_lang": Text("ご連絡の言語を選んでください。", "Choose the language for mail."),
    "bad_account_id": Text("会員IDは半角英数字と _ - の 1〜64 文字で入力してください。",
                           "The member id is 1-64 of 0-9, A-Z, a-z, _ and -."),
    "bad_visitor_ids": Text("訪問者IDの形式が正しくありません。", "A visitor id is malformed."),
    "too_many_ids": Text("識別子が多すぎます。", "Too many ids."),
    "text_too_long": Text("詳細は 2,000 文字以内で入力してください。",
                          "The details are too long."),
    "too_many_requests": Text("このメールアドレスからのご請求は、本日の上限に達しました。",
                              "Too many requests for this address today."),
    "unknown_request": Text("このご請求は見つかりませんでした。保存期間が過ぎて消えた可能性が"
                            "あります。", "No such request (it may be past its retention)."),
    "bad_action": Text("この操作はできません。", "No such action."),
    "bad_status": Text("状態の指定が正しくありません。", "No such status."),
    "not_configured": Text("ご請求の受付が設定されていません。システム管理者にご連絡ください。",
                           "The request desk is not configured."),
    "too_many_codes": Text("このご請求ではこれ以上確認コードを送れません。",
                           "No more codes for this request."),
}

#: Field names as the reasons give them, as a Japanese page calls them.
FIELDS = {
    "name": "名前", "path": "ページのパス", "event": "イベント名", "target": "リンク先",
    "value": "金額", "text": "メモ", "author": "担当者名", "day": "日付", "start": "開始日",
    "end": "終了日", "from": "開始日", "to": "終了日", "days": "日数", "limit": "件数",
    "interaction": "操作の種類", "kind": "種類", "seconds": "秒数", "steps": "ステップ",
}

#: A reason's pattern → the Japanese sentence (``{0}``...: the pattern's groups; ``{field}``:
#: the first group's name from :data:`FIELDS`). First match wins.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), words) for pattern, words in (
        (r"end: must not be before start|to must not be before from",
         "終了日が開始日より前になっています。日付を確かめてください。"),
        (r"grain: hourly series cover at most (\d+) days",
         "「1時間」ごとの表示は {0} 日以内の期間でお選びください。"),
        (r"grain: key figures with their series come by day or week",
         "この表示では、グラフの単位に「1日」か「1週間」をお選びください。"),
        (r"(?:date range: |a pack covers )at most (\d+) days",
         "期間は {0} 日以内でお選びください。"),
        (r"dates: between (\S+) and (\S+)", "日付は {0} から {1} の間でお選びください。"),
        (r"(\w+): (?:expected a date YYYY-MM-DD|['\"].*['\"] is not a valid date)"
         r"|from and to must be dates.*", "日付を正しく入力してください。"),
        (r"(\w+): required for this kind of goal",
         "この種類の目標には{field}が必要です。入力してください。"),
        (r"(\w+): 1 to (\d+) characters", "{field}は 1〜{1} 文字で入力してください。"),
        (r"(\w+): at most (\d+) characters", "{field}は {1} 文字以内で入力してください。"),
        (r"(\w+): between (\S+) and (\S+)", "{field}は {1}〜{2} の範囲で入力してください。"),
        (r"(\w+): must be between (\S+) and (\S+)",
         "{field}は {1}〜{2} の範囲で入力してください。"),
        (r"(\w+): expected (?:a whole number|an integer)", "{field}は整数で入力してください。"),
        (r"(\w+): expected one line of text", "{field}は1行で入力してください。"),
        (r"(\w+): expected a string of valid text", "{field}に使えない文字が含まれています。"),
        (r"text: a note needs some text", "メモの内容を入力してください。"),
        # {name!r} quotes with " when the name holds a '.
        (r"name: a goal called ['\"](.*)['\"] exists already",
         "「{0}」という目標はすでにあります。"),
        (r"name: a funnel called ['\"](.*)['\"] exists already",
         "「{0}」というファネルはすでにあります。"),
        (r"goals: at most (\d+).*",
         "目標は {0} 件までです。どれかを削除してから追加してください。"),
        (r"funnels: at most (\d+).*",
         "ファネルは {0} 件までです。どれかを削除してから追加してください。"),
        (r"filters: at most (\d+)", "絞り込みの条件は {0} 個までです。"),
        (r"day: must be within (\d+) days of today",
         "日付は今日の前後 {0} 日以内でお選びください。"),
        (r"days: 0 \(one visit\) to (\d+)",
         "日数は 0(1回の訪問の中)から {0} までで指定してください。"),
        (r"author: .*", "担当者名がありません。ログインし直してください。"),
        (r"(\w+)_id: not a \w+", "見つかりませんでした。すでに削除された可能性があります。"),
        (r"filters: a segment needs at least one filter",
         "セグメントには絞り込みの条件が1つ以上必要です。先に絞り込んでから保存してください。"),
        (r"path: a pattern starts with /.*",
         "ページのパスは / から始めてください(* は任意の文字列)。"),
        (r"event: an event name.*",
         "イベント名は半角英数字と _ . : - で入力してください。"),
        (r"steps: (\d+) to (\d+) steps", "ステップは {0}〜{1} 個で指定してください。"),
        (r"step (\d+): a goal or a page", "ステップ {0} に目標かページを指定してください。"),
        (r"step (\d+): no such goal", "ステップ {0} の目標が見つかりません。"),
        (r"step (\d+): an engaged-time goal has no moment to order",
         "ステップ {0} には滞在時間の目標を使えません。"),
        (r"(?:goal|funnel|segment): no such .*|\w+_id: no such .*",
         "見つかりませんでした。すでに削除された可能性があります。"),
        (r"(?:visitor_id|user_id) is malformed.*",
         "識別子の形式が正しくありません(半角英数字と _ - の 1〜64 文字)。"),
        (r"give exactly one of visitor_id or user_id",
         "訪問者IDか会員IDの、どちらか一方を入力してください。"),
    ))


#: A reason about one step of a funnel (or goal of a file) wraps the step's own reason.
NESTED = re.compile(r"(step) (\d+): (.+)")
NESTED_WORDS = {"step": "ステップ {n}: "}


def explain(reason: str, lang: Locale, code: str | None = None) -> str:
    """The sentence a page shows for a refusal's ``reason`` (and ``code``, if it has one)."""
    if lang == "en":
        return BAD_INPUT + reason
    if code is not None and code in REFUSALS:
        return REFUSALS[code].ja
    nested = NESTED.fullmatch(reason.strip())
    if nested and explain(nested[3], lang) != GENERAL:
        return NESTED_WORDS[nested[1]].format(n=nested[2]) + explain(nested[3], lang)
    for pattern, words in PATTERNS:
        found = pattern.fullmatch(reason.strip())
        if found:
            groups = found.groups()
            first = groups[0] if groups else None
            return words.format(*groups, field=FIELDS.get(first or "", "入力"))
    return GENERAL
