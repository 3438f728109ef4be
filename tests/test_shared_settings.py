"""The shared settings machinery: env over TOML, errors naming the field, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from consent_mw.config import Secret, SettingsError, Source, parse_duration
from consent_mw.settings import Settings

KEY = "k" * 24


def test_env_wins_over_toml(tmp_path: Path) -> None:
    toml = tmp_path / "consent-mw.toml"
    toml.write_text('[consent_mw]\nqueue_size = 10\nbatch_size = 7\n', encoding="utf-8")
    s = Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY, "CONSENT_MW_QUEUE_SIZE": "20"},
                          toml_path=toml)
    assert (s.queue_size, s.batch_size) == (20, 7)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"CONSENT_MW_QUEUE_SIZE": "many"}, "queue_size"),
        ({"CONSENT_MW_QUEUE_SIZE": "0"}, "queue_size"),
        ({"CONSENT_MW_TRUSTED_PROXIES": "10.0.0.0/8,not-a-net"}, "trusted_proxies"),
        ({"CONSENT_MW_COLLECTOR_URL": "ftp://x"}, "collector_url"),
        ({"CONSENT_MW_CONSENT_MAX_AGE": "six months"}, "consent_max_age"),
        ({"CONSENT_MW_BANNER": "maybe"}, "banner"),
        ({"CONSENT_MW_VISITOR_MAX_AGE": "2y"}, "visitor_max_age"),
        ({"CONSENT_MW_COLLECTOR_COMPRESSION": "zstd"}, "collector_compression"),
    ],
)
def test_bad_values_fail_with_an_error_naming_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY, **env})
    assert err.value.field == field
    assert field in str(err.value)


@pytest.mark.parametrize(("field", "value"), [
    ("queue_size", 0), ("max_body_bytes", 100), ("max_event_bytes", 10), ("flush_interval", 0.0),
    ("suppression_refresh", 0.01), ("queue_max_bytes", 1024), ("session_timeout", -1),
])
def test_limits_hold_for_settings_built_by_keyword_too(field: str, value: float) -> None:
    with pytest.raises(SettingsError) as err:
        Settings(secret_keys=(Secret(KEY),), **{field: value})  # type: ignore[arg-type]
    assert err.value.field == field


def test_the_collector_compression_is_read_from_the_environment() -> None:
    env = {"CONSENT_MW_SECRET_KEY": KEY, "CONSENT_MW_COLLECTOR_COMPRESSION": "gzip"}
    assert Settings.from_env(env).collector_compression == "gzip"
    assert Settings(secret_keys=(Secret(KEY),)).collector_compression == "auto"
    upper = Settings(secret_keys=(Secret(KEY),), collector_compression="IDENTITY")
    assert upper.collector_compression == "identity"


def test_unset_fields_keep_the_dataclass_defaults(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no consent-mw.toml here
    assert Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY}) == Settings(secret_keys=(Secret(KEY),))


def test_a_tag_given_by_keyword_is_checked_against_the_categories() -> None:
    from consent_mw.consent.categories import Tag

    tag = Tag(name="x", kind="script", category="nope", src="/x.js")
    with pytest.raises(SettingsError, match=r"tags\[0\]\.category"):
        Settings(secret_keys=(Secret(KEY),), tags=(tag,))


def test_a_missing_secret_key_is_named() -> None:
    with pytest.raises(SettingsError, match="secret_key"):
        Settings.from_env({})


def test_secrets_never_show_in_repr() -> None:
    s = Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY + ",older-key-0123456789",
                           "CONSENT_MW_COLLECTOR_TOKEN": "tok-SECRET-value"})
    text = repr(s)
    assert KEY not in text and "older-key" not in text and "tok-SECRET-value" not in text
    assert len(s.secret_keys) == 2 and s.secret_keys[1].value == "older-key-0123456789"


def test_settings_are_frozen() -> None:
    s = Settings(secret_keys=(Secret(KEY),))
    with pytest.raises(AttributeError):
        s.queue_size = 5  # type: ignore[misc]


def test_policy_version_changes_with_the_policy_text() -> None:
    a = Settings(secret_keys=(Secret(KEY),), policy_text="v1")
    b = Settings(secret_keys=(Secret(KEY),), policy_text="v1 amended")
    assert a.policy_version != b.policy_version
    assert a.policy_version.startswith("2024-04-23+")


def test_categories_and_tags_come_from_toml(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        """
[consent_mw]
[[consent_mw.categories]]
name = "analytics"
[[consent_mw.categories]]
name = "ads"
gcm = ["ad_storage"]
label = "Ads"
covers = "clicks"
purpose = "measure"
retention = "1 year"
[[consent_mw.tags]]
name = "ga"
kind = "google_analytics"
category = "analytics"
service = "google_analytics"
measurement_id = "G-TEST"
recipient = "Google LLC"
items = "pages"
purpose = "statistics"
""",
        encoding="utf-8",
    )
    s = Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY}, toml_path=toml)
    assert s.category_names == ("necessary", "analytics", "ads")
    assert s.tags[0].measurement_id == "G-TEST"


def test_a_tag_naming_an_unknown_category_is_rejected(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[consent_mw]\n[[consent_mw.tags]]\nname="x"\nkind="script"\n'
                    'category="nope"\nsrc="/x.js"\nrecipient="r"\nitems="i"\npurpose="p"\n',
                    encoding="utf-8")
    with pytest.raises(SettingsError, match=r"tags\[0\]\.category"):
        Settings.from_env({"CONSENT_MW_SECRET_KEY": KEY}, toml_path=toml)


def test_a_named_config_file_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(SettingsError, match="CONSENT_MW_CONFIG"):
        Source.load("consent_mw", env={"CONSENT_MW_CONFIG": "/nonexistent/c.toml"})


@pytest.mark.parametrize(("text", "seconds"), [("30d", 2592000), ("13mo", 33696000),
                                               ("6h", 21600), ("90", 90), (45, 45)])
def test_durations_parse(text: str | int, seconds: int) -> None:
    assert parse_duration("f", text) == seconds
