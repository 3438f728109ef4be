"""Funnels: ordered steps (2 to 8, each a goal or a page pattern) and how many got how far.

A funnel counts, for each step, the **visitors who reached it**: who did step 1, then step 2
later, ... in that order, within one visit (a session within one day) or within N days (1 to
30) from their step 1. ClickHouse's ``windowFunnel`` follows the chain (over millisecond
timestamps): a step counts once its previous step was reached in the window; an event that
matches several steps can serve as each. Step-to-step conversion is a step's visitors over the
previous step's, drop-off their difference.

k at every step: a step reached by fewer than k visitors shows no count ("–"), and neither
do the rates and drop-offs computed from it; a group (channel, campaign) of fewer than k
visitors folds into "other". A visit-mode funnel's steps are per-visit measures like goals
(``collector.query.conversions``): the daily rollup keeps them, per day and per converting
visit, so figures over closed days need no scan, with filters too; a funnel over N days
follows visitors across days and is always scanned raw.

An engaged-time goal has no moment, so it cannot be a step. Pure: no store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.ddl.tables import uniq
from collector.query.conversions import goal_rows
from collector.query.goals import Goal, goal_condition, parse_goal, whole_number
from collector.query.params import DIMENSIONS, Params, QueryError
from collector.query.sql import Sql, base_params, detail_where

MIN_STEPS, MAX_STEPS = 2, 8
MAX_DAYS = 30
MAX_FUNNELS = 20
_ID_RE = re.compile(r"[0-9a-f]{32}")
#: A visit lasts at most its day: the window of a funnel within one visit.
VISIT_WINDOW_MS = 86_400_000
#: What a funnel is broken down by: how visitors arrived.
FUNNEL_DIMS = ("channel", "utm_source", "utm_campaign", "referrer_host", "entry_path",
               "device_type")


@dataclass(frozen=True, slots=True, kw_only=True)
class Funnel:
    """A checked funnel: its steps as goals (a page pattern is a page goal) and its window,
    0 for one visit, else days."""

    steps: tuple[Goal, ...]
    days: int = 0
    funnel_id: str = ""
    name: str = ""

    @property
    def rollup_key(self) -> str:
        text = json.dumps([[s.definition() for s in self.steps], self.days], sort_keys=True)
        return "f" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:15]

    @property
    def reads_interactions(self) -> bool:
        return any(s.reads_interactions for s in self.steps)

    def levels(self) -> tuple[Level, ...]:
        return tuple(Level(self, n) for n in range(1, len(self.steps) + 1))

    def chain_sql(self, tag: str, params: dict[str, Any]) -> str:
        """How far along the funnel a group of rows got (0 to the number of steps)."""
        window = VISIT_WINDOW_MS if self.days == 0 else self.days * VISIT_WINDOW_MS
        conditions = ", ".join(f"({goal_condition(step, f'{tag}s{j}', params)})"
                               for j, step in enumerate(self.steps))
        return f"windowFunnel({window})(toUInt64(toUnixTimestamp64Milli(ts)), {conditions})"


@dataclass(frozen=True, slots=True)
class Level:
    """Step ``n`` of a visit-mode funnel as a per-visit measure (``conversions.per_visit``):
    1 when the visit got that far."""

    funnel: Funnel
    n: int

    @property
    def rollup_key(self) -> str:
        return f"{self.funnel.rollup_key}:{self.n}"

    @property
    def reads_interactions(self) -> bool:
        return self.funnel.reads_interactions

    def count_sql(self, i: int | str, params: dict[str, Any]) -> str:
        # Every level of a funnel writes the same chain, parameters included, so the
        # engine computes it once per visit, not once per step.
        return f"toUInt64({self.funnel.chain_sql(self.funnel.rollup_key, params)} >= {self.n})"

    def worth_sql(self, i: int | str, params: dict[str, Any]) -> str:
        return "toFloat64(0)"


def parse_funnel(body: Mapping[str, Any], goals: Sequence[Goal], funnel_id: str = "",
                 name: str = "") -> Funnel:
    """The funnel a definition describes (its steps' goals among ``goals``), or QueryError
    naming what is wrong. ``steps``: a list of ``{"goal": id}`` or ``{"path": pattern}``;
    ``days``: 0 (one visit, the default) to 30."""
    steps = body.get("steps")
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise QueryError(f"steps: {MIN_STEPS} to {MAX_STEPS} steps")
    by_id = {g.goal_id: g for g in goals}
    out: list[Goal] = []
    for n, step in enumerate(steps, 1):
        if not isinstance(step, Mapping):
            raise QueryError(f"step {n}: a goal or a page")
        if step.get("goal"):
            goal = by_id.get(str(step["goal"]))
            if goal is None:
                raise QueryError(f"step {n}: no such goal")
            if goal.kind == "engaged":
                raise QueryError(f"step {n}: an engaged-time goal has no moment to order")
        else:
            try:
                goal = parse_goal({"kind": "page", "path": step.get("path")})
            except QueryError as exc:
                raise QueryError(f"step {n}: {exc.reason}") from None
        out.append(goal)
    raw_days = body.get("days", 0)
    try:
        days = whole_number(0 if raw_days in (None, "") else raw_days, "days")
    except QueryError:
        days = -1
    if not 0 <= days <= MAX_DAYS:
        raise QueryError(f"days: 0 (one visit) to {MAX_DAYS}")
    return Funnel(steps=tuple(out), days=days, funnel_id=funnel_id, name=name)


def stored_definition(funnel_steps: Sequence[Mapping[str, Any]], days: int) -> str:
    """The JSON a funnel is stored as: steps by goal id or path, so a step follows its goal."""
    return json.dumps({"steps": list(funnel_steps), "days": days}, ensure_ascii=False,
                      sort_keys=True)


def stored_funnel(funnel_id: str, name: str, definition: str,
                  goals: Sequence[Goal]) -> Funnel | None:
    """A funnel read back from the store; None when it no longer parses (a step's goal was
    removed): kept, shown as broken, never an error for the page."""
    try:
        body = json.loads(definition)
        if not _ID_RE.fullmatch(funnel_id) or not isinstance(body, Mapping):
            return None
        return parse_funnel(body, goals, funnel_id, name)
    except (ValueError, QueryError):
        return None


def chosen_funnel(p: Params) -> Funnel:
    for funnel in p.funnels or ():
        if funnel.funnel_id == p.funnel:
            return funnel
    raise QueryError("funnel: no such funnel")


def _visitor_chains(funnel: Funnel, p: Params, params: dict[str, Any], key: str | None) -> str:
    """One row per visitor of a funnel over days: how far they got (``level``), and the
    dimension ``key`` of their first landing (``key0``)."""
    kinds = ("kind IN ('pageview', 'custom', 'interaction')" if funnel.reads_interactions
             else "kind IN ('pageview', 'custom')")
    where = detail_where(p, params, kinds=kinds)
    keyed = (f", argMinIf({DIMENSIONS[key].expr}, ts, {DIMENSIONS[key].rows}) AS key0"
             if key else ", '' AS key0")
    return f"""SELECT visitor_id AS v, {funnel.chain_sql("d", params)} AS level{keyed}
    FROM events WHERE {where} AND visitor_id != ''
    GROUP BY visitor_id"""


def step_rows(funnel: Funnel, p: Params, params: dict[str, Any],
              key: str | None = None) -> str:
    """(step, key0, vs, cvs) per step and ``key``: those who reached the step (``cvs``) and
    the group's visitors (``vs``: within a visit only in step 0, over days in every step),
    as uniq states."""
    if funnel.days == 0:
        return (f"SELECT pos AS step, key0, vs, cvs "
                f"FROM ({goal_rows(funnel.levels(), p, params, key=key)})")
    n = len(funnel.steps)
    return f"""SELECT step, key0, {uniq('State')}(v) AS vs,
           {uniq('StateIf')}(v, level >= step) AS cvs
    FROM ({_visitor_chains(funnel, p, params, key)})
    ARRAY JOIN range(1, {n + 1}) AS step
    GROUP BY step, key0"""


#: A step's visitors, its conversion from the previous step and from step 1, and the
#: drop-off: each shown only for steps k visitors reached, and the drop-off only when k
#: visitors dropped (it is a count of people too).
_STEPS = """
SELECT step, {names:Array(String)}[step] AS name,
       if(r >= {k:UInt32}, r, NULL) AS visitors,
       if(r >= {k:UInt32} AND prev >= {k:UInt32} AND step > 1, r / prev, NULL)
           AS from_previous,
       if(r >= {k:UInt32} AND first >= {k:UInt32}, r / first, NULL) AS from_start,
       if(r >= {k:UInt32} AND prev - r >= {k:UInt32} AND step > 1, prev - r, NULL)
           AS dropped"""


def q_funnel(p: Params) -> Sql:
    """The chosen funnel: (step, name, visitors, from_previous, from_start, dropped)."""
    funnel = chosen_funnel(p)
    params = base_params(p)
    params["names"] = [step_name(s) for s in funnel.steps]
    text = f"""{_STEPS}
FROM (
    SELECT step, r, lagInFrame(r, 1, 0) OVER (ORDER BY step) AS prev,
           first_value(r) OVER (ORDER BY step) AS first
    FROM (SELECT step, {uniq('Merge')}(cvs) AS r FROM ({step_rows(funnel, p, params)})
          WHERE step > 0 GROUP BY step)
)
ORDER BY step"""
    return Sql(text, params)


def q_funnel_breakdown(p: Params) -> Sql:
    """The chosen funnel by ``p.dim``: (key, is_other, visitors, step, reached), ``reached``
    NULL for a step fewer than k of the group reached."""
    if p.dim not in FUNNEL_DIMS:
        raise QueryError(f"dim: funnels break down by {', '.join(FUNNEL_DIMS)}")
    funnel = chosen_funnel(p)
    params = base_params(p)
    # A group's visitors are in its step 0 rows (within a visit) or in every step's (over
    # days): the largest is the group's, and folding decides on it.
    text = f"""
SELECT key, is_other, visitors, step, if(r_n >= {{k:UInt32}}, r_n, NULL) AS reached
FROM (
    SELECT key, is_other, step, r_n, max(v_n) OVER (PARTITION BY key, is_other) AS visitors
    FROM (
        SELECT if(v_key >= {{k:UInt32}}, key0, '') AS key, v_key < {{k:UInt32}} AS is_other,
               step, {uniq('Merge')}(gvs) AS v_n, {uniq('Merge')}(gcvs) AS r_n
        FROM (SELECT step, key0, {uniq('MergeState')}(vs) AS gvs,
                     {uniq('MergeState')}(cvs) AS gcvs,
                     max(finalizeAggregation(gvs)) OVER (PARTITION BY key0) AS v_key
              FROM ({step_rows(funnel, p, params, key=p.dim)}) GROUP BY step, key0)
        GROUP BY key, is_other, step
    )
)
WHERE step > 0 AND visitors >= {{k:UInt32}}
ORDER BY is_other, visitors DESC, key, step
LIMIT {{lim:UInt32}} * {len(funnel.steps)}"""
    return Sql(text, params)


def step_name(step: Goal) -> str:
    return step.name or step.match


FUNNELS_SQL = """
SELECT funnel_id, name, definition, created_by FROM dashboard_funnels FINAL
WHERE NOT deleted
ORDER BY name, funnel_id
LIMIT 100"""


def q_funnel_list(p: Params) -> Sql:
    """(funnel_id, name, definition JSON, created_by, ok): the funnels there are; ``ok`` is
    false for one whose step's goal was removed (the runner's ``p.funnels`` are the others)."""
    return Sql(f"SELECT *, funnel_id IN {{ok:Array(String)}} AS ok FROM ({FUNNELS_SQL})",
               {"ok": [f.funnel_id for f in p.funnels or ()]})
