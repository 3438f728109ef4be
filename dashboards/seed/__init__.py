"""Synthetic clinic traffic for demos and benchmarks, generated inside ClickHouse.

Rows are produced by ``INSERT ... SELECT FROM numbers()``: sessions are numbered, each
session expands (``arrayJoin(range(len))``) into its events, and every attribute is a
deterministic hash of ``(rng_seed, session, event)`` picked from weighted lists. Python never
touches a row, so 10M events take seconds, not minutes.

Consent mix per visitor: ~40% gave no analytics consent (their views are anonymous hourly
counts: path + device type only), then analytics only, analytics + location, and everything
(marketing adds utm and click ids). ~12% send GPC, which refuses marketing. Every IP is from
the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32).

Longer than the ~300 lines other modules keep to, on purpose: the two ``INSERT ... SELECT``
statements index the weighted lists above them by position (``{dev_browser:Array(String)}[di]``),
so lists and SQL stay in one file where they can be read and changed together.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TypeVar

from collector.query.rollup import mark_range_dirty
from collector.store import Store

DAY = 86400
TOKYO_OFFSET = 9 * 3600  # JST has no DST: midnight JST is 15:00 UTC the day before


T = TypeVar("T")


def _weighted(pairs: Sequence[tuple[T, int]]) -> list[T]:
    """Expand (value, weight) pairs into a list a uniform hash can index."""
    return [value for value, weight in pairs for _ in range(weight)]


PAGES = _weighted([
    ("/", 20), ("/treatments/", 8), ("/treatments/hyaluronic-acid", 7),
    ("/treatments/botox", 6), ("/treatments/whitening", 5), ("/treatments/hair-removal", 6),
    ("/treatments/laser-toning", 4), ("/treatments/dermapen", 2), ("/price", 8),
    ("/doctors", 4), ("/access", 5), ("/faq", 4), ("/search", 6), ("/reservation", 6),
    ("/campaign/autumn", 2), ("/column/skincare-basics", 2), ("/privacy", 1),
    ("/cases/before-after", 3),
])
LANDING = _weighted([
    ("/lp/hyaluronic", 4), ("/lp/hair-removal", 3), ("/lp/botox-first", 2),
    ("/lp/whitening-campaign", 2),
])
SEARCH_TERMS = _weighted([
    ("ヒアルロン酸", 8), ("ボトックス 料金", 6), ("医療脱毛", 7), ("シミ取り", 5),
    ("ダウンタイム", 4), ("予約 キャンセル", 3), ("ほうれい線", 4), ("ピーリング", 3),
    ("クマ 治療", 2), ("モニター募集", 2), ("ニキビ跡", 3), ("料金表", 2), ("whitening", 1),
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
    (("ad", "www.google.com", "google", "cpc", "hair_removal_brand", "gbraid", True), 3),
    (("ad", "search.yahoo.co.jp", "yahoo", "cpc", "botox_first", "yclid", True), 5),
    (("social", "l.instagram.com", "instagram", "social", "autumn_campaign", "fbclid", True), 8),
    (("social", "line.me", "line", "message", "october_newsletter", "", False), 5),
    (("social", "t.co", "", "", "", "", False), 3),
    (("ad", "www.facebook.com", "facebook", "paid_social", "whitening_ig", "fbclid", True), 2),
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
TREATMENTS = ["hyaluronic", "botox", "whitening", "hair_removal", "laser_toning"]
CONVERSION_PERCENT = 18  # of sessions with at least 3 events


def _col(rows: Sequence[tuple[object, ...]], index: int) -> list[object]:
    return [row[index] for row in rows]


def _first_day(end: int, days: int) -> int:
    """Midnight in Tokyo ``days - 1`` days before ``end``, as epoch seconds."""
    return (end + TOKYO_OFFSET) // DAY * DAY - TOKYO_OFFSET - (days - 1) * DAY


def _params(rng_seed: int, days: int, end: int) -> dict[str, object]:
    first_day = _first_day(end, days)
    params: dict[str, object] = {
        "seed": rng_seed, "days": days, "first_day": first_day, "end": end,
        "pages": PAGES, "landing": LANDING, "terms": SEARCH_TERMS, "hours": HOURS,
        "lens": SESSION_LENGTHS, "networks": NETWORKS, "treatments": TREATMENTS,
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


# Per-visitor attributes from the visitor number `v`; per-session ones from `s`.
_VISITOR = """
    lower(hex(cityHash64({seed:UInt64}, 'v', v))) || lower(hex(cityHash64({seed:UInt64}, 'w', v)))
        AS visitor_id,
    lower(hex(cityHash64({seed:UInt64}, 'c', v))) AS consent_id,
    cityHash64({seed:UInt64}, 'va', v) AS hv,
    hv % 100 AS lvl_roll,
    bitShiftRight(hv, 8) % 100 < 12 AS gpc,
    multiIf(lvl_roll < 40, 0, lvl_roll < 65, 1, lvl_roll < 80, 2, 3) AS lvl,
    lvl >= 1 AS c_analytics, lvl >= 2 AS c_location, lvl >= 3 AND NOT gpc AS c_marketing,
    lvl_roll < 18 AS rejected,
    1 + bitShiftRight(hv, 16) % length({dev_browser:Array(String)}) AS di,
    1 + bitShiftRight(hv, 32) % length({geo_country:Array(String)}) AS gi,
    bitShiftRight(hv, 40) % 100 < 3 AS sends_user_id"""

_SESSION_START = """
    toDateTime64(least({end:Int64} - 60,
        {first_day:Int64} + (cityHash64({seed:UInt64}, 'day', s) % {days:UInt32}) * 86400
        + {hours:Array(UInt8)}[
            1 + cityHash64({seed:UInt64}, 'hr', s) % length({hours:Array(UInt8)})]
          * 3600
        + cityHash64({seed:UInt64}, 'mn', s) % 3600), 3, 'UTC')"""

EVENTS_SQL = f"""
INSERT INTO events (event_id, ts, kind, name, consent, gpc, host, path, method, status,
    search_terms, referrer_host, channel, language, network_type, save_data, browser,
    browser_version, os, os_version, device_type, device_brand, device_model, visitor_id,
    session_id, consent_id, user_id, ip, ip_prefix, country, region, city, utm_source,
    utm_medium, utm_campaign, utm_term, utm_content, click_id_type, properties)
