"""The wire format between the middleware and the collector: its single owner.

A batch is gzip-compressed JSON posted to ``{collector}/v1/events``::

    {"schema": "consent-mw/1", "sent_at": <ms: newest item's ts>, "batch_id": <uuid>,
     "events": [<event>...], "consent_records": [<record>...]}

``EVENT_SCHEMA`` and ``RECORD_SCHEMA`` are JSON Schema (draft 2020-12). The collector validates
every item against them; the contract test pins them to what the middleware actually sends.
Bumping the format means a new ``SCHEMA_ID`` and a collector that accepts both.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

SCHEMA_ID = "consent-mw/1"
CONTENT_TYPE = "application/json"
MAX_BATCH_BYTES = 4 * 1024 * 1024  # decompressed
MAX_BATCH_ITEMS = 5_000

EVENT_KINDS = ("pageview", "anonymous", "custom", "identify", "interaction")
#: What an ``interaction`` event's ``name`` says happened (the first-party beacon's report):
#: a link off the site, a phone or e-mail link, an app link (LINE, Instagram...), a file
#: download, a form sent, how far the page was scrolled, how long it was in use.
INTERACTIONS = ("outbound", "tel", "mailto", "app", "download", "form", "scroll", "engaged")
SCROLL_STEP = 25  # scroll depth is kept in quarters of the page: 0, 25, 50, 75, 100
#: What a custom event may be worth (``track(..., value=, currency=)``): a treatment, not a
#: fortune; kept to the cent, in an ISO 4217 currency.
MAX_VALUE = 1_000_000_000_000
CURRENCY_PATTERN = "^[A-Z]{3}$"
MAX_ENGAGED_SECONDS = 1800  # a page's engaged time is capped: a tab left open is not reading
RECORD_EVENTS = ("shown", "decided", "updated", "withdrawn", "gpc_applied")
RECORD_METHODS = ("accept_all", "reject_all", "save", "gpc", "api", "none")
RECORD_COMPONENTS = ("banner", "preferences", "api", "self_service")
CHANNELS = ("direct", "search", "social", "ad", "referral", "internal")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")
TRAITS = ("age_band", "zip3", "gender", "occupation")

# Field length caps: the collector truncates longer strings and counts it.
MAX_PATH = 2048
MAX_TEXT = 512
MAX_UA = 1024


def _s(max_len: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": max_len}


_UUID = {"type": "string", "pattern": "^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$"}
_ID = {"type": ["string", "null"], "pattern": "^[0-9A-Za-z_-]{1,64}$"}
_MS = {"type": "integer", "minimum": 0, "maximum": 32503680000000}
_FLAGS = {"type": "object", "additionalProperties": {"type": "boolean"}, "maxProperties": 64}

EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://consent-mw.dev/schema/event/1",
    "title": "consent-mw event",
    "type": "object",
    "additionalProperties": False,
    "required": ["event_id", "ts", "kind", "consent"],
    "properties": {
        "event_id": _UUID,
        "ts": _MS,  # UTC ms; anonymous events are rounded down to the hour
        "kind": {"enum": list(EVENT_KINDS)},
        "name": _s(128),  # "pageview" or the site's custom event name
        "consent": _FLAGS,  # categories granted when captured: drives enrichment
        "gpc": {"type": "boolean"},
        # analytics (pages): path is also on anonymous counts
        "host": _s(253),
        "path": _s(MAX_PATH),
        "method": _s(16),
        "status": {"type": ["integer", "null"], "minimum": 0, "maximum": 999},
        "search_terms": _s(),
        "referrer_host": _s(253),
        "channel": {"enum": [*CHANNELS, None]},
        "language": _s(64),
        "network_type": _s(16),
        "save_data": {"type": ["boolean", "null"]},
        # device: raw inputs, parsed by the collector and never stored as such
        "ua": _s(MAX_UA),
        "ch_ua_model": _s(128),
        "ch_ua_platform": _s(64),
        "device_type": {"enum": [*DEVICE_TYPES, None]},  # only set on anonymous counts
        # identifiers
        "visitor_id": _ID,
        "session_id": _ID,
        "consent_id": _ID,
        "user_id": _ID,  # already a keyed hash
        "ip": {"type": ["string", "null"], "maxLength": 45},
        # marketing
        "utm_source": _s(),
        "utm_medium": _s(),
        "utm_campaign": _s(),
        "utm_term": _s(),
        "utm_content": _s(),
        "click_id_type": _s(32),
        # interactions (kind "interaction", name one of INTERACTIONS): never a number, an
        # address, a query string or a form value, only where and what kind
        "target_host": _s(253),  # outbound: the link's host; app: the app's host
        "target_path": _s(MAX_PATH),  # an allowlisted outbound host's path; a download's
        #                               path; a form's action path
        "target": _s(128),  # app: its name ("line"); download: the extension; form: its id
        "scroll_depth": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
        "engaged_seconds": {"type": ["integer", "null"], "minimum": 0,
                            "maximum": MAX_ENGAGED_SECONDS},
        # the site's own events
        "conversion": {"type": "boolean"},  # a custom event sent as a conversion (marketing)
        "value": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_VALUE},
        "currency": {"type": ["string", "null"], "pattern": CURRENCY_PATTERN},
        "properties": {
            "type": "object",
            "maxProperties": 32,
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
        },
        "traits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {t: _s(64) for t in TRAITS},
        },
    },
}

RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://consent-mw.dev/schema/consent-record/1",
    "title": "consent-mw consent record",
    "type": "object",
    "additionalProperties": False,
    "required": ["record_id", "consent_id", "ts", "event", "method", "component",
                 "policy_version", "policy_hash", "categories", "gcm", "gpc"],
    "properties": {
        "record_id": _UUID,
        "consent_id": {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,64}$"},
        "visitor_id": _ID,
        "previous_record_id": {"type": ["string", "null"], "maxLength": 64},
        "ts": _MS,
        "event": {"enum": list(RECORD_EVENTS)},
        "method": {"enum": list(RECORD_METHODS)},
        "component": {"enum": list(RECORD_COMPONENTS)},
        "policy_version": {"type": "string", "maxLength": 128},
        "policy_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "locale": _s(16),
        "categories": _FLAGS,
        "services": _FLAGS,
        "gcm": {
            "type": "object",
            "additionalProperties": {"enum": ["granted", "denied"]},
            "maxProperties": 16,
        },
        "gpc": {"type": "boolean"},
        "gpc_conflict": {"type": "boolean"},
        "host": _s(253),
        "path": _s(MAX_PATH),
        "ua_family": _s(64),
        "expires_at": {"type": ["integer", "null"], "minimum": 0},
    },
}

BATCH_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://consent-mw.dev/schema/batch/1",
    "type": "object",
    "required": ["schema"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "sent_at": _MS,
        "batch_id": {"type": "string", "maxLength": 64},
        "events": {"type": "array", "maxItems": MAX_BATCH_ITEMS},
        "consent_records": {"type": "array", "maxItems": MAX_BATCH_ITEMS},
    },
    "additionalProperties": False,
}


def scroll_step(percent: int) -> int:
    """A scroll depth (0-100) down to its quarter: the one rule, for the beacon and the store."""
    return max(0, min(100, percent)) // SCROLL_STEP * SCROLL_STEP


def encode_json(item: Any) -> bytes:
    """Compact UTF-8 JSON, as everything on the wire (and in the spool) is encoded.

    orjson, because the web process encodes every event it sends: ~0.5 µs for a pageview where
    the standard library takes ~4 µs. What orjson refuses (an integer past 64 bits, a custom
    property the site passed) goes through the standard library, which writes the same JSON.
    """
    try:
        return orjson.dumps(item)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: gzip level of request bodies: level 1 costs half the CPU of level 5 on event batches for
#: about 15 % more bytes, and the CPU is the web process's.
GZIP_LEVEL = 1
#: How a web process compresses what it posts (``Settings.collector_compression``): gzip
#: unless the collector is on this host, always, or never (``capture.http_body``).
COMPRESSION = ("auto", "gzip", "identity")
ENCODE_STEP = 500


def encode_batch(
    events: Sequence[Mapping[str, Any]],
    consent_records: Sequence[Mapping[str, Any]] = (),
    *,
    batch_id: str,
    sent_at: int,
    level: int = GZIP_LEVEL,
) -> bytes:
    """The gzip body the HTTP transport posts to a collector across a network (and the spool
    keeps, at a higher ``level``): :func:`encode_batch_json`, compressed. (zlib lets go of the
    GIL itself.)"""
    return gzip.compress(encode_batch_json(events, consent_records, batch_id=batch_id,
                                           sent_at=sent_at), compresslevel=level)


def encode_batch_json(
    events: Sequence[Mapping[str, Any]],
    consent_records: Sequence[Mapping[str, Any]] = (),
    *,
    batch_id: str,
    sent_at: int,
) -> bytes:
    """A batch's JSON, ``{"schema", "sent_at", "batch_id", "events", "consent_records"}``:
    what a collector on the same host is sent as it is (``capture.http_body``).

    Encoded ``ENCODE_STEP`` events at a time, letting other threads run in between: this runs
    in a web process's sender thread, and one call encoding 5,000 events holds the GIL for
    milliseconds that the server's requests would wait out.
    """
    head = encode_json({"schema": SCHEMA_ID, "sent_at": sent_at, "batch_id": batch_id})
    parts = [head[:-1], b',"events":[']
    for start in range(0, len(events), ENCODE_STEP):
        if start:
            time.sleep(0)
        parts.append(encode_json(list(events[start:start + ENCODE_STEP]))[1:-1])
        parts.append(b",")
    if events:
        parts.pop()  # the last comma
    parts += [b'],"consent_records":', encode_json(list(consent_records)), b"}"]
    return b"".join(parts)
