"""The export's settings: BigQuery target, interval, policy file, hash key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from exporter.bigquery import BigQueryConfig
from hookledger.exports import bigquery_config, export_policy
from hookledger.secrets import LOCAL_EXPORT_KEY_FILE, export_hash_key
from hookledger.settings import Settings, SettingsError, from_env


def test_export_settings_are_read_from_the_environment() -> None:
    settings = from_env({
        "HOOKLEDGER_BIGQUERY_PROJECT": "acme-analytics",
        "HOOKLEDGER_BIGQUERY_DATASET": "ledger",
        "HOOKLEDGER_BIGQUERY_TABLE": "events_v2",
        "HOOKLEDGER_BIGQUERY_LOCATION": "EU",
        "HOOKLEDGER_BIGQUERY_ENDPOINT": "http://127.0.0.1:9050",
        "HOOKLEDGER_EXPORT_INTERVAL": "0.5",
        "HOOKLEDGER_EXPORT_POLICY_FILE": "/etc/hookledger/policy.toml",
        "HOOKLEDGER_EXPORT_HASH_KEY": "file:/run/secrets/hash-key",
    })  # fmt: skip
    assert settings.export_interval == 0.5
    assert settings.export_policy_file == "/etc/hookledger/policy.toml"
    assert settings.export_hash_key == "file:/run/secrets/hash-key"
    assert bigquery_config(settings) == BigQueryConfig(
        project="acme-analytics", dataset="ledger", table="events_v2", location="EU",
        endpoint="http://127.0.0.1:9050",
    )  # fmt: skip


def test_bigquery_is_off_until_a_project_is_set_and_names_default() -> None:
    assert bigquery_config(Settings()) is None
    config = bigquery_config(Settings(bigquery_project="p"))
    assert config is not None
    assert (config.dataset, config.table, config.table_id) == (
        "hookledger",
        "events",
        "p.hookledger.events",
    )


@pytest.mark.parametrize("raw", ["0", "-1", "soon", "nan"])
def test_an_export_interval_that_is_not_a_positive_number_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="HOOKLEDGER_EXPORT_INTERVAL"):
        from_env({"HOOKLEDGER_EXPORT_INTERVAL": raw})


def test_a_table_name_that_could_break_out_of_its_quotes_is_refused() -> None:
    with pytest.raises(SettingsError, match="HOOKLEDGER_BIGQUERY"):
        bigquery_config(Settings(bigquery_project="p", bigquery_table="events` WHERE TRUE --"))


def test_the_hash_key_comes_from_the_setting_or_its_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    assert export_hash_key(Settings(export_hash_key="direct")) == b"direct"
    assert export_hash_key(Settings(export_hash_key=f"file:{key_file}")) == b"from-a-file"


def test_a_local_installation_gets_a_stable_generated_hash_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = export_hash_key(settings)
    assert len(first) == 64
    assert export_hash_key(settings) == first
    mode = (tmp_path / LOCAL_EXPORT_KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_real_database_without_a_hash_key_is_refused_by_name(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://db/hl", data_dir=tmp_path)
    with pytest.raises(SettingsError, match="HOOKLEDGER_EXPORT_HASH_KEY"):
        export_hash_key(settings)
    assert not (tmp_path / LOCAL_EXPORT_KEY_FILE).exists()


def test_a_broken_policy_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[[rule]]\ndrop = ["**"]\n')
    settings = Settings(export_policy_file=str(path), export_hash_key="k")
    with pytest.raises(SettingsError, match=r"HOOKLEDGER_EXPORT_POLICY_FILE: .*policy\.toml"):
        export_policy(settings)
