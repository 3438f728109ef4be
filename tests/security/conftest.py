"""The demo served by a real uvicorn server on the real store, for the attack tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_kit import PASSWORD, SECRET, Browser, Served, serve

from clinic.app import DemoParts, build_demo_app


class Demo:
    """The served demo: its URL, its parts (store, privacy, capture), browsers on it."""

    def __init__(self, served: Served, parts: DemoParts) -> None:
        self.served = served
        self.parts = parts
        self.url = served.url
        self._browsers: list[Browser] = []

    def browser(self) -> Browser:
        b = Browser(self.url)
        self._browsers.append(b)
        return b

    @property
    def store(self) -> Any:
        return self.parts.store

    def flush(self) -> None:
        assert self.parts.flush(10)

    def close(self) -> None:
        for b in self._browsers:
            b.close()
        self.served.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    app = build_demo_app(f"chdb://{tmp_path / 'store'}", secret_key=SECRET,
                         dashboard_password=PASSWORD,
                         settings_overrides={"flush_interval": 0.05})
    served = serve(app)
    d = Demo(served, app.state.demo)
    try:
        yield d
    finally:
        d.close()
