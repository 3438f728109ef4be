"""The privacy-request console's wording (:data:`dashboards.i18n.UI` holds it with the rest)."""

from __future__ import annotations

import re

from dashboards.text import Text

DESK_UI: dict[str, Text] = {
    "rq_nav": Text("ご請求", "Requests"),
    "rq_queue": Text("個人情報に関するご請求", "Privacy requests"),
    "rq_all": Text("すべて", "All"),
    "rq_filter_status": Text("状況", "Status"),
    "rq_filter_kind": Text("種類", "Kind"),
    "rq_overdue_only": Text("期限超過のみ", "Overdue only"),
    "rq_show": Text("表示", "Show"),
    "rq_none": Text("該当するご請求はありません。", "No requests match."),
    "rq_ref": Text("受付番号", "Reference"),
    "rq_kind": Text("種類", "Kind"),
    "rq_status": Text("状況", "Status"),
    "rq_received": Text("受付", "Received"),
    "rq_due": Text("期限", "Due"),
    "rq_channel": Text("受付方法", "Channel"),
    "rq_overdue": Text("期限超過", "Overdue"),
    "rq_new": Text("電話・書面で受けたご請求を登録", "Enter a request received by phone or letter"),
    "rq_email": Text("メールアドレス", "E-mail"),
    "rq_account": Text("会員 ID", "Member id"),
    "rq_account_match": Text("会員のメールと一致", "Matches the member's e-mail"),
    "rq_account_mismatch": Text("会員のメールと不一致(本人確認が必要)",
                                "Does not match the member's e-mail (verify otherwise)"),
    "rq_account_unchecked": Text("未照合", "Not checked"),
    "rq_text": Text("内容", "Details"),
    "rq_lang": Text("連絡の言語", "Language for mail"),
    "rq_add": Text("登録する", "Enter"),
    "rq_verified": Text("本人確認", "Verified"),
    "rq_verified_by_email": Text("メールの確認コード", "e-mail code"),
    "rq_verified_by_staff": Text("スタッフによる確認", "staff, by other means"),
    "rq_fee": Text("手数料", "Fee"),
    "rq_ids": Text("対象の識別子", "Ids acted on"),
    "rq_no_ids": Text("まだありません。下の照会で見つけた識別子を追加してください。",
                      "None yet. Link the ids you find with the lookup below."),
    "rq_actions": Text("対応", "Actions"),
    "rq_note": Text("メモ(記録に残ります)", "Note (kept in the record)"),
    "rq_confirm_needed": Text("削除は元に戻せません。確認のチェックを入れてから、もう一度"
                              "「完了する」を押してください。",
                              "A deletion cannot be undone: tick the box, then complete."),
    "rq_confirm_purge": Text("この方のデータを削除します。削除は元に戻せません。",
                             "This deletes the person's data; it cannot be undone."),
    "rq_note_mailed": Text("ご本人へのメッセージ(メールに記載され、記録にも残ります)",
                           "Message to the person (goes into their mail, and the record)"),
    "rq_verify": Text("本人確認済みにする", "Mark verified"),
    "rq_verify_help": Text("確認の方法を必ず書いてください(例: 窓口で保険証を確認)。",
                           "Say how the identity was confirmed (e.g. ID shown at the clinic)."),
    "rq_start": Text("対応を開始する", "Start"),
    "rq_complete": Text("完了する(操作を実行)", "Complete (run the operation)"),
    "rq_complete_help": Text("開示は書き出し、削除は削除と確認、利用停止と撤回は記録の停止を、"
                             "すべての対象の識別子に実行し、結果をメールで送ります。",
                             "Runs the export, the verified purge, or the suppression on every "
                             "id above, and mails the result."),
    "rq_refuse": Text("対応しない(理由を付けて通知)", "Refuse (with grounds, notified)"),
    "rq_ground": Text("理由", "Grounds"),
    "rq_withdraw": Text("取り下げとして記録", "Record as withdrawn"),
    "rq_fee_set": Text("手数料を記録", "Record the fee"),
    "rq_link": Text("識別子を追加", "Link an id"),
    "rq_link_help": Text("照会で見つけた識別子を、この方のものと判断した理由とともに追加します。",
                         "Add an id found with the lookup, with why it is this person's."),
    "rq_add_note": Text("メモを追加", "Add a note"),
    "rq_timeline": Text("経過", "Timeline"),
    "rq_mails": Text("メール", "Mail"),
    "rq_retry": Text("再送する", "Send again"),
    "rq_results": Text("実行結果(受領証)", "Results (receipts)"),
    "rq_raw": Text("JSON で見る", "View as JSON"),
    "rq_lookup": Text("識別子の照会", "Look up an id"),
    "rq_lookup_help": Text("訪問者 ID または会員 ID で、保存されている記録の件数を確かめます。",
                           "How much the store holds for a visitor id or member id."),
    "rq_lookup_go": Text("照会する", "Look up"),
    "rq_rows": Text("記録の件数", "Rows"),
    "rq_seen": Text("初回・最終", "First and last seen"),
    "rq_suppressed": Text("利用停止中", "Suppressed"),
    "rq_audit": Text("監査ログ", "Audit trail"),
    "rq_audit_ok": Text("監査ログの連鎖を検証しました: {rows} 件、改ざんなし。",
                        "The audit chain verifies: {rows} rows, none altered."),
    "rq_audit_bad": Text("監査ログの連鎖に問題があります: {problems}",
                         "The audit chain has problems: {problems}"),
    "rq_who": Text("担当", "By"),
    "rq_what": Text("操作", "Operation"),
    "rq_when": Text("日時", "When"),
    "rq_reason": Text("理由", "Reason"),
    "rq_print": Text("このページはブラウザーの印刷機能で印刷・PDF 保存できます"
                     "(操作欄は印刷されません)。",
                     "Print this page or save it as PDF from the browser (the forms are left "
                     "out of the print)."),
    "rq_completing": Text("実行中です。数秒後にこのページを再読み込みしてください。",
                          "Running. Reload this page in a few seconds."),
    "ev_from": Text("開始日", "From"),
    "ev_to": Text("終了日", "To"),
    "ev_help": Text("期間中の同意の記録、ご請求と受領証、検証済みの監査ログ、保存期間を ZIP で"
                    "書き出します(説明は中の index.html)。作成は監査ログに記録されます。",
                    "Writes the period's consent records, requests and receipts, the verified "
                    "audit chain and the retention as a zip (index.html explains each file). "
                    "Making one is recorded in the audit trail."),
    "ev_make": Text("証跡パッケージを作成", "Make the evidence pack"),
    "rq_yes": Text("はい", "yes"),
    "rq_no": Text("いいえ", "no"),
}

