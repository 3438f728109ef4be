"""Device fields from a User-Agent and client hints; the raw UA string is never stored.

The parsing and classification are ``consent_mw.useragent``'s, the one rule the middleware's
anonymous counts and consent records use too.
"""

from __future__ import annotations

from consent_mw.useragent import DeviceInfo, parse_ua

__all__ = ["DeviceInfo", "device_fields"]


def _hint(value: str | None) -> str:
    """A structured-header string from a client hint: ``"Pixel 7"`` → ``Pixel 7``."""
    if not value:
        return ""
    return value.strip().strip('"').strip()


def device_fields(
    ua: str | None,
    ch_ua_model: str | None = None,
    ch_ua_platform: str | None = None,
    wire_device_type: str | None = None,
) -> DeviceInfo:
    """Everything the events table keeps about a device.

    ``Sec-CH-UA-Model`` wins for the model: Chrome's reduced UA says only ``K`` on Android.
    Without a UA (anonymous counts) the device type sent on the wire is kept.
    """
    if not ua:
        return DeviceInfo(device_type=wire_device_type or "", os=_hint(ch_ua_platform))
    info = parse_ua(ua)
    model = _hint(ch_ua_model)
    platform = _hint(ch_ua_platform)
    if not model and not platform:
        return info
    return DeviceInfo(
        browser=info.browser,
        browser_version=info.browser_version,
        os=platform if info.os == "Other" and platform else info.os,
        os_version=info.os_version,
        device_type=info.device_type,
        device_brand=info.device_brand,
        device_model=model or info.device_model,
    )
