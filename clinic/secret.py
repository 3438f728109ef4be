"""The demo's signing key: from the environment, else generated once and kept beside the store."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "CONSENT_MW_SECRET_KEY"
MIN_LENGTH = 16


class SecretError(RuntimeError):
    """The secret key file is unusable."""


def load_or_create_secret(path: Path, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Return ``(key, where it came from)``.

    A key generated on first run is kept in ``path`` (mode 0600) so that a restarted demo still
    accepts the consent and visitor cookies it signed before.
    """
    env = os.environ if env is None else env
    from_env = env.get(ENV_VAR, "").split(",")[0].strip()
    if from_env:
        if len(from_env) < MIN_LENGTH:
            raise SecretError(f"{ENV_VAR} must be at least {MIN_LENGTH} characters")
        return from_env, ENV_VAR
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    except OSError as exc:
        raise SecretError(f"cannot read {path} ({exc.strerror}); set {ENV_VAR} or fix the "
                          "file") from exc
    if key:
        if len(key) < MIN_LENGTH:
            raise SecretError(f"{path} holds a key shorter than {MIN_LENGTH} characters")
        return key, str(path)
    key = secrets.token_urlsafe(32)
    # O_EXCL: two demos starting at once must not overwrite each other's key.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_secret(path, env)
    except OSError as exc:
        raise SecretError(f"cannot create {path} ({exc.strerror}); set {ENV_VAR} or run the "
                          "demo from a writable directory") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, f"{path} (generated)"
