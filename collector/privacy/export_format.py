"""A person's export as files: ``subject.json`` and one CSV per section, in a zip.

Every cell goes through ``collector.csvsafe`` (the one formula neutraliser), so an export
opened in a spreadsheet never runs what a visitor typed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from collector.csvsafe import write_csv

SECTIONS = ("events", "consent_records", "suppressions", "receipts")


def export_zip(data: Mapping[str, Any]) -> bytes:
    """The export as CSV files in a zip: subject.json plus one CSV per section."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("subject.json", json.dumps(data["subject"], indent=2, ensure_ascii=False))
        for section in SECTIONS:
            zf.writestr(f"{section}.csv", write_csv(data.get(section) or []))
    return buf.getvalue()
