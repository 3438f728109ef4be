"""The middleware's one settings object, read once from ``CONSENT_MW_*`` and ``consent-mw.toml``."""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from consent_mw import wire
from consent_mw.clientip import DEFAULT_FORWARDED_HEADER, FORWARDED_HEADERS
from consent_mw.config import Secret, SettingsError, Source, duration
from consent_mw.consent.categories import (
    Category,
    Tag,
    categories_from_config,
    check_catalogue,
    tags_from_config,
)

DAY = 86400
NO_SECRET = Secret("")
DEFAULT_POLICY_LABEL = "2024-04-23"
DEFAULT_SEARCH_PARAMS = ("q", "s", "search", "keyword")
DEFAULT_CLICK_ID_PARAMS = (
    "gclid", "gbraid", "wbraid", "dclid", "fbclid", "yclid", "msclkid", "ttclid",
    "twclid", "li_fat_id", "ldtag_cl",
)
DEFAULT_APP_HOSTS = (
    "line.me=line", "lin.ee=line", "liff.line.me=line", "page.line.me=line",
    "instagram.com=instagram", "www.instagram.com=instagram", "x.com=x", "twitter.com=x",
    "facebook.com=facebook", "www.facebook.com=facebook", "m.facebook.com=facebook",
    "youtube.com=youtube", "www.youtube.com=youtube", "youtu.be=youtube",
    "tiktok.com=tiktok", "www.tiktok.com=tiktok",
)
DEFAULT_DOWNLOAD_EXTENSIONS = ("pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "csv",
                               "txt", "zip", "jpg", "jpeg", "png", "mp4", "mp3")
DEFAULT_EXCLUDE_PATHS = ("/_consent", "/_collector", "/dashboards", "/.well-known",
                         "/favicon.ico", "/static/", "/robots.txt")


