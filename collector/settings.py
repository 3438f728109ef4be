"""The collector's settings, read once from ``CONSENT_MW_*`` and the ``[collector]`` TOML table."""

from __future__ import annotations

import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.accounts import Account, staff_accounts
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, FORWARDED_HEADERS
from consent_mw.config import Secret, SettingsError, Source, duration

DAY = 86400
MIB = 1024 * 1024
NO_SECRET = Secret("")


def default_store() -> str:
    """``chdb://<cwd>/var/consent-mw.chdb``: the embedded store beside the process."""
    return f"chdb://{Path.cwd() / 'var' / 'consent-mw.chdb'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorSettings:
    """Everything the collector needs; build with :meth:`from_env` or by keyword."""

    store: str = field(default_factory=default_store)
    collector_token: Secret = NO_SECRET  # bearer for POST /v1/events; unset: loopback only
    admin_token: Secret = NO_SECRET  # privacy API
    query_token: Secret = NO_SECRET  # read-only query API for dashboards in another process
    hash_key: Secret = NO_SECRET  # the middleware's user-id key (or its secret key)
    geoip_db: Path | None = None
    events_ttl: int = 395 * DAY  # 13 months
    ip_ttl: int = 30 * DAY
    records_ttl: int = 5 * 365 * DAY
    cluster: str | None = None
    max_body_bytes: int = 8 * MIB  # compressed, as received
    # After gzip: the gzip-bomb cap. Senders keep batches under 4 MiB (wire.MAX_BATCH_BYTES).
    max_decompressed_bytes: int = 8 * MIB
    max_concurrent_ingests: int = 4  # batches read and decoded at once; memory is ~2x each
    ingest_wait: float = 10.0  # seconds a batch waits for its turn before a 503
    purge_interval: float = 30.0  # at least this long between two batches of purges
    # An item whose ts is further than this from its batch's sent_at (else from the collector's
    # clock) is rejected, and so is a batch whose sent_at is this far in the future.
    clock_skew: int = DAY
    dedupe_size: int = 200_000  # event/record ids remembered to drop replays
    dedupe_warm_hours: int = 24  # ids stored this recently are remembered again at start
    insert_max_rows: int = 20_000  # rows of concurrent batches merged into one insert
    insert_linger_ms: float = 5.0  # how long an insert waits for batches still being validated
    # Daily rollups for the dashboards: days in this time zone (the dashboards' dashboard_tz),
    # refreshed every rollup_interval seconds (0: never, dashboards scan events), a day being
    # rolled up once it has been over for rollup_grace seconds.
    rollup_tz: str = "Asia/Tokyo"
    rollup_interval: float = 60.0
    rollup_grace: int = 900
    #: Staff accounts (``collector.accounts``): the console's logins, personal API tokens.
    staff_users: Mapping[str, Account] = field(default_factory=dict, repr=False)
    #: Peers whose X-Forwarded-For names the client (what login throttling keys on).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    forwarded_header: str = DEFAULT_FORWARDED_HEADER  # the one header those proxies write

    def __post_init__(self) -> None:
        if not self.store.startswith(("chdb://", "http://", "https://")):
            raise SettingsError("store", "must be chdb:///path or an http(s):// ClickHouse URL")
        for name in ("events_ttl", "ip_ttl", "records_ttl", "clock_skew"):
            if getattr(self, name) <= 0:
                raise SettingsError(name, "must be > 0")
        if self.ip_ttl > self.events_ttl:
            raise SettingsError("ip_ttl", "must not exceed events_ttl")
        for name in ("max_body_bytes", "max_decompressed_bytes", "dedupe_size",
                     "insert_max_rows", "max_concurrent_ingests"):
            if getattr(self, name) < 1:
                raise SettingsError(name, "must be >= 1")
        try:
            zoneinfo.ZoneInfo(self.rollup_tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError("dashboard_tz", f"unknown time zone {self.rollup_tz!r}") from None
        for name in ("dedupe_warm_hours", "insert_linger_ms", "rollup_interval", "rollup_grace",
                     "purge_interval"):
            if getattr(self, name) < 0:
                raise SettingsError(name, "must be >= 0")
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise SettingsError("forwarded_header", f"must be one of {FORWARDED_HEADERS}")
        if self.cluster is not None and not self.cluster.replace("_", "").replace(
            "-", ""
        ).isalnum():
            raise SettingsError("cluster", f"invalid cluster name {self.cluster!r}")

    @property
    def hash_key_bytes(self) -> bytes:
        """The key for ``consent_mw.ids.subject_hash`` and ``hash_user_id``."""
        return self.hash_key.value.encode("utf-8")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        toml_path: str | os.PathLike[str] | None = None,
        **overrides: object,
    ) -> CollectorSettings:
        src = Source.load("collector", env=env, toml_path=toml_path)
        # The same key the middleware hashes user ids with: its own, else its first secret key.
        key = src.secret("user_id_key")
        if not key:
            keys = src.strings("secret_key", ())
            key = Secret(keys[0]) if keys else NO_SECRET
        values: dict[str, object] = dict(
            store=src.text("store", default_store()),
            collector_token=src.secret("collector_token"),
            admin_token=src.secret("admin_token"),
            query_token=src.secret("query_token"),
            hash_key=key,
            geoip_db=src.path("geoip_db", None),
            events_ttl=duration(src, "events_ttl", 395 * DAY),
            ip_ttl=duration(src, "ip_ttl", 30 * DAY),
            records_ttl=duration(src, "records_ttl", 5 * 365 * DAY),
            cluster=src.opt_str("cluster"),
            max_body_bytes=src.integer("max_body_bytes", 8 * MIB, minimum=1),
            max_decompressed_bytes=src.integer("max_decompressed_bytes", 8 * MIB, minimum=1),
            max_concurrent_ingests=src.integer("max_concurrent_ingests", 4, minimum=1),
            ingest_wait=src.number("ingest_wait", 10.0, minimum=0.1),
            purge_interval=duration(src, "purge_interval", 30),
            clock_skew=duration(src, "clock_skew", DAY),
            dedupe_size=src.integer("dedupe_size", 200_000, minimum=1),
            dedupe_warm_hours=src.integer("dedupe_warm_hours", 24, minimum=0),
            insert_max_rows=src.integer("insert_max_rows", 20_000, minimum=1),
            insert_linger_ms=src.number("insert_linger_ms", 5.0, minimum=0),
            # One variable for both sides, so the rollup's days are the dashboards' days.
            rollup_tz=src.text("dashboard_tz", "Asia/Tokyo"),
            rollup_interval=src.number("rollup_interval", 60.0, minimum=0),
            rollup_grace=duration(src, "rollup_grace", 900),
            staff_users=staff_accounts(dict(src.env), None if toml_path is None
                                       else str(toml_path)),
            trusted_proxies=src.strings("trusted_proxies", ("127.0.0.1/32", "::1/128")),
            forwarded_header=src.text("forwarded_header", DEFAULT_FORWARDED_HEADER).lower(),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
