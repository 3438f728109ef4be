"""What the synthetic clinic traffic is made of: weighted lists a hash picks from.

The pages are the demo site's own (``clinic.site``; a test keeps them in step): every seeded
page view, and every interaction the beacon would report on it, is one a visitor of the demo
could make. ``seed.statements`` indexes these lists by position inside ClickHouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

DAY = 86400
TOKYO_OFFSET = 9 * 3600  # JST has no DST: midnight JST is 15:00 UTC the day before

T = TypeVar("T")


def _weighted(pairs: Sequence[tuple[T, int]]) -> list[T]:
    """Expand (value, weight) pairs into a list a uniform hash can index."""
    return [value for value, weight in pairs for _ in range(weight)]


#: The demo site's pages (clinic.site), Japanese first; the English site is /en.
PAGES = _weighted([
    ("/", 20), ("/treatments/futae", 9), ("/treatments/hyaluronic", 9),
    ("/treatments/datsumo", 10), ("/search", 6), ("/reservation", 7), ("/privacy", 1),
    ("/en", 3), ("/en/treatments/futae", 1), ("/en/treatments/hyaluronic", 1),
    ("/en/treatments/datsumo", 1), ("/en/reservation", 1),
])
#: The demo's campaign landing pages (clinic.content.CAMPAIGNS).
LANDING = _weighted([("/lp/futae-spring", 5), ("/lp/datsumo-first", 6)])
#: What a visitor sometimes asks for and the site does not have (status 404): an old
#: treatment page, an ended campaign, a mistyped address.
NOT_FOUND = ["/treatments/botox", "/campaign/autumn", "/lp/summer-2025", "/reservaton"]
SEARCH_TERMS = _weighted([
    ("ヒアルロン酸", 8), ("二重 料金", 6), ("医療脱毛", 7), ("埋没法", 5),
    ("ダウンタイム", 4), ("予約 キャンセル", 3), ("ほうれい線", 4), ("顔脱毛", 3),
    ("腫れ 期間", 2), ("モニター募集", 2), ("VIO", 3), ("料金表", 2), ("hair removal", 1),
    ("<script>alert(1)</script>", 1),  # hostile input must render escaped in the dashboards
])
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 7, 6, 6, 6, 6, 6, 7, 8, 9, 8, 5, 3]
HOURS = _weighted(list(enumerate(HOUR_WEIGHTS)))
SESSION_LENGTHS = _weighted([(1, 45), (2, 18), (3, 12), (4, 8), (5, 6), (6, 4), (8, 4),
                             (12, 3)])
MEAN_SESSION = sum(SESSION_LENGTHS) / len(SESSION_LENGTHS)

# Traffic sources: channel, referrer, utm source/medium/campaign, click id type, landing page.
SOURCES = _weighted([
    (("direct", "", "", "", "", "", False), 28),
    (("search", "www.google.com", "", "", "", "", False), 22),
    (("search", "search.yahoo.co.jp", "", "", "", "", False), 8),
    (("ad", "www.google.com", "google", "cpc", "hyaluronic_2026", "gclid", True), 9),
    (("ad", "www.google.com", "google", "cpc", "datsumo_brand", "gbraid", True), 3),
    (("ad", "search.yahoo.co.jp", "yahoo", "cpc", "futae_spring", "yclid", True), 5),
    (("social", "l.instagram.com", "instagram", "social", "datsumo_first", "fbclid", True), 8),
    (("social", "line.me", "line", "message", "october_newsletter", "", False), 5),
    (("social", "t.co", "", "", "", "", False), 3),
    (("ad", "www.facebook.com", "facebook", "paid_social", "futae_ig", "fbclid", True), 2),
    (("ad", "www.bing.com", "bing", "cpc", "hyaluronic_2026", "msclkid", True), 1),
    (("referral", "beauty.hotpepper.jp", "", "", "", "", False), 4),
    (("referral", "www.instagram.com", "", "", "", "", False), 2),
])

# browser, version, os, os version, device type, brand, model, sends ECT (Chromium only)
DEVICES = _weighted([
    (("Mobile Safari", "18.1", "iOS", "18.1", "mobile", "Apple", "iPhone", False), 42),
    (("Chrome Mobile", "130.0", "Android", "14", "mobile", "Samsung", "SM-S921Q", True), 8),
    (("Chrome Mobile", "130.0", "Android", "15", "mobile", "Google", "Pixel 8", True), 5),
    (("Chrome Mobile", "129.0", "Android", "13", "mobile", "Sony", "SO-51D", True), 4),
    (("Chrome", "130.0", "Windows", "10", "desktop", "", "", True), 12),
    (("Edge", "130.0", "Windows", "11", "desktop", "", "", True), 5),
    (("Safari", "18.1", "Mac OS X", "10.15", "desktop", "Apple", "Mac", False), 7),
    (("Chrome", "130.0", "Mac OS X", "10.15", "desktop", "Apple", "Mac", True), 4),
    (("Mobile Safari", "18.0", "iOS", "18.0", "tablet", "Apple", "iPad", False), 6),
    (("Firefox", "132.0", "Windows", "11", "desktop", "", "", False), 2),
    (("Samsung Internet", "26.0", "Android", "14", "mobile", "Samsung", "SM-A546E", True), 2),
    (("Googlebot", "2.1", "Other", "", "bot", "Spider", "Desktop", False), 2),
    (("bingbot", "2.0", "Other", "", "bot", "Spider", "Desktop", False), 1),
])

# country, region, city, language, IP prefix (documentation ranges only)
PLACES = _weighted([
    (("JP", "Tokyo", "Shibuya", "ja-JP", "203.0.113"), 25),
    (("JP", "Tokyo", "Shinjuku", "ja-JP", "203.0.113"), 15),
    (("JP", "Tokyo", "Minato", "ja-JP", "198.51.100"), 10),
    (("JP", "Kanagawa", "Yokohama", "ja-JP", "198.51.100"), 12),
    (("JP", "Saitama", "Saitama", "ja-JP", "192.0.2"), 6),
    (("JP", "Chiba", "Funabashi", "ja-JP", "192.0.2"), 5),
    (("JP", "Osaka", "Osaka", "ja-JP", "203.0.113"), 6),
    (("JP", "Aichi", "Nagoya", "ja", "198.51.100"), 3),
    (("JP", "Fukuoka", "Fukuoka", "ja-JP", "192.0.2"), 2),
    (("US", "California", "Los Angeles", "en-US", "2001:db8:10"), 3),
    (("KR", "Seoul", "Seoul", "ko-KR", "2001:db8:20"), 4),
    (("TW", "Taipei", "Taipei", "zh-TW", "2001:db8:30"), 4),
    (("CN", "Shanghai", "Shanghai", "zh-CN", "2001:db8:40"), 3),
    (("GB", "England", "London", "en-GB", "2001:db8:50"), 1),
    (("FR", "Île-de-France", "Paris", "fr-FR", "2001:db8:60"), 1),
])
NETWORKS = _weighted([("4g", 85), ("3g", 10), ("2g", 3), ("slow-2g", 2)])
TREATMENTS = ["futae", "hyaluronic", "datsumo"]  # clinic.content.TREATMENTS
#: What a reservation of each is worth to the site's track(): its first price (yen).
TREATMENT_YEN = [29800, 39800, 198000]
CONVERSION_PERCENT = 18  # of sessions with at least 3 events


def _col(rows: Sequence[tuple[object, ...]], index: int) -> list[object]:
    return [row[index] for row in rows]


def first_day(end: int, days: int) -> int:
    """Midnight in Tokyo ``days - 1`` days before ``end``, as epoch seconds."""
    return (end + TOKYO_OFFSET) // DAY * DAY - TOKYO_OFFSET - (days - 1) * DAY


def statement_params(rng_seed: int, days: int, end: int) -> dict[str, object]:
    day0 = first_day(end, days)
    params: dict[str, object] = {
        "seed": rng_seed, "days": days, "first_day": day0, "end": end,
        "pages": PAGES, "landing": LANDING, "not_found": NOT_FOUND, "terms": SEARCH_TERMS,
        "hours": HOURS,
        "lens": SESSION_LENGTHS, "networks": NETWORKS, "treatments": TREATMENTS,
        "treatment_yen": TREATMENT_YEN,
        "conv": CONVERSION_PERCENT,
    }
    for i, name in enumerate(["channel", "ref", "usrc", "umed", "ucamp", "clid", "lp"]):
        params["src_" + name] = _col(SOURCES, i)
    for i, name in enumerate(["browser", "bver", "os", "osver", "dtype", "brand", "model",
                              "ect"]):
        params["dev_" + name] = _col(DEVICES, i)
    for i, name in enumerate(["country", "region", "city", "lang", "ip"]):
        params["geo_" + name] = _col(PLACES, i)
    return params


