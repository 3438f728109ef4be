"""Fixtures for the capture tests; the helpers live in support.capture."""

from __future__ import annotations

import pytest
from support.capture import RecordingTransport


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()