SELECT
    generateUUIDv4(s * 64 + i) AS event_id,
    if(c_analytics, ts0, toStartOfHour(ts0)) AS ts,
    multiIf(NOT c_analytics, 'anonymous', is_conv, 'custom', 'pageview') AS kind,
    if(is_conv AND c_analytics, 'reservation', 'pageview') AS name,
    if(c_analytics, map('necessary', true, 'analytics', true, 'location', c_location,
        'marketing', c_marketing), map()) AS consent,
    gpc AND c_analytics AS gpc,
    'clinic.example' AS host,
    multiIf(is_conv, '/reservation', i = 0, entry, page) AS path,
    if(c_analytics, 'GET', '') AS method,
    if(c_analytics, if(he % 200 = 0, 404, 200), 0) AS status,
    if(c_analytics AND path = '/search',
        {{terms:Array(String)}}[1 + he % length({{terms:Array(String)}})], '') AS search_terms,
    if(c_analytics, if(i = 0, src_ref, 'clinic.example'), '') AS referrer_host,
    if(c_analytics, if(i = 0, src_channel, 'internal'), '') AS channel,
    if(c_analytics, {{geo_lang:Array(String)}}[gi], '') AS language,
    if(c_analytics AND {{dev_ect:Array(Bool)}}[di],
       {{networks:Array(String)}}[
           1 + bitShiftRight(hv, 48) % length({{networks:Array(String)}})], '')
       AS network_type,
    if(c_analytics AND {{dev_ect:Array(Bool)}}[di], bitShiftRight(hv, 52) % 10 = 0, NULL)
        AS save_data,
    if(c_analytics, {{dev_browser:Array(String)}}[di], '') AS browser,
    if(c_analytics, {{dev_bver:Array(String)}}[di], '') AS browser_version,
    if(c_analytics, {{dev_os:Array(String)}}[di], '') AS os,
    if(c_analytics, {{dev_osver:Array(String)}}[di], '') AS os_version,
    {{dev_dtype:Array(String)}}[di] AS device_type,
    if(c_analytics, {{dev_brand:Array(String)}}[di], '') AS device_brand,
    if(c_analytics, {{dev_model:Array(String)}}[di], '') AS device_model,
    if(c_analytics, visitor_id, '') AS visitor_id,
    if(c_analytics, lower(hex(cityHash64({{seed:UInt64}}, 's', s))), '') AS session_id,
    if(c_analytics, consent_id, '') AS consent_id,
    if(c_analytics AND sends_user_id, lower(hex(cityHash64({{seed:UInt64}}, 'u', v)))
        || lower(hex(cityHash64({{seed:UInt64}}, 'uu', v))), '') AS user_id,
    if(c_analytics, {{geo_ip:Array(String)}}[gi]
        || if(position({{geo_ip:Array(String)}}[gi], ':') > 0,
        '::' || toString(1 + hv % 250), '.' || toString(1 + hv % 250)), '') AS ip,
    if(c_analytics, {{geo_ip:Array(String)}}[gi]
        || if(position({{geo_ip:Array(String)}}[gi], ':') > 0,
        '::/48', '.0/24'), '') AS ip_prefix,
    if(c_location, {{geo_country:Array(String)}}[gi], '') AS country,
    if(c_location, {{geo_region:Array(String)}}[gi], '') AS region,
    if(c_location, {{geo_city:Array(String)}}[gi], '') AS city,
    if(c_marketing AND i = 0, src_usrc, '') AS utm_source,
    if(c_marketing AND i = 0, src_umed, '') AS utm_medium,
    if(c_marketing AND i = 0, src_ucamp, '') AS utm_campaign,
    '' AS utm_term,
    '' AS utm_content,
    if(c_marketing AND i = 0, src_clid, '') AS click_id_type,
    if(is_conv AND c_analytics, map('treatment',
        {{treatments:Array(String)}}[1 + he % length({{treatments:Array(String)}})],
        'first_visit', if(he % 3 = 0, 'false', 'true')), map()) AS properties
