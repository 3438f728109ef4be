"""Reading settings from the environment and a TOML file, in one place.

Every package (``consent_mw``, ``collector``, ``dashboards``) builds its own frozen settings
object from a :class:`Source`; the parsing helpers here make each bad value fail with an error
that names the field, and :class:`Secret` keeps secrets out of ``repr`` and logs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consent_mw.errors import ConsentMWError

ENV_PREFIX = "CONSENT_MW_"
DEFAULT_TOML = "consent-mw.toml"


class SettingsError(ConsentMWError, ValueError):
    """A configuration value is missing or invalid; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret string whose ``repr`` and ``str`` never show the value."""

    value: str

    def __repr__(self) -> str:
        return "Secret('********')" if self.value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class Source:
    """Where settings come from: environment variables first, then one TOML table.

    ``table`` is the TOML section for one package, e.g. ``[consent_mw]`` or ``[collector]``.
    Environment variables are ``CONSENT_MW_<FIELD>`` in upper case.
    """

    env: Mapping[str, str]
    table: Mapping[str, Any]

    @classmethod
    def load(
        cls,
        section: str,
        *,
        env: Mapping[str, str] | None = None,
        toml_path: str | os.PathLike[str] | None = None,
    ) -> Source:
        env = dict(os.environ if env is None else env)
        path = toml_path or env.get(ENV_PREFIX + "CONFIG")
        table: Mapping[str, Any] = {}
        candidate = Path(path) if path else Path(DEFAULT_TOML)
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(str(candidate), f"invalid TOML: {exc}") from exc
            section_data = data.get(section, {})
            if not isinstance(section_data, dict):
                raise SettingsError(section, "must be a TOML table")
            table = section_data
        elif path:
            raise SettingsError(ENV_PREFIX + "CONFIG", f"no such file: {candidate}")
        return cls(env=env, table=table)

    def raw(self, field: str) -> Any:
        """The value for ``field`` (env wins over TOML), or None when unset."""
        env_value = self.env.get(ENV_PREFIX + field.upper())
        if env_value is not None and env_value != "":
            return env_value
        return self.table.get(field)

    def has(self, field: str) -> bool:
        return self.raw(field) is not None

    def text(self, field: str, default: str) -> str:
        value = self.raw(field)
        if value is None:
            return default
        if not isinstance(value, str):
            raise SettingsError(field, f"expected a string, got {type(value).__name__}")
        return value

    def opt_str(self, field: str) -> str | None:
        value = self.raw(field)
        if value is None:
            return None
        if not isinstance(value, str):
            raise SettingsError(field, f"expected a string, got {type(value).__name__}")
        return value

    def integer(self, field: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(field)
        if value is None:
            result = default
        elif isinstance(value, bool):
            raise SettingsError(field, "expected an integer, got a boolean")
        elif isinstance(value, int):
            result = value
        else:
            try:
                result = int(str(value).strip())
            except ValueError:
                raise SettingsError(field, f"expected an integer, got {value!r}") from None
        if minimum is not None and result < minimum:
            raise SettingsError(field, f"must be >= {minimum}, got {result}")
        return result

    def number(self, field: str, default: float, *, minimum: float | None = None) -> float:
        value = self.raw(field)
        if value is None:
            result = default
        elif isinstance(value, bool):
            raise SettingsError(field, "expected a number, got a boolean")
        else:
            try:
                result = float(value)
            except (TypeError, ValueError):
                raise SettingsError(field, f"expected a number, got {value!r}") from None
        if minimum is not None and result < minimum:
            raise SettingsError(field, f"must be >= {minimum}, got {result}")
        return result

    def flag(self, field: str, default: bool) -> bool:
        value = self.raw(field)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(field, f"expected true/false, got {value!r}")

    def strings(self, field: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list from TOML, or a comma-separated string from the environment."""
        value = self.raw(field)
        if value is None:
            return default
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise SettingsError(field, "expected a list of strings or a comma-separated string")

    def secret(self, field: str) -> Secret:
        return Secret(self.text(field, ""))

    def path(self, field: str, default: str | None) -> Path | None:
        value = self.opt_str(field)
        if value is None:
            return Path(default) if default is not None else None
        return Path(value)


def parse_duration(field: str, value: object) -> int:
    """Seconds from an int or a string like ``"30d"``, ``"13mo"``, ``"6h"``, ``"5y"``."""
    if isinstance(value, bool):
        raise SettingsError(field, "expected a duration, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise SettingsError(field, "must not be negative")
        return value
    text = str(value).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400,
             "y": 365 * 86400}
    for suffix in ("mo", "s", "m", "h", "d", "w", "y"):
        number = text.removesuffix(suffix)
        if number != text and number.strip().isdigit():
            return int(number) * units[suffix]
    if text.isdigit():
        return int(text)
    raise SettingsError(field, f"expected a duration like 30d, 13mo or 3600, got {value!r}")


def duration(source: Source, field: str, default: int) -> int:
    value = source.raw(field)
    return default if value is None else parse_duration(field, value)