STATUS = {
    "received": Text("受付(本人確認待ち)", "Received (unverified)"),
    "verified": Text("本人確認済み", "Verified"),
    "in_progress": Text("対応中", "In progress"),
    "completed": Text("完了", "Completed"),
    "refused": Text("対応不可", "Refused"),
    "withdrawn": Text("取り下げ", "Withdrawn"),
}
KIND = {
    "disclosure": Text("開示 (第5条)", "Disclosure (Art. 5)"),
    "deletion": Text("訂正・削除 (第6条)", "Correction/deletion (Art. 6)"),
    "suspension": Text("利用停止 (第7条)", "Suspension of use (Art. 7)"),
    "withdrawal": Text("同意の撤回", "Consent withdrawn"),
}
GROUND = {
    "harm": Text("本人・第三者の権利利益を害するおそれ (第5条1号)",
                 "Risk of harm to the person or others (Art. 5 (1))"),
    "business": Text("業務の適正な実施に著しい支障 (第5条2号)",
                     "Significant hindrance to business (Art. 5 (2))"),
    "law": Text("他の法令に違反 (第5条3号)", "Would violate other laws (Art. 5 (3))"),
    "identity": Text("本人確認ができない", "Identity could not be confirmed"),
}
FEE = {"due": Text("未払い", "Due"), "paid": Text("支払い済み", "Paid"),
       "waived": Text("免除", "Waived"), "none": Text("なし", "None")}
CHANNEL = {"web": Text("サイトのフォーム", "Site form"), "phone": Text("電話", "Phone"),
           "letter": Text("書面", "Letter"), "counter": Text("窓口", "At the clinic"),
           "email": Text("メール", "E-mail")}
MAIL_STATUS = {"pending": Text("送信待ち", "Waiting"), "sent": Text("送信済み", "Sent"),
               "retrying": Text("再送予定", "Will retry"), "failed": Text("送信失敗", "Gave up"),
               "no_smtp": Text("SMTP 未設定", "No SMTP server")}
TEMPLATE = {"acknowledgement": Text("受付のお知らせ", "Acknowledgement"),
            "code": Text("確認コード", "Confirmation code"),
            "completed": Text("完了のお知らせ", "Completion"),
            "refused": Text("対応不可のお知らせ", "Refusal"), "fee": Text("手数料", "Fee"),
            "overdue": Text("期限超過の一覧", "Overdue list")}
