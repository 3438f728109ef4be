"""Place from an IP address (GeoIP2/GeoLite2 City or Country DB) and the coarse IP prefix.

The DB is opened once with maxminddb's C reader (``MODE_AUTO``), ~20 µs per lookup; answers are
cached per address (real traffic repeats addresses), as are IP prefixes. Without a DB, geo
fields stay empty and one warning is logged when the lookup is created.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import geoip2.database
import geoip2.errors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Place:
    country: str = ""  # ISO 3166-1 alpha-2
    region: str = ""  # most specific subdivision: ISO code, else its English name
    city: str = ""


NOWHERE = Place()
CACHE_SIZE = 65_536  # addresses; ~200 bytes each


@functools.lru_cache(maxsize=CACHE_SIZE)
def ip_prefix(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as text; "" when absent or invalid."""
    if not ip:
        return ""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class GeoLookup:
    """A GeoIP reader opened once; ``lookup`` never raises."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._reader: geoip2.database.Reader | None = None
        self._city = False
        # Per reader, so a new DB (a restart) never answers from the old one's cache.
        self._cached = functools.lru_cache(maxsize=CACHE_SIZE)(self._lookup)
        if path is None:
            log.warning("no GeoIP database configured (CONSENT_MW_GEOIP_DB): geo fields stay empty")
            return
        try:
            self._reader = geoip2.database.Reader(str(path))
        except (OSError, ValueError) as exc:
            log.warning("cannot open GeoIP database %s (%s): geo fields stay empty", path, exc)
            return
        self._city = "City" in self._reader.metadata().database_type

    @property
    def available(self) -> bool:
        return self._reader is not None

    def lookup(self, ip: str | None) -> Place:
        if self._reader is None or not ip:
            return NOWHERE
        return self._cached(ip)

    def _lookup(self, ip: str) -> Place:
        if self._reader is None:
            return NOWHERE
        try:
            if self._city:
                city = self._reader.city(ip)
                sub = city.subdivisions.most_specific
                return Place(
                    country=city.country.iso_code or "",
                    region=sub.iso_code or sub.name or "",
                    city=city.city.name or "",
                )
            country = self._reader.country(ip)
            return Place(country=country.country.iso_code or "")
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return NOWHERE
        except Exception:  # a corrupt DB must not cost the event
            log.debug("GeoIP lookup failed", exc_info=True)
            return NOWHERE

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._cached.cache_clear()
