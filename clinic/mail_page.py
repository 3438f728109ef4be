"""The demo's mailbox page: every mail the demo's SMTP server received, newest first.

So a person trying the demo can follow a privacy request without a mail account: the
acknowledgement, the code, the result with its attachment. Only the demo serves it; a real
deployment sends through its own SMTP server (``CONSENT_MW_SMTP_HOST``).
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from clinic.mailbox import Mailbox

WORDS = {
    "ja": {"title": "デモのメールボックス", "intro": "デモの SMTP サーバーが受け取ったメールです"
           "(新しい順)。実際の運用では、医院の SMTP サーバーから送られます。",
           "empty": "まだメールはありません。", "to": "宛先", "at": "受信", "files": "添付",
           "form": "ご請求のフォームへ", "other": "English"},
    "en": {"title": "Demo mailbox", "intro": "Mail the demo's SMTP server received, newest "
           "first. A real deployment sends through the clinic's own SMTP server.",
           "empty": "No mail yet.", "to": "To", "at": "Received", "files": "Attachments",
           "form": "To the request form", "other": "日本語"},
}
STYLE = ("pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #ccc;"
         "border-radius:.5rem;padding:1rem;font:inherit}article{margin:1.5rem 0}"
         "h2{font-size:1.1rem;overflow-wrap:anywhere}")


def _lang(request: Request) -> str:
    chosen = request.query_params.get("lang")
    if chosen in WORDS:
        return chosen
    return "en" if request.headers.get("accept-language", "ja").startswith("en") else "ja"


def mail_routes(mailbox: Mailbox, consent_prefix: str) -> list[Route]:
    async def page(request: Request) -> Response:
        lang = _lang(request)
        w = WORDS[lang]
        e = html.escape
        mails = list(reversed(mailbox.received()))
        items = []
        for n, mail in enumerate(mails):
            at = datetime.fromtimestamp(mail.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            files = "".join(
                f'<li><a href="/demo/mail/{len(mails) - 1 - n}/{i}">{e(name)}</a> '
                f'({len(data):,} bytes)</li>' for i, (name, data) in enumerate(mail.attachments))
            items.append(
                f'<article><h2>{e(mail.subject)}</h2><p>{w["to"]}: {e(", ".join(mail.recipients))}'
                f' · {w["at"]}: {at}</p><pre>{e(mail.text)}</pre>'
                + (f'<p>{w["files"]}:</p><ul>{files}</ul>' if files else "") + "</article>")
        other = "en" if lang == "ja" else "ja"
        body = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<title>{w["title"]}</title><link rel="stylesheet" href="/static/clinic.css">'
                f'<style>{STYLE}</style></head><body><main class="wrap"><h1>{w["title"]}</h1>'
                f'<p>{w["intro"]}</p><p><a href="{e(consent_prefix)}/requests?lang={lang}">'
                f'{w["form"]}</a> · <a href="/demo/mail?lang={other}">{w["other"]}</a></p>'
                + ("".join(items) or f'<p>{w["empty"]}</p>') + "</main></body></html>")
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def attachment(request: Request) -> Response:
        mails = mailbox.received()
        try:
            mail = mails[int(request.path_params["mail"])]
            name, data = mail.attachments[int(request.path_params["file"])]
        except (ValueError, IndexError):
            return HTMLResponse("no such attachment", status_code=404)
        safe = "".join(ch for ch in name if ch.isalnum() or ch in "-_.") or "attachment"
        return Response(data, media_type="application/zip", headers={
            "Content-Disposition": f'attachment; filename="{safe}"', "Cache-Control": "no-store"})

    return [Route("/demo/mail", page, methods=["GET"]),
            Route("/demo/mail/{mail}/{file}", attachment, methods=["GET"])]
