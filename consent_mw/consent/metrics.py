"""The web process's capture stats as Prometheus text, answered at ``settings.metrics_path``.

Off unless ``metrics_path`` is set. Then ``prometheus-client`` (the ``[metrics]`` extra) is
imported here, and only here, so a web-only install without it keeps working; with the path
set and the package missing, the middleware refuses to start instead of leaving a scraper
with a 404 it would read as "no data". The standard client writes the exposition format
(and answers OpenMetrics to a scraper that asks for it): nothing here writes that text.

The figures are :meth:`ConsentMiddleware.stats`, read when scraped by a custom collector
on a registry of this middleware's own: several middlewares may live in one process (and
tests build many), and the global registry would merge or collide their series.

Who may read them: a peer connecting from loopback, or a request carrying
``Authorization: Bearer <metrics_token>`` when a token is set. The peer is the ASGI
``client``, never what a forwarding header claims; and a loopback peer that sent a
forwarding header is a proxy relaying someone else (a reverse proxy on the same host
connects from loopback for every visitor), so it needs the token like anyone else.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from consent_mw.capture.counters import DROP_REASONS
from consent_mw.clientip import parse_ip
from consent_mw.config import SettingsError
from consent_mw.http import header, respond, respond_error
from consent_mw.settings import Settings
from consent_mw.types import Headers, Scope, Send

if TYPE_CHECKING:  # the middleware imports this module
    from prometheus_client.core import Metric

    from consent_mw.consent.middleware import ErrorPlace

PREFIX = "consent_mw"
NEEDS_EXTRA = "needs prometheus-client: pip install 'consent-mw[metrics]'"
#: Headers a proxy adds when it relays a request: from a loopback peer, they mean the
#: request came from elsewhere.
#: Headers by which a proxy on this host says it relays someone else (the common ones of
#: nginx, HAProxy, Envoy, Cloudflare, Akamai and RFC 7230's Via).
RELAY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip", b"x-forwarded-host",
                           b"x-forwarded-proto", b"cf-connecting-ip", b"true-client-ip",
                           b"x-client-ip", b"via"})
ALLOW = [(b"allow", b"GET, HEAD")]

#: capture's plain figures: stats key, metric name (after ``consent_mw_capture_``), whether
#: it only grows (a counter), help. A key capture does not report is left out, not zeroed.
CAPTURE_FIGURES: tuple[tuple[str, str, bool, str], ...] = (
    ("queued", "queued", False, "Items waiting in the capture queue"),
    ("queued_bytes", "queued_bytes", False, "Bytes the queued items hold"),
    ("in_flight", "in_flight", False,
     "Items taken by the worker or the sender, not yet sent or spooled"),
    ("sent", "sent", True, "Events delivered to the collector"),
    ("records_sent", "records_sent", True, "Consent records delivered to the collector"),
    ("rejected", "rejected", True, "Items the collector refused"),
    ("spooled", "spooled", False, "Items waiting in the spool for the collector"),
    ("spool_batches", "spool_batches", False, "Batches waiting in the spool"),
    ("spool_bytes", "spool_bytes", False, "Bytes the spool holds"),
    ("worker_errors", "worker_errors", True,
     "Failures of the capture worker's background work (each logged)"),
)
COLLECTOR_UP = {"up": 1, "unreachable": 0, "failing": 0}


def _number(value: Any) -> float | None:
    """A figure to export, or None for a missing or non-numeric one (never a made-up 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


class StatsCollector:
    """A ``prometheus_client`` custom collector over ``stats()``, read at every scrape.

    ``counter`` and ``gauge`` are the client's metric-family classes, handed in because this
    module imports the client only when metrics are on.
    """

    def __init__(self, stats: Callable[[], Mapping[str, Any]], *,
                 counter: Callable[..., Any], gauge: Callable[..., Any]) -> None:
        self._stats = stats
        self._counter = counter
        self._gauge = gauge

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        errors = self._counter(f"{PREFIX}_errors",
                               "Failures of the middleware by place (each logged; the "
                               "response was served regardless)", labels=["place"])
        for place, count in sorted(stats["errors"].items()):
            errors.add_metric([place], count)
        yield errors
        capture = stats.get("capture")
        if capture is not None:  # None: capture is off, and has nothing to count
            yield from self._capture(capture)

    def _capture(self, capture: Mapping[str, Any]) -> Iterator[Metric]:
        name = f"{PREFIX}_capture"
        for key, metric, grows, help_text in CAPTURE_FIGURES:
            value = _number(capture.get(key))
            if value is not None:
                family = self._counter if grows else self._gauge
                yield family(f"{name}_{metric}", help_text, value=value)
        dropped = self._counter(f"{name}_dropped", "Items dropped, by reason", labels=["reason"])
        counts: Mapping[str, Any] = capture.get("dropped") or {}
        # Every reason, even at 0: an alert on a reason must not wait for its first drop.
        for reason in (*DROP_REASONS, *sorted(set(counts) - set(DROP_REASONS))):
            dropped.add_metric([reason], _number(counts.get(reason)) or 0.0)
        yield dropped
        last_sent = _number(capture.get("last_sent_at"))
        if last_sent is not None:  # absent until the first successful send
            yield self._gauge(f"{name}_last_sent_timestamp_seconds",
                              "When a batch last reached the collector (unix seconds)",
                              value=last_sent)
        up = COLLECTOR_UP.get(str(capture.get("collector")))
        if up is not None:
            yield self._gauge(f"{name}_collector_up",
                              "Whether the collector answered the last send (1) or not (0)",
                              value=up)


class MetricsEndpoint:
    """``GET``/``HEAD`` of ``settings.metrics_path``: the access rule, then the text.

    Raises :class:`SettingsError` when ``prometheus-client`` is not installed.
    """

    def __init__(self, settings: Settings, stats: Callable[[], Mapping[str, Any]], *,
                 fail: Callable[[ErrorPlace], None]) -> None:
        try:
            from prometheus_client import CollectorRegistry
            from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
            from prometheus_client.exposition import choose_encoder
        except ImportError as exc:
            raise SettingsError("metrics_path", NEEDS_EXTRA) from exc
        self.registry = CollectorRegistry()
        self.registry.register(StatsCollector(stats, counter=CounterMetricFamily,
                                              gauge=GaugeMetricFamily))
        self._choose_encoder = choose_encoder
        self._token = settings.metrics_token.value.encode("utf-8")
        self._fail = fail  # counts a failure of ours; the scraper gets a 503

    async def __call__(self, scope: Scope, send: Send) -> None:
        method = scope.get("method")
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            await respond_error(send, 405, "method_not_allowed", "metrics answer GET and HEAD",
                                ALLOW)
            return
        headers = list(scope.get("headers") or ())
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, code, reason, extra = refusal
            await respond_error(send, status, code, reason, extra, head=head)
            return
        try:
            encode, content_type = self._choose_encoder(header(headers, b"accept") or "")
            body = encode(self.registry)
        except Exception:
            self._fail("metrics")
            await respond_error(send, 503, "unavailable", "metrics could not be read; see the log",
                                head=head)
            return
        await respond(send, 200, body, content_type.encode("latin-1"),
                      [(b"cache-control", b"no-store")], head=head)

    def _refusal(self, scope: Scope, headers: Headers
                 ) -> tuple[int, str, str, Headers] | None:
        """None when the request may read the metrics, else status, code, reason, headers."""
        token = self._token
        if token:
            given = _bearer(headers)
            # Bytes, so a token with non-ASCII characters is compared in constant time too.
            if given is not None and hmac.compare_digest(given, token):
                return None
        if _loopback(scope) and not any(name in RELAY_HEADERS for name, _ in headers):
            return None
        if token:
            return (401, "unauthorized", "metrics need Authorization: Bearer <metrics_token>",
                    [(b"www-authenticate", b"Bearer")])
        return (403, "forbidden", "metrics are answered to loopback peers only; set "
                "metrics_token to let a scraper elsewhere (or behind a proxy) read them", [])


def _bearer(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The token of the first ``Authorization: Bearer <token>``, or None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = bytes(value).partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None


def _loopback(scope: Scope) -> bool:
    """Whether the direct peer (the ASGI ``client``) is a loopback address."""
    client = scope.get("client")
    if not client:
        return False  # a unix socket or an unknown peer vouches for nothing
    ip = parse_ip(str(client[0]))
    return ip is not None and ip.is_loopback
