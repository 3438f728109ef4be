"""The demo served by a real uvicorn server on the real store, for the attack tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.servers import PASSWORD, SECRET, Demo, serve

from clinic.app import build_demo_app


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    monkeypatch.setenv("CONSENT_MW_PURGE_INTERVAL", "0")  # batches back to back in tests
    app = build_demo_app(f"chdb://{tmp_path / 'store'}", secret_key=SECRET,
                         dashboard_password=PASSWORD,
                         settings_overrides={"flush_interval": 0.05})
    served = serve(app)
    d = Demo(served, app.state.demo)
    try:
        yield d
    finally:
        d.close()