ACTION = {
    "submitted": Text("受付", "Received"), "code_sent": Text("確認コードを送信", "Code sent"),
    "code_failed": Text("確認コードの誤り", "Wrong code entered"),
    "code_used": Text("確認コードを確認", "Code accepted"),
    "verified": Text("本人確認", "Verified"), "started": Text("対応開始", "Started"),
    "completing": Text("実行開始", "Running the operation"),
    "completed": Text("完了", "Completed"), "failed": Text("実行失敗", "Operation failed"),
    "refused": Text("対応不可", "Refused"), "withdrawn": Text("取り下げ", "Withdrawn"),
    "fee": Text("手数料", "Fee"), "linked": Text("識別子を追加", "Id linked"),
    "note": Text("メモ", "Note"), "mailed": Text("メールを作成", "Mail queued"),
    "account": Text("会員照合", "Account checked"),
}
ID_TYPE = {"visitor_id": Text("訪問者 ID(ブラウザー)", "Visitor id (browser)"),
           "user_id": Text("会員 ID", "Member id")}
ACTOR = {"person": Text("ご本人", "the person"), "system": Text("システム", "system"),
         "visitor": Text("ご本人(マイデータのページ)", "the person (my-data page)")}
OPERATION = {
    "export": Text("書き出し(開示)", "Export (disclosure)"),
    "purge": Text("削除と確認", "Verified purge"),
    "suppress": Text("利用停止", "Suppression"),
    "evidence": Text("証跡パックの作成", "Evidence pack"),
    "unsuppress": Text("利用停止の解除", "Suppression lifted"),
}
RESULT = {
    "operation": Text("操作", "Operation"), "receipt_id": Text("受領証番号", "Receipt"),
    "rows_deleted": Text("削除した記録", "Rows deleted"),
    "remaining": Text("残った記録", "Rows left"),
    "verified_at": Text("確認日時", "Verified at"), "id_type": Text("識別子の種類", "Id type"),
    "visitor_id": Text("訪問者 ID(ブラウザー)", "Visitor id (browser)"),
    "user_id": Text("会員 ID", "Member id"),
    "subject_hash": Text("識別子のハッシュ", "Id hash"),
    "events": Text("ページ閲覧・イベント", "Page views and events"),
    "consent_records": Text("同意の記録", "Consent records"),
    # Under rows_deleted: a purge keeps consent records as proof and only unlinks them.
    "consent_records_unlinked": Text("結び付きを消した同意の記録", "Consent records unlinked"),
    "suppressions": Text("利用停止の記録", "Suppression rows"),
    "zip_sha256": Text("送付ファイルの SHA-256", "SHA-256 of the file sent"),
    "audit_id": Text("監査ログの番号", "Audit entry"),
}
OUTCOME = {"done": Text("完了", "done"), "completed": Text("完了", "completed"),
           "started": Text("開始", "started"),
           "resolved": Text("対象を特定", "ids resolved"),
           "incomplete": Text("未完了", "incomplete"),
           "not_suppressed": Text("対象なし", "nothing to lift")}


def operation(name: str) -> Text:
    """An audit row's operation in words (``request.verified`` is a request's step)."""
    if name.startswith("request."):
        step = name.split(".", 1)[1]
        found = ACTION.get(step)
        if found is not None:
            return Text("ご請求: " + found.ja, "Request: " + found.en)
    return OPERATION.get(name, Text(name, name))


#: Why an operation ran, as the collector records it (``audit.reason``) → words.
REASONS = {"self-service download": Text("ご本人によるダウンロード", "self-service download"),
           "self-service deletion": Text("ご本人による削除", "self-service deletion"),
           "staff export": Text("担当者による書き出し", "staff export")}
_REQUEST_REASON = re.compile(r"privacy request (R-[0-9A-Z]{4}-[0-9A-Z]{4})(: .*)?")
_PACK_REASON = re.compile(r"evidence pack (\S+)\.\.(\S+)")


def audit_reason(text: str) -> Text:
    """An audit row's reason in words: the collector's own reasons translated, anything
    else (a reason staff typed) as it was written."""
    if text in REASONS:
        return REASONS[text]
    found = _REQUEST_REASON.fullmatch(text)
    if found:
        again = " (再送)" if found[2] else ""
        return Text(f"ご請求 {found[1]}{again}", text)
    found = _PACK_REASON.fullmatch(text)
    if found:
        return Text(f"証跡パック {found[1]}〜{found[2]}", text)
    return Text(text, text)
