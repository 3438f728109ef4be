"""Consent categories, the services under them, and the third-party tags they gate.

The defaults are the data inventory's (``shared/design/data-inventory.md``): ``necessary``
(always on), ``analytics``, ``location``, ``marketing``. A site's config may rename or add
categories; whatever the config says is the only truth the banner, the preferences page, the
tag gating and the external-transmission notice read, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from consent_mw.config import SettingsError

#: Google Consent Mode v2 signals, in Google's order.
GCM_SIGNALS: tuple[str, ...] = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)

Text = Mapping[str, str]  # locale -> text
TAG_KINDS = ("google_analytics", "gtm", "script")


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A vendor or feature toggled separately under a category (e.g. google_analytics)."""

    name: str
    label: Text


@dataclass(frozen=True, slots=True, kw_only=True)
class Category:
    name: str
    label: Text
    covers: Text  # what data it covers
    purpose: Text  # why
    retention: Text  # how long it is kept
    required: bool = False  # `necessary`: always on, cannot be refused
    gcm: tuple[str, ...] = ()  # Consent Mode signals this category drives
    services: tuple[Service, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag:
    """A third-party tag injected only when its category (and service) are granted.

    The same record feeds the external-transmission notice (電気通信事業法 第27条の12):
    who receives the data, which items are sent, why, and how to opt out.
    """

    name: str
    kind: str  # "google_analytics" | "gtm" | "script"
    category: str
    service: str | None = None
    measurement_id: str | None = None
    src: str | None = None  # for kind == "script"
    recipient: Text = field(default_factory=dict)
    items: Text = field(default_factory=dict)
    purpose: Text = field(default_factory=dict)
    opt_out: Text = field(default_factory=dict)
    opt_out_url: str | None = None


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category(
        name="necessary",
        required=True,
        gcm=("security_storage", "functionality_storage"),
        label={"ja": "必須", "en": "Strictly necessary"},
        covers={
            "ja": "同意の記録クッキー、セキュリティ、不正なリクエストの防止",
            "en": "The consent cookie itself, security and protection against forged requests",
        },
        purpose={
            "ja": "サイトを安全に動かし、あなたの選択を覚えておくため",
            "en": "To run the site securely and remember your choice",
        },
        retention={
            "ja": "同意クッキーは6か月。同意の記録は証明のため5年",
            "en": "Consent cookie 6 months; consent records 5 years, as proof",
        },
    ),
    Category(
        name="analytics",
        gcm=("analytics_storage",),
        label={"ja": "アクセス解析", "en": "Analytics"},
        covers={
            "ja": "閲覧したページ、利用日時、検索語、参照元、ブラウザ・OS・端末の種類、"
            "通信状況、IPアドレス、訪問者クッキー",
            "en": "Pages viewed, time of use, search terms, referrer, browser, OS and device, "
            "network status, IP address, visitor cookie",
        },
        purpose={
            "ja": "サイトの使われ方を理解し、改善するため",
            "en": "To understand how the site is used and improve it",
        },
        retention={
            "ja": "13か月。IPアドレスは30日で消去",
            "en": "13 months; the full IP address is erased after 30 days",
        },
        services=(
            Service(name="google_analytics", label={"ja": "Google アナリティクス",
                                                     "en": "Google Analytics"}),
        ),
    ),
    Category(
        name="location",
        label={"ja": "位置情報", "en": "Location"},
        covers={
            "ja": "IPアドレスから推定した国・地域・市区町村",
            "en": "Country, region and city derived from your IP address",
        },
        purpose={
            "ja": "どの地域から来院の検討があるかを知るため",
            "en": "To learn which areas our visitors come from",
        },
        retention={"ja": "13か月", "en": "13 months"},
    ),
    Category(
        name="marketing",
        gcm=("ad_storage", "ad_user_data", "ad_personalization"),
        label={"ja": "広告・マーケティング", "en": "Marketing"},
        covers={
            "ja": "広告のクリック、キャンペーン(utm)、広告クリックID、提携先への提供",
            "en": "Ad clicks, campaigns (utm), ad click ids, sharing with partners",
        },
        purpose={
            "ja": "広告の効果を測り、提携先に提供するため(プライバシーポリシー第4条)",
            "en": "To measure advertising and share with partners (privacy policy Article 4)",
        },
        retention={"ja": "13か月", "en": "13 months"},
    ),
)


def _text(field_name: str, value: Any, default: Text | None = None) -> Text:
    if value is None:
        if default is None:
            raise SettingsError(field_name, "is required")
        return default
    if isinstance(value, str):
        return {"ja": value, "en": value}
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return dict(value)
    raise SettingsError(field_name, "expected a string or a table of locale = text")