class PathExclusions:
    """``exclude_paths`` matched by whole segments: ``/static`` covers ``/static`` and
    ``/static/app.css``, never ``/staticky``. Built once; ``path in exclusions`` per request."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, paths: tuple[str, ...]) -> None:
        bases = [p.rstrip("/") for p in paths if p.strip("/")]
        self._exact = frozenset(bases)
        self._prefixes = tuple(b + "/" for b in bases)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and (path in self._exact
                                          or path.startswith(self._prefixes))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the middleware needs; build with :meth:`from_env` or by keyword."""

    # Signing: the first key signs, every key verifies (rotation).
    secret_keys: tuple[Secret, ...]
    cookie_salt: str = "consent-mw.consent.v1"

    categories: tuple[Category, ...] = field(default_factory=lambda: categories_from_config(None))
    tags: tuple[Tag, ...] = ()

    # Policy version = label + SHA-256 of the policy text.
    policy_label: str = DEFAULT_POLICY_LABEL
    policy_text: str = ""

    consent_cookie: str = "cmw_consent"
    visitor_cookie: str = "cmw_vid"
    session_cookie: str = "cmw_sid"
    consent_max_age: int = 182 * DAY  # ~6 months, for acceptance and refusal alike
    visitor_max_age: int = 395 * DAY  # at most 13 months, never extended
    session_timeout: int = 30 * 60

    prefix: str = "/_consent"
    locales: tuple[str, ...] = ("ja", "en")
    default_locale: str = "ja"
    allowed_origins: tuple[str, ...] = ()  # extra origins allowed to POST consent
    banner: bool = True
    max_body_bytes: int = 8 * 1024

    # Capture
    capture: bool = True
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    #: The header the trusted proxies write the client into (only that one is read).
    forwarded_header: str = DEFAULT_FORWARDED_HEADER
    search_params: tuple[str, ...] = DEFAULT_SEARCH_PARAMS
    click_id_params: tuple[str, ...] = DEFAULT_CLICK_ID_PARAMS
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDE_PATHS
    queue_size: int = 20_000
    queue_max_bytes: int = 32 * 1024 * 1024  # what queued requests may hold, headers included
    batch_size: int = 5_000
    flush_interval: float = 1.0
    max_event_bytes: int = 16 * 1024
    collector_url: str | None = None
    collector_token: Secret = NO_SECRET
    spool_dir: Path | None = None
    spool_max_bytes: int = 64 * 1024 * 1024
    suppression_refresh: float = 5.0
    #: Short, so a collector that is down or frozen costs a send this long, never the queue:
    #: the batch goes to the spool and the sender moves on.
    collector_connect_timeout: float = 1.0
    collector_read_timeout: float = 5.0
    #: ``auto``: batches gzipped unless the collector is on this host (capture/http_body.py).
    collector_compression: str = "auto"
    #: Drops are logged at most once per reason per interval, with their counts.
    drop_log_interval: float = 60.0
    #: The first-party interaction beacon (docs/capture.md, "Interactions"): its script goes
    #: into the pages of visitors who granted analytics; off unless set.
    beacon: bool = False
    #: Outbound hosts whose link paths are kept (scrubbed); of any other host, the host only.
    beacon_path_hosts: tuple[str, ...] = ()
    #: ``host=app`` pairs: a link to the host is an app link of that name.
    beacon_app_hosts: tuple[str, ...] = DEFAULT_APP_HOSTS
    #: File extensions a link's path ends in for it to count as a download.
    beacon_download_extensions: tuple[str, ...] = DEFAULT_DOWNLOAD_EXTENSIONS
    #: Interactions one visitor may report a minute; more are refused (429).
    beacon_per_minute: int = 120
    #: Capture stats as Prometheus text (needs ``prometheus-client``); off unless set.
    #: Answered to loopback peers, or to a bearer ``metrics_token`` when one is set.
    metrics_path: str | None = None
    metrics_token: Secret = NO_SECRET
    user_id_key: Secret = NO_SECRET  # keys the user_id hash; defaults to the first secret key
    # Derived once: every consent record and banner marker names the policy version.
    _policy_hash: str = field(init=False, repr=False, compare=False, default="")
    _policy_version: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        """Every limit, however the settings were built (by keyword or :meth:`from_env`)."""
        for f in fields(self):
            # A host may pass lists: kept as tuples, so the settings stay frozen and hashable
            # (what is derived from them is cached per value).
            value = getattr(self, f.name)
            if isinstance(value, list) and str(f.type).startswith("tuple["):
                object.__setattr__(self, f.name, tuple(value))
        digest = hashlib.sha256(self.policy_text.encode("utf-8")).hexdigest()
        object.__setattr__(self, "_policy_hash", digest)
        object.__setattr__(self, "_policy_version", f"{self.policy_label}+{digest[:12]}")
        object.__setattr__(self, "forwarded_header", self.forwarded_header.lower())
        object.__setattr__(self, "collector_compression", self.collector_compression.lower())
        if not self.secret_keys or not all(k.value for k in self.secret_keys):
            raise SettingsError("secret_key", "at least one non-empty secret key is required")
        if len(self.secret_keys[0].value) < 16:
            raise SettingsError("secret_key", "must be at least 16 characters")
        check_catalogue(self.categories, self.tags)
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise SettingsError("prefix", "must start with '/' and not end with '/'")
        if self.default_locale not in self.locales:
            raise SettingsError("default_locale", f"must be one of {self.locales}")
        if self.forwarded_header not in FORWARDED_HEADERS:
            raise SettingsError("forwarded_header", f"must be one of {FORWARDED_HEADERS}")
        for net in self.trusted_proxies:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise SettingsError("trusted_proxies", f"{net!r} is not an IP network") from None
        if self.collector_url is not None and not self.collector_url.startswith(
            ("http://", "https://")
        ):
            raise SettingsError("collector_url", "must be an http(s) URL")
        if self.collector_compression not in wire.COMPRESSION:
            raise SettingsError("collector_compression", f"must be one of {wire.COMPRESSION}")
        for name, minimum in _MINIMUMS.items():
            value = getattr(self, name)
            if value < minimum:
                raise SettingsError(name, f"must be >= {minimum}, got {value}")
        if self.metrics_path is not None and (
            not self.metrics_path.startswith("/") or self.metrics_path == self.prefix
            or self.metrics_path.startswith(self.prefix + "/")
        ):
            raise SettingsError("metrics_path", "must start with '/' and lie outside the prefix")
        for pair in self.beacon_app_hosts:
            host, sep, app = pair.partition("=")
            if not sep or not host or not app:
                raise SettingsError("beacon_app_hosts", f"{pair!r} is not host=app")
        if self.visitor_max_age > 396 * DAY:
            raise SettingsError("visitor_max_age", "must be at most 13 months")

    @property
    def policy_hash(self) -> str:
        return self._policy_hash

    @property
    def policy_version(self) -> str:
        """``<label>+<first 12 hex of sha256>``: a new text is a new version, even unlabelled."""
        return self._policy_version

    @property
    def category_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    @property
    def hash_key(self) -> bytes:
        return (self.user_id_key.value or self.secret_keys[0].value).encode("utf-8")

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        toml_path: str | os.PathLike[str] | None = None,
        **overrides: object,
    ) -> Settings:
        """Read ``CONSENT_MW_*`` variables and the ``[consent_mw]`` table of the TOML file
        (``CONSENT_MW_CONFIG``, else ``./consent-mw.toml``); ``overrides`` win over both.

        The only place consent-mw reads the environment (``os.environ`` unless ``env`` is
        given). A field neither sets keeps its dataclass default; ``__post_init__`` checks the
        result, so a value is held to the same limits however the settings are built.
        """
        src = Source.load("consent_mw", env=os.environ if env is None else env,
                          toml_path=toml_path)
        values: dict[str, object] = {
            name: read(src, name) for name, read in _READERS.items() if src.has(name)
        }
        values["secret_keys"] = tuple(Secret(k) for k in src.strings("secret_key", ()))
        policy_path = src.path("policy_file", None)
        if policy_path is not None:
            try:
                values["policy_text"] = policy_path.read_text(encoding="utf-8")
            except OSError as exc:
                raise SettingsError("policy_file", f"cannot read {policy_path}: {exc}") from exc
        if "categories" in src.table:
            values["categories"] = categories_from_config(src.table["categories"])
        if "tags" in src.table:
            values["tags"] = tags_from_config(src.table["tags"])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _text(src: Source, name: str) -> str:
    return src.text(name, "")


