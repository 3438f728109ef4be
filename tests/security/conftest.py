"""The demo served by a real uvicorn server on the real store, for the attack tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import PASSWORD, SECRET, Demo, serve
from support.stores import from_template

from clinic.app import build_demo_app


@pytest.fixture
def demo(store_dsn: str, migrated_template: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    monkeypatch.setenv("CONSENT_MW_PURGE_INTERVAL", "0")  # batches back to back in tests
    from_template(store_dsn, migrated_template)
    app = build_demo_app(store_dsn, secret_key=SECRET,
                         dashboard_password=PASSWORD,
                         settings_overrides={"flush_interval": 0.05})
    served = serve(app)
    d = Demo(served, app.state.demo)
    try:
        yield d
    finally:
        d.close()
