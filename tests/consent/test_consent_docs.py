"""docs/consent.md stays true: its TOML example loads and drives the middleware."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from support.apps import ORIGIN, starlette_app

from consent_mw.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "consent.md"


def test_documented_toml_example_loads_and_gates_the_tag(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    (tmp_path / "consent-mw.toml").write_text(block.group(1), encoding="utf-8")
    (tmp_path / "privacy-policy.txt").write_text("policy", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(env={})
    assert settings.secret_keys[0].value.startswith("new-key")
    assert settings.category_names == ("necessary", "analytics", "marketing")
    assert settings.tags[0].measurement_id == "G-XXXXXXX"
    client = TestClient(starlette_app(settings))
    assert "G-XXXXXXX" not in client.get("/en").text
    client.post("/_consent", json={"action": "accept_all"}, headers={"origin": ORIGIN})
    assert "gtag/js?id=G-XXXXXXX" in client.get("/en").text
    assert "Google LLC" in client.get("/_consent/external-transmission").text


def test_every_settings_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    fields = [f.name for f in dataclasses.fields(Settings) if f.init]  # not derived ones
    missing = [f for f in fields if f not in text]
    assert missing == []
