"""Enrichment as pure functions: device classification, GeoIP places, IP prefixes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import user_agents
from support.wire import GEOIP_DIR

from collector.enrich.device import device_fields
from collector.enrich.geo import GeoLookup, Place, ip_prefix
from consent_mw.useragent import classify, parse_ua

# A realistic mix: phones, tablets, desktops, bots and Japanese in-app browsers.
REAL_UAS = [
    # iPhone Safari, Chrome iOS, Firefox iOS
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 Mobile/15E148 Safari/605.1.15",  # noqa: E501
    # iPad (old-style UA) and iPad in desktop mode (looks like a Mac)
    "Mozilla/5.0 (iPad; CPU OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (iPad; CPU OS 15_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1",  # noqa: E501
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",  # noqa: E501
    # Android phones: reduced UA, Samsung Internet, Pixel, Xperia
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 12; SO-51B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Mobile Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Android 13; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
    # Android tablets
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 11; Lenovo TB-J606F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/117.3.1 like Chrome/117.0.5938.153 Safari/537.36",  # noqa: E501
    # Windows desktop: Chrome, Edge, Firefox
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",  # noqa: E501
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
    # Mac desktop: Chrome, Firefox, Edge
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",  # noqa: E501
    # Linux desktop, ChromeOS
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",  # noqa: E501
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",  # noqa: E501
    # Bots
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",  # noqa: E501
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    # Japanese in-app browsers: LINE, Yahoo! JAPAN app
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/13.21.0",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 13; SH-53C Build/S0028; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 Line/13.21.1/IAB",  # noqa: E501
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 YJApp-IOS jp.co.yahoo.ipn.appli/4.43.0",  # noqa: E501
    "Mozilla/5.0 (Linux; Android 12; A101OP Build/SKQ1.211019.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/119.0.6045.193 Mobile Safari/537.36 YJApp-ANDROID jp.co.yahoo.android.yjtop/4.41.0",  # noqa: E501
]


@pytest.mark.parametrize("ua", REAL_UAS)
def test_fast_parser_classifies_like_user_agents(ua: str) -> None:
    reference = user_agents.parse(ua)
    info = parse_ua(ua)
    assert info.device_type == classify(reference)
    assert info.browser == reference.browser.family
    assert info.browser_version == reference.browser.version_string
    assert info.os == reference.os.family
    assert info.os_version == reference.os.version_string
    assert info.device_brand == (reference.device.brand or "")
    assert info.device_model == (reference.device.model or "")


def test_the_ua_mix_covers_every_device_type() -> None:
    # Guards the equivalence test against a mix that would only exercise one branch.
    assert {parse_ua(ua).device_type for ua in REAL_UAS} >= {"desktop", "mobile", "tablet", "bot"}


def test_known_devices_get_the_expected_type() -> None:
    assert parse_ua(REAL_UAS[0]).device_type == "mobile"
    assert parse_ua(REAL_UAS[3]).device_type == "tablet"
    assert parse_ua(REAL_UAS[14]).device_type == "desktop"
    assert parse_ua(REAL_UAS[23]).device_type == "bot"


def test_client_hint_model_wins_over_the_reduced_ua() -> None:
    info = device_fields(REAL_UAS[6], ch_ua_model='"Pixel 7"', ch_ua_platform='"Android"')
    assert info.device_model == "Pixel 7"
    assert info.device_type == "mobile"


def test_anonymous_events_keep_the_wire_device_type() -> None:
    info = device_fields(None, wire_device_type="tablet")
    assert info.device_type == "tablet"
    assert info.browser == ""


def test_ip_prefix_is_24_for_ipv4_and_48_for_ipv6() -> None:
    assert ip_prefix("81.2.69.142") == "81.2.69.0/24"
    assert ip_prefix("2001:218:1234:5678::1") == "2001:218:1234::/48"
    assert ip_prefix("") == ""
    assert ip_prefix("not-an-ip") == ""


def test_geoip_city_db_places_london_and_japan() -> None:
    geo = GeoLookup(GEOIP_DIR / "GeoIP2-City-Test.mmdb")
    try:
        assert geo.lookup("81.2.69.142") == Place("GB", "ENG", "London")
        assert geo.lookup("2001:218::1").country == "JP"
        assert geo.lookup("127.0.0.1") == Place()
    finally:
        geo.close()


def test_geoip_country_db_gives_the_country_only() -> None:
    geo = GeoLookup(GEOIP_DIR / "GeoLite2-Country-Test.mmdb")
    try:
        assert geo.lookup("81.2.69.142") == Place("GB", "", "")
    finally:
        geo.close()


def test_geoip_answers_are_cached_per_db_and_dropped_on_close() -> None:
    # A collector restarted with another DB must not answer from the old DB's cache.
    city = GeoLookup(GEOIP_DIR / "GeoIP2-City-Test.mmdb")
    assert city.lookup("81.2.69.142") == city.lookup("81.2.69.142") == Place("GB", "ENG",
                                                                             "London")
    country = GeoLookup(GEOIP_DIR / "GeoLite2-Country-Test.mmdb")
    try:
        assert country.lookup("81.2.69.142") == Place("GB", "", "")
    finally:
        country.close()
    city.close()
    assert city.lookup("81.2.69.142") == Place()


def test_geoip_finds_tokyo_in_a_db_built_for_the_test(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", languages=["en"],
                        ipv4_compatible=True)
    writer.insert_network(IPSet(["192.0.2.0/24"]), {
        "country": {"iso_code": "JP", "names": {"en": "Japan"}},
        "subdivisions": [{"iso_code": "13", "names": {"en": "Tokyo"}}],
        "city": {"names": {"en": "Tokyo"}},
    })
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    geo = GeoLookup(tmp_path / "city.mmdb")
    try:
        assert geo.lookup("192.0.2.55") == Place("JP", "13", "Tokyo")
    finally:
        geo.close()


def test_missing_db_logs_one_warning_and_leaves_geo_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.enrich.geo")
    geo = GeoLookup(tmp_path / "absent.mmdb")
    places = [geo.lookup("81.2.69.142") for _ in range(5)]
    assert places == [Place()] * 5
    assert len([r for r in caplog.records if r.name == "collector.enrich.geo"]) == 1
    assert not geo.available
