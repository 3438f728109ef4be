"""The demo clinic site: a small Starlette app, Japanese at ``/``, English under ``/en``.

It knows nothing about consent or storage: the composition (``clinic.app``) wraps it in the
consent middleware. Its only analytics call is ``track()`` on a reservation, with non-personal
properties only; the name, phone and e-mail of the form never leave the request.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from clinic.content import CAMPAIGNS, LOCALES, STRINGS, TREATMENTS, TREATMENTS_BY_SLUG, Treatment
from clinic.content import policy_text as load_policy_text
from collector.web import is_same_origin
from consent_mw.capture.api import track

HERE = Path(__file__).resolve().parent
TOKYO = ZoneInfo("Asia/Tokyo")
MAX_QUERY = 100

_PHONE = re.compile(r"^\+?[0-9][0-9\- ]{7,18}[0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ERRORS: dict[str, dict[str, str]] = {
    "ja": {
        "name": "お名前を50文字以内で入力してください。",
        "phone": "電話番号を数字とハイフンで入力してください(10〜15桁)。",
        "email": "メールアドレスの形式が正しくありません。",
        "treatment": "ご希望の施術を選択してください。",
        "date": "希望日は本日以降、1年以内の日付を選んでください。",
        "form": "フォームの送信形式が正しくありません。",
    },
    "en": {
        "name": "Please enter your name (at most 50 characters).",
        "phone": "Please enter a phone number of 10–15 digits (digits and hyphens).",
        "email": "That e-mail address does not look valid.",
        "treatment": "Please choose a treatment.",
        "date": "Please choose a date from today up to one year ahead.",
        "form": "The form was not submitted correctly.",
    },
}


def locale_of(request: Request) -> str:
    path = request.url.path
    if path == "/en" or path.startswith("/en/"):
        return "en"
    lang = request.query_params.get("lang")
    return lang if lang in LOCALES else "ja"


def localized(path: str, locale: str) -> str:
    """The URL of ``path`` (a Japanese-site path) in ``locale``."""
    if locale == "ja":
        return path
    return "/en" + (path if path != "/" else "/")


def _unlocalized(path: str) -> str:
    if path == "/en":
        return "/"
    return path[3:] if path.startswith("/en/") else path


def _clean(value: str) -> str:
    """NFC, trimmed, with control characters removed (they have no place in a form field)."""
    value = unicodedata.normalize("NFKC", value).strip()
    return "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")


def validate_reservation(
    form: Mapping[str, str], *, today: date | None = None
) -> tuple[dict[str, str], list[str]]:
    """Clean the reservation fields; return the cleaned values and the names of bad fields."""
    today = today or datetime.now(TOKYO).date()
    values = {k: _clean(form.get(k, "")) for k in ("name", "phone", "email", "treatment", "date")}
    bad: list[str] = []
    if not 1 <= len(values["name"]) <= 50:
        bad.append("name")
    phone = values["phone"]
    digits = sum(ch.isdigit() for ch in phone)
    if not (_PHONE.match(phone) and 10 <= digits <= 15):
        bad.append("phone")
    if len(values["email"]) > 254 or not _EMAIL.match(values["email"]):
        bad.append("email")
    if values["treatment"] not in TREATMENTS_BY_SLUG:
        bad.append("treatment")
    try:
        wanted = date.fromisoformat(values["date"])
    except ValueError:
        bad.append("date")
    else:
        if not today <= wanted <= today + timedelta(days=365):
            bad.append("date")
    return values, bad


def search_treatments(query: str) -> list[Treatment]:
    """Treatments whose text (in either language) contains every term of the query."""
    terms = [t for t in unicodedata.normalize("NFKC", query).casefold().split() if t]
    if not terms:
        return []
    found = []
    for treatment in TREATMENTS:
        text = " ".join(treatment.text(loc) for loc in LOCALES).casefold()
        if all(term in text for term in terms):
            found.append(treatment)
    return found


def _environment() -> jinja2.Environment:
    # autoescape everything: the search query and form values are echoed back into pages.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["yen"] = lambda n: f"{n:,}"
    return env


def create_site(
    *, consent_prefix: str = "/_consent", self_service: bool = False, policy: str | None = None
) -> Starlette:
    """The clinic site. ``self_service`` adds the "your data" link to the policy page."""
    templates = Jinja2Templates(env=_environment())
    policy = load_policy_text() if policy is None else policy

    def render(
        request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
    ) -> Response:
        locale = locale_of(request)
        other = "en" if locale == "ja" else "ja"
        other_url = localized(_unlocalized(request.url.path), other)
        query = request.url.query
        if query:
            query = "&".join(p for p in query.split("&") if not p.startswith("lang="))
            other_url += f"?{query}" if query else ""
        ctx: dict[str, Any] = {
            "locale": locale,
            "t": STRINGS[locale],
            "url": lambda path: localized(path, locale),
            "other_url": other_url,
            "consent_prefix": consent_prefix,
            "self_service": self_service,
            "treatments": TREATMENTS,
            "today": datetime.now(TOKYO).date().isoformat(),
        }
        ctx.update(context or {})
        return templates.TemplateResponse(request, name, ctx, status_code=status)

    async def home(request: Request) -> Response:
        return render(request, "home.html")

    async def treatment(request: Request) -> Response:
        item = TREATMENTS_BY_SLUG.get(request.path_params["slug"])
        if item is None:
            raise HTTPException(404)
        return render(request, "treatment.html", {"item": item})

    async def search(request: Request) -> Response:
        query = request.query_params.get("q", "")[:MAX_QUERY]
        results = search_treatments(query)
        return render(request, "search.html", {"q": query, "results": results})

    async def reservation(request: Request) -> Response:
        locale = locale_of(request)
        if request.method == "GET":
            chosen = request.query_params.get("treatment", "")
            values = {"treatment": chosen if chosen in TREATMENTS_BY_SLUG else ""}
            return render(request, "reservation.html", {"values": values, "errors": []})
        if not is_same_origin(request):
            return PlainTextResponse("cross-origin form submission refused", status_code=403)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith(("application/x-www-form-urlencoded",
                                        "multipart/form-data")):
            return render(request, "reservation.html",
                          {"values": {}, "errors": [ERRORS[locale]["form"]]}, status=400)
        async with request.form(max_files=0, max_fields=20) as form:
            raw = {k: v for k, v in form.items() if isinstance(v, str)}
        values, bad = validate_reservation(raw)
        if bad:
            errors = [ERRORS[locale][field] for field in bad]
            return render(request, "reservation.html",
                          {"values": values, "errors": errors, "bad": bad}, status=400)
        # Only what describes the demand, never who: no name, phone, e-mail or exact date.
        # Worth the treatment's first price to the dashboards' goals (value by campaign).
        item = TREATMENTS_BY_SLUG[values["treatment"]]
        track(request, "reservation",
              {"treatment": values["treatment"], "preferred_month": values["date"][:7]},
              value=item.prices[0].yen, currency="JPY")
        return render(request, "thanks.html", {"item": item})

    async def landing(request: Request) -> Response:
        campaign = CAMPAIGNS.get(request.path_params["campaign"])
        if campaign is None:
            raise HTTPException(404)
        return render(request, "lp.html", {
            "campaign": campaign, "item": TREATMENTS_BY_SLUG[campaign.treatment]})

    async def privacy(request: Request) -> Response:
        return render(request, "privacy.html", {"policy_lines": _policy_blocks(policy)})

    async def robots(request: Request) -> Response:
        return PlainTextResponse("User-agent: *\nDisallow: /dashboards/\nDisallow: /_collector/\n")

    async def favicon(request: Request) -> Response:
        # Browsers ask for /favicon.ico on pages that name no icon (the consent pages).
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return render(request, "404.html", status=404)

    pages: list[tuple[str, Any, list[str]]] = [
        ("/", home, ["GET"]),
        ("/treatments/{slug}", treatment, ["GET"]),
        ("/search", search, ["GET"]),
        ("/reservation", reservation, ["GET", "POST"]),
        ("/lp/{campaign}", landing, ["GET"]),
        ("/privacy", privacy, ["GET"]),
    ]
    routes: list[BaseRoute] = []
    for path, endpoint, methods in pages:
        routes.append(Route(path, endpoint, methods=methods))
        routes.append(Route(localized(path, "en"), endpoint, methods=methods))
    routes.append(Route("/en", home, methods=["GET"]))
    routes.append(Route("/robots.txt", robots, methods=["GET"]))
    routes.append(Route("/favicon.ico", favicon, methods=["GET", "HEAD"]))
    routes.append(Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"))
    return Starlette(routes=routes, exception_handlers={404: not_found})


def _policy_blocks(text: str) -> list[tuple[str, str]]:
    """The policy as (kind, line) blocks: article headings apart from paragraphs."""
    blocks: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line == "Privacy Policy":
            continue  # the page has its own title
        kind = "h" if line.startswith("Article ") else ("li" if line.startswith("- ") else "p")
        blocks.append((kind, line.removeprefix("- ")))
    return blocks
