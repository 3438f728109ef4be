"""Pure decision logic: payload parsing, GPC, Consent Mode signals, applying submissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from consent_mw.consent.categories import GCM_SIGNALS
from consent_mw.consent.decision import (
    ConsentError,
    apply_gpc,
    decide,
    gcm_default,
    gcm_signals,
    gpc_from_headers,
    parse_payload,
    record_event,
    to_payload,
    undecided,
)
from consent_mw.settings import Settings

Make = Callable[..., Settings]


@pytest.fixture
def settings(make_settings: Make) -> Settings:
    return make_settings()


def test_undecided_grants_only_necessary(settings: Settings) -> None:
    state = undecided(settings)
    assert not state.decided
    assert dict(state.categories) == {"necessary": True, "analytics": False,
                                      "location": False, "marketing": False}
    assert dict(state.services) == {"google_analytics": False}


def test_accept_all_grants_every_category_and_service(settings: Settings) -> None:
    state = decide(settings, undecided(settings), action="accept_all", now=1)
    assert all(state.categories.values())
    assert state.services == {"google_analytics": True}
    assert state.method == "accept_all" and state.consent_id and state.decided_at == 1


def test_reject_all_keeps_only_necessary(settings: Settings) -> None:
    state = decide(settings, undecided(settings), action="reject_all")
    assert [k for k, v in state.categories.items() if v] == ["necessary"]
    assert state.services == {"google_analytics": False}


def test_categories_missing_from_submission_are_refused(settings: Settings) -> None:
    state = decide(settings, undecided(settings), categories={"analytics": True})
    assert state.granted("analytics") and not state.granted("marketing")
    assert not state.granted("location") and state.method == "save"


def test_services_follow_category_when_not_given_and_are_explicit_when_given(
    settings: Settings,
) -> None:
    follow = decide(settings, undecided(settings), categories={"analytics": True})
    assert follow.services == {"google_analytics": True}
    explicit = decide(settings, undecided(settings), categories={"analytics": True}, services={})
    assert explicit.services == {"google_analytics": False}


def test_service_is_never_granted_under_a_refused_category(settings: Settings) -> None:
    state = decide(settings, undecided(settings), categories={"analytics": False},
                   services={"google_analytics": True})
    assert state.services == {"google_analytics": False}


def test_necessary_cannot_be_refused(settings: Settings) -> None:
    state = decide(settings, undecided(settings), categories={"necessary": False})
    assert state.granted("necessary")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"categories": {"tracking": True}}, "unknown category 'tracking'"),
        ({"categories": {"analytics": "yes"}}, "must be true or false"),
        ({"categories": {}, "services": {"facebook": True}}, "unknown service 'facebook'"),
        ({"action": "accept_some"}, "unknown action"),
        ({"action": "accept_all", "categories": {}}, "either an action or categories"),
        ({}, "expected an action or a categories object"),
    ],
)
def test_invalid_submissions_raise_a_clear_error(settings: Settings, kwargs: dict[str, object],
                                                 message: str) -> None:
    with pytest.raises(ConsentError, match=message):
        decide(settings, undecided(settings), **kwargs)  # type: ignore[arg-type]


def test_decision_keeps_the_consent_id_of_the_previous_state(settings: Settings) -> None:
    first = decide(settings, undecided(settings), action="accept_all")
    second = decide(settings, first, action="reject_all")
    assert second.consent_id == first.consent_id


def test_gcm_signals_follow_the_category_mapping(settings: Settings) -> None:
    analytics_only = decide(settings, undecided(settings), categories={"analytics": True})
    signals = gcm_signals(analytics_only, settings)
    assert list(signals) == list(GCM_SIGNALS)
    assert signals["analytics_storage"] == "granted"
    assert signals["security_storage"] == signals["functionality_storage"] == "granted"
    assert {signals[s] for s in ("ad_storage", "ad_user_data", "ad_personalization",
                                 "personalization_storage")} == {"denied"}
    everything = gcm_signals(decide(settings, undecided(settings), action="accept_all"), settings)
    assert everything["ad_user_data"] == "granted"
    assert everything["personalization_storage"] == "denied"  # no category drives it


def test_gcm_default_denies_everything_but_security_storage() -> None:
    default = gcm_default()
    assert [k for k, v in default.items() if v == "granted"] == ["security_storage"]
    assert len(default) == 7


@pytest.mark.parametrize(("values", "expected"), [
    ([b"1"], True), ([b" 1 "], True), ([b"0", b"1"], True), ([b"0"], False),
    ([b"true"], False), ([b"11"], False), ([], False), ([b""], False),
])
def test_gpc_counts_only_an_exact_1(values: list[bytes], expected: bool) -> None:
    assert gpc_from_headers(values) is expected


def test_gpc_refuses_marketing_even_after_accept_all(settings: Settings) -> None:
    state = decide(settings, undecided(settings), action="accept_all", gpc=True)
    assert not state.granted("marketing") and state.granted("analytics")
    assert state.gpc_applied and not state.gpc_conflict


def test_gpc_applies_to_a_stored_grant_at_request_time(settings: Settings) -> None:
    stored = decide(settings, undecided(settings), action="accept_all")
    effective = apply_gpc(stored, settings, True)
    assert not effective.granted("marketing") and effective.gpc_applied
    assert gcm_signals(effective, settings)["ad_storage"] == "denied"
    assert apply_gpc(stored, settings, False).granted("marketing")


def test_explicit_marketing_opt_in_overrides_gpc_and_is_flagged(settings: Settings) -> None:
    state = decide(settings, undecided(settings), categories={"marketing": True}, gpc=True)
    assert state.granted("marketing") and state.gpc_conflict and not state.gpc_applied
    assert apply_gpc(state, settings, True).granted("marketing")


def test_gpc_is_never_a_grant(settings: Settings) -> None:
    state = apply_gpc(undecided(settings), settings, True)
    assert [k for k, v in state.categories.items() if v] == ["necessary"]


def test_payload_round_trips(settings: Settings) -> None:
    state = decide(settings, undecided(settings), categories={"analytics": True}, now=5)
    parsed = parse_payload(to_payload(state), settings)
    assert parsed is not None
    assert dict(parsed.categories) == dict(state.categories)
    assert parsed.consent_id == state.consent_id and parsed.decided_at == 5


@pytest.mark.parametrize("mutation", [
    lambda p: p.update(pv="2020-01-01+000000000000"),   # stale policy
    lambda p: p["c"].pop("marketing"),                   # category missing
    lambda p: p["c"].update(extra=True),                 # unknown category
    lambda p: p["c"].update(analytics=1),                # not a real boolean
    lambda p: p["c"].update(necessary=False),            # required refused
    lambda p: p.update(cid="../../etc"),                 # bad id
    lambda p: p.update(v=2),                             # other schema
    lambda p: p.update(m="sideways"),                    # unknown method
    lambda p: p.update(t=-1),                            # bad time
    lambda p: p.pop("s"),                                # services missing
])
def test_payload_that_is_not_exactly_current_is_no_decision(settings: Settings,
                                                            mutation: Callable[..., None]) -> None:
    payload = to_payload(decide(settings, undecided(settings), action="accept_all"))
    mutation(payload)
    assert parse_payload(payload, settings) is None


def test_a_new_policy_text_makes_earlier_consent_stale(make_settings: Make) -> None:
    old, new = make_settings(policy_text="v1"), make_settings(policy_text="v2")
    assert old.policy_version != new.policy_version
    payload = to_payload(decide(old, undecided(old), action="accept_all"))
    assert parse_payload(payload, old) is not None
    assert parse_payload(payload, new) is None


def test_record_event_names_first_choice_change_and_withdrawal(settings: Settings) -> None:
    none = undecided(settings)
    accepted = decide(settings, none, action="accept_all")
    assert record_event(none, accepted, settings) == "decided"
    assert record_event(accepted, decide(settings, accepted, action="reject_all"),
                        settings) == "withdrawn"
    rejected = decide(settings, none, action="reject_all")
    assert record_event(rejected, replace(accepted), settings) == "updated"
