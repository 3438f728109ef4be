"""The fast path of validation: a JSON Schema subset compiled into plain predicates.

jsonschema costs ~55 µs for a valid event: most of the ingest time. The wire schemas use a
small keyword subset, compiled here into plain predicates, the wire's common shapes (a capped
string, an id pattern, bounded ms) each into one test (~3 µs an event). They only ever *accept*:
an item they refuse goes to jsonschema, which stays the authority and words the reason
(``collector.ingest.validate``). A property test checks that everything they accept,
jsonschema accepts too. Private to the ingest package: nothing else should validate this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Any], bool]
_ANNOTATIONS = {"$schema", "$id", "title", "description"}
_SUPPORTED = {"type", "enum", "maxLength", "pattern", "minimum", "maximum", "properties",
              "additionalProperties", "required", "maxProperties"} | _ANNOTATIONS


def _is_type(value: Any, name: str) -> bool:
    if name == "string":
        return isinstance(value, str)
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "integer":  # JSON Schema: 3.0 is an integer, true is not
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    raise ValueError(f"unsupported type {name!r}")


def _is_integer(value: Any) -> bool:
    cls = type(value)
    if cls is int:
        return True
    if cls is bool:
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _type_check(types: list[str]) -> Predicate:
    """One predicate for a ``type`` keyword, specialised for the sets the wire uses."""
    for t in types:
        _is_type(None, t)  # reject unknown type names at compile time
    names = set(types)
    nullable = "null" in names
    names.discard("null")
    if names == {"string"}:
        return (lambda v: v is None or isinstance(v, str)) if nullable else (
            lambda v: isinstance(v, str))
    if names == {"boolean"}:
        return (lambda v: v is None or isinstance(v, bool)) if nullable else (
            lambda v: isinstance(v, bool))
    if names == {"integer"}:
        return (lambda v: v is None or _is_integer(v)) if nullable else _is_integer
    if names == {"object"} and not nullable:
        return lambda v: isinstance(v, dict)
    return lambda v: any(_is_type(v, t) for t in types)


def _all_of(checks: list[Predicate]) -> Predicate:
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda v: a(v) and b(v)
    return lambda v: all(check(v) for check in checks)


def _string_leaf(schema: Mapping[str, Any], types: list[str]) -> Predicate | None:
    """``{"type": "string" | ["string", "null"], "maxLength"?, "pattern"?}`` as one test."""
    if not set(types) <= {"string", "null"} or "string" not in types:
        return None
    nullable = "null" in types
    n = int(schema["maxLength"]) if "maxLength" in schema else None
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    if search is None and n is not None:
        if nullable:
            return lambda v: v is None or (isinstance(v, str) and len(v) <= n)
        return lambda v: isinstance(v, str) and len(v) <= n
    if search is not None and n is None:
        if nullable:
            return lambda v: v is None or (isinstance(v, str) and search(v) is not None)
        return lambda v: isinstance(v, str) and search(v) is not None
    return None


def _integer_leaf(schema: Mapping[str, Any], types: list[str]) -> Predicate | None:
    """``{"type": "integer" | ["integer", "null"], "minimum", "maximum"?}`` as one test."""
    if not set(types) <= {"integer", "null"} or "integer" not in types or "minimum" not in schema:
        return None
    nullable = "null" in types
    low = schema["minimum"]  # compared as given: float(huge int) would overflow
    high = schema.get("maximum")
    if high is None:
        def bounded(v: Any) -> bool:
            return _is_integer(v) and v >= low
    else:
        def bounded(v: Any) -> bool:
            return _is_integer(v) and low <= v <= high
    if nullable:
        return lambda v: v is None or bounded(v)
    return bounded


def compile_schema(schema: Mapping[str, Any]) -> Predicate:
    """A predicate that is True only for values the schema accepts (subset of 2020-12)."""
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise ValueError(f"fast validator does not support {sorted(unknown)}")
    keywords = set(schema) - _ANNOTATIONS
    types: list[str] = []
    if "type" in schema:
        types = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
    # The shapes the wire schemas use, each compiled to a single test.
    if types and keywords <= {"type", "maxLength", "pattern"}:
        leaf = _string_leaf(schema, types)
        if leaf is not None:
            return leaf
    if types and keywords <= {"type", "minimum", "maximum"}:
        leaf = _integer_leaf(schema, types)
        if leaf is not None:
            return leaf
    checks: list[Predicate] = []
    if types:
        checks.append(_type_check(types))
    if "enum" in schema:
        options = list(schema["enum"])
        if not all(o is None or isinstance(o, str) for o in options):
            raise ValueError("fast validator supports enums of strings and null only")
        allowed = frozenset(options)
        checks.append(lambda v: (v is None or isinstance(v, str)) and v in allowed)
    if "maxLength" in schema:
        n = int(schema["maxLength"])
        checks.append(lambda v: not isinstance(v, str) or len(v) <= n)
    if "pattern" in schema:
        rx = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    if "minimum" in schema:
        low = schema["minimum"]  # compared as given: float(huge int) would overflow
        checks.append(lambda v: not _is_type(v, "number") or v >= low)
    if "maximum" in schema:
        high = schema["maximum"]
        checks.append(lambda v: not _is_type(v, "number") or v <= high)
    if {"properties", "additionalProperties", "required", "maxProperties"} & keywords:
        if types == ["object"]:  # the object test checks the type itself
            checks[0] = _object_check(schema, dict_only=True)
        else:
            checks.append(_object_check(schema, dict_only=False))
    return _all_of(checks)


def _object_check(schema: Mapping[str, Any], *, dict_only: bool) -> Predicate:
    """The object keywords; with ``dict_only`` a non-object fails (``type: object``)."""
    props = {k: compile_schema(v) for k, v in schema.get("properties", {}).items()}
    names = frozenset(props)
    extra = schema.get("additionalProperties", True)
    extra_check: Predicate | None = None
    if isinstance(extra, Mapping):
        extra_check = compile_schema(extra)
    elif extra is not True and extra is not False:
        raise ValueError("additionalProperties must be a boolean or a schema")
    required = frozenset(schema.get("required", ()))
    max_props = schema.get("maxProperties")
    if max_props is None:
        max_props = float("inf")
    closed = extra is False

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return not dict_only
        if len(value) > max_props or not required <= value.keys():
            return False
        if closed:
            if not value.keys() <= names:
                return False
            for key, item in value.items():  # noqa: SIM110 (a loop beats all() + genexpr here)
                if not props[key](item):
                    return False
            return True
        for key, item in value.items():
            sub = props.get(key)
            if sub is not None:
                if not sub(item):
                    return False
            elif extra_check is not None and not extra_check(item):
                return False
        return True

    return check


#: What :func:`compile_item` returns: cut an item's over-long strings to their caps, in place,
#: and say how many it cut, or -1 when the item may not be valid (the caller then asks
#: jsonschema, which words the reason).
Prepare = Callable[[dict[str, Any]], int]


def compile_item(schema: Mapping[str, Any], *, keep_whole: frozenset[str] = frozenset()
                 ) -> Prepare:
    """Truncation and the fast check of a closed object schema, in one pass over the item.

    A wire item is mostly capped, nullable strings: those are read from a table instead of
    calling a predicate each, which halves the collector's validation cost. Strings in
    ``keep_whole`` are not cut (an over-long one fails instead). Everything else goes to the
    property's compiled predicate, as in :func:`compile_schema`.
    """
    if schema.get("type") != "object" or schema.get("additionalProperties", True) is not False:
        raise ValueError("compile_item needs a closed object schema")
    # One lookup per key: a capped string's cap (an int), else the property's predicate.
    specs: dict[str, int | Predicate] = {}
    nullable: set[str] = set()
    for name, spec in schema.get("properties", {}).items():
        types = [spec["type"]] if isinstance(spec.get("type"), str) else list(spec.get("type", ()))
        if (set(spec) - _ANNOTATIONS <= {"type", "maxLength"} and "maxLength" in spec
                and "string" in types and set(types) <= {"string", "null"}):
            specs[name] = int(spec["maxLength"])
            if "null" in types:
                nullable.add(name)
        else:
            specs[name] = compile_schema(spec)
    required = frozenset(schema.get("required", ()))
    max_props = schema.get("maxProperties", float("inf"))
    keep = frozenset(keep_whole)
    spec_of = specs.get

    def prepare(item: dict[str, Any]) -> int:
        if type(item) is not dict or len(item) > max_props or not required <= item.keys():
            return -1
        cut = 0
        for key, value in item.items():  # replacing values while iterating is safe
            spec = spec_of(key)
            if type(spec) is int:
                if type(value) is str:
                    if len(value) > spec:
                        if key in keep:
                            return -1
                        item[key] = value[:spec]
                        cut += 1
                elif value is not None or key not in nullable:
                    return -1
            elif spec is None or not spec(value):  # type: ignore[operator]
                return -1
        return cut

    return prepare
