"""The middleware feeding the real capture pipeline (consent_mw.capture) via a fake transport."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema
from starlette.testclient import TestClient
from support.apps import ORIGIN, report_shown, starlette_app

from consent_mw.capture.transport import InMemoryTransport
from consent_mw.settings import Settings
from consent_mw.wire import RECORD_SCHEMA


def test_pages_and_consent_records_reach_the_transport_under_consent(
    make_settings: Callable[..., Settings],
) -> None:
    transport = InMemoryTransport()
    app = starlette_app(make_settings(flush_interval=0.05), transport=transport)
    with TestClient(app) as client:
        client.get("/en")
        report_shown(client, locale="en", path="/en")
        client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
        client.get("/en")
        vid = client.cookies["cmw_vid"]
        mw = app.middleware_stack
        while not hasattr(mw, "capture"):
            mw = mw.app
        assert mw.capture.force_flush(5.0)
    assert [r["event"] for r in transport.records] == ["shown", "decided"]
    for record in transport.records:
        jsonschema.validate(record, RECORD_SCHEMA)
    identified = [e for e in transport.events if e.get("visitor_id")]
    assert identified and all(e["visitor_id"] == vid for e in identified)
    assert all(e.get("path") != "/_consent" for e in transport.events)
