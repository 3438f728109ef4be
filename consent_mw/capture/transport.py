"""Getting batches to the collector: the :class:`Transport` protocol, :class:`HttpTransport`
and :class:`InMemoryTransport`.

Transports are called from the capture worker thread only, so they may block. ``send`` returns
a :class:`SendResult` (``rejected=0`` when everything was taken) or raises
:class:`TransportError`. The retry policy, the spool, the counters and each batch's ``sent_at``
(:func:`batch_time`, computed once by the pipeline and kept across spool replays) live in the
capture pipeline, so every transport, an in-process one included, gets them alike.
"""

from __future__ import annotations

import email.utils
import logging
import operator
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import httpx

from consent_mw import wire
from consent_mw.capture.http_body import (
    answer_json,
    batch_body,
    gzips,
    rejected_items,
    too_many_bytes,
)
from consent_mw.errors import ConsentMWError

log = logging.getLogger(__name__)


class TransportError(ConsentMWError):
    """A batch was not delivered. ``retryable`` says whether sending it again can help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Suppressions(NamedTuple):
    """The collector's suppression list: subject hashes, its version, the purged subset.
    ``unchanged``: the version asked about is still current (nothing else is sent)."""

    hashes: list[str]
    version: int | None
    purged: list[str]
    unchanged: bool = False


@dataclass(frozen=True, slots=True)
class SendResult:
    """The collector took the batch; ``rejected`` of its items were refused (partial success),
    ``reasons`` says why; ``accepted``, how many it kept (None from a transport that does not
    count them: every item not rejected). ``SendResult()``: everything was taken.

    Capture counts the rejected items as rejected, never as sent.
    """

    rejected: int = 0
    reasons: tuple[str, ...] = ()
    accepted: int | None = None


class Transport(Protocol):
    """Where the capture worker hands batches (and asks for the suppression list)."""

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        """Deliver one batch; :class:`TransportError` when it was not delivered."""
        ...

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        """The current suppression list (``unchanged`` when ``since`` is still its version);
        None when this collector keeps none (the local list then stays as it is)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class HealthCheck(Protocol):
    """A transport that can tell, cheaply, whether its collector answers again. Capture asks
    it while the collector is unreachable, so the spool replay starts as soon as it is back;
    a transport without it is retried with backoff instead."""

    def healthy(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again a collector that failed: capped exponential backoff with full jitter
    (AWS style), and how often to probe one that did not answer at all. Retries come from the
    spool: a failed batch is spooled at once and the sender moves on."""

    base: float = 0.2
    cap: float = 10.0
    probe_every: float = 0.5  # a health check of an unreachable collector, this often

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * (2 ** attempt)))
        if retry_after is not None:
            return max(min(retry_after, 300.0), backoff)
        return backoff


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from ``Retry-After``: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_retryable(status: int) -> bool:
    """Whether sending again may succeed after a collector answered ``status``: a timeout,
    too early, a rate limit or a server error. Any other refusal is final."""
    return status in (408, 425, 429) or status >= 500


def batch_time(events: list[dict[str, Any]], records: list[dict[str, Any]]) -> int:
    """The batch's ``sent_at``: its newest item's time, the same on every replay.

    The collector judges clock skew against it, so a batch replayed from the spool a day
    after it was built is old data arriving late, not a client with a broken clock.
    """
    try:  # every item stamped with an int, the usual batch: one C-level pass (the GIL is held)
        newest = max(map(operator.itemgetter("ts"), (*events, *records)))
    except (KeyError, TypeError, ValueError):  # an item without a stamp, or an empty batch
        newest = None
    if type(newest) is not int:  # a float or bool among them: only the ints count
        stamps = [i["ts"] for i in (*events, *records) if isinstance(i.get("ts"), int)]
        newest = max(stamps) if stamps else None
    return newest if newest is not None else int(time.time() * 1000)


class HttpTransport:
    """POST ``{collector_url}/v1/events``: JSON (gzipped but to a collector on this host:
    ``compression``, see ``capture.http_body``), bearer token, sync httpx client.

    Timeouts are short (``connect_timeout``, ``read_timeout``): a collector that is down or
    frozen costs one send that long, then the batch is spooled. A batch the collector stored
    but could not answer in time is deduplicated when the spool sends it again.
    """

    def __init__(self, collector_url: str, token: str = "", *, connect_timeout: float = 1.0,
                 read_timeout: float = 5.0, client: httpx.Client | None = None,
                 compression: str = "auto") -> None:
        self.base_url = collector_url.rstrip("/")
        self.gzip = gzips(collector_url, compression)  # see capture/http_body.py
        self._fall_back = compression == "auto"  # "identity" was asked for: never gzip
        headers = {"User-Agent": "consent-mw"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout), headers=headers)
        if client is not None:
            self._client.headers.update(headers)
        self._probe_timeout = httpx.Timeout(min(read_timeout, 0.5),
                                            connect=min(connect_timeout, 0.5))

    def healthy(self) -> bool:
        """``GET /healthz`` answers 200, within half a second."""
        try:
            response = self._client.get(self.base_url + "/healthz", timeout=self._probe_timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        gzipped = self.gzip
        while True:
            body, encoding = batch_body(events, records, batch_id=batch_id, sent_at=sent_at,
                                        gzipped=gzipped)
            try:
                response = self._client.post(
                    self.base_url + "/v1/events", content=body,
                    headers={"Content-Type": wire.CONTENT_TYPE, "Content-Encoding": encoding})
            except httpx.HTTPError as exc:
                raise TransportError(f"collector unreachable: {exc!r}", retryable=True) from exc
            if gzipped or not self._fall_back or not too_many_bytes(response):
                break
            # A collector that takes fewer bytes than a plain batch: gzip, now and from now on.
            log.warning("collector %s refused a plain batch as too large; gzipping batches "
                        "from now on", self.base_url)
            gzipped = self.gzip = True
        status = response.status_code
        if 200 <= status < 300:
            parsed = answer_json(response)
            items = rejected_items(parsed)
            total = len(events) + len(records)
            if items and items[0]:
                return SendResult(rejected=items[0], reasons=items[1],
                                  accepted=max(0, total - items[0]))
            return SendResult(accepted=total)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 400:
            items = rejected_items(answer_json(response))
            if items is not None:  # per-item reasons: the rest of the batch was taken
                return SendResult(rejected=items[0], reasons=items[1],
                                  accepted=max(0, len(events) + len(records) - items[0]))
            raise TransportError(f"collector refused the batch: 400 {response.text[:200]}",
                                 retryable=False, status=status)
        if is_retryable(status):
            raise TransportError(f"collector answered {status}", retryable=True,
                                 retry_after=retry_after, status=status)
        raise TransportError(f"collector answered {status}: {response.text[:200]}",
                             retryable=False, status=status)

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        """``GET /v1/privacy/suppressions``; None when the collector has no such route (404).
        ``since``: the version held, so an unchanged list is not sent again (it grows with
        every purge, and every web process asks every few seconds)."""
        params = {"since": str(since)} if since is not None else None
        try:
            response = self._client.get(self.base_url + "/v1/privacy/suppressions",
                                        params=params)
        except httpx.HTTPError as exc:
            raise TransportError(f"collector unreachable: {exc!r}", retryable=True) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TransportError(f"suppressions: {response.status_code}",
                                 retryable=is_retryable(response.status_code),
                                 status=response.status_code)
        body = answer_json(response)
        if isinstance(body, dict) and body.get("unchanged") is True:
            return Suppressions([], since, [], unchanged=True)
        if not isinstance(body, dict) or not isinstance(body.get("hashes"), list):
            raise TransportError("suppressions: unexpected body", retryable=False)
        hashes = [h for h in body["hashes"] if isinstance(h, str)]
        version = body.get("version")
        purged = body.get("purged")
        return Suppressions(
            hashes, version if isinstance(version, int) else None,
            [h for h in purged if isinstance(h, str)] if isinstance(purged, list) else [])

    def close(self) -> None:
        self._client.close()


class SentBatch(NamedTuple):
    """One batch as :class:`InMemoryTransport` received it."""

    batch_id: str
    sent_at: int
    events: list[dict[str, Any]]
    records: list[dict[str, Any]]


class InMemoryTransport:
    """Keeps every batch it is sent, in memory: for tests, and for a host that reads the events
    itself. Takes everything; ``suppressions`` is what :meth:`fetch_suppressions` answers."""

    def __init__(self, suppressions: Suppressions | None = None) -> None:
        self.batches: list[SentBatch] = []
        self.suppressions = suppressions
        self.closed = False
        self._lock = threading.Lock()  # the worker appends while a test or host reads

    def send(self, events: list[dict[str, Any]], records: list[dict[str, Any]], *,
             batch_id: str, sent_at: int) -> SendResult:
        with self._lock:
            self.batches.append(SentBatch(batch_id, sent_at, list(events), list(records)))
        return SendResult(accepted=len(events) + len(records))

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for batch in self.batches for e in batch.events]

    @property
    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for batch in self.batches for r in batch.records]

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        return self.suppressions

    def close(self) -> None:
        self.closed = True
