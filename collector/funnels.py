"""Funnels: the ordered steps the marketing team follows visitors through, written in the
dashboards.

A funnel is a name, 2 to 8 steps (each a goal, by id, or a page pattern) and a window: one
visit, or N days (``collector.query.funnels``). :class:`Funnels` writes them (the dashboards'
own store, or the collector's through ``POST /v1/funnels``: ``collector.staff``). A step
names its goal by id, so editing the goal moves the funnel with it; a funnel whose goal was
removed stays listed, marked broken, until it is removed too. A change is a newer version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from collector.goals import Goals, load_goals, read_toml
from collector.notes import StaffItems, WriteRefused, check_name
from collector.query.funnels import MAX_FUNNELS, parse_funnel, stored_definition
from collector.query.params import QueryError
from collector.store import Store

COLUMNS = ["funnel_id", "name", "definition", "created_by", "updated_by", "deleted",
           "version"]
LIVE_SQL = "SELECT funnel_id, name FROM dashboard_funnels FINAL WHERE NOT deleted"


class Funnels(StaffItems):
    """Adds and removes funnels on ``store``."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        super().__init__(store, "dashboard_funnels", COLUMNS, "funnel")

    def add(self, name: object, body: Mapping[str, Any], author: object) -> str:
        clean = check_name(name)
        try:
            funnel = parse_funnel(body, Goals(self._store).live())
        except QueryError as exc:
            raise WriteRefused(exc.reason) from None
        live = self._store().rows(LIVE_SQL)
        if len(live) >= MAX_FUNNELS:
            raise WriteRefused(f"funnels: at most {MAX_FUNNELS}; remove one first")
        if any(str(r[1]) == clean for r in live):
            raise WriteRefused(f"name: a funnel called {clean!r} exists already")
        steps = [{"goal": str(s["goal"])} if isinstance(s, Mapping) and s.get("goal")
                 else {"path": step.match}
                 for s, step in zip(body["steps"], funnel.steps, strict=True)]
        return self.put([clean, stored_definition(steps, funnel.days)], author)

    def add_from(self, body: Mapping[str, object], author: object) -> str:
        return self.add(body.get("name"), body, author)

    def sync(self, wanted: list[tuple[str, dict[str, Any]]], author: str) -> list[str]:
        """Make the funnels named in ``wanted`` (a TOML file's, :func:`load_funnels`: steps
        naming goals by name) exactly those; others are left alone, and a changed one keeps
        its id. Every funnel is checked before anything is written, so a file is applied
        whole or not at all. The names written."""
        goals = Goals(self._store).live()
        goal_ids = {g.name: g.goal_id for g in goals}
        current = {str(r[1]): (str(r[0]), str(r[2])) for r in self._store().rows(
            "SELECT funnel_id, name, definition FROM dashboard_funnels FINAL WHERE NOT deleted")}
        plans = []
        for name, body in wanted:
            # A goal the store does not have stays a goal step, which the check refuses.
            steps = [{"goal": goal_ids.get(str(s["goal"]), "not a goal")} if s.get("goal")
                     else {"path": s.get("path")} for s in body["steps"]]
            try:
                funnel = parse_funnel({"steps": steps, "days": body["days"]}, goals)
            except QueryError as exc:
                raise WriteRefused(f"funnel {name!r}: {exc.reason}") from None
            stored = [{"goal": str(s["goal"])} if s.get("goal") else {"path": step.match}
                      for s, step in zip(steps, funnel.steps, strict=True)]
            plans.append((name, stored_definition(stored, funnel.days)))
        added = [name for name, _ in plans if name not in current]
        if len(current) + len(added) > MAX_FUNNELS:
            raise WriteRefused(f"funnels: at most {MAX_FUNNELS}; there are {len(current)} and "
                               f"the file adds {len(added)}")
        written = []
        for name, definition in plans:
            old = current.get(name)
            if old is not None and old[1] == definition:
                continue  # unchanged: a restart writes nothing
            if old is not None:
                self.update(old[0], [name, definition], author)
            else:
                self.put([name, definition], author)
            written.append(name)
        return written


def load_funnels(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The funnels of a TOML file (``[[funnel]]``: ``name``, ``steps`` of ``{path = ...}``
    or ``{goal = <a goal's name in the same file>}``, ``days``), or WriteRefused naming the
    first that is wrong."""
    data = read_toml(path)
    tables = data.get("funnel", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise WriteRefused(f"{path}: expected [[funnel]] tables")
    # Checked against the file's goals, named by their names.
    goals = [replace(g, goal_id=g.name) for g in load_goals(path)]
    if len(tables) > MAX_FUNNELS:
        raise WriteRefused(f"{path}: at most {MAX_FUNNELS} funnels")
    out: list[tuple[str, dict[str, Any]]] = []
    for n, table in enumerate(tables, 1):
        try:
            name = check_name(table.get("name"))
        except WriteRefused as exc:
            raise WriteRefused(f"{path}: funnel {n}: {exc.reason}") from None
        if any(name == seen for seen, _ in out):
            raise WriteRefused(f"{path}: funnel {n}: the name {name!r} is used twice")
        body = {"steps": table.get("steps"), "days": table.get("days", 0)}
        try:
            parse_funnel(body, goals)
        except QueryError as exc:
            raise WriteRefused(f"{path}: funnel {n}: {exc.reason}") from None
        out.append((name, body))
    return out
