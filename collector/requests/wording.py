"""What request mail and pages call things, in Japanese and English. Pure.

The kinds and grounds are the clinic policy's own words (Articles 5 to 7); the mail templates
(``collector.requests.mail``) and the staff console show these, never the codes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.requests.model import Request

KIND_LABELS = {
    "disclosure": {"ja": "開示 (第5条)", "en": "disclosure (Article 5)"},
    "deletion": {"ja": "訂正・削除 (第6条)", "en": "correction or deletion (Article 6)"},
    "suspension": {"ja": "利用停止 (第7条)", "en": "suspension of use (Article 7)"},
    "withdrawal": {"ja": "同意の撤回", "en": "withdrawal of consent"},
}
GROUND_LABELS = {
    "harm": {"ja": "本人または第三者の生命、身体、財産その他の権利利益を害するおそれがあるため",
             "en": "it could harm the life, body, property or other rights or interests of "
                   "you or a third party"},
    "business": {"ja": "当院の業務の適正な実施に著しい支障を及ぼすおそれがあるため",
                 "en": "it could significantly hinder the proper conduct of our business"},
    "law": {"ja": "他の法令に違反することとなるため", "en": "it would violate other laws"},
    "identity": {"ja": "ご本人であることを確認できなかったため",
                 "en": "we could not confirm that the request comes from you"},
}
FEE_LABELS = {"due": {"ja": "お支払い待ち", "en": "due"},
              "paid": {"ja": "お支払い済み", "en": "paid"},
              "waived": {"ja": "免除", "en": "waived"}}


STATUS_LABELS = {
    "received": {"ja": "受付済み(ご本人の確認待ち)",
                 "en": "received (waiting for your confirmation)"},
    "verified": {"ja": "ご本人を確認しました(対応待ち)", "en": "confirmed (waiting for our staff)"},
    "in_progress": {"ja": "対応中", "en": "in progress"},
    "completed": {"ja": "完了", "en": "completed"},
    "refused": {"ja": "対応できませんでした", "en": "could not be done"},
    "withdrawn": {"ja": "取り下げられました", "en": "withdrawn"},
}


def label(labels: dict[str, dict[str, str]], key: str, lang: str) -> str:
    return labels.get(key, {}).get(lang, key)


def result_text(request: Request, lang: str | None = None) -> str:
    """What completing did, in a sentence of the person's language (or ``lang``)."""
    ja = (lang or request.lang) == "ja"
    if request.operation == "export":
        return ("記録されているデータを添付のファイル(ZIP 形式、CSV)でお送りします。" if ja
                else "The data we hold about you is attached (a ZIP file of CSV tables).")
    if request.operation == "purge":
        rows = sum(sum((r.get("rows_deleted") or {}).values()) for r in request.results)
        receipts = ", ".join(str(r.get("receipt_id", "")) for r in request.results)
        return (f"記録を削除し、残っていないことを確認しました(削除した記録: {rows:,} 件)。\n"
                f"受領証番号: {receipts}" if ja else
                f"Your data was deleted, and we verified none is left ({rows:,} records "
                f"deleted).\nReceipt: {receipts}")
    return ("今後、あなたのデータは記録・利用されません。" if ja
            else "Your data is no longer recorded or used.")


def mail_fields(request: Request, requests_url: str, today: str,
                values: dict[str, Any]) -> dict[str, object]:
    """The ``$fields`` every request mail template may use."""
    ja = request.lang == "ja"
    link = f"{requests_url}?ref={request.ref}&lang={request.lang}" if requests_url else ""
    status_link = (("\n確認ページ: " if ja else "\nStatus page: ") + link + "\n") if link else ""
    fee_line = ""
    if request.kind == "disclosure" and request.fee_yen:
        fee_line = (f"手数料: 1件につき {request.fee_yen:,} 円 (第5条)\n" if ja
                    else f"Fee: {request.fee_yen:,} yen per case (Article 5)\n")
    fields: dict[str, object] = {
        "ref": request.ref, "kind": label(KIND_LABELS, request.kind, request.lang),
        "status_link": status_link, "fee_line": fee_line, "fee": f"{request.fee_yen:,}",
        "date": today, "note": "", **values}
    if fields["note"]:
        fields["note"] = ("\n担当者より: " if ja else "\nFrom our staff: ") \
            + str(fields["note"]) + "\n"
    return fields


def local_day(ms: int | None, tz: str, lang: str = "") -> str:
    """A moment's date in the site's time zone (``rollup_tz``, what staff see too), as a
    person reads it: ``2026年12月8日``, ``2026-12-08`` in English or for a program ("")."""
    if not ms:
        return ""
    d = datetime.fromtimestamp(ms / 1000, UTC).astimezone(ZoneInfo(tz))
    return f"{d.year}年{d.month}月{d.day}日" if lang == "ja" else d.strftime("%Y-%m-%d")


def words(request: Request, lang: str, tz: str = "UTC") -> dict[str, str]:
    """The person's view of their request in words of ``lang``, never codes; its dates
    in the site's time zone ``tz``, so the person's deadline is the one staff see."""
    return {"received_on": local_day(request.received_at, tz, lang),
            "verified_on": local_day(request.verified_at, tz, lang),
            "due_on": local_day(request.due_at, tz, lang),
            "kind_label": label(KIND_LABELS, request.kind, lang),
            "status_label": label(STATUS_LABELS, request.status, lang),
            "ground_label": label(GROUND_LABELS, request.ground, lang) if request.ground else "",
            "fee_label": label(FEE_LABELS, request.fee, lang) if request.fee != "none" else "",
            "result_text": result_text(request, lang) if request.status == "completed" else ""}
