"""Funnels: checked definitions; every step's visitors equal plain Python over the raw rows
(within a visit and within days, by channel); k at every step; suppression and purge; the
rollup answers what a scan answers; the funnels page and its form."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from support.dashboards import END, ORIGIN, RANGE, insert_events, seeded_dsn, visitors

from collector.ddl.tables import EXACT_UP_TO
from collector.funnels import Funnels
from collector.goals import Goals
from collector.notes import WriteRefused
from collector.privacy.operations import Privacy
from collector.query import catalogue
from collector.query import run as query_run
from collector.query.funnels import parse_funnel
from collector.query.goals import Goal
from collector.query.params import QueryError
from collector.query.rollup import Rollup

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
BASE = {"start": "2026-06-17", "end": "2026-06-30", "k": 5}
KEY = b"funnels-test-key-0123456789abcd"
DAY_MS = 86_400_000


@pytest.fixture
def store_dsn(seeded_template: Path, tmp_path: Path) -> str:
    return seeded_dsn(seeded_template, tmp_path)


def reservation_goal(store: Any) -> str:
    return Goals(store).add("予約", {"kind": "event", "event": "reservation"}, "marketing")


def booking_funnel(store: Any, days: int = 0, name: str = "LP → 施術 → 予約") -> str:
    """Treatment page, then the reservation page, then a booked reservation."""
    goal = reservation_goal(store) if not Goals(store).live() else Goals(store).live()[0].goal_id
    return Funnels(store).add(name, {"steps": [{"path": "/treatments/*"},
                                               {"path": "/reservation"}, {"goal": goal}],
                                     "days": days}, "marketing")


# --- what a funnel is ---------------------------------------------------------------------


def test_funnel_definitions_are_checked_and_name_what_is_wrong() -> None:
    booked = Goal(kind="event", match="reservation", goal_id="a" * 32, name="booked")
    engaged = Goal(kind="engaged", seconds=60, goal_id="b" * 32, name="a minute")
    ok = parse_funnel({"steps": [{"path": "/lp/*"}, {"goal": "a" * 32}], "days": "7"},
                      [booked])
    assert ok.days == 7 and ok.steps[1] is booked and ok.steps[0].match == "/lp/*"
    for body, reason in [
        ({"steps": [{"path": "/"}]}, "steps: 2 to 8"),
        ({"steps": [{"path": "/"}] * 9}, "steps: 2 to 8"),
        ({"steps": "/a,/b"}, "steps: 2 to 8"),
        ({"steps": [{"path": "/"}, {"goal": "c" * 32}]}, "step 2: no such goal"),
        ({"steps": [{"path": "/"}, {"goal": "b" * 32}]}, "step 2: an engaged-time goal"),
        ({"steps": [{"path": "lp"}, {"path": "/"}]}, "step 1: path: a pattern starts with /"),
        ({"steps": [{"path": "/"}, 3]}, "step 2: a goal or a page"),
        ({"steps": [{"path": "/"}, {"path": "/x"}], "days": 31}, "days: 0 (one visit) to 30"),
        ({"steps": [{"path": "/"}, {"path": "/x"}], "days": True}, "days:"),
    ]:
        with pytest.raises(QueryError) as refused:
            parse_funnel(body, [booked, engaged])
        assert refused.value.reason.startswith(reason), (body, refused.value.reason)


# --- figures against plain Python ----------------------------------------------------------


def raw_rows(store: Any) -> list[dict[str, Any]]:
    return store.dicts(
        "SELECT session_id, visitor_id, toUnixTimestamp64Milli(ts) AS ms, ts, kind, name, "
        "path, channel FROM events WHERE kind IN ('pageview', 'custom') AND visitor_id != '' "
        "AND ts >= toDateTime64('2026-06-16 15:00:00', 3, 'UTC') "
        "AND ts < toDateTime64('2026-06-30 15:00:00', 3, 'UTC')")


STEPS: list[Callable[[dict[str, Any]], bool]] = [
    lambda e: e["kind"] == "pageview" and e["path"].startswith("/treatments/"),
    lambda e: e["kind"] == "pageview" and e["path"] == "/reservation",
    lambda e: e["kind"] == "custom" and e["name"] == "reservation",
]


def level(events: list[dict[str, Any]], window: int) -> int:
    """How far a group of rows got, as ClickHouse's windowFunnel counts it: entries sorted by
    (time, step); a step extends a chain of the previous step begun within the window."""
    entries = sorted((e["ms"], j) for e in events for j, step in enumerate(STEPS) if step(e))
    started: list[int | None] = [None] * len(STEPS)
    for ms, j in entries:
        if j == 0:
            started[0] = ms
        elif started[j - 1] is not None and ms <= started[j - 1] + window:  # type: ignore[operator]
            started[j] = started[j - 1]
            if j + 1 == len(STEPS):
                return len(STEPS)
    return next((n for n in range(len(STEPS), 0, -1) if started[n - 1] is not None), 0)


def by_visit(rows: list[dict[str, Any]]) -> dict[tuple[str, dt.date], list[dict[str, Any]]]:
    grouped: dict[tuple[str, dt.date], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        ts = r["ts"].replace(tzinfo=dt.UTC) if r["ts"].tzinfo is None else r["ts"]
        grouped[(r["session_id"], ts.astimezone(TOKYO).date())].append(r)
    return grouped


def distinct(counted: int | None, exact: int) -> bool:
    if counted is None:
        return exact < 5
    return counted == exact if exact <= EXACT_UP_TO else abs(counted - exact) / exact < 0.03


def test_a_funnel_within_a_visit_equals_python_step_by_step(store: Any) -> None:
    funnel = booking_funnel(store)
    reached: dict[int, set[str]] = defaultdict(set)
    for events in by_visit(raw_rows(store)).values():
        for n in range(1, level(events, DAY_MS) + 1):
            reached[n].add(events[0]["visitor_id"])
    rows = query_run.run(store, "funnel", {**BASE, "funnel": funnel})
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert [r["name"] for r in rows] == ["/treatments/*", "/reservation", "予約"]
    assert len(reached[3]) >= 5  # the seeded visits do book
    for r in rows:
        assert distinct(r["visitors"], len(reached[r["step"]])), r
    first, second, third = rows
    assert second["from_previous"] == pytest.approx(second["visitors"] / first["visitors"])
    assert third["from_start"] == pytest.approx(third["visitors"] / first["visitors"])
    assert third["dropped"] == second["visitors"] - third["visitors"]
    assert first["from_previous"] is None and first["dropped"] is None


def test_a_funnel_over_days_follows_visitors_across_visits(store: Any) -> None:
    funnel = booking_funnel(store, days=7, name="7日")
    per_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in raw_rows(store):
        per_visitor[r["visitor_id"]].append(r)
    reached = [sum(1 for events in per_visitor.values() if level(events, 7 * DAY_MS) >= n)
               for n in (1, 2, 3)]
    rows = query_run.run(store, "funnel", {**BASE, "funnel": funnel})
    assert [distinct(r["visitors"], want) for r, want in zip(rows, reached, strict=True)] == [
        True] * 3
    # Across visits at least as many get as far as within one.
    within_visit = query_run.run(store, "funnel", {**BASE, "funnel": booking_funnel(
        store, name="1回")})
    assert all(a["visitors"] >= b["visitors"] for a, b in zip(rows, within_visit, strict=True))


def test_a_funnel_by_channel_equals_python(store: Any) -> None:
    funnel = booking_funnel(store)
    groups: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    people: dict[str, set[str]] = defaultdict(set)
    for events in by_visit(raw_rows(store)).values():
        views = sorted((e for e in events if e["kind"] == "pageview"
                        and e["channel"] != "internal"), key=lambda e: e["ms"])
        channel = views[0]["channel"] if views else ""
        people[channel].add(events[0]["visitor_id"])
        for n in range(1, level(events, DAY_MS) + 1):
            groups[channel][n].add(events[0]["visitor_id"])
    rows = query_run.run(store, "funnel_breakdown", {**BASE, "funnel": funnel,
                                                      "dim": "channel", "limit": 20})
    shown = {(r["key"], r["step"]): r for r in rows if not r["is_other"]}
    assert {key for key, _ in shown} == {c for c, p in people.items() if len(p) >= 5}
    for (key, step), r in shown.items():
        assert distinct(r["visitors"], len(people[key])), key
        assert distinct(r["reached"], len(groups[key][step])), (key, step)


# --- k, suppression, purge, rollup -----------------------------------------------------


def walkers(prefix: str, n: int, path: str = "/lp/a") -> list[dict[str, Any]]:
    """``n`` visitors who land on ``path`` and then view /thanks in the same visit."""
    rows = []
    for v in visitors(prefix, n, path=path, channel="ad",
                      ts=dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)):
        rows += [v, {**v, "event_id": uuid.uuid4(), "path": "/thanks", "channel": "internal",
                     "ts": v["ts"] + dt.timedelta(minutes=3)}]
    return rows


def test_every_step_is_k_anonymous_and_suppression_and_purge_apply(store: Any) -> None:
    funnel = Funnels(store).add("LP", {"steps": [{"path": "/lp/a"}, {"path": "/thanks"}]},
                                "marketing")
    rows = walkers("fk", 6) + visitors("fk-only", 3, path="/lp/a", channel="ad")
    insert_events(store, rows)

    def steps() -> list[Any]:
        return [r["visitors"] for r in query_run.run(store, "funnel", {**BASE,
                                                                        "funnel": funnel})]

    assert steps() == [9, 6]
    privacy = Privacy(store, KEY)
    privacy.suppress(visitor_id=rows[0]["visitor_id"])
    assert steps() == [8, 5]
    privacy.purge(visitor_id=rows[2]["visitor_id"])
    got = query_run.run(store, "funnel", {**BASE, "funnel": funnel})
    assert [r["visitors"] for r in got] == [7, None]  # four reached the end: under k
    assert got[1]["from_previous"] is got[1]["dropped"] is got[1]["from_start"] is None


def test_the_rollup_answers_a_funnel_as_a_scan_does(store: Any) -> None:
    visit = booking_funnel(store)
    days = booking_funnel(store, days=7, name="7日")
    rollup = Rollup(store, "Asia/Tokyo", grace=0, clock=lambda: END)
    rollup.refresh()

    def served_and_raw(funnel: str, extra: dict[str, Any]) -> tuple[Any, Any, int]:
        raw = {**BASE, "funnel": funnel, **extra}
        name = "funnel_breakdown" if "dim" in extra else "funnel"
        params = catalogue.params_for(name, raw)
        goals = query_run.stored_goals(store)
        funnels = query_run.stored_funnels(store, goals)
        plan = query_run.rollup_plan(store, name, params, goals, funnels)
        active = query_run.active_suppression_types(store)
        scanned = query_run.run_readonly(store, catalogue.build(name, raw, active, None,
                                                                goals, funnels))
        return query_run.run(store, name, raw), scanned, len(plan)

    for extra in ({}, {"dim": "channel"}, {"dim": "utm_campaign"}):
        served, scanned, planned = served_and_raw(visit, extra)
        assert served == scanned and planned == 13, extra
        assert served_and_raw(days, extra)[2] == 0  # over days: never the rollup
    victim = str(store.scalar("SELECT visitor_id FROM events WHERE name = 'reservation' "
                              "ORDER BY visitor_id LIMIT 1"))
    Privacy(store, KEY).suppress(visitor_id=victim)
    rollup.refresh()
    served, scanned, planned = served_and_raw(visit, {})
    assert served == scanned and planned == 13


# --- the page and its form ------------------------------------------------------------------


def csrf_of(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_marketing_builds_a_funnel_on_the_page_and_a_removed_goal_breaks_it_gently(
        store: Any, login: Callable[[str], TestClient]) -> None:
    goal = reservation_goal(store)
    client = login("marketing")
    page = client.get("/dashboards/funnels", params=RANGE).text
    assert "ファネルはまだありません" in page and 'name="step8_path"' in page
    form = {"csrf": csrf_of(page), "next": "/dashboards/funnels", "name": "施術 → 予約",
            "days": "0", "step1_goal": "", "step1_path": "/treatments/*",
            "step2_goal": "", "step2_path": "/reservation", "step3_goal": goal,
            "step3_path": "", "step4_goal": "", "step4_path": ""}
    assert client.post("/dashboards/funnels", data=form,
                       headers={"Origin": ORIGIN}).status_code == 303
    page = client.get("/dashboards/funnels", params=RANGE).text
    assert "/treatments/* → /reservation → 予約 · 1回の訪問内" in page
    table = page.split('id="panel-funnel"')[1].split("</section>")[0]
    assert re.findall(r"<td>(\d\. [^<]+)</td>", table) == [
        "1. /treatments/*", "2. /reservation", "3. 予約"]
    assert '"chart-funnel_chart"' in page
    by_channel = page.split('id="panel-funnel_channel"')[1].split("</section>")[0]
    assert "ステップ3" in by_channel and "最後まで" in by_channel
    one_step = {**form, "name": "x", "step2_path": "", "step3_goal": ""}
    refused = client.post("/dashboards/funnels", data=one_step, headers={"Origin": ORIGIN})
    assert refused.status_code == 400 and "ステップは 2〜8 個" in refused.text
    # The goal goes: the funnel stays listed as broken, and the page still answers.
    Goals(store).delete(goal, "admin")
    page = client.get("/dashboards/funnels", params=RANGE)
    assert page.status_code == 200 and "目標が削除されたため表示できません" in page.text
    funnel_id = store.rows("SELECT funnel_id FROM dashboard_funnels")[0][0]
    assert client.get("/dashboards/funnels",
                      params={**RANGE, "funnel": funnel_id}).status_code == 400


def test_a_funnel_names_its_goals_only_among_those_there_are(store: Any) -> None:
    with pytest.raises(WriteRefused) as refused:
        Funnels(store).add("x", {"steps": [{"path": "/"}, {"goal": "d" * 32}]}, "admin")
    assert refused.value.reason == "step 2: no such goal"


def test_funnels_from_the_goals_file_are_synced_by_name(store: Any, tmp_path: Path) -> None:
    from collector.funnels import load_funnels
    from collector.goals import load_goals

    path = tmp_path / "goals.toml"
    goal = '[[goal]]\nname = "予約"\nkind = "event"\nevent = "reservation"\n'
    funnel = ('[[funnel]]\nname = "LP"\nsteps = [{ path = "/lp/*" }, { goal = "予約" }]\n'
              "days = 7\n")
    path.write_text(goal + funnel, encoding="utf-8")
    Goals(store).sync(load_goals(path), "file")
    assert Funnels(store).sync(load_funnels(path), "file") == ["LP"]
    versions = store.scalar("SELECT count() FROM dashboard_funnels")
    assert Funnels(store).sync(load_funnels(path), "file") == []  # a restart writes nothing
    assert store.scalar("SELECT count() FROM dashboard_funnels") == versions
    [listed] = query_run.run(store, "funnel_list", {})
    assert listed["ok"] and listed["name"] == "LP"
    for text, reason in [
        (funnel.replace('{ goal = "予約" }', '{ goal = "電話" }'),
         "funnel 1: step 2: no such goal"),
        (funnel.replace("days = 7", "days = 99"), "funnel 1: days:"),
        ('[[funnel]]\nname = ""\nsteps = []\n', "funnel 1: name:"),
    ]:
        path.write_text(goal + text, encoding="utf-8")
        with pytest.raises(WriteRefused) as refused:
            load_funnels(path)
        assert reason in refused.value.reason


# --- what an attack on the first version found ------------------------------------------------


def test_a_drop_off_of_fewer_than_k_people_is_not_shown(store: Any) -> None:
    funnel = Funnels(store).add("abc", {"steps": [{"path": "/a"}, {"path": "/b"},
                                                  {"path": "/c"}]}, "marketing")
    rows: list[dict[str, Any]] = []
    for n, last in ((8, "/c"), (1, "/b"), (1, "/a")):  # 10 reach /a, 9 /b, 8 /c
        for v in visitors(f"d{last[1]}", n, path="/a", channel="ad",
                          ts=dt.datetime(2026, 6, 20, 3, 0, tzinfo=dt.UTC)):
            rows.append(v)
            for i, page in enumerate(["/b", "/c"][: ["/a", "/b", "/c"].index(last)], 1):
                rows.append({**v, "event_id": uuid.uuid4(), "path": page, "channel": "internal",
                             "ts": v["ts"] + dt.timedelta(minutes=i)})
    insert_events(store, rows)
    got = query_run.run(store, "funnel", {**BASE, "funnel": funnel})
    assert [r["visitors"] for r in got] == [10, 9, 8]
    assert [r["dropped"] for r in got] == [None, None, None]  # 1 and 1: one person each


def test_odd_windows_are_refused_with_a_reason_never_a_500(store: Any) -> None:
    from starlette.applications import Starlette

    from collector import staff
    from consent_mw.config import Secret

    collector = TestClient(Starlette(routes=staff.build_routes(lambda: store,
                                                               Secret("t" * 32))))
    for days in ("²", "١٢", "9" * 5000, 1.5, -1, "31"):
        answer = collector.post("/v1/funnels", json={
            "name": "f", "steps": [{"path": "/a"}, {"path": "/b"}], "days": days,
            "author": "a"}, headers={"Authorization": "Bearer " + "t" * 32})
        assert answer.status_code == 400, days
        assert answer.json()["message"].startswith("days: 0 (one visit) to 30"), days


def test_a_funnels_file_is_applied_whole_or_not_at_all(store: Any, tmp_path: Path) -> None:
    from collector.funnels import load_funnels

    path = tmp_path / "goals.toml"
    funnels = "".join(f'[[funnel]]\nname = "f{n}"\nsteps = [{{ path = "/a" }}, '
                      f'{{ goal = "", path = "/b{n}" }}]\n' for n in range(21))
    path.write_text(funnels, encoding="utf-8")
    with pytest.raises(WriteRefused) as refused:
        load_funnels(path)
    assert "at most 20 funnels" in refused.value.reason
    for n in range(19):
        Funnels(store).add(f"ui {n}", {"steps": [{"path": "/"}, {"path": f"/x{n}"}]}, "admin")
    path.write_text(funnels.split("[[funnel]]", 3)[0] + "[[funnel]]"
                    + "[[funnel]]".join(funnels.split("[[funnel]]")[1:3]), encoding="utf-8")
    with pytest.raises(WriteRefused) as refused:
        Funnels(store).sync(load_funnels(path), "file")  # 19 + 2 > 20
    assert "at most 20" in refused.value.reason
    assert store.scalar("SELECT count() FROM dashboard_funnels FINAL WHERE NOT deleted") == 19
    path.write_text(funnels.split("[[funnel]]")[0] + "[[funnel]]"
                    + funnels.split("[[funnel]]")[1], encoding="utf-8")
    assert Funnels(store).sync(load_funnels(path), "file") == ["f0"]  # an empty goal: a page
