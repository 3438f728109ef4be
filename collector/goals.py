"""Goals: what the clinic counts as a conversion, written by its marketing staff or from TOML.

A goal is a name and a definition (``collector.query.goals``: a page pattern, a custom event
with an optional property, a click-beacon interaction, or a minimum engaged time), shared by
everyone who reads the dashboards. :class:`Goals` writes them (the dashboards' own store, or
the collector's through ``POST /v1/goals``: ``collector.staff``); :meth:`Goals.sync` brings
the goals a TOML file names in line with it, so a site can keep its goals in its repository.
A change is a newer version of the row, so what was defined, by whom, and who removed it,
stays.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from collector.notes import StaffItems, WriteRefused, check_name
from collector.query.goals import MAX_GOALS, Goal, parse_goal, stored_goal
from collector.query.params import QueryError
from collector.store import Store

COLUMNS = ["goal_id", "name", "definition", "created_by", "updated_by", "deleted", "version"]
LIVE_SQL = "SELECT goal_id, name, definition FROM dashboard_goals FINAL WHERE NOT deleted"


def check_goal(name: object, definition: object) -> Goal:
    """The goal as it will be kept, or WriteRefused naming what is wrong."""
    clean = check_name(name)
    if not isinstance(definition, Mapping):
        raise WriteRefused("goal: expected an object")
    try:
        goal = parse_goal(definition, name=clean)
    except QueryError as exc:
        raise WriteRefused(exc.reason) from None
    return goal


class Goals(StaffItems):
    """Adds, removes and syncs goals on ``store``."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        super().__init__(store, "dashboard_goals", COLUMNS, "goal")

    def live(self) -> list[Goal]:
        rows = self._store().rows(LIVE_SQL)
        goals = [stored_goal(str(r[0]), str(r[1]), str(r[2])) for r in rows]
        return [g for g in goals if g is not None]

    def add(self, name: object, definition: object, author: object) -> str:
        goal = check_goal(name, definition)
        live = self.live()
        if len(live) >= MAX_GOALS:
            raise WriteRefused(f"goals: at most {MAX_GOALS}; remove one first")
        if any(g.name == goal.name for g in live):
            raise WriteRefused(f"name: a goal called {goal.name!r} exists already")
        return self.put([goal.name, goal.to_json()], author)

    def add_from(self, body: Mapping[str, object], author: object) -> str:
        return self.add(body.get("name"), body, author)

    def sync(self, wanted: list[Goal], author: str) -> list[str]:
        """Make the goals named in ``wanted`` (a TOML file's) exactly those definitions;
        goals it does not name are left alone. A changed goal keeps its id, so the funnels
        whose steps name it follow it. The names of the goals written; nothing is written
        when the file would take the goals past :data:`MAX_GOALS`."""
        by_name = {g.name: g for g in self.live()}
        added = [g for g in wanted if g.name not in by_name]
        if len(by_name) + len(added) > MAX_GOALS:
            raise WriteRefused(f"goals: at most {MAX_GOALS}; there are {len(by_name)} and the "
                               f"file adds {len(added)}")
        written = []
        for goal in wanted:
            old = by_name.get(goal.name)
            if old is not None and old.to_json() == goal.to_json():
                continue  # unchanged: no new version, so a restart writes nothing
            if old is not None:
                self.update(old.goal_id, [goal.name, goal.to_json()], author)
            else:
                self.put([goal.name, goal.to_json()], author)
            written.append(goal.name)
        return written


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WriteRefused(f"{path}: {exc}") from None


def load_goals(path: Path) -> list[Goal]:
    """The goals of a TOML file (``[[goal]]`` tables: ``name``, ``kind`` and the kind's
    fields), or WriteRefused naming the first that is wrong."""
    data = read_toml(path)
    tables = data.get("goal", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise WriteRefused(f"{path}: expected [[goal]] tables")
    if len(tables) > MAX_GOALS:
        raise WriteRefused(f"{path}: at most {MAX_GOALS} goals")
    goals, names = [], set()
    for n, table in enumerate(tables, 1):
        try:
            goal = check_goal(table.get("name"), table)
        except WriteRefused as exc:
            raise WriteRefused(f"{path}: goal {n}: {exc.reason}") from None
        if goal.name in names:
            raise WriteRefused(f"{path}: goal {n}: the name {goal.name!r} is used twice")
        names.add(goal.name)
        goals.append(goal)
    return goals
