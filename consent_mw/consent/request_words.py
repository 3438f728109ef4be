"""The wording of the privacy-request pages (ja, en); ``consent_mw.consent.i18n`` holds it with
the rest. Kinds and statuses of a request the collector words itself
(``collector.requests.wording``): these are the pages' own sentences."""

from __future__ import annotations

REQUEST_MESSAGES: dict[str, dict[str, str]] = {
    "ja": {
        "rq_title": "個人情報に関するご請求",
        "rq_intro": "当院が保有するあなたの個人情報について、開示、訂正・削除、利用停止、"
        "同意の撤回を請求できます。送信後、ご本人であることを確かめるため、"
        "入力されたメールアドレスに確認コードをお送りします。",
        "rq_kind": "ご請求の内容",
        "rq_kind_disclosure": "開示 (第5条)",
        "rq_kind_disclosure_help": "記録されているデータを、ファイルでお送りします。"
        "1件につき手数料がかかります(金額は受付のメールでお知らせします)。",
        "rq_kind_deletion": "訂正・削除 (第6条)",
        "rq_kind_deletion_help": "記録されているページ閲覧やイベントを削除します。",
        "rq_kind_suspension": "利用停止 (第7条)",
        "rq_kind_suspension_help": "あなたのデータを今後、記録・利用しないようにします。",
        "rq_kind_withdrawal": "同意の撤回",
        "rq_kind_withdrawal_help": "アクセス解析などへの同意を撤回し、記録を止めます。",
        "rq_email": "メールアドレス",
        "rq_email_help": "確認コードと結果をこのアドレスにお送りします。",
        "rq_account": "会員 ID(お持ちの場合)",
        "rq_account_help": "会員登録のメールアドレスと一致する場合に、"
        "会員としての記録も対象になります。",
        "rq_text": "ご請求の内容の詳細(任意)",
        "rq_attach": "このブラウザーの記録も対象に含める",
        "rq_attach_help": "このブラウザーの識別子を請求に添えます。このブラウザーで閲覧した記録が"
        "対象になります。",
        "rq_submit": "請求を送信する",
        "rq_have_ref": "受付番号をお持ちの方は、こちらから状況を確認できます",
        "rq_received_title": "ご請求を受け付けました",
        "rq_reference": "受付番号",
        "rq_keep_ref": "受付番号を控えておいてください。メールでもお知らせします。",
        "rq_code_sent": "確認コードをメールでお送りしました。届いたコードを入力してください。"
        "入力されるまで、手続きは始まりません。",
        "rq_code": "確認コード(6桁)",
        "rq_check": "確認する",
        "rq_resend": "コードを再送する",
        "rq_status_title": "ご請求の状況",
        "rq_status_intro": "受付番号と、メールでお送りした確認コードを入力してください。"
        "コードがお手元にない場合は「コードを再送する」を押してください。",
        "rq_resent": "新しい確認コードをメールでお送りしました。",
        "rq_wait": "少し時間をおいてから、もう一度お試しください。",
        "rq_wait_seconds": "新しいコードは {seconds} 秒後に送れます。",
        "rq_wrong": "確認コードが違います。もう一度入力してください。",
        "rq_code_format": "確認コードは6桁の数字です。メールに記載のコードを入力してください。",
        "rq_expired": "確認コードの有効期限が切れました。「コードを再送する」を押してください。",
        "rq_no_code": "このコードはすでに使われました。新しいコードを送るには"
        "「コードを再送する」を押してください。",
        "rq_too_many": "間違いが多すぎたため、このコードは使えなくなりました。"
        "「コードを再送する」を押してください。",
        "rq_unknown": "この受付番号のご請求は見つかりませんでした。",
        "rq_closed": "このご請求はすでに終了しています。",
        "rq_too_many_codes": "この受付番号ではこれ以上確認コードを送れません。"
        "お手数ですが、あらためてご請求ください。",
        "rq_bad_email": "メールアドレスを正しく入力してください。",
        "rq_bad_kind": "ご請求の内容を選んでください。",
        "rq_bad_account_id": "会員 ID に使えない文字が含まれています。",
        "rq_text_too_long": "詳細は 2,000 文字以内で入力してください。",
        "rq_too_many_requests": "このメールアドレスからの本日のご請求が多すぎます。"
        "明日以降に、またはお電話でお問い合わせください。",
        "rq_busy": "ただいま混み合っています。しばらくしてからもう一度お試しください。",
        "rq_refused": "ご請求を受け付けられませんでした。入力内容をご確認ください。",
        "rq_verified_now": "ご本人であることを確認しました。担当者が対応します。",
        "rq_status": "状況",
        "rq_received_at": "受付日",
        "rq_verified_at": "本人確認日",
        "rq_due": "回答期限",
        "rq_fee": "手数料",
        "rq_result": "結果",
        "rq_ground": "理由",
        "rq_fee_amount": "{fee} 円",
    },
    "en": {
        "rq_title": "Privacy requests",
        "rq_intro": "You can ask us to disclose, correct or delete, or stop using the personal "
        "information we hold about you, or withdraw your consent. After you send this form, we "
        "e-mail a confirmation code to make sure the request is yours.",
        "rq_kind": "What you ask for",
        "rq_kind_disclosure": "Disclosure (Article 5)",
        "rq_kind_disclosure_help": "We send you the data we hold, as a file. There is a fee "
        "per request (the amount is in the acknowledgement e-mail).",
        "rq_kind_deletion": "Correction or deletion (Article 6)",
        "rq_kind_deletion_help": "We delete the page views and events recorded about you.",
        "rq_kind_suspension": "Suspension of use (Article 7)",
        "rq_kind_suspension_help": "We stop recording and using your data.",
        "rq_kind_withdrawal": "Withdrawal of consent",
        "rq_kind_withdrawal_help": "Your consent to analytics and the rest is withdrawn and "
        "recording stops.",
        "rq_email": "E-mail address",
        "rq_email_help": "We send the confirmation code and the result here.",
        "rq_account": "Member id (if you have one)",
        "rq_account_help": "Your member records are included when the member account has "
        "this e-mail address.",
        "rq_text": "Details (optional)",
        "rq_attach": "Include this browser's records",
        "rq_attach_help": "This browser's identifier is added to the request, so what was "
        "recorded in this browser is covered.",
        "rq_submit": "Send the request",
        "rq_have_ref": "Have a reference number? Check your request here",
        "rq_received_title": "We received your request",
        "rq_reference": "Reference number",
        "rq_keep_ref": "Keep this reference number. We also e-mailed it to you.",
        "rq_code_sent": "We e-mailed you a confirmation code. Enter it below. Nothing is done "
        "until you do.",
        "rq_code": "Confirmation code (6 digits)",
        "rq_check": "Confirm",
        "rq_resend": "Send a new code",
        "rq_status_title": "Your request",
        "rq_status_intro": "Enter your reference number and the code we e-mailed you. No code "
        "at hand? Press \"Send a new code\".",
        "rq_resent": "We e-mailed you a new confirmation code.",
        "rq_wait": "Please wait a little and try again.",
        "rq_wait_seconds": "A new code can be sent in {seconds} seconds.",
        "rq_wrong": "That code is not right. Please enter it again.",
        "rq_code_format": "The code is six digits: enter the one in our e-mail.",
        "rq_expired": "That code has expired. Press \"Send a new code\".",
        "rq_no_code": "That code was already used. Press \"Send a new code\" for another.",
        "rq_too_many": "Too many wrong tries: that code no longer works. Press \"Send a new "
        "code\".",
        "rq_unknown": "No request has this reference number.",
        "rq_closed": "This request is already closed.",
        "rq_too_many_codes": "No more codes can be sent for this request. Please make a new "
        "request.",
        "rq_bad_email": "Please enter a valid e-mail address.",
        "rq_bad_kind": "Please choose what you ask for.",
        "rq_bad_account_id": "The member id has characters it cannot have.",
        "rq_text_too_long": "Please keep the details under 2,000 characters.",
        "rq_too_many_requests": "Too many requests from this e-mail address today. Please try "
        "again tomorrow or call us.",
        "rq_busy": "We are busy right now. Please try again shortly.",
        "rq_refused": "We could not accept the request. Please check what you entered.",
        "rq_verified_now": "We confirmed it is you. Our staff will take it from here.",
        "rq_status": "Status",
        "rq_received_at": "Received",
        "rq_verified_at": "Confirmed",
        "rq_due": "Answer due by",
        "rq_fee": "Fee",
        "rq_result": "Result",
        "rq_ground": "Reason",
        "rq_fee_amount": "{fee} yen",
    },
}
