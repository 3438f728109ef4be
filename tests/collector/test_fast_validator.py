"""The compiled fast validator never accepts what jsonschema (the authority) rejects."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.wire import make_event, make_record

from collector.ingest import validate
from collector.ingest._fastschema import compile_schema
from collector.ingest.validate import (
    EVENT_FAST,
    EVENT_PREPARE,
    EVENT_VALIDATOR,
    RECORD_FAST,
    RECORD_PREPARE,
    RECORD_VALIDATOR,
    check_event,
)
from consent_mw.wire import EVENT_SCHEMA, INTERACTIONS, RECORD_SCHEMA, scroll_step

# Strings at and around the wire's limits and patterns, drawn often enough to matter.
EDGE_STRINGS = [
    "pageview", "anonymous", "decided", "banner", "granted", "ad", "mobile", "", "has space",
    "interaction", "outbound", "scroll", "pdf",
    "a" * 16, "a" * 17, "a" * 64, "a" * 65, "a" * 129, "a" * 513, "a" * 2049, "0" * 64, "g" * 64,
    "00000000-0000-4000-8000-000000000000", "00000000000040008000000000000000", "1.2.3.4",
]
EDGE_VALUES: list[Any] = [
    10**14, 2**63, -1, 0, 100, 101, 1800, 1801, 1000, 3.0, 3.5, 50.0, 100.5,
    {f"k{i}": True for i in range(33)},
    {f"k{i}": "v" for i in range(33)}, {f"k{i}": "granted" for i in range(17)},
]
edge_strings = st.sampled_from(EDGE_STRINGS)
edge_values = st.sampled_from(EDGE_VALUES)
scalars = st.one_of(edge_strings, edge_strings, edge_strings, edge_values, st.none(),
                    st.booleans(),
                    st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
                    st.text(max_size=8))
nested = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | st.sampled_from(["analytics", "x"]),
                                        inner, max_size=3), max_leaves=8)
# Mostly scalars: nested values fail on type alone and would hide the subtler keywords.
values = st.one_of(scalars, scalars, scalars, nested)


#: An interaction as the beacon sends it: every interaction field set, so mutations reach them.
INTERACTION = make_event(kind="interaction", name="download", target_host="files.example",
                         target_path="/guide.pdf", target="pdf", scroll_depth=75,
                         engaged_seconds=40)


def mutated(base: dict[str, Any], schema: dict[str, Any]) -> Any:
    keys = st.sampled_from([*schema["properties"], "unknown"])
    patches = st.dictionaries(keys, values, min_size=1, max_size=1)
    return patches.map(lambda patch: {**base, **patch})


@settings(max_examples=1000, deadline=None)
@given(item=mutated(make_event(), EVENT_SCHEMA) | mutated(INTERACTION, EVENT_SCHEMA) | values)
def test_fast_event_check_accepts_only_what_jsonschema_accepts(item: Any) -> None:
    if EVENT_FAST(item):
        assert EVENT_VALIDATOR.is_valid(item)


@settings(max_examples=600, deadline=None)
@given(item=mutated(make_record(), RECORD_SCHEMA) | values)
def test_fast_record_check_accepts_only_what_jsonschema_accepts(item: Any) -> None:
    if RECORD_FAST(item):
        assert RECORD_VALIDATOR.is_valid(item)


@settings(max_examples=1000, deadline=None)
@given(item=mutated(make_event(), EVENT_SCHEMA) | mutated(INTERACTION, EVENT_SCHEMA) | values)
def test_event_prepare_passes_only_what_jsonschema_accepts_once_cut(item: Any) -> None:
    # The one-pass truncation and check: what it lets through, cut to the caps, is valid.
    copy = dict(item) if isinstance(item, dict) else item
    if isinstance(copy, dict) and EVENT_PREPARE(copy) >= 0:
        assert EVENT_VALIDATOR.is_valid(copy)


@settings(max_examples=600, deadline=None)
@given(item=mutated(make_record(), RECORD_SCHEMA) | values)
def test_record_prepare_passes_only_what_jsonschema_accepts_once_cut(item: Any) -> None:
    copy = dict(item) if isinstance(item, dict) else item
    if isinstance(copy, dict) and RECORD_PREPARE(copy) >= 0:
        assert RECORD_VALIDATOR.is_valid(copy)


def test_prepare_cuts_over_long_strings_but_not_addresses() -> None:
    event = make_event(path="/" + "a" * 3000, ip="1" * 46)
    assert EVENT_PREPARE(event) == -1  # an over-long address is refused, not cut
    event = make_event(path="/" + "a" * 3000, ip="1.2.3.4")
    assert EVENT_PREPARE(event) == 1 and len(event["path"]) == 2048
    assert EVENT_PREPARE(make_event(properties={"n": 1.5}, traits={"zip3": "150"})) == 0


EDGES: list[Any] = [
    *EDGE_STRINGS, *EDGE_VALUES,
    None, True, False, 0, -(2**70), 2**70, float("inf"), 1e300, [], {}, {"a": 1}, {"a": None},
    {"analytics": "yes"}, {"age_band": "a" * 65}, {"zip3": "150"}, {"x": [1]},
]


@pytest.mark.parametrize(("fast", "validator", "base", "schema"), [
    (EVENT_FAST, EVENT_VALIDATOR, make_event(), EVENT_SCHEMA),
    (EVENT_FAST, EVENT_VALIDATOR, INTERACTION, EVENT_SCHEMA),
    (RECORD_FAST, RECORD_VALIDATOR, make_record(), RECORD_SCHEMA),
], ids=["event", "interaction", "record"])
def test_fast_check_agrees_on_every_field_at_its_edges(
    fast: Any, validator: Any, base: dict[str, Any], schema: dict[str, Any]
) -> None:
    # Every field set to every edge value, one at a time: each keyword is exercised.
    for key in [*schema["properties"], "unknown"]:
        for value in EDGES:
            item = {**base, key: value}
            assert fast(item) == validator.is_valid(item), (key, value)


def test_fast_check_accepts_ordinary_valid_items() -> None:
    # Otherwise every item would take the slow path and the fast path would be dead code.
    assert EVENT_FAST(make_event(properties={"n": 1.5}, traits={"zip3": "150"}, ip="::1"))
    assert EVENT_FAST(INTERACTION) and EVENT_PREPARE(dict(INTERACTION)) == 0
    assert RECORD_FAST(make_record(services={"ga4": True}, expires_at=1))


SKEW = 86400 * 1000


def _slow_path(item: dict[str, Any]) -> int:
    return -1  # as if the fast path refused: truncation, then jsonschema decides


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["interaction", "custom"]),
       name=st.sampled_from([*INTERACTIONS, "click", "", None, "Outbound"]) | edge_strings,
       depth=st.integers(min_value=0, max_value=100) | st.sampled_from([0.0, 50.0, 100.0]),
       slow=st.booleans())
def test_the_interaction_rule_and_the_scroll_quarter_hold_on_either_path(
        kind: str, name: Any, depth: Any, slow: bool) -> None:
    # The rule sits after the schema, whichever path judged it: same verdict on both.
    event = {**INTERACTION, "kind": kind, "name": name, "scroll_depth": depth}
    with pytest.MonkeyPatch.context() as patch:
        if slow:
            patch.setattr(validate, "EVENT_PREPARE", _slow_path)
        checked = check_event(event, now_ms=event["ts"], skew_ms=SKEW)
    # A name over its cap is cut, not refused: only the rule can reject these.
    if kind == "interaction" and name not in INTERACTIONS:
        assert checked.item is None and checked.code == "schema"
        assert checked.reason.startswith("name: ") and "outbound, tel" in checked.reason
    else:
        assert checked.item is not None, checked.reason
        assert checked.item["scroll_depth"] == scroll_step(int(depth))
        assert type(checked.item["scroll_depth"]) is int


@pytest.mark.parametrize("keyword", [{"oneOf": []}, {"type": "tuple"}, {"enum": [1]}])
def test_unsupported_keywords_fail_at_compile_time(keyword: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        compile_schema(keyword)
