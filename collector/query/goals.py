"""Goals: what counts as a conversion, defined by the clinic's staff, and the SQL that finds it.

A goal is one of four kinds:

- ``page``: a page view whose path matches a pattern (``*`` stands for any characters, so
  ``/reservation/thanks*`` also matches ``/reservation/thanks?from=lp``'s path);
- ``event``: a custom event of a name (``track(request, "reservation")``), optionally only
  when one of its properties has a given value;
- ``interaction``: a report of the click beacon: a phone or e-mail tap, an app link (the
  app optional: ``line``), an outbound link (the host optional), a download (the file
  optional) or a form submit (the form's id optional);
- ``engaged``: a visit whose pages were visible and in use for at least N seconds.

Each may carry a value in yen per conversion, for a goal whose events carry none; a custom
event's own value (``track(..., value=, currency="JPY")``) comes first (:func:`goal_worth`).
A goal is stored as JSON (``collector.goals``); :func:`parse_goal` is the one check of it,
for a write and again for every stored goal a query reads, and :func:`goal_count` is the one
place its definition becomes SQL, with bound parameters only. Pure: no store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from collector.query.params import QueryError, is_text

GoalKind = Literal["page", "event", "interaction", "engaged"]
GOAL_KINDS: tuple[GoalKind, ...] = ("page", "event", "interaction", "engaged")
#: Interaction kinds a goal may name, and the column (of ``collector.query.params``'s
#: interaction dimensions) its optional target is matched against; None: no target.
TAPS: dict[str, str | None] = {
    "tel": None,
    "mailto": None,
    "app": "target",
    "outbound": "target_host",
    "download": "target_path",
    "form": "if(target != '', target, target_path)",
}
#: Every field a goal's definition may have, across the kinds.
GOAL_FIELDS = ("name", "kind", "path", "event", "property", "equals", "interaction", "target",
               "seconds", "value")
MAX_MATCH = 256
MAX_GOALS = 30
MAX_SECONDS = 3600
MAX_VALUE = 100_000_000  # yen per conversion
_NAME_RE = re.compile(r"[\w.:\-]{1,64}")
_ID_RE = re.compile(r"[0-9a-f]{32}")
_DIGITS = re.compile(r"-?[0-9]{1,15}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
ENGAGED = "kind = 'interaction' AND name = 'engaged'"
#: The currency values are summed in: the clinic's. An event worth an amount in another
#: currency still converts; its amount is not added (no rate is guessed).
CURRENCY = "JPY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Goal:
    """A checked goal. ``match``: the path pattern, event name or interaction kind;
    ``key``/``target``: the event property and its value, or the interaction's target."""

    kind: GoalKind
    match: str = ""
    key: str = ""
    target: str = ""
    seconds: int = 0
    value: int = 0
    goal_id: str = ""
    name: str = ""

    @property
    def reads_interactions(self) -> bool:
        return self.kind in ("interaction", "engaged")

    def definition(self) -> dict[str, Any]:
        """The stored JSON: what defines the goal, without its id and name."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "page":
            out["path"] = self.match
        elif self.kind == "event":
            out["event"] = self.match
            if self.key:
                out.update(property=self.key, equals=self.target)
        elif self.kind == "interaction":
            out["interaction"] = self.match
            if self.target:
                out["target"] = self.target
        else:
            out["seconds"] = self.seconds
        if self.value:
            out["value"] = self.value
        return out

    def to_json(self) -> str:
        return json.dumps(self.definition(), ensure_ascii=False, sort_keys=True)

    def count_sql(self, i: int | str, params: dict[str, Any]) -> str:
        return goal_count(self, i, params)

    def worth_sql(self, i: int | str, params: dict[str, Any]) -> str:
        return goal_worth(self, i, params)

    @property
    def rollup_key(self) -> str:
        """What the daily rollup files the goal's figures under: its definition's hash, so
        a goal edited is a new key, and a renamed one keeps its figures."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:16]


def _text(body: Mapping[str, Any], field: str, limit: int, required: bool = True) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise QueryError(f"{field}: required for this kind of goal")
        return ""
    if not isinstance(value, str) or not is_text(value) or _CONTROL.search(value):
        raise QueryError(f"{field}: expected one line of text")
    value = value.strip()
    if len(value) > limit:
        raise QueryError(f"{field}: at most {limit} characters")
    if required and not value:
        raise QueryError(f"{field}: required for this kind of goal")
    return value


