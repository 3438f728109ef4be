"""A consent submission (``POST {prefix}``) read from its body: JSON or a form (pure).

Only the shape is checked here; what the choice means (unknown categories, an action with
categories) is ``consent_mw.consent.decision.decide``'s to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from consent_mw.http import BadRequest, parse_json

TRUE_VALUES = {"on", "true", "1", "yes"}
FALSE_VALUES = {"off", "false", "0", "no", ""}
FORM_CONTROL_FIELDS = {"action", "return", "form", "component", "locale"}
COMPONENTS = ("banner", "preferences", "api")
JSON_FIELDS = {"action", "categories", "services", "component", "locale"}


@dataclass(frozen=True, slots=True)
class Submission:
    decide: dict[str, Any]  # the keyword arguments of decision.decide
    component: str  # banner, preferences or api: where the choice was made
    return_to: str | None  # a form's page to go back to (checked by banner.safe_return)
    locale: str | None  # the language the visitor read the choice in


def from_json(body: bytes, limit: int) -> Submission:
    data = parse_json(body, limit)
    if not isinstance(data, dict):
        raise BadRequest(400, "expected a JSON object")
    unknown = set(data) - JSON_FIELDS
    if unknown:
        raise BadRequest(400, f"unknown fields {sorted(unknown)}")
    component = data.get("component", "api")
    if component not in COMPONENTS:
        raise BadRequest(400, f"component must be one of {list(COMPONENTS)}")
    for key in ("categories", "services"):
        if key in data and not isinstance(data[key], dict):
            raise BadRequest(400, f"{key!r} must be an object of name: true/false")
    action = data.get("action")
    if action is not None and not isinstance(action, str):
        raise BadRequest(400, "'action' must be a string")
    decide: dict[str, Any] = {"action": action, "categories": data.get("categories"),
                              "services": data.get("services")}
    if action is None and component == "api":
        decide["method"] = "api"
    locale = data.get("locale")
    return Submission(decide, component, None, locale if isinstance(locale, str) else None)


def from_form(body: bytes) -> Submission:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                          strict_parsing=False, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "invalid form body") from None
    fields: dict[str, list[str]] = {}
    for key, value in pairs:
        fields.setdefault(key, []).append(value)
    actions = fields.get("action", [])
    if len(actions) > 1:
        raise BadRequest(400, "more than one action")
    action = actions[0] if actions else None
    component = "preferences" if fields.get("form") == ["preferences"] else "banner"
    return_to = fields["return"][0] if fields.get("return") else None
    locale = fields["locale"][0] if fields.get("locale") else None
    if action in ("accept_all", "reject_all"):
        return Submission({"action": action}, component, return_to, locale)
    if action not in (None, "save"):
        raise BadRequest(400, f"unknown action {action!r}")
    categories: dict[str, bool] = {}
    services: dict[str, bool] = {}
    for name, values in fields.items():
        if name in FORM_CONTROL_FIELDS:
            continue
        if name.startswith("service."):
            services[name[len("service."):]] = _bool_field(name, values)
        else:
            categories[name] = _bool_field(name, values)
    explicit_services = component == "preferences" or bool(services)
    decide = {"categories": categories, "services": services if explicit_services else None}
    return Submission(decide, component, return_to, locale)


def _bool_field(name: str, values: list[str]) -> bool:
    if len(values) != 1:
        # A checkbox sends one value; a hidden "off" plus a checked "on" is common too.
        return any(v.strip().lower() in TRUE_VALUES for v in values)
    value = values[0].strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise BadRequest(400, f"field {name!r} must be on/off or true/false")
