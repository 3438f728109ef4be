"""A person suppressed by consent id alone disappears from every dashboard query.

A consent record may carry a consent id and no visitor id, and an event's visitor id may be one
the suppression never named: the consent id must be enough. Every query of the catalogue is
run on the data without the person, then with the person's rows and the suppression of their
consent id only, from raw events and from the daily rollup: the answers must not change.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from support.dashboards import END, event, insert_events, visitors

from collector.funnels import Funnels
from collector.goals import Goals
from collector.privacy.operations import Privacy
from collector.privacy.subjects import Subject
from collector.query import catalogue
from collector.query import run as query_run
from collector.query.conversions import GOAL_DIMS
from collector.query.funnels import FUNNEL_DIMS
from collector.query.params import DIMENSIONS
from collector.query.rollup import Rollup
from consent_mw.ids import subject_hash

KEY = b"consent-id-suppression-key-0123"
TARGET = "target-consent-id"
BASE = {"start": "2026-06-17", "end": "2026-06-30", "tz": "Asia/Tokyo", "k": 5}
ON = dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)
#: What the catalogue says about the data rather than about people: left out on purpose.
ABOUT_THE_STORE = {"suppression_stats", "data_version"}


def every_query(goal: str, funnel: str) -> list[tuple[str, dict[str, Any]]]:
    queries: list[tuple[str, dict[str, Any]]] = []
    for name in sorted(set(catalogue.CATALOGUE) - ABOUT_THE_STORE):
        if name == "funnel_breakdown":
            queries += [(name, {"dim": d, "funnel": funnel}) for d in FUNNEL_DIMS]
        elif name == "funnel":
            queries.append((name, {"funnel": funnel}))
        elif name == "goal_breakdowns":
            queries.append((name, {"dims": sorted(GOAL_DIMS), "goal": goal}))
        elif name == "goal_breakdown":
            queries += [(name, {"dim": d, "goal": goal}) for d in sorted(GOAL_DIMS)]
        elif name == "goal_series":
            queries.append((name, {"goal": goal}))
        elif name == "breakdown":
            queries += [(name, {"dim": d}) for d in DIMENSIONS]
        elif name == "breakdowns":  # at most 16 dimensions a query
            dims = [d for d in DIMENSIONS if d != "property"]
            queries += [(name, {"dims": dims[i:i + 8]}) for i in range(0, len(dims), 8)]
        elif name == "timeseries":
            queries += [(name, {"grain": g}) for g in ("hour", "day", "week")]
        else:
            queries.append((name, {}))
    return queries


def answers(store: Any) -> dict[str, Any]:
    goals = Goals(store)
    if not goals.live():  # a goal of each kind the rows can reach
        goals.add("reservation", {"kind": "event", "event": "reservation"}, "admin")
        goals.add("price", {"kind": "page", "path": "/pri*"}, "admin")
    goal = next(g.goal_id for g in goals.live() if g.name == "reservation")
    if not store.scalar("SELECT count() FROM dashboard_funnels"):
        Funnels(store).add("to a booking", {"steps": [{"path": "/"}, {"goal": goal}]}, "admin")
    funnel = str(store.scalar("SELECT any(funnel_id) FROM dashboard_funnels"))
    return {f"{name} {extra}": query_run.run(store, name, {**BASE, **extra})
            for name, extra in every_query(goal, funnel)}


def people(prefix: str, n: int, consent_id: str | None = None) -> list[dict[str, Any]]:
    """``n`` visitors, each a landing from search, a page and a reservation (with a property);
    all under ``consent_id`` when given, else each under their own."""
    rows: list[dict[str, Any]] = []
    for v in visitors(prefix, n, path="/", channel="search", referrer_host="www.google.com"):
        if consent_id is not None:
            v["consent_id"] = consent_id
        rows += [v, {**v, "event_id": uuid.uuid4(), "path": "/price", "channel": "internal",
                     "referrer_host": ""},
                 {**v, "event_id": uuid.uuid4(), "kind": "custom", "name": "reservation",
                  "properties": {"plan": "basic"}}]
    for row in rows:
        row.setdefault("properties", {})
    return rows


def records(consent_ids: list[str], visitor_ids: list[str]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for cid, vid in zip(consent_ids, visitor_ids, strict=True):
        out.append([uuid.uuid4(), cid, vid, ON, "shown", "none", "banner", {}, True])
        out.append([uuid.uuid4(), cid, vid, ON, "decided", "accept_all", "banner",
                    {"analytics": True, "marketing": False}, True])
    return out


RECORD_COLUMNS = ["record_id", "consent_id", "visitor_id", "ts", "event", "method",
                  "component", "categories", "gpc"]


def test_a_suppressed_consent_id_is_excluded_from_every_catalogue_query(store: Any) -> None:
    base = people("b", 12)
    anonymous = [event(kind="anonymous", path="/", visitor_id="", session_id="", consent_id="")
                 for _ in range(8)]
    insert_events(store, base)
    insert_events(store, anonymous)
    store.insert("consent_records",
                 records([r["consent_id"] for r in base[::3]],
                         [r["visitor_id"] for r in base[::3]]), RECORD_COLUMNS)
    without_them = answers(store)

    # Six more visitors, known to the suppression only by the consent id their rows carry.
    target = people("t", 6, consent_id=TARGET)
    insert_events(store, target)
    store.insert("consent_records", records([TARGET] * 6, [r["visitor_id"] for r in target[::3]]),
                 RECORD_COLUMNS)
    privacy = Privacy(store, KEY)
    subject = Subject("consent_id", TARGET, subject_hash(KEY, "consent_id", TARGET))

    def suppress(active: bool) -> None:
        privacy.write_suppressions([subject], active=active, purged=False, root=subject,
                                   reason="test", requested_by="test")

    suppress(True)
    assert answers(store) == without_them

    # The test has teeth: lifted, the same rows change what most queries answer.
    suppress(False)
    lifted = answers(store)
    changed = {q for q in without_them if lifted[q] != without_them[q]}
    assert {"kpis {}", "consent_funnel {}", "optin {}", "gpc {}",
            "breakdown {'dim': 'path'}", "breakdown {'dim': 'property'}"} <= changed

    # From the daily rollup too: days built while the suppression holds leave them out.
    suppress(True)
    Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END).refresh()
    kpis = catalogue.params_for("kpis", BASE)
    assert query_run.rollup_plan(store, "kpis", kpis)  # served from the rollup now
    assert answers(store) == without_them
