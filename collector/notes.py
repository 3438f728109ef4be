"""Staff notes on the dashboards' time axis: a campaign launch, a TV mention, a site change.

A note is a day and a line of text, written by a staff member the dashboards logged in; the
catalogue's ``annotations`` query shows them on every time series, beside the changes of
consent-banner and policy version it finds by itself. :class:`Notes` writes them (the
dashboards' own store, or the collector's through ``POST /v1/notes``: ``collector.staff``);
nothing in a note is about a visitor. A deletion is a newer version marked deleted, so what
was noted, by whom, and who removed it, stays.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable, Mapping

from collector.errors import CollectorError
from collector.query.params import is_text
from collector.store import Store

MAX_TEXT = 200
MAX_AUTHOR = 128
#: How far from today a note may be put: the dashboards' longest range.
MAX_DAYS_AWAY = 400
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_ID = re.compile(r"[0-9a-f]{32}")
COLUMNS = ["note_id", "day", "text", "created_by", "updated_by", "deleted", "version"]


class WriteRefused(CollectorError, ValueError):
    """A dashboard note or saved segment the collector refuses; ``reason`` is safe to show
    the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(text: str) -> str:
    """Control characters and line breaks as spaces, runs of space as one, trimmed."""
    return " ".join(_CONTROL.sub(" ", text).split())


#: The longest name of a saved segment, goal or funnel.
MAX_NAME = 60


def check_name(name: object) -> str:
    """A segment's, goal's or funnel's name as it will be kept (one line, trimmed), or
    WriteRefused naming what is wrong."""
    if not isinstance(name, str) or not is_text(name):
        raise WriteRefused("name: expected a string of valid text")
    clean = one_line(name)
    if not clean or len(clean) > MAX_NAME:
        raise WriteRefused(f"name: 1 to {MAX_NAME} characters")
    return clean


def check_note(day: object, text: object, author: object,
               today: dt.date | None = None) -> tuple[dt.date, str, str]:
    """(day, text, author) of a note as it will be kept, or WriteRefused naming what is wrong."""
    if not isinstance(day, str | dt.date):
        raise WriteRefused("day: expected a date YYYY-MM-DD")
    try:
        when = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    except ValueError:
        raise WriteRefused("day: expected a date YYYY-MM-DD") from None
    if abs((when - (today or dt.date.today())).days) > MAX_DAYS_AWAY:
        raise WriteRefused(f"day: must be within {MAX_DAYS_AWAY} days of today")
    if not isinstance(text, str) or not is_text(text):
        raise WriteRefused("text: expected a string of valid text")
    text = one_line(text)
    if not text:
        raise WriteRefused("text: a note needs some text")
    if len(text) > MAX_TEXT:
        raise WriteRefused(f"text: at most {MAX_TEXT} characters")
    return when, text, check_author(author)


def check_author(author: object) -> str:
    """The staff member a write is made by, as the dashboards name them."""
    if (not isinstance(author, str) or not author.strip() or len(author) > MAX_AUTHOR
            or not is_text(author)):
        raise WriteRefused("author: expected the staff member's name")
    return author.strip()


def check_id(note_id: object, what: str = "note") -> str:
    """A note's (or another staff item's) id as :class:`StaffItems` makes them, or
    WriteRefused: never a path or SQL, whatever the caller sent."""
    if not isinstance(note_id, str) or not _ID.fullmatch(note_id):
        raise WriteRefused(f"{what}_id: not a {what}")
    return note_id


class StaffItems:
    """A table of things staff write for the dashboards (notes, segments), laid out alike:
    ``(id, two content columns, created_by, updated_by, deleted, version)``. A change is a
    newer version of the row, so what was written, by whom, and who removed it, stays."""

    def __init__(self, store: Store | Callable[[], Store], table: str,
                 columns: list[str], what: str) -> None:
        self._store: Callable[[], Store] = store if callable(store) else (lambda: store)
        self.table, self.columns, self.what = table, columns, what  # constants, never input

    def put(self, content: list[object], author: object) -> str:
        """Store a new item of ``content`` (the two content columns); its new id."""
        who = check_author(author)
        item_id = uuid.uuid4().hex
        self._store().insert(self.table, [[item_id, *content, who, who, False,
                                           time.time_ns()]], self.columns)
        return item_id

    def add_from(self, body: Mapping[str, object], author: object) -> str:
        """Store the item a posted JSON object (or the dashboards' form) describes."""
        raise NotImplementedError

    def update(self, item_id: str, content: list[object], author: object) -> None:
        """A newer version of a live item with new ``content``, under the same id (what
        refers to it keeps referring to it) and its first author."""
        key = check_id(item_id, self.what)
        who = check_author(author)
        id_col, created = self.columns[0], self.columns[3]
        rows = self._store().rows(
            f"SELECT {created} FROM {self.table} FINAL WHERE {id_col} = {{id:String}} "
            "AND NOT deleted", {"id": key})
        if not rows:
            raise WriteRefused(f"{self.what}_id: no such {self.what}")
        self._store().insert(self.table, [[key, *content, rows[0][0], who, False,
                                           time.time_ns()]], self.columns)

    def delete(self, item_id: object, author: object) -> bool:
        """Mark an item deleted; False when there is no such item (or it is deleted)."""
        key = check_id(item_id, self.what)
        who = check_author(author)
        id_col, first, second, created = self.columns[:4]
        rows = self._store().rows(
            f"SELECT {first}, {second}, {created} FROM {self.table} FINAL "
            f"WHERE {id_col} = {{id:String}} AND NOT deleted", {"id": key})
        if not rows:
            return False
        self._store().insert(self.table, [[key, *rows[0], who, True, time.time_ns()]],
                             self.columns)
        return True


class Notes(StaffItems):
    """Adds and removes notes on ``store``."""

    def __init__(self, store: Store | Callable[[], Store]) -> None:
        super().__init__(store, "dashboard_notes", COLUMNS, "note")

    def add(self, day: object, text: object, author: object) -> str:
        when, clean, who = check_note(day, text, author)
        return self.put([when, clean], who)

    def add_from(self, body: Mapping[str, object], author: object) -> str:
        return self.add(body.get("day"), body.get("text"), author)
