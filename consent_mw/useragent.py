"""The one User-Agent parser and classifier: consent records' browser family, anonymous
counts' device type, and the collector's device fields all come from :func:`parse_ua`.

Parsing runs on ua-parser 1.x's Rust resolver (``ua_parser_rs``: ~60 µs uncached, and linear
in the string: a crafted 1 KB UA that takes ``user_agents``' pure-regex path 18 ms takes this
one 65 µs). The result is fed into ``user_agents``' own classification rules
(``is_mobile``/``is_tablet``/``is_bot``/``is_pc``), so ``device_type`` is what
``user_agents.parse`` would answer. Results are cached per UA string, at most
:data:`MAX_UA` characters of it, so the cache holds at most ~10 MiB whatever is sent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ua_parser
from ua_parser import Domain, Parser, load_lazy_builtins
from user_agents.parsers import (
    UserAgent,
    parse_browser,
    parse_device,
    parse_operating_system,
)

MAX_UA = 1024
UA_CACHE_SIZE = 8192


def _build_parser() -> Parser:
    # BestAvailableResolver is the Rust one when ua-parser-rs is installed (a dependency);
    # no CachingResolver: parse_ua's lru_cache is the cache.
    return Parser(ua_parser.BestAvailableResolver(load_lazy_builtins()))


_PARSER = _build_parser()


class _FastUserAgent(UserAgent):  # type: ignore[misc]
    """``user_agents.UserAgent`` built from a ua-parser 1.x result instead of its regex path."""

    def __init__(self, ua_string: str) -> None:
        result = _PARSER(ua_string, Domain.ALL).complete().with_defaults()
        ua, os, dev = result.user_agent, result.os, result.device
        self.ua_string = ua_string
        self.os = parse_operating_system(os.family, os.major, os.minor, os.patch, os.patch_minor)
        self.browser = parse_browser(ua.family, ua.major, ua.minor, ua.patch, ua.patch_minor)
        self.device = parse_device(dev.family, dev.brand, dev.model)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    device_type: str = ""
    device_brand: str = ""
    device_model: str = ""

    @property
    def family(self) -> str:
        """``Browser/OS``, e.g. ``Chrome/Linux``: what a consent record keeps."""
        return f"{self.browser}/{self.os}"[:64]


def classify(agent: UserAgent) -> str:
    """desktop / mobile / tablet / bot / other, from user_agents' rules (bots first)."""
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


def parse_ua(ua: str) -> DeviceInfo:
    """Browser, OS and device of a User-Agent string (its first MAX_UA characters; cached)."""
    return _parse(ua[:MAX_UA])


@functools.lru_cache(maxsize=UA_CACHE_SIZE)
def _parse(ua: str) -> DeviceInfo:
    agent = _FastUserAgent(ua)
    return DeviceInfo(
        browser=agent.browser.family,
        browser_version=agent.browser.version_string,
        os=agent.os.family,
        os_version=agent.os.version_string,
        device_type=classify(agent),
        device_brand=agent.device.brand or "",
        device_model=agent.device.model or "",
    )


def device_type(ua: str | None) -> str:
    """desktop / mobile / tablet / bot / other; ``other`` without a UA."""
    return parse_ua(ua).device_type if ua else "other"


def family(ua: str | None) -> str | None:
    """``Browser/OS`` families only; never the full string. None without a UA."""
    if not ua:
        return None
    try:
        return parse_ua(ua).family
    except Exception:  # a hostile UA must not break a consent answer
        return None
