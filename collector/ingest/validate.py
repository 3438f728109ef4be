"""Validation of a batch: its envelope, then each item's schema, clock skew, caps and IP syntax.

Pure functions over dicts; the ingest pipeline counts what they report. A batch whose envelope
is not the wire shape (:func:`check_batch`) is refused whole, however it arrived (HTTP or the
in-process transport). Within a batch items are independent: oversized strings are truncated
to the wire caps (and counted) rather than rejected, because the rest of such an event is still
good; a field the schema does not know, a wrong type or a bad id rejects the item, and so
does the one rule the schema cannot say: an interaction event names one of the interactions.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from collector.errors import CollectorError
from collector.ingest._fastschema import compile_item, compile_schema
from consent_mw.wire import (
    BATCH_SCHEMA,
    EVENT_SCHEMA,
    INTERACTIONS,
    MAX_TEXT,
    RECORD_SCHEMA,
    scroll_step,
)

# Compiled once: validators are reused for every item of every batch.
BATCH_VALIDATOR = Draft202012Validator(BATCH_SCHEMA)
EVENT_VALIDATOR = Draft202012Validator(EVENT_SCHEMA)
RECORD_VALIDATOR = Draft202012Validator(RECORD_SCHEMA)
MAX_REASON = 300

EVENT_FAST = compile_schema(EVENT_SCHEMA)
RECORD_FAST = compile_schema(RECORD_SCHEMA)
EVENT_PREPARE = compile_item(EVENT_SCHEMA, keep_whole=frozenset({"ip"}))
RECORD_PREPARE = compile_item(RECORD_SCHEMA)


class BatchRefused(CollectorError, ValueError):
    """A batch whose envelope is not the wire shape; nothing of it is stored (400)."""

    code = "bad_batch"


def check_batch(batch: Any) -> None:
    """Raise :class:`BatchRefused` unless ``batch`` is a wire batch envelope.

    Only the envelope: ``schema``, ``sent_at``, ``batch_id`` and the two lists' lengths. Items
    are checked one by one later, so one bad item never costs the others.
    """
    problem = best_match(BATCH_VALIDATOR.iter_errors(batch))
    if problem is not None:
        where = ".".join(str(p) for p in problem.absolute_path) or "(batch)"
        raise BatchRefused(f"{where}: {problem.message}"[:MAX_REASON])


def _string_caps(schema: Mapping[str, Any]) -> dict[str, int]:
    caps: dict[str, int] = {}
    for name, spec in schema["properties"].items():
        if isinstance(spec, dict) and "maxLength" in spec and name != "ip":
            caps[name] = int(spec["maxLength"])
    return caps


EVENT_CAPS = _string_caps(EVENT_SCHEMA)
RECORD_CAPS = _string_caps(RECORD_SCHEMA)
TRAIT_CAP = 64


@dataclass(slots=True)
class Checked:
    """One item after validation: the cleaned copy, or why it was rejected."""

    item: dict[str, Any] | None
    code: str = ""  # rejection code for metrics: not_object, schema, clock_skew
    reason: str = ""  # human-readable, returned to the sender
    truncated: int = 0  # fields cut to their cap
    notes: list[str] = field(default_factory=list)  # e.g. "invalid_ip"


def _reason(error: ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "(item)"
    text = f"{where}: {error.message}"
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def _truncate(item: dict[str, Any], caps: Mapping[str, int]) -> int:
    count = 0
    for name, value in item.items():  # replacing values while iterating is safe
        if isinstance(value, str):
            cap = caps.get(name)
            if cap is not None and len(value) > cap:
                item[name] = value[:cap]
                count += 1
    return count


def _truncate_maps(item: dict[str, Any]) -> int:
    return _cap_values(item.get("properties"), MAX_TEXT) + _cap_values(item.get("traits"),
                                                                       TRAIT_CAP)


def _cap_values(mapping: Any, cap: int) -> int:
    """Truncate the string values of a dict to ``cap``; how many were cut."""
    if not isinstance(mapping, dict):
        return 0
    count = 0
    for key, value in list(mapping.items()):
        if isinstance(value, str) and len(value) > cap:
            mapping[key] = value[:cap]
            count += 1
    return count


COLLECTOR_CLOCK = "the collector's clock"
SENT_AT = "the batch's sent_at"


def _check_ts(item: Mapping[str, Any], now_ms: int, skew_ms: int, clock: str) -> str:
    ts = item.get("ts")
    if isinstance(ts, int) and not isinstance(ts, bool) and abs(ts - now_ms) > skew_ms:
        return f"ts: {ts} is more than {skew_ms // 1000}s away from {clock}"
    return ""


def _check_interaction(item: dict[str, Any]) -> str:
    """What the schema cannot say: an interaction is one of :data:`INTERACTIONS`. Also
    brings a scroll depth down to its quarter, whatever the sender did (the one rule,
    ``wire.scroll_step``), so no finer reading of a page is ever stored."""
    if item["kind"] == "interaction" and item.get("name") not in INTERACTIONS:
        return (f"name: {item.get('name')!r} is not an interaction; expected one of "
                f"{', '.join(INTERACTIONS)}")
    depth = item.get("scroll_depth")
    if depth is not None:  # the schema let only an integer (maybe 50.0) in 0..100 through
        item["scroll_depth"] = scroll_step(int(depth))
    # Defence in depth behind the beacon, which already sends neither: a phone or e-mail
    # tap keeps no target at all, and no target path keeps a query or a fragment.
    if item.get("name") in _NO_TARGET:
        item["target_host"] = item["target_path"] = item["target"] = None
    path = item.get("target_path")
    if isinstance(path, str) and ("?" in path or "#" in path):
        item["target_path"] = path.split("?", 1)[0].split("#", 1)[0]
    return ""


_NO_TARGET = frozenset({"tel", "mailto"})


@functools.lru_cache(maxsize=65_536)  # real traffic repeats addresses
def normalise_ip(value: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 unwrapped), or None if invalid."""
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def check_event(
    raw: object, *, now_ms: int, skew_ms: int, clock: str = COLLECTOR_CLOCK
) -> Checked:
    """``now_ms`` is the time ``ts`` is checked against: the batch's ``sent_at`` when it has
    one (``clock`` names it in the reason), else the collector's clock."""
    if not isinstance(raw, dict):
        return Checked(None, "not_object", "event must be a JSON object")
    item = dict(raw)
    if isinstance(item.get("properties"), dict):
        item["properties"] = dict(item["properties"])
    if isinstance(item.get("traits"), dict):
        item["traits"] = dict(item["traits"])
    truncated = _truncate_maps(item)
    cut = EVENT_PREPARE(item)
    if cut >= 0:
        truncated += cut
    else:  # maybe invalid: the full truncation, then the authority's verdict and reason
        truncated += _truncate(item, EVENT_CAPS)
        error = best_match(EVENT_VALIDATOR.iter_errors(item))
        if error is not None:
            return Checked(None, "schema", _reason(error), truncated)
    # After both paths, so the fast one and jsonschema cannot disagree on it.
    wrong = _check_interaction(item)
    if wrong:
        return Checked(None, "schema", wrong[:MAX_REASON], truncated)
    skew = _check_ts(item, now_ms, skew_ms, clock)
    if skew:
        return Checked(None, "clock_skew", skew, truncated)
    checked = Checked(item, truncated=truncated)
    ip = item.get("ip")
    if isinstance(ip, str):
        clean = normalise_ip(ip)
        if clean is None:
            item["ip"] = None
            checked.notes.append("invalid_ip")
        else:
            item["ip"] = clean
    return checked


def check_record(
    raw: object, *, now_ms: int, skew_ms: int, clock: str = COLLECTOR_CLOCK
) -> Checked:
    if not isinstance(raw, dict):
        return Checked(None, "not_object", "consent record must be a JSON object")
    item = dict(raw)
    cut = RECORD_PREPARE(item)
    if cut >= 0:
        truncated = cut
    else:
        truncated = _truncate(item, RECORD_CAPS)
        error = best_match(RECORD_VALIDATOR.iter_errors(item))
        if error is not None:
            return Checked(None, "schema", _reason(error), truncated)
    skew = _check_ts(item, now_ms, skew_ms, clock)
    if skew:
        return Checked(None, "clock_skew", skew, truncated)
    return Checked(item, truncated=truncated)
