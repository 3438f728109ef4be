"""The beacon's reports, checked and classified (``consent.reports``) and built into wire
events (``capture.events``): pure functions, so every rule is tested without a server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from consent_mw import wire
from consent_mw.capture.events import Interaction, SiteEvent, build_site_event
from consent_mw.consent.reports import MAX_REPORTS, Rules, Tagged, classify, parse_reports
from consent_mw.http import BadRequest
from consent_mw.ratelimit import RateLimit
from consent_mw.settings import Settings

PHONE, EMAIL = "090-1234-5678", "taro.yamada@example.jp"


@pytest.fixture
def rules(make_settings: Callable[..., Settings]) -> Rules:
    return Rules.of(make_settings(beacon=True, beacon_path_hosts=("partner.example",
                                                                  "ÄRZTE.example")))


def built(report: Any, rules: Rules, host: str = "clinic.example") -> dict[str, Any]:
    """The wire event a report becomes, as the worker builds it."""
    found = classify(report, rules)
    assert isinstance(found, Interaction)
    event, _ = build_site_event(SiteEvent(
        kind="interaction", ts=1, consent={"analytics": True}, visitor_id="v" * 32,
        session_id="s" * 16, consent_id="c" * 16, host=host, path=found.page,
        interaction=found), "0" * 32)
    jsonschema.validate(event, wire.EVENT_SCHEMA)
    return event


def targets(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "host", "path", "target_host", "target_path", "target", "scroll_depth",
            "engaged_seconds")
    return {k: event[k] for k in keys if k in event}


def test_a_tel_link_is_that_it_happened_and_where_never_the_number(rules: Rules) -> None:
    event = built({"k": "tel", "p": "/access"}, rules)
    assert targets(event) == {"name": "tel", "host": "clinic.example", "path": "/access"}
    # The number never travels: a report that carries one is refused whole.
    with pytest.raises(ValueError, match="exactly k, p"):
        classify({"k": "tel", "p": "/access", "u": f"tel:{PHONE}"}, rules)


def test_a_mailto_link_never_carries_the_address(rules: Rules) -> None:
    assert targets(built({"k": "mailto", "p": "/"}, rules)) == {
        "name": "mailto", "host": "clinic.example", "path": "/"}
    with pytest.raises(ValueError):
        classify({"k": "mailto", "p": "/", "u": f"mailto:{EMAIL}"}, rules)


def test_an_outbound_link_keeps_its_host_only_unless_the_host_is_allowlisted(
        rules: Rules) -> None:
    other = built({"k": "out", "p": "/", "u": "https://Other.Example:8443/a/b?ref=x#top"},
                  rules)
    assert targets(other) == {"name": "outbound", "host": "clinic.example", "path": "/",
                              "target_host": "other.example"}
    partner = built({"k": "out", "p": "/",
                     "u": f"https://user:pw@www.partner.example/book/{PHONE}/{EMAIL}?q=1#f"},
                    rules)
    assert targets(partner) == {"name": "outbound", "host": "clinic.example", "path": "/",
                                "target_host": "www.partner.example",
                                "target_path": "/book/[phone]/[email]"}
    # Only whole labels: a look-alike host is not a subdomain of an allowlisted one.
    assert "target_path" not in built({"k": "out", "p": "/",
                                       "u": "https://evilpartner.example/x"}, rules)


def test_an_international_host_is_kept_in_its_ascii_form(rules: Rules) -> None:
    event = built({"k": "out", "p": "/", "u": "https://ärzte.example/termin"}, rules)
    assert event["target_host"] == "xn--rzte-koa.example"
    assert event["target_path"] == "/termin"  # allowlisted as ÄRZTE.example
    # What a browser sends (its URL parser does the same): the same host.
    assert built({"k": "out", "p": "/", "u": "https://xn--rzte-koa.example/t"}, rules)[
        "target_host"] == "xn--rzte-koa.example"


def test_app_links_name_the_app_never_the_account(rules: Rules) -> None:
    cases = {"https://line.me/R/ti/p/@someaccount": ("line.me", "line"),
             "https://liff.line.me/1234-abcd?acc=x": ("liff.line.me", "line"),
             "https://www.instagram.com/someaccount/": ("www.instagram.com", "instagram"),
             "https://m.instagram.com/someaccount": ("m.instagram.com", "instagram")}
    for url, (host, app) in cases.items():
        event = built({"k": "out", "p": "/", "u": url}, rules)
        assert targets(event) == {"name": "app", "host": "clinic.example", "path": "/",
                                  "target_host": host, "target": app}
        assert "someaccount" not in json.dumps(event)


def test_app_hosts_come_from_the_settings(make_settings: Callable[..., Settings]) -> None:
    rules = Rules.of(make_settings(beacon_app_hosts=("wa.me=whatsapp",)))
    assert built({"k": "out", "p": "/", "u": "https://wa.me/81901234567"}, rules)[
        "target"] == "whatsapp"
    assert built({"k": "out", "p": "/", "u": "https://line.me/R/ti/p/@a"}, rules)[
        "name"] == "outbound"


def test_downloads_keep_extension_and_path(rules: Rules) -> None:
    assert targets(built({"k": "download", "p": "/fees", "u": "/files/Price.PDF?v=2"},
                         rules)) == {"name": "download", "host": "clinic.example",
                                     "path": "/fees", "target_path": "/files/Price.PDF",
                                     "target": "pdf"}
    # Off the site, a path is kept only for a listed host, as for outbound links: a download
    # report must not be a way round that rule, nor round the app rule (an account).
    off_site = built({"k": "download", "p": "/", "u": "https://cdn.example/a/b.xlsx#x"}, rules)
    assert (off_site["target_host"], off_site.get("target_path"), off_site["target"]) == (
        "cdn.example", None, "xlsx")
    for url in ("https://line.me/R/ti/p/@someaccount", "https://other.example/users/alice"):
        assert "target_path" not in built({"k": "download", "p": "/", "u": url}, rules)
        assert "target_path" not in built({"k": "form", "p": "/", "id": "", "a": url}, rules)
    # A link with the download attribute and an extension the site does not list: the
    # download counts, without an extension.
    unlisted = built({"k": "download", "p": "/", "u": "/export/report.odt"}, rules)
    assert unlisted["target_path"] == "/export/report.odt" and "target" not in unlisted
    assert "target" not in built({"k": "download", "p": "/", "u": "/export/.hidden"}, rules)


def test_extensions_come_from_the_settings(make_settings: Callable[..., Settings]) -> None:
    rules = Rules.of(make_settings(beacon_download_extensions=(".ODT", "epub")))
    assert built({"k": "download", "p": "/", "u": "/a.odt"}, rules)["target"] == "odt"
    assert "target" not in built({"k": "download", "p": "/", "u": "/a.pdf"}, rules)


def test_a_form_is_its_id_and_action_path_never_a_value(rules: Rules) -> None:
    event = built({"k": "form", "p": "/contact", "id": 'contact "form"<b>',
                   "a": "/contact/send?name=Taro&tel=09012345678"}, rules)
    assert targets(event) == {"name": "form", "host": "clinic.example", "path": "/contact",
                              "target_path": "/contact/send", "target": "contact__form__b_"}
    assert built({"k": "form", "p": "/", "id": "予約フォーム", "a": ""}, rules)[
        "target"] == "予約フォーム"
    # Scrubbed before the id is cleaned: once "@", "+" and spaces are "_", no pattern matches.
    for pii in (f"tel-{PHONE}", "alice@example.com", "090 1234 5678", "+81 90 1234 5678"):
        target = built({"k": "form", "p": "/", "id": pii, "a": "/"}, rules)["target"]
        assert "alice" not in target and "1234" not in target, target
    assert "target" not in built({"k": "form", "p": "/", "id": "", "a": "/"}, rules)
    with pytest.raises(ValueError, match="control"):
        classify({"k": "form", "p": "/", "id": "a\nb", "a": "/"}, rules)


def test_strings_the_wire_cannot_carry_are_refused_before_they_are_queued(
        rules: Rules) -> None:
    """A lone surrogate passes JSON and would fail the worker's encoding (a traceback and an
    error drop per report); a percent-encoded newline passes the raw check."""
    with pytest.raises(ValueError, match="Unicode"):
        classify({"k": "custom", "p": "/", "n": "x\udfff"}, rules)
    with pytest.raises(ValueError, match="Unicode"):
        classify({"k": "tel", "p": "/\ud800"}, rules)
    with pytest.raises(ValueError, match="control"):
        classify({"k": "tel", "p": "/u/090%0A1234%0A5678"}, rules)


def test_scroll_depth_is_kept_in_quarters(rules: Rules) -> None:
    depths = {0: 0, 24: 0, 25: 25, 63: 50, 99: 75, 100: 100}
    for sent, kept in depths.items():
        assert built({"k": "scroll", "p": "/", "d": sent}, rules)["scroll_depth"] == kept
    for bad in (101, -1, 50.5, True, "50"):
        with pytest.raises(ValueError):
            classify({"k": "scroll", "p": "/", "d": bad}, rules)


def test_engaged_time_is_capped(rules: Rules) -> None:
    assert built({"k": "engaged", "p": "/", "s": 42}, rules)["engaged_seconds"] == 42
    assert built({"k": "engaged", "p": "/", "s": 10**6}, rules)["engaged_seconds"] == \
        wire.MAX_ENGAGED_SECONDS
    for bad in (-1, 2**40, 1.5, None):
        with pytest.raises(ValueError):
            classify({"k": "engaged", "p": "/", "s": bad}, rules)


def test_the_page_path_is_read_like_a_pageview_path(rules: Rules) -> None:
    event = built({"k": "tel", "p": f"/%E4%BA%88%E7%B4%84/{PHONE}?mail={EMAIL}#x"}, rules)
    assert event["path"] == "/予約/[phone]"
    for bad in ("", "access", "https://clinic.example/", "/a\x00"):
        with pytest.raises(ValueError):
            classify({"k": "tel", "p": bad}, rules)


def test_a_tagged_element_is_a_custom_event_by_its_name(rules: Rules) -> None:
    assert classify({"k": "custom", "p": "/", "n": " book-now "}, rules) == \
        Tagged("book-now", "/")
    for bad in ("", "   ", "x" * 129, 3):
        with pytest.raises(ValueError):
            classify({"k": "custom", "p": "/", "n": bad}, rules)


@pytest.mark.parametrize("report", [
    "tel", [], {"p": "/"}, {"k": "call", "p": "/"}, {"k": "tel"},
    {"k": "out", "p": "/", "u": "/internal"}, {"k": "out", "p": "/", "u": "javascript:x()"},
    {"k": "out", "p": "/", "u": "https://"}, {"k": "out", "p": "/", "u": "https://a b.example/"},
    {"k": "out", "p": "/", "u": "https://[zz::1]/"}, {"k": "out", "p": "/", "u": "x" * 2049},
    {"k": "download", "p": "/", "u": "//cdn.example/a.pdf"},
    {"k": "form", "p": "/", "id": "x"}, {"k": "form", "p": "/", "id": "x" * 129, "a": "/"},
])
def test_a_bad_report_is_refused_with_a_reason(report: Any, rules: Rules) -> None:
    with pytest.raises(ValueError) as caught:
        classify(report, rules)
    assert str(caught.value)


def test_a_batch_is_refused_whole_at_its_first_bad_report(rules: Rules) -> None:
    good = {"k": "tel", "p": "/"}
    with pytest.raises(BadRequest) as caught:
        parse_reports({"events": [good, {"k": "scroll", "p": "/", "d": 200}]}, rules)
    assert (caught.value.status, caught.value.code) == (400, "bad_report")
    assert caught.value.reason.startswith("events[1]: 'd'")
    for body in ({}, {"events": []}, {"events": [good] * (MAX_REPORTS + 1)},
                 {"events": [good], "extra": 1}, [good], {"events": good}):
        with pytest.raises(BadRequest):
            parse_reports(body, rules)
    assert len(parse_reports({"events": [good] * MAX_REPORTS}, rules)) == MAX_REPORTS


def test_a_batch_takes_one_token_per_report() -> None:
    limit = RateLimit(5, 60.0)
    assert limit.check("v|ip", cost=3) is None
    wait = limit.check("v|ip", cost=3)
    assert wait is not None and 0 < wait <= 12  # one token more than the 2 left
    assert limit.check("v|ip", cost=2) is None  # a refusal took nothing
    assert RateLimit(2, 60.0).check("k", cost=10) is None  # never more than the bucket
