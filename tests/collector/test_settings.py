"""CollectorSettings: env and TOML, field-named errors, masked secrets, the shared hash key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.settings import CollectorSettings
from consent_mw.config import SettingsError


def test_defaults_and_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    defaults = CollectorSettings.from_env({})
    assert defaults.store == f"chdb://{tmp_path}/var/consent-mw.chdb"
    assert (defaults.events_ttl, defaults.ip_ttl) == (395 * 86400, 30 * 86400)
    assert defaults.records_ttl == 5 * 365 * 86400
    assert defaults.max_body_bytes == 8 * 1024 * 1024 and defaults.clock_skew == 86400
    s = CollectorSettings.from_env({
        "CONSENT_MW_STORE": "http://default:pw@ch:8123/analytics",
        "CONSENT_MW_COLLECTOR_TOKEN": "tok", "CONSENT_MW_IP_TTL": "7d",
        "CONSENT_MW_EVENTS_TTL": "13mo", "CONSENT_MW_GEOIP_DB": "/data/city.mmdb",
        "CONSENT_MW_CLUSTER": "main",
    })
    assert s.collector_token.value == "tok" and s.ip_ttl == 7 * 86400
    assert s.events_ttl == 390 * 86400 and s.geoip_db == Path("/data/city.mmdb")
    assert s.cluster == "main"


def test_group_commit_and_warming_settings_are_read() -> None:
    defaults = CollectorSettings.from_env({})
    assert (defaults.insert_max_rows, defaults.insert_linger_ms) == (20_000, 5.0)
    assert defaults.dedupe_warm_hours == 24
    s = CollectorSettings.from_env({"CONSENT_MW_INSERT_MAX_ROWS": "5000",
                                    "CONSENT_MW_INSERT_LINGER_MS": "0.5",
                                    "CONSENT_MW_DEDUPE_WARM_HOURS": "0"})
    assert (s.insert_max_rows, s.insert_linger_ms, s.dedupe_warm_hours) == (5000, 0.5, 0)


def test_toml_table_is_read_and_env_wins(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[collector]\nip_ttl = "14d"\nmax_body_bytes = 1000\n')
    s = CollectorSettings.from_env({"CONSENT_MW_MAX_BODY_BYTES": "2000"}, toml_path=toml)
    assert s.ip_ttl == 14 * 86400 and s.max_body_bytes == 2000


def test_hash_key_is_the_middlewares_user_id_key_or_secret_key() -> None:
    own = CollectorSettings.from_env({"CONSENT_MW_USER_ID_KEY": "k1",
                                      "CONSENT_MW_SECRET_KEY": "s1,s2"})
    assert own.hash_key_bytes == b"k1"
    fallback = CollectorSettings.from_env({"CONSENT_MW_SECRET_KEY": "s1,s2"})
    assert fallback.hash_key_bytes == b"s1"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"CONSENT_MW_IP_TTL": "soon"}, "ip_ttl"),
        ({"CONSENT_MW_STORE": "mysql://x"}, "store"),
        ({"CONSENT_MW_MAX_BODY_BYTES": "0"}, "max_body_bytes"),
        ({"CONSENT_MW_IP_TTL": "500d"}, "ip_ttl"),
        ({"CONSENT_MW_CLUSTER": "a b"}, "cluster"),
        ({"CONSENT_MW_INSERT_MAX_ROWS": "0"}, "insert_max_rows"),
        ({"CONSENT_MW_INSERT_LINGER_MS": "-1"}, "insert_linger_ms"),
        ({"CONSENT_MW_DEDUPE_WARM_HOURS": "-2"}, "dedupe_warm_hours"),
    ],
)
def test_invalid_values_name_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        CollectorSettings.from_env(env)
    assert info.value.field == field


def test_secrets_are_masked_in_repr() -> None:
    s = CollectorSettings.from_env({"CONSENT_MW_COLLECTOR_TOKEN": "hunter2-token",
                                    "CONSENT_MW_ADMIN_TOKEN": "adm1n-token",
                                    "CONSENT_MW_USER_ID_KEY": "very-secret-key"})
    text = repr(s)
    for secret in ("hunter2-token", "adm1n-token", "very-secret-key"):
        assert secret not in text


def test_a_store_password_is_masked_in_repr() -> None:
    s = CollectorSettings(store="https://reader:pa55word@clickhouse:8443/analytics")
    assert "pa55word" not in repr(s)
    assert "https://reader:********@clickhouse:8443/analytics" in repr(s)


def test_collector_command_fails_clearly_on_a_bad_store(tmp_path: Path) -> None:
    from collector.cli_server import collector

    result = CliRunner().invoke(collector, ["--store", "mysql://nowhere"])
    assert result.exit_code != 0
    assert "store" in result.output
