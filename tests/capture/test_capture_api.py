"""track() and identify(): consent-gated, allow-listed, and never raising into the site."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from starlette.requests import Request
from support.capture import RecordingTransport, make_ctx, make_scope

from consent_mw.capture.api import identify, track
from consent_mw.capture.pipeline import Capture
from consent_mw.ids import hash_user_id
from consent_mw.settings import Settings
from consent_mw.state import SCOPE_KEY


def request_with(settings: Settings, granted: tuple[str, ...],
                 transport: RecordingTransport) -> tuple[Request, Capture]:
    capture = Capture(settings, transport=transport)
    scope = make_scope("/reserve/done", headers={"host": "clinic.example.jp"})
    scope[SCOPE_KEY] = make_ctx(settings, granted, capture=capture)
    return Request(scope), capture


def test_track_from_a_starlette_request(make_settings: Callable[..., Settings],
                                        transport: RecordingTransport) -> None:
    request, capture = request_with(make_settings(), ("analytics",), transport)
    track(request, "booking_completed", {"treatment": "whitening"})
    capture.shutdown(5)
    (event,) = transport.events
    assert event["kind"] == "custom" and event["name"] == "booking_completed"
    assert event["properties"] == {"treatment": "whitening"}
    assert event["path"] == "/reserve/done"


def test_track_from_a_raw_scope(make_settings: Callable[..., Settings],
                                transport: RecordingTransport) -> None:
    request, capture = request_with(make_settings(), ("analytics", "marketing"), transport)
    track(request.scope, "ad_booking", conversion=True)
    capture.shutdown(5)
    assert transport.events[0]["conversion"] is True


@pytest.mark.parametrize("granted", [(), ("marketing",), ("location", "marketing")])
def test_nothing_is_sent_without_analytics(make_settings: Callable[..., Settings],
                                           transport: RecordingTransport,
                                           granted: tuple[str, ...]) -> None:
    request, capture = request_with(make_settings(), granted, transport)
    track(request, "booking_completed", {"x": 1})
    identify(request, "account-42", {"age": 40})
    capture.shutdown(5)
    assert transport.events == []
    assert capture.stats()["dropped"]["no_consent"] == 2


def test_identify_sends_a_keyed_hash_and_allow_listed_traits(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    settings = make_settings()
    request, capture = request_with(settings, ("analytics",), transport)
    identify(request, "account-42", {"age": 67, "zip": "170-0013", "gender": "female",
                                     "occupation": "teacher", "email": "h@example.jp",
                                     "name": "Hanako Sato", "phone": "090-1234-5678"})
    capture.shutdown(5)
    (event,) = transport.events
    assert event["user_id"] == hash_user_id(settings.hash_key, "account-42")
    assert event["traits"] == {"age_band": "60-69", "zip3": "170", "gender": "female",
                               "occupation": "teacher"}
    assert "account-42" not in str(event)


def test_calls_without_a_consent_context_record_nothing_and_log_no_error(
        make_settings: Callable[..., Settings], transport: RecordingTransport,
        caplog: pytest.LogCaptureFixture) -> None:
    capture = Capture(make_settings(), transport=transport)
    scope = make_scope("/reserve/done")
    # A value under the scope key that the middleware did not put there grants nothing.
    scope[SCOPE_KEY] = {"capture": capture, "granted": ("analytics", "marketing")}
    with caplog.at_level(logging.DEBUG, logger="consent_mw"):
        for request in ({"type": "http"}, object(), None, scope, Request(scope)):
            track(request, "x", conversion=True)
            identify(request, "u", {"age": 30})
    capture.shutdown(5)
    assert (transport.events, transport.records) == ([], [])
    stats = capture.stats()
    assert (stats["sent"], stats["records_sent"], stats["worker_errors"]) == (0, 0, 0)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_broken_capture_never_raises_into_the_site(make_settings: Callable[..., Settings]
                                                     ) -> None:
    class Broken:
        def custom(self, *a: object, **k: object) -> None:
            raise RuntimeError("boom")

        identify = custom

    scope = make_scope()
    scope[SCOPE_KEY] = make_ctx(make_settings(), ("analytics",), capture=Broken())
    track(scope, "x")
    identify(scope, "u")


def test_a_failing_track_is_counted_by_the_capture_and_not_raised(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    request, capture = request_with(make_settings(), ("analytics",), transport)
    track(request, "booking_completed", {"ok": 1})
    assert capture.stats()["dropped"]["error"] == 0
    request.scope[SCOPE_KEY].state = None  # a context the capture cannot read
    track(request, "booking_completed", {"ok": 1})
    identify(request, "account-42", {})
    capture.shutdown(5)
    assert len(transport.events) == 1
    assert capture.stats()["dropped"]["error"] == 2


def test_track_carries_a_value_in_its_currency_and_drops_one_that_is_not(
        make_settings: Callable[..., Settings], transport: RecordingTransport) -> None:
    from decimal import Decimal

    from jsonschema import Draft202012Validator

    from consent_mw.wire import EVENT_SCHEMA

    request, capture = request_with(make_settings(), ("analytics",), transport)
    track(request, "reservation", {"treatment": "futae"}, value=29800)
    track(request, "reservation", value=Decimal("1234.567"), currency="USD")
    for bad in (-1, float("nan"), float("inf"), True, "29800", 10 ** 13):
        track(request, "odd", value=bad)  # type: ignore[arg-type]
    track(request, "odd", value=100, currency="yen")
    capture.shutdown(5)
    first, second, *odd = transport.events
    assert (first["value"], first["currency"]) == (29800, "JPY")
    assert (second["value"], second["currency"]) == (1234.57, "USD")  # to the cent
    assert len(odd) == 7 and all("value" not in e and "currency" not in e for e in odd)
    validator = Draft202012Validator(EVENT_SCHEMA)
    assert all(list(validator.iter_errors(e)) == [] for e in transport.events)
    assert capture.stats()["dropped"].get("error", 0) == 0