def whole_number(value: object, field: str) -> int:
    """An int, or a string of ASCII digits (a form's field): never "²", "１２" or a
    5,000-digit string, which ``int()`` reads or chokes on."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise QueryError(f"{field}: expected a whole number")
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value.strip()):
            raise QueryError(f"{field}: expected a whole number")
        return int(value.strip())
    return value


def _number(body: Mapping[str, Any], field: str, lo: int, hi: int) -> int:
    value = body.get(field)
    if value is None or value == "":
        return 0 if lo == 0 else _fail(f"{field}: required for this kind of goal")
    number = whole_number(value, field)
    if not lo <= number <= hi:
        raise QueryError(f"{field}: between {lo} and {hi}")
    return number


def _fail(reason: str) -> int:
    raise QueryError(reason)


def parse_goal(body: Mapping[str, Any], goal_id: str = "", name: str = "") -> Goal:
    """The goal a definition describes, or QueryError naming the field that is wrong.

    Fields that do not belong to the goal's kind are ignored (a form posts them all)."""
    if not isinstance(body, Mapping):
        raise QueryError("goal: expected an object")
    kind = body.get("kind")
    if kind not in GOAL_KINDS:
        raise QueryError(f"kind: expected one of {', '.join(GOAL_KINDS)}")
    value = _number(body, "value", 0, MAX_VALUE)
    common = Goal(kind="page", value=value, goal_id=goal_id, name=name)
    if kind == "page":
        path = _text(body, "path", MAX_MATCH)
        if not path.startswith("/"):
            raise QueryError("path: a pattern starts with / (use * for any characters)")
        return replace(common, match=path)
    if kind == "event":
        event = _text(body, "event", 64)
        if not _NAME_RE.fullmatch(event):
            raise QueryError("event: an event name (letters, digits, _ . : -)")
        key = _text(body, "property", 64, required=False)
        equals = _text(body, "equals", MAX_MATCH, required=bool(key)) if key else ""
        return replace(common, kind="event", match=event, key=key, target=equals)
    if kind == "interaction":
        tap = body.get("interaction")
        if not isinstance(tap, str) or tap not in TAPS:
            raise QueryError(f"interaction: expected one of {', '.join(TAPS)}")
        target = _text(body, "target", MAX_MATCH, required=False) if TAPS[tap] else ""
        return replace(common, kind="interaction", match=tap, target=target)
    return replace(common, kind="engaged", seconds=_number(body, "seconds", 1, MAX_SECONDS))


def stored_goal(goal_id: str, name: str, definition: str) -> Goal | None:
    """A goal read back from the store; None for one that no longer parses (kept, unused)."""
    try:
        body = json.loads(definition)
        return parse_goal(body, goal_id, name) if _ID_RE.fullmatch(goal_id) else None
    except (ValueError, QueryError):
        return None


def like_pattern(pattern: str) -> str:
    """A path pattern as a LIKE pattern: ``*`` is any run of characters, nothing else is
    special (``%``, ``_`` and ``\\`` match themselves)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def goal_condition(goal: Goal, i: int | str, params: dict[str, Any]) -> str:
    """The rows that are a conversion of ``goal`` (not for ``engaged``, a visit's figure);
    its values bound as ``g{i}…`` parameters."""
    if goal.kind == "page":
        params[f"g{i}m"] = like_pattern(goal.match)
        return f"kind = 'pageview' AND path LIKE {{g{i}m:String}}"
    params[f"g{i}m"] = goal.match
    if goal.kind == "event":
        cond = f"kind = 'custom' AND name = {{g{i}m:String}}"
        if goal.key:
            params[f"g{i}k"], params[f"g{i}t"] = goal.key, goal.target
            cond += f" AND properties[{{g{i}k:String}}] = {{g{i}t:String}}"
        return cond
    if goal.kind == "interaction":
        cond = f"kind = 'interaction' AND name = {{g{i}m:String}}"
        column = TAPS[goal.match]
        if goal.target and column:
            params[f"g{i}t"] = goal.target
            cond += f" AND {column} = {{g{i}t:String}}"
        return cond
    raise ValueError("an engaged-time goal is a figure of visits, not a row condition")


def goal_worth(goal: Goal, i: int | str, params: dict[str, Any]) -> str:
    """Per visit: what its conversions of ``goal`` were worth, in :data:`CURRENCY`. A custom
    event's own value (``track(..., value=)``) when it has one in that currency, else the
    goal's value per conversion (0 when it has none)."""
    params[f"g{i}v"] = goal.value
    fixed = f"toFloat64({{g{i}v:UInt64}})"
    if goal.kind == "engaged":
        return f"{fixed} * {goal_count(goal, i, params)}"
    condition = goal_condition(goal, i, params)
    if goal.kind == "event":
        params["cur"] = CURRENCY
        return (f"sumIf(if(value > 0 AND currency = {{cur:String}}, value, {fixed}), "
                f"{condition})")
    return f"{fixed} * countIf({condition})"


def goal_count(goal: Goal, i: int | str, params: dict[str, Any]) -> str:
    """Per visit (an aggregate over its rows): how many conversions of ``goal`` it holds.
    An engaged-time goal converts a visit once."""
    if goal.kind == "engaged":
        params[f"g{i}s"] = goal.seconds
        return f"toUInt64(sumIf(engaged_seconds, {ENGAGED}) >= {{g{i}s:UInt32}})"
    return f"countIf({goal_condition(goal, i, params)})"
