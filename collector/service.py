"""The collector as one object: it builds every part and owns the store they share.

Every part is built here, once, from the settings and the parts it needs; nothing is attached
afterwards::

    gate      SuppressionGate(key)            who is suppressed; privacy changes it
    rollup    Rollup + RollupWorker           (unless rollup_interval is 0) the gate kicks it
    ingest    Ingest(gate, rollup days)       obeys the gate, marks late days dirty
    privacy   Privacy(store, gate)            suppress, purge, export
    desk      Desk(store, privacy)            privacy requests: intake, codes, mail
    transport InProcessTransport(ingest, privacy)
    app       build_app(ingest, privacy, store, ...)

``start()`` opens the store, applies migrations, opens the GeoIP DB and starts the workers;
``stop()`` stops them and closes the store. Both are idempotent, because the app's lifespan
calls them when run standalone and the demo calls them itself when the app is mounted (a
mounted app's lifespan does not run).
"""

from __future__ import annotations

import logging
import threading

from collector.app import build_app
from collector.ddl.migrations import apply_migrations
from collector.ddl.tables import DdlOptions
from collector.enrich.geo import GeoLookup
from collector.funnels import Funnels, load_funnels
from collector.goals import Goals, load_goals
from collector.ingest.pipeline import Ingest
from collector.logins import Logins
from collector.metrics import CollectorMetrics
from collector.privacy.evidence import Notices
from collector.privacy.gate import SuppressionGate
from collector.privacy.operations import Privacy
from collector.query.refresher import KickOnSuppression, RollupWorker
from collector.query.rollup import Rollup
from collector.requests.desk import Desk
from collector.settings import CollectorSettings
from collector.store import Store, StoreError
from collector.transport import InProcessTransport

log = logging.getLogger(__name__)


class CollectorService:
    """One collector: ``start()``, ``.app``, ``.transport``, ``.store``, ``stop()``."""

    def __init__(self, settings: CollectorSettings | None = None, *,
                 logins: Logins | None = None, notices: Notices | None = None) -> None:
        self.settings = settings = settings or CollectorSettings.from_env()
        #: The staff console's login throttle; a process serving the dashboards too passes
        #: one for both, so an account gets its few tries once, not once per console.
        self.logins = logins or Logins()
        self.metrics = CollectorMetrics()
        key = settings.hash_key_bytes
        if not key:
            log.warning("no hash key configured (CONSENT_MW_USER_ID_KEY or "
                        "CONSENT_MW_SECRET_KEY): user ids and suppression hashes will not "
                        "match the web processes'")
        self._store: Store | None = None
        self._geo: GeoLookup | None = None
        self._lock = threading.RLock()

        self.gate = SuppressionGate(key)
        self.rollup: Rollup | None = None
        self.rollup_worker: RollupWorker | None = None
        if settings.rollup_interval > 0:
            self.rollup = Rollup(self.open_store, settings.rollup_tz,
                                 grace=settings.rollup_grace)
            self.rollup_worker = RollupWorker(self.rollup, settings.rollup_interval)
            # A suppression change rebuilds the days of the people it concerns at once.
            self.gate.attach(KickOnSuppression(self.rollup_worker))
        self.ingest = Ingest(settings, self.metrics, self.gate,
                             after_events=() if self.rollup is None
                             else (self.rollup.note_inserted,))
        self.privacy = Privacy(self.open_store, key, gate=self.gate, metrics=self.metrics,
                               purge_interval=settings.purge_interval)
        self.desk = Desk(self.open_store, self.privacy, settings)
        #: The notices the web processes show (``consent_mw.consent.notices``), for the
        #: evidence pack; None leaves them out of it.
        self.notices = notices
        self.transport = InProcessTransport(self.ingest, self.privacy)
        self.app = build_app(settings=settings, metrics=self.metrics, ingest=self.ingest,
                             privacy=self.privacy, desk=self.desk, notices=notices,
                             store=self.open_store,
                             logins=self.logins,
                             start=self.start, stop=self.stop)

    @property
    def started(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> Store:
        return self.open_store()

    @property
    def ddl_options(self) -> DdlOptions:
        """Retention and cluster shape: what ``apply_retention(service.store, ...)`` takes."""
        return self.settings.ddl_options

    def open_store(self) -> Store:
        """The store, or StoreError while the collector is stopped (what the parts hold)."""
        store = self._store
        if store is None:
            raise StoreError("collector is not started")
        return store

    def start(self) -> None:
        with self._lock:
            if self._store is not None:
                return
            store = Store(self.settings.store)
            try:
                apply_migrations(store, self.ddl_options)
                if self.settings.goals_file is not None:
                    path = self.settings.goals_file
                    written = Goals(store).sync(load_goals(path), author=path.name)
                    written += Funnels(store).sync(load_funnels(path), author=path.name)
                    if written:
                        log.info("goals and funnels from %s: %s", path, ", ".join(written))
            except Exception:
                store.close()
                raise
            self._store = store
            self._geo = GeoLookup(self.settings.geoip_db)
            self.ingest.bind(store, self._geo)
            self.privacy.start()
            self.desk.start()
            if self.rollup_worker is not None:
                self.rollup_worker.start()
            log.info("collector started on %s", store.masked_dsn)

    def stop(self) -> None:
        with self._lock:
            if self._store is None:
                return
            if self.rollup_worker is not None:
                self.rollup_worker.stop()
            self.desk.stop()
            self.privacy.stop()
            self.ingest.unbind()
            if self._geo is not None:
                self._geo.close()
                self._geo = None
            self._store.close()
            self._store = None
