"""Fixtures for the capture tests; the helpers live in capture_support (importable by name)."""

from __future__ import annotations

import pytest
from capture_support import RecordingTransport


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()
