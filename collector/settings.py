"""The collector's settings, read once from ``CONSENT_MW_*`` and the ``[collector]`` TOML table.

The environment is read here only, in :meth:`CollectorSettings.from_env`.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collector.accounts import Account, staff_accounts
from collector.ddl.tables import EVENTS_TTL, IP_TTL, RECORDS_TTL, REQUESTS_TTL, DdlOptions
from collector.funnels import load_funnels
from collector.goals import load_goals
from collector.notes import WriteRefused
from collector.store import mask_dsn
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, FORWARDED_HEADERS
from consent_mw.config import Secret, SettingsError, Source, duration

DAY = 86400
MIB = 1024 * 1024
NO_SECRET = Secret("")
ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>]+")  # a mail address, local hosts included


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
    # Goals and funnels kept in the site's repository ([[goal]], [[funnel]] tables:
    # collector.goals, collector.funnels): at every start those it names are made its
    # definitions; those made in the dashboards stay.
    goals_file: Path | None = None
    events_ttl: int = EVENTS_TTL  # 13 months
    ip_ttl: int = IP_TTL
    records_ttl: int = RECORDS_TTL  # 5 years
    # Privacy requests (collector.requests): kept 3 years as proof of handling; due this many
    # days after the person is verified; the disclosure fee (Art. 5) stated and recorded.
    requests_ttl: int = REQUESTS_TTL
    request_due_days: int = 30
    disclosure_fee_yen: int = 1000
    #: Where a person checks a request on the site (the middleware's
    #: ``{prefix}/requests/status``), for the links in their mail; "" leaves links out.
    requests_url: str = ""
    # SMTP for request mail (collector.requests.mail). Without a host, mail waits in the
    # outbox, shown on each request as not sent, never dropped.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: Secret = NO_SECRET
    mail_from: str = "privacy@localhost"
    #: Who gets the daily list of overdue requests ("" sends none).
    privacy_staff_email: str = ""
    #: A folder of the clinic's own mail templates (``<name>.<lang>.txt``) over the defaults.
    mail_templates: Path | None = None
    #: The dashboards' request console (``https://…/dashboards/requests``): linked from the
    #: overdue mail, and where this collector's own staff page sends people instead.
    console_url: str = ""
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
        """Every check of every value, whether ``from_env`` or a caller built these."""
        if not self.store.startswith(("chdb://", "http://", "https://")):
            raise SettingsError("store", "must be chdb:///path or an http(s):// ClickHouse URL")
        for name in ("events_ttl", "ip_ttl", "records_ttl", "clock_skew", "requests_ttl",
                     "request_due_days"):
            if getattr(self, name) <= 0:
                raise SettingsError(name, "must be > 0")
        if self.ip_ttl > self.events_ttl:
            raise SettingsError("ip_ttl", "must not exceed events_ttl")
        for name in ("max_body_bytes", "max_decompressed_bytes", "dedupe_size",
                     "insert_max_rows", "max_concurrent_ingests"):
            if getattr(self, name) < 1:
                raise SettingsError(name, "must be >= 1")
        if self.ingest_wait < 0.1:
            raise SettingsError("ingest_wait", "must be >= 0.1")
        try:
            zoneinfo.ZoneInfo(self.rollup_tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError("dashboard_tz", f"unknown time zone {self.rollup_tz!r}") from None
        for name in ("dedupe_warm_hours", "insert_linger_ms", "rollup_interval", "rollup_grace",
                     "purge_interval"):
            if getattr(self, name) < 0:
                raise SettingsError(name, "must be >= 0")
        if self.goals_file is not None:
            try:
                load_goals(self.goals_file)
                load_funnels(self.goals_file)
            except WriteRefused as exc:
                raise SettingsError("goals_file", exc.reason) from None
        if self.disclosure_fee_yen < 0:
            raise SettingsError("disclosure_fee_yen", "must be >= 0")
        if not 1 <= self.smtp_port <= 65535:
            raise SettingsError("smtp_port", "must be a port number")
        for name in ("mail_from", "privacy_staff_email"):
            value = getattr(self, name)
            if value and not ADDRESS.fullmatch(value):
                raise SettingsError(name, f"not an e-mail address: {value!r}")
        if self.requests_url and not self.requests_url.startswith(("http://", "https://")):
            raise SettingsError("requests_url", "must be an http(s):// URL")
        if self.console_url and not self.console_url.startswith(("http://", "https://", "/")):
            raise SettingsError("console_url", "must be an http(s):// URL or a path")
        if self.mail_templates is not None and not self.mail_templates.is_dir():
            raise SettingsError("mail_templates", f"not a folder: {self.mail_templates}")
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise SettingsError("forwarded_header", f"must be one of {FORWARDED_HEADERS}")
        if self.cluster is not None and not self.cluster.replace("_", "").replace(
            "-", ""
        ).isalnum():
            raise SettingsError("cluster", f"invalid cluster name {self.cluster!r}")

    def __repr__(self) -> str:
        # Secrets mask themselves; a ClickHouse URL may carry a password too.
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        values["store"] = mask_dsn(self.store)
        shown = (f"{name}={value!r}" for name, value in values.items())
        return f"CollectorSettings({', '.join(shown)})"

    @property
    def ddl_options(self) -> DdlOptions:
        """Retention and cluster shape, as the migrations and retention need them."""
        return DdlOptions(events_ttl=self.events_ttl, ip_ttl=self.ip_ttl,
                          records_ttl=self.records_ttl, requests_ttl=self.requests_ttl,
                          cluster=self.cluster)

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
        """Read ``CONSENT_MW_<FIELD>`` (``env``, else the process environment) and the
        ``[collector]`` table of the TOML file; the environment wins, ``overrides`` win over
        both. The only place the collector reads its environment. Unset values take the
        fields' defaults; ``__post_init__`` then checks everything."""
        src = Source.load("collector", env=env, toml_path=toml_path)
        d = _default
        # The same key the middleware hashes user ids with: its own, else its first secret key.
        key = src.secret("user_id_key")
        if not key:
            keys = src.strings("secret_key", ())
            key = Secret(keys[0]) if keys else NO_SECRET
        values: dict[str, object] = dict(
            store=src.text("store", d("store")),
            collector_token=src.secret("collector_token"),
            admin_token=src.secret("admin_token"),
            query_token=src.secret("query_token"),
            hash_key=key,
            geoip_db=src.path("geoip_db", None),
            goals_file=src.path("goals_file", None),
            events_ttl=duration(src, "events_ttl", d("events_ttl")),
            ip_ttl=duration(src, "ip_ttl", d("ip_ttl")),
            records_ttl=duration(src, "records_ttl", d("records_ttl")),
            requests_ttl=duration(src, "requests_ttl", d("requests_ttl")),
            request_due_days=src.integer("request_due_days", d("request_due_days")),
            disclosure_fee_yen=src.integer("disclosure_fee_yen", d("disclosure_fee_yen")),
            requests_url=src.text("requests_url", d("requests_url")),
            smtp_host=src.opt_str("smtp_host"),
            smtp_port=src.integer("smtp_port", d("smtp_port")),
            smtp_starttls=src.flag("smtp_starttls", d("smtp_starttls")),
            smtp_user=src.text("smtp_user", d("smtp_user")),
            smtp_password=src.secret("smtp_password"),
            mail_from=src.text("mail_from", d("mail_from")),
            privacy_staff_email=src.text("privacy_staff_email", d("privacy_staff_email")),
            mail_templates=src.path("mail_templates", None),
            console_url=src.text("console_url", d("console_url")),
            cluster=src.opt_str("cluster"),
            max_body_bytes=src.integer("max_body_bytes", d("max_body_bytes")),
            max_decompressed_bytes=src.integer("max_decompressed_bytes",
                                               d("max_decompressed_bytes")),
            max_concurrent_ingests=src.integer("max_concurrent_ingests",
                                               d("max_concurrent_ingests")),
            ingest_wait=src.number("ingest_wait", d("ingest_wait")),
            purge_interval=duration(src, "purge_interval", d("purge_interval")),
            clock_skew=duration(src, "clock_skew", d("clock_skew")),
            dedupe_size=src.integer("dedupe_size", d("dedupe_size")),
            dedupe_warm_hours=src.integer("dedupe_warm_hours", d("dedupe_warm_hours")),
            insert_max_rows=src.integer("insert_max_rows", d("insert_max_rows")),
            insert_linger_ms=src.number("insert_linger_ms", d("insert_linger_ms")),
            # One variable for both sides, so the rollup's days are the dashboards' days.
            rollup_tz=src.text("dashboard_tz", d("rollup_tz")),
            rollup_interval=src.number("rollup_interval", d("rollup_interval")),
            rollup_grace=duration(src, "rollup_grace", d("rollup_grace")),
            staff_users=staff_accounts(dict(src.env), None if toml_path is None
                                       else str(toml_path)),
            trusted_proxies=src.strings("trusted_proxies", d("trusted_proxies")),
            forwarded_header=src.text("forwarded_header", d("forwarded_header")).lower(),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


_FIELDS = {f.name: f for f in fields(CollectorSettings)}


def _default(name: str) -> Any:
    """A field's default, so ``from_env`` never writes one a second time."""
    f = _FIELDS[name]
    return f.default_factory() if callable(f.default_factory) else f.default
