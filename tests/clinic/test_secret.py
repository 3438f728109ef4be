"""The demo's signing key: env first, else generated once and reused across restarts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clinic.secret import SecretError, load_or_create_secret


def test_generated_key_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    key, where = load_or_create_secret(path, env={})
    assert len(key) >= 32
    assert "generated" in where
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, where_again = load_or_create_secret(path, env={})
    assert again == key
    assert where_again == str(path)


def test_environment_key_wins_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    key, where = load_or_create_secret(
        path, env={"CONSENT_MW_SECRET_KEY": "env-secret-0123456789,older-key-0123456789"}
    )
    assert key == "env-secret-0123456789"
    assert where == "CONSENT_MW_SECRET_KEY"
    assert not path.exists()


def test_short_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="at least 16"):
        load_or_create_secret(tmp_path / "k", env={"CONSENT_MW_SECRET_KEY": "short"})
    (tmp_path / "k").write_text("short\n")
    with pytest.raises(SecretError, match="shorter than 16"):
        load_or_create_secret(tmp_path / "k", env={})


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "var"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(SecretError, match="set CONSENT_MW_SECRET_KEY"):
        load_or_create_secret(blocker / "secret_key", env={})