FROM (
    SELECT
        number AS s,
        s % {{visitors:UInt64}} AS v,
        {_VISITOR},
        cityHash64({{seed:UInt64}}, 's', s) AS hs,
        1 + hs % length({{src_channel:Array(String)}}) AS si,
        {{src_channel:Array(String)}}[si] AS src_channel,
        {{src_ref:Array(String)}}[si] AS src_ref,
        {{src_usrc:Array(String)}}[si] AS src_usrc,
        {{src_umed:Array(String)}}[si] AS src_umed,
        {{src_ucamp:Array(String)}}[si] AS src_ucamp,
        {{src_clid:Array(String)}}[si] AS src_clid,
        if({{src_lp:Array(Bool)}}[si],
           {{landing:Array(String)}}[1 + bitShiftRight(hs, 8) % length({{landing:Array(String)}})],
           {{pages:Array(String)}}[1 + bitShiftRight(hs, 8) % length({{pages:Array(String)}})])
           AS entry,
        {{lens:Array(UInt8)}}[1 + bitShiftRight(hs, 24) % length({{lens:Array(UInt8)}})] AS len,
        len >= 3 AND bitShiftRight(hs, 40) % 100 < {{conv:UInt8}} AS converts,
        {_SESSION_START} AS start,
        arrayJoin(range(len)) AS i,
        cityHash64({{seed:UInt64}}, 'e', s, i) AS he,
        converts AND i = len - 1 AS is_conv,
        {{pages:Array(String)}}[1 + he % length({{pages:Array(String)}})] AS page,
        least(start + toIntervalSecond(i * (20 + he % 160)),
              toDateTime64({{end:Int64}}, 3, 'UTC')) AS ts0
    FROM numbers({{first_session:UInt64}}, {{sessions:UInt64}})
    WHERE {{dev_dtype:Array(String)}}[di] != 'bot'
)
LIMIT {{limit:UInt64}}
"""

RECORDS_SQL = f"""
INSERT INTO consent_records (record_id, consent_id, visitor_id, previous_record_id, ts, event,
    method, component, policy_version, policy_hash, locale, categories, services, gcm, gpc,
    host, path, ua_family)