def _integer(src: Source, name: str) -> int:
    return src.integer(name, 0)


def _number(src: Source, name: str) -> float:
    return src.number(name, 0.0)


def _duration(src: Source, name: str) -> int:
    return duration(src, name, 0)


def _flag(src: Source, name: str) -> bool:
    return src.flag(name, False)


def _strings(src: Source, name: str) -> tuple[str, ...]:
    return src.strings(name, ())


def _path(src: Source, name: str) -> Path | None:
    return src.path(name, None)


#: How :meth:`Settings.from_env` reads each field from ``CONSENT_MW_<FIELD>`` or the TOML
#: table (``secret_key``, ``policy_file``, ``categories`` and ``tags`` are read apart).
_READERS: dict[str, Callable[[Source, str], object]] = {
    "cookie_salt": _text, "policy_label": _text, "consent_cookie": _text,
    "visitor_cookie": _text, "session_cookie": _text, "prefix": _text,
    "default_locale": _text, "forwarded_header": _text, "collector_compression": _text,
    "locales": _strings, "allowed_origins": _strings, "trusted_proxies": _strings,
    "search_params": _strings, "click_id_params": _strings, "exclude_paths": _strings,
    "beacon_path_hosts": _strings, "beacon_app_hosts": _strings,
    "beacon_download_extensions": _strings, "beacon": _flag, "beacon_per_minute": _integer,
    "consent_max_age": _duration, "visitor_max_age": _duration, "session_timeout": _duration,
    "banner": _flag, "capture": _flag,
    "max_body_bytes": _integer, "queue_size": _integer, "queue_max_bytes": _integer,
    "batch_size": _integer, "max_event_bytes": _integer, "spool_max_bytes": _integer,
    "flush_interval": _number, "suppression_refresh": _number,
    "collector_connect_timeout": _number, "collector_read_timeout": _number,
    "drop_log_interval": _number,
    "collector_url": Source.opt_str, "spool_dir": _path, "metrics_path": Source.opt_str,
    "collector_token": Source.secret, "user_id_key": Source.secret,
    "metrics_token": Source.secret,
}

#: The smallest value each numeric field may take.
_MINIMUMS: dict[str, float] = {
    "consent_max_age": 0, "visitor_max_age": 0, "session_timeout": 0,
    "max_body_bytes": 256, "queue_size": 1, "queue_max_bytes": 64 * 1024, "batch_size": 1,
    "flush_interval": 0.001, "max_event_bytes": 512, "spool_max_bytes": 0,
    "suppression_refresh": 0.1, "collector_connect_timeout": 0.05,
    "collector_read_timeout": 0.05, "drop_log_interval": 0.0, "beacon_per_minute": 1,
}
