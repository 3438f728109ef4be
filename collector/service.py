"""The collector as one object: it owns the store, the ingest pipeline and the Starlette app.

``start()`` opens the store, applies migrations and opens the GeoIP DB; ``stop()`` closes them.
Both are idempotent, because the app's lifespan calls them when run standalone and the demo calls
them itself when the app is mounted (a mounted app's lifespan does not run).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette

from collector.accounts import Logins
from collector.ddl.tables import DdlOptions, apply_migrations
from collector.enrich.geo import GeoLookup
from collector.ingest.pipeline import Ingest
from collector.metrics import CollectorMetrics
from collector.privacy.gate import SuppressionGate
from collector.privacy.operations import Privacy
from collector.settings import CollectorSettings
from collector.store import Store, StoreError
from consent_mw.capture.transport import SendResult, Suppressions

log = logging.getLogger("consent_mw.collector")


def ddl_options(settings: CollectorSettings) -> DdlOptions:
    return DdlOptions(events_ttl=settings.events_ttl, ip_ttl=settings.ip_ttl,
                      records_ttl=settings.records_ttl, cluster=settings.cluster)


class CollectorService:
    """One collector: ``start()``, ``.app``, ``.transport``, ``.store``, ``.ingest``, ``stop()``."""

    def __init__(self, settings: CollectorSettings | None = None, *,
                 logins: Logins | None = None) -> None:
        self.settings = settings or CollectorSettings.from_env()
        #: The staff console's login throttle; a process serving the dashboards too passes
        #: one for both, so an account gets its few tries once, not once per console.
        self.logins = logins or Logins()
        self.metrics = CollectorMetrics()
        key = self.settings.hash_key_bytes
        if not key:
            log.warning("no hash key configured (CONSENT_MW_USER_ID_KEY or "
                        "CONSENT_MW_SECRET_KEY): user ids and suppression hashes will not "
                        "match the web processes'")
        # The one suppression gate: privacy changes it, ingest obeys it.
        self.gate = SuppressionGate(key)
        self.ingest = Ingest(self.settings, self.metrics, self.gate)
        self.privacy = Privacy(lambda: self.store, key, gate=self.gate, metrics=self.metrics,
                               purge_interval=self.settings.purge_interval)
        self.transport = InProcessTransport(self)
        # Called with the service after the store is open / before it closes (privacy, query).
        self.on_start: list[Callable[[CollectorService], None]] = []
        self.on_stop: list[Callable[[CollectorService], None]] = []
        self._store: Store | None = None
        self._geo: GeoLookup | None = None
        self._lock = threading.RLock()
        from collector.app import build_app  # app imports service types only for typing

        self.app: Starlette = build_app(self)

    @property
    def started(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("collector is not started")
        return self._store

    @property
    def ddl_options(self) -> DdlOptions:
        return ddl_options(self.settings)

    def start(self) -> None:
        with self._lock:
            if self._store is not None:
                return
            store = Store(self.settings.store)
            try:
                apply_migrations(store, self.ddl_options)
            except Exception:
                store.close()
                raise
            self._store = store
            self._geo = GeoLookup(self.settings.geoip_db)
            self.ingest.bind(store, self._geo)
            self.privacy.start()
            for hook in self.on_start:
                hook(self)
            log.info("collector started on %s", store.masked_dsn)

    def stop(self) -> None:
        with self._lock:
            if self._store is None:
                return
            for hook in self.on_stop:
                try:
                    hook(self)
                except Exception:
                    log.exception("collector stop hook failed")
            self.privacy.stop()
            self.ingest.unbind()
            if self._geo is not None:
                self._geo.close()
                self._geo = None
            self._store.close()
            self._store = None


class InProcessTransport:
    """consent_mw's Transport protocol, served by this process's collector without HTTP."""

    def __init__(self, service: CollectorService) -> None:
        self.service = service

    def send(
        self,
        events: list[dict[str, Any]],
        records: list[dict[str, Any]],
        *,
        batch_id: str,
        sent_at: int | None = None,
    ) -> SendResult:
        """``sent_at``: when the batch was first built (ms), if the caller kept it."""
        try:
            result = self.service.ingest.process(events, records, batch_id=batch_id,
                                                 sent_at=sent_at)
        except StoreError as exc:
            raise _transport_error(str(exc), retryable=True, retry_after=1.0) from exc
        # Resending would not help: the capture counts (and logs) what was rejected.
        return SendResult(rejected=len(result.rejected),
                          reasons=tuple(r.reason for r in result.rejected))

    def fetch_suppressions(self, since: int | None = None) -> Suppressions | None:
        """None: a capture in this process shares the collector's list (``Privacy.attach``)."""
        return None

    def close(self) -> None:
        """Nothing to release: the service owns the store."""


class _FallbackTransportError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool, retry_after: float | None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def _transport_error(message: str, *, retryable: bool, retry_after: float | None) -> Exception:
    """consent_mw.capture.transport.TransportError, imported late (capture owns that module)."""
    kwargs: Mapping[str, Any] = {"retryable": retryable, "retry_after": retry_after}
    try:
        cls = importlib.import_module("consent_mw.capture.transport").TransportError
        return cls(message, **kwargs)  # type: ignore[no-any-return]
    except (ImportError, AttributeError, TypeError):
        return _FallbackTransportError(message, **kwargs)