def categories_from_config(raw: Any) -> tuple[Category, ...]:
    """Categories from a TOML array of tables; ``necessary`` is always kept and required.
    Only the shape is checked here: :func:`check_catalogue` checks the result (Settings runs
    it however it is built)."""
    if raw is None:
        return DEFAULT_CATEGORIES
    if not isinstance(raw, list) or not raw:
        raise SettingsError("categories", "expected a non-empty array of tables")
    defaults = {c.name: c for c in DEFAULT_CATEGORIES}
    result: list[Category] = []
    for index, item in enumerate(raw):
        where = f"categories[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise SettingsError(where, "each category needs a string 'name'")
        name = item["name"]
        base = defaults.get(name)
        services = tuple(
            Service(name=s["name"], label=_text(f"{where}.services.label", s.get("label"),
                                                {"ja": s["name"], "en": s["name"]}))
            for s in item.get("services", [])
            if isinstance(s, dict) and isinstance(s.get("name"), str)
        ) or (base.services if base else ())
        result.append(
            Category(
                name=name,
                required=name == "necessary" or bool(item.get("required", False)),
                gcm=tuple(item.get("gcm", base.gcm if base else ())),
                label=_text(f"{where}.label", item.get("label"), base.label if base else None),
                covers=_text(f"{where}.covers", item.get("covers"), base.covers if base else None),
                purpose=_text(f"{where}.purpose", item.get("purpose"),
                              base.purpose if base else None),
                retention=_text(f"{where}.retention", item.get("retention"),
                                base.retention if base else None),
                services=services,
            )
        )
    if "necessary" not in {c.name for c in result}:
        result.insert(0, DEFAULT_CATEGORIES[0])
    return tuple(result)


def tags_from_config(raw: Any) -> tuple[Tag, ...]:
    """Tags from a TOML array of tables (shape only; see :func:`check_catalogue`)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SettingsError("tags", "expected an array of tables")
    tags: list[Tag] = []
    for index, item in enumerate(raw):
        where = f"tags[{index}]"
        if not isinstance(item, dict):
            raise SettingsError(where, "expected a table")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise SettingsError(f"{where}.name", "is required")
        tags.append(
            Tag(
                name=name,
                kind=str(item.get("kind")),
                category=str(item.get("category")),
                service=item.get("service"),
                measurement_id=item.get("measurement_id"),
                src=item.get("src"),
                recipient=_text(f"{where}.recipient", item.get("recipient")),
                items=_text(f"{where}.items", item.get("items")),
                purpose=_text(f"{where}.purpose", item.get("purpose")),
                opt_out=_text(f"{where}.opt_out", item.get("opt_out"), {}),
                opt_out_url=item.get("opt_out_url"),
            )
        )
    return tuple(tags)


def check_catalogue(categories: tuple[Category, ...], tags: tuple[Tag, ...]) -> None:
    """What the banner, the gating and the notice rely on, whoever built the categories and
    tags: unique identifier names, known Consent Mode signals, and tags that name a category
    (and one of its services) and carry what their kind needs."""
    if not categories:
        raise SettingsError("categories", "at least one category is required")
    names = [c.name for c in categories]
    if len(set(names)) != len(names):
        raise SettingsError("categories", "category names must be unique")
    for index, category in enumerate(categories):
        where = f"categories[{index}]"
        if not category.name.isidentifier():
            raise SettingsError(f"{where}.name", f"{category.name!r} is not a valid identifier")
        unknown = set(category.gcm) - set(GCM_SIGNALS)
        if unknown:
            raise SettingsError(f"{where}.gcm", f"unknown Consent Mode signals {sorted(unknown)}")
    by_name = {c.name: c for c in categories}
    for index, tag in enumerate(tags):
        where = f"tags[{index}]"
        if tag.kind not in TAG_KINDS:
            raise SettingsError(f"{where}.kind", "must be google_analytics, gtm or script")
        if tag.category not in by_name:
            raise SettingsError(f"{where}.category", f"unknown category {tag.category!r}")
        if tag.service is not None and tag.service not in {
                s.name for s in by_name[tag.category].services}:
            raise SettingsError(f"{where}.service",
                                f"{tag.service!r} is not a service of category {tag.category!r}")
        if tag.kind in {"google_analytics", "gtm"} and not isinstance(tag.measurement_id, str):
            raise SettingsError(f"{where}.measurement_id", "is required for Google tags")
        if tag.kind == "script" and not isinstance(tag.src, str):
            raise SettingsError(f"{where}.src", "is required for script tags")
