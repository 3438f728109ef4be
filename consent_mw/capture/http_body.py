"""What :class:`~consent_mw.capture.transport.HttpTransport` posts, a batch's JSON, gzipped
for a collector across a network, as it is for one on this host; and what it reads back.

gzip at level 1 is four fifths of encoding a batch (~2.4 of ~2.9 µs an event here), paid by
the web process's core, and the collector pays ~0.9 µs an event to inflate it again. Over
loopback there is no bandwidth to save, so ``auto`` (the default) leaves a batch for a
``localhost`` or loopback-address collector uncompressed, at most ``wire.MAX_BATCH_BYTES``.
A collector that takes fewer bytes than that answers 413: under ``auto`` the transport then
sends the same batch gzipped, and gzips from then on (see ``HttpTransport.send``);
``identity`` never gzips.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from consent_mw import wire
from consent_mw.config import SettingsError


def local(url: str) -> bool:
    """Whether ``url`` names this host: ``localhost`` or a loopback address."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gzips(url: str, compression: str) -> bool:
    """Whether batches to the collector at ``url`` are gzipped under ``compression``."""
    if compression not in wire.COMPRESSION:
        raise SettingsError("collector_compression", f"must be one of {wire.COMPRESSION}")
    return compression == "gzip" or (compression == "auto" and not local(url))


def batch_body(events: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]], *,
               batch_id: str, sent_at: int, gzipped: bool) -> tuple[bytes, str]:
    """The body of one batch and its ``Content-Encoding``."""
    if gzipped:
        return wire.encode_batch(events, records, batch_id=batch_id, sent_at=sent_at), "gzip"
    return (wire.encode_batch_json(events, records, batch_id=batch_id, sent_at=sent_at),
            "identity")


def too_many_bytes(response: httpx.Response) -> bool:
    """Whether the collector refused a batch for its bytes (413), which gzip may bring under
    its limit, rather than for its items (``too_many_items``, counted after inflating)."""
    if response.status_code != 413:
        return False
    body = answer_json(response)
    return not (isinstance(body, dict) and body.get("error") == "too_many_items")


def answer_json(response: httpx.Response) -> Any:
    """The collector's answer as JSON; None when it is not JSON."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def rejected_items(body: Any) -> tuple[int, tuple[str, ...]] | None:
    """Per-item rejections from a collector answer, if it lists any."""
    if not isinstance(body, dict):
        return None
    for key in ("rejected", "errors"):
        value = body.get(key)
        if isinstance(value, list):
            reasons = tuple(
                str(item.get("reason", item)) if isinstance(item, dict) else str(item)
                for item in value
            )
            return len(value), reasons
        if isinstance(value, int) and not isinstance(value, bool):
            return value, ()
    return None
