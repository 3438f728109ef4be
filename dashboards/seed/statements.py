"""The seeding statements: ``INSERT ... SELECT`` over numbered sessions and visitors.

Each statement reads the weighted lists of ``seed.traffic`` as array parameters and indexes
them by a hash of (rng_seed, session, event), so a seed is deterministic and Python never
touches a row. Longer than the ~300 lines other modules keep to, on purpose: a statement's
columns are best read beside each other.
"""

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

# A session drawn for a later hour of today than now happened at that hour yesterday:
# clamping it to "now" instead piled every such session into the last minute, so the
# realtime panel of a freshly seeded demo showed a crowd no clinic site has.
_SESSION_START = """
    toDateTime64(
        ({first_day:Int64} + (cityHash64({seed:UInt64}, 'day', s) % {days:UInt32}) * 86400
         + {hours:Array(UInt8)}[
             1 + cityHash64({seed:UInt64}, 'hr', s) % length({hours:Array(UInt8)})]
           * 3600
         + cityHash64({seed:UInt64}, 'mn', s) % 3600) AS drawn_start
        - if(drawn_start > {end:Int64} - 60, 86400, 0), 3, 'UTC')"""

EVENTS_SQL = f"""
INSERT INTO events (event_id, ts, kind, name, consent, gpc, host, path, method, status,
    search_terms, referrer_host, channel, language, network_type, save_data, browser,
    browser_version, os, os_version, device_type, device_brand, device_model, visitor_id,
    session_id, consent_id, user_id, ip, ip_prefix, country, region, city, utm_source,
    utm_medium, utm_campaign, utm_term, utm_content, click_id_type, properties, value,
    currency)
SELECT
    generateUUIDv4(s * 64 + i) AS event_id,
    if(c_analytics, ts0, toStartOfHour(ts0)) AS ts,
    multiIf(NOT c_analytics, 'anonymous', is_conv, 'custom', 'pageview') AS kind,
    if(is_conv AND c_analytics, 'reservation', 'pageview') AS name,
    if(c_analytics, map('necessary', true, 'analytics', true, 'location', c_location,
        'marketing', c_marketing), map()) AS consent,
    gpc AND c_analytics AS gpc,
    'clinic.example' AS host,
    multiIf(is_conv, '/reservation', c_analytics AND he % 200 = 0,
            {{not_found:Array(String)}}[
                1 + bitShiftRight(he, 8) % length({{not_found:Array(String)}})],
            i = 0, entry, page) AS path,
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
        'first_visit', if(he % 3 = 0, 'false', 'true')), map()) AS properties,
    -- what the site's track() says a reservation is worth: the treatment's first price
    if(is_conv AND c_analytics, toFloat64({{treatment_yen:Array(UInt32)}}[
        1 + he % length({{treatments:Array(String)}})]), 0) AS value,
    if(is_conv AND c_analytics, 'JPY', '') AS currency
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


# What the interaction beacon reports about the seeded page views (``consent_mw.static.
# beacon.js``): for each page of a visitor whose browser runs scripts, its scroll depth and
# engaged time when it is left (at the next page view, or after a dwell drawn for the last
# one), and on a visit's last page perhaps one tap or click on the demo site's own footer
# links; a search submitted from the page before /search, the reservation form before each
# reservation. Read back from the page views this seed just wrote (``since``), so every report
# is about a page that was viewed, in its visit, after it.
# name, target host, target path, target: the demo's footer links (clinic/templates/base.html).
INTERACTIONS_SQL = """
INSERT INTO events (event_id, ts, kind, name, consent, gpc, host, path, visitor_id,
    session_id, consent_id, target_host, target_path, target, scroll_depth, engaged_seconds)
SELECT
    generateUUIDv4(cityHash64(h, r.1)) AS event_id,
    least(ts + toIntervalMillisecond(r.2), toDateTime64({end:Int64}, 3, 'UTC')) AS ts,
    'interaction' AS kind, r.1 AS name, consent, gpc, host, path, visitor_id, session_id,
    consent_id, r.3 AS target_host, r.4 AS target_path, r.5 AS target,
    r.6 AS scroll_depth, r.7 AS engaged_seconds
FROM (
    SELECT *,
        -- of what the page view is, not its event_id: that is random (generateUUIDv4), and
        -- drawing from it made every seed of the same rng_seed report other clicks
        cityHash64({seed:UInt64}, 'ix', session_id, ts, kind, name, path) AS h,
        -- a reading time drawn for the last page: many glance, some read, a few stay long
        multiIf(h % 100 < 35, 2 + h % 8, h % 100 < 80, 10 + h % 90, 60 + h % 400) AS last_s,
        toInt64(ifNull(dateDiff('millisecond', ts, next_ts), toInt64(last_s) * 1000)) AS dwell_ms,
        -- visible and in use: most of a short dwell, less of a long one (tabs left open)
        toUInt32(least(1800, intDiv(dwell_ms * (35 + bitShiftRight(h, 8) % 60), 100000)))
            AS eng,
        toUInt8(least(100, 25 * intDiv(eng + bitShiftRight(h, 16) % 30, 25))) AS depth,
        bitShiftRight(h, 24) % 1000 AS c,
        if(device_type = 'mobile', 40, 5) AS tel_rate,
        multiIf(
            kind = 'custom', ('form', '', '/reservation', 'reservation-form'),
            next_path = '/search', ('form', '', '/search', 'site-search'),
            next_ts IS NOT NULL, ('', '', '', ''),
            c < tel_rate, ('tel', '', '', ''),
            c < tel_rate + 20, ('app', 'line.me', '', 'line'),
            c < tel_rate + 30, ('app', 'www.instagram.com', '', 'instagram'),
            c < tel_rate + 50, ('outbound', 'reserve.example.com', '/aladdin', ''),
            c < tel_rate + 62, ('download', '', '/static/price-list.pdf', 'pdf'),
            c < tel_rate + 66, ('mailto', '', '', ''),
            ('', '', '', '')) AS click,
        arrayConcat(
            if(kind = 'pageview', [('scroll', dwell_ms, '', '', '', depth, toUInt32(0))], []),
            if(kind = 'pageview' AND eng > 0,
               [('engaged', dwell_ms, '', '', '', toUInt8(0), eng)], []),
            -- a click comes before the page is left; a form before the reservation it sends
            if(click.1 != '', [(click.1,
                                toInt64(if(kind = 'custom', -1000, intDiv(dwell_ms * 7, 10))),
                                click.2, click.3, click.4, toUInt8(0), toUInt32(0))], [])
        ) AS reports
    FROM (
        SELECT event_id, ts, kind, name, consent, gpc, host, path, visitor_id, session_id,
               consent_id, device_type,
               -- the next page view of the visit (a reservation ends it: no next)
               if(kind = 'pageview', leadInFrame(toNullable(ts)) OVER w, NULL) AS next_ts,
               if(kind = 'pageview', leadInFrame(path) OVER w, '') AS next_path
        FROM events
        WHERE received_at >= {since:DateTime64(3)} AND host = 'clinic.example'
          AND session_id != '' AND (kind = 'pageview' OR name = 'reservation')
          AND cityHash64({seed:UInt64}, 'js', visitor_id) % 100 < {js:UInt8}
        WINDOW w AS (PARTITION BY session_id, kind ORDER BY ts
                     ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING)
    )
)
ARRAY JOIN reports AS r
"""
JS_PERCENT = 92  # of consenting visitors, whose browsers run the beacon