SELECT
    generateUUIDv4(v * 2 + step) AS record_id,
    consent_id,
    if(step = 1 AND c_analytics, visitor_id, '') AS visitor_id,
    '' AS previous_record_id,
    start + toIntervalSecond(step * (3 + hv % 40)) AS ts,
    if(step = 0, 'shown', 'decided') AS event,
    multiIf(step = 0, 'none', lvl = 3, 'accept_all', lvl = 0, 'reject_all', 'save') AS method,
    'banner' AS component,
    '2024-04-23+3f1c0a9b8e7d' AS policy_version,
    repeat('ab', 32) AS policy_hash,
    if({{geo_lang:Array(String)}}[gi] LIKE 'ja%', 'ja', 'en') AS locale,
    if(step = 0, map(), map('necessary', true, 'analytics', c_analytics,
        'location', c_location, 'marketing', c_marketing)) AS categories,
    if(step = 0, map(), map('google_analytics', c_analytics)) AS services,
    if(step = 0, map(), map(
        'analytics_storage', if(c_analytics, 'granted', 'denied'),
        'ad_storage', if(c_marketing, 'granted', 'denied'),
        'ad_user_data', if(c_marketing, 'granted', 'denied'),
        'ad_personalization', if(c_marketing, 'granted', 'denied'))) AS gcm,
    gpc,
    'clinic.example' AS host,
    '/' AS path,
    {{dev_browser:Array(String)}}[di] AS ua_family
FROM (
    SELECT
        number AS v,
        v AS s,
        {_VISITOR},
        {_SESSION_START} AS start,
        arrayJoin(if(lvl = 0 AND NOT rejected, [0], [0, 1])) AS step
    FROM numbers({{first_visitor:UInt64}}, {{visitor_count:UInt64}})
    WHERE {{dev_dtype:Array(String)}}[di] != 'bot'
)
"""

# Known bots' hits are never events (collector.ingest counts them in bot_hits): the seeded
# bot visitors above get neither events nor records, and their hits are seeded here, per hour.
BOT_HITS_SQL = """
INSERT INTO bot_hits (hour, kind, hits)
SELECT toDateTime({first_day:Int64} + intDiv(number, 2) * 3600, 'UTC') AS hour,
       if(number % 2 = 0, 'pageview', 'anonymous') AS kind,
       cityHash64({seed:UInt64}, 'bot', number) % (2 * {rate:UInt64} + 1) AS hits
FROM numbers({hours:UInt64} * 2)
WHERE hits > 0 AND hour <= toDateTime({end:Int64}, 'UTC')
"""
BOT_PERCENT = 3  # of the seeded events: what crawlers add to a small clinic's site

CHUNK_SESSIONS = 1_000_000


def seed(store: Store, events: int, days: int, rng_seed: int = 1,
         *, end: int | None = None) -> dict[str, int]:
    """Insert about ``events`` events over the last ``days`` days, and their consent records.

    Deterministic for a given ``rng_seed`` and ``end`` (epoch seconds, default now). Returns
    the counts written. Bots get neither events nor consent records, only hits in ``bot_hits``.
    """
    if events < 0 or days < 1:
        raise ValueError("events must be >= 0 and days >= 1")
    end = int(time.time()) if end is None else end
    sessions = int(events / MEAN_SESSION * 1.05) + 1
    visitors = max(1, int(sessions * 0.6))
    params = _params(rng_seed, days, end)
    params["visitors"] = visitors
    before = int(store.scalar("SELECT count() FROM events"))
    written = 0
    first = 0
    while written < events and first < sessions * 2:
        chunk = {**params, "first_session": first, "sessions": CHUNK_SESSIONS,
                 "limit": events - written}
        store.command(EVENTS_SQL, chunk, settings={"max_insert_threads": 2})
        written = int(store.scalar("SELECT count() FROM events")) - before
        first += CHUNK_SESSIONS
    records_before = int(store.scalar("SELECT count() FROM consent_records"))
    # Only visitors whose first session was generated get records (s = v for v < sessions).
    record_visitors = min(visitors, first)
    for start in range(0, record_visitors, CHUNK_SESSIONS):
        store.command(RECORDS_SQL, {**params, "first_visitor": start,
                                    "visitor_count": min(CHUNK_SESSIONS,
                                                         record_visitors - start)})
    records = int(store.scalar("SELECT count() FROM consent_records")) - records_before
    bots_before = int(store.scalar("SELECT sum(hits) FROM bot_hits"))
    store.command(BOT_HITS_SQL, {**params, "hours": days * 24,
                                 "rate": max(1, events * BOT_PERCENT // 100 // (days * 48))})
    bot_hits = int(store.scalar("SELECT sum(hits) FROM bot_hits")) - bots_before
    # Days already rolled up now have more events: dashboards scan them until rebuilt.
    mark_range_dirty(store, _first_day(end, days), end)
    return {"events": written, "consent_records": records, "visitors": visitors,
            "bot_hits": bot_hits}
