"""Consent records: pure builder valid against the wire schema, and the sinks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from consent_mw.consent.decision import decide, undecided
from consent_mw.consent.records import JsonlSink, MemorySink, build_record, ua_family
from consent_mw.settings import Settings
from consent_mw.wire import RECORD_EVENTS, RECORD_SCHEMA

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.mark.parametrize("event", RECORD_EVENTS)
@pytest.mark.parametrize(("method", "component"), [("accept_all", "banner"),
                                                   ("reject_all", "banner"),
                                                   ("save", "preferences"), ("gpc", "api"),
                                                   ("api", "api")])
def test_every_record_kind_is_valid_against_the_wire_schema(
    settings: Settings, event: str, method: str, component: str
) -> None:
    state = decide(settings, undecided(settings), action="accept_all", gpc=method == "gpc")
    record = build_record(settings, state, event=event, method=method, component=component,
                          locale="ja", host="clinic.example", path="/treatments?q=secret",
                          user_agent=CHROME, visitor_id="a" * 32)
    jsonschema.validate(record, RECORD_SCHEMA)
    assert record["path"] == "/treatments"  # never the query string
    assert record["policy_version"] == settings.policy_version
    assert record["policy_hash"] == settings.policy_hash
    assert set(record["categories"]) == set(settings.category_names)
    assert len(record["gcm"]) == 7
    assert record["expires_at"] == state.decided_at + settings.consent_max_age * 1000  # type: ignore[operator]


def test_record_keeps_only_the_ua_family_and_never_an_ip(settings: Settings) -> None:
    state = decide(settings, undecided(settings), action="reject_all")
    record = build_record(settings, state, event="decided", method="reject_all",
                          component="banner", user_agent=CHROME)
    assert record["ua_family"] == "Chrome/Linux"
    assert "ip" not in record and CHROME not in json.dumps(record)
    assert all(v is False for k, v in record["categories"].items() if k != "necessary")


def test_ua_family_of_empty_or_junk() -> None:
    assert ua_family("") is None
    assert ua_family("\x00" * 5000) is not None


def test_record_requires_a_consent_id(settings: Settings) -> None:
    with pytest.raises(ValueError, match="consent id"):
        build_record(settings, undecided(settings), event="shown", method="none",
                     component="banner")


def test_memory_sink_keeps_a_bounded_list() -> None:
    sink = MemorySink(limit=3)
    for i in range(5):
        sink.write({"i": i})
    assert [r["i"] for r in sink.records] == [2, 3, 4]


def test_jsonl_sink_appends_one_object_per_line_from_many_threads(tmp_path: Path) -> None:
    sink = JsonlSink(tmp_path / "records.jsonl")

    def work(n: int) -> None:
        for i in range(50):
            sink.write({"thread": n, "i": i, "text": "同意" * 50})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400
    assert {(r["thread"], r["i"]) for r in map(json.loads, lines)} == {
        (n, i) for n in range(8) for i in range(50)}


def test_middleware_writes_to_a_jsonl_sink(make_settings: Callable[..., Settings],
                                           tmp_path: Path) -> None:
    from starlette.testclient import TestClient
    from support.apps import ORIGIN, report_shown, starlette_app

    path = tmp_path / "consent.jsonl"
    client = TestClient(starlette_app(make_settings(), record_sink=JsonlSink(path)))
    client.get("/")
    report_shown(client)
    client.post("/_consent", json={"action": "accept_all", "component": "banner"},
                headers={"origin": ORIGIN, "user-agent": CHROME})
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["event"] for r in records] == ["shown", "decided"]
    for r in records:
        jsonschema.validate(r, RECORD_SCHEMA)
    assert records[1]["component"] == "banner" and records[1]["ua_family"] == "Chrome/Linux"
    assert records[1]["visitor_id"] == client.cookies["cmw_vid"]
