"""Fresh stores for tests, copied from one migrated template instead of migrated each time."""

from __future__ import annotations

import shutil
from pathlib import Path

from collector.store import chdb_path


def from_template(dsn: str, template: Path) -> None:
    """Put a copy of ``template`` (a closed, migrated store) where ``dsn`` points, unless a
    store is there already. Creating the tables costs ~0.15 s a store; the copy ~0.02 s."""
    path = chdb_path(dsn)
    if path is not None and not path.exists():
        # The Atomic database engine links tables into store/ by relative symlinks: keep them.
        shutil.copytree(template, path, symlinks=True)
