"""Settings, read once from ``HOOKLEDGER_*`` environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import msgspec

PREFIX = "HOOKLEDGER_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


class Settings(msgspec.Struct, frozen=True):
    database_url: str | None = None
    data_dir: Path = Path(".hookledger")
    max_body_bytes: int = 1024 * 1024
    veriff_secret: str = ""
    post_purchase_secret: str = ""
    api_token: str = ""
    safe_mode: bool = True
    log_level: str = "INFO"
    group_commit: bool = True
    max_batch: int = 512
    pool_size: int = 8
    bigquery_project: str = ""
    bigquery_dataset: str = "hookledger"
    bigquery_table: str = "events"
    bigquery_location: str = ""
    bigquery_endpoint: str = ""
    export_policy_file: str = ""
    export_hash_key: str = ""
    export_interval: float = 10.0

    @property
    def embedded(self) -> bool:
        """No database URL: run the embedded Postgres under ``data_dir``."""
        return not self.database_url


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def from_env(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; unknown keys are ignored."""
    values: dict[str, object] = {}
    for name, field_type in _fields().items():
        raw = environ.get(PREFIX + name.upper())
        if raw is None or raw == "":
            continue
        values[name] = _convert(name, raw, field_type)
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except (TypeError, msgspec.ValidationError) as exc:
        raise SettingsError(str(exc)) from exc


def _fields() -> dict[str, object]:
    return {f.name: f.type for f in msgspec.structs.fields(Settings)}


def _convert(name: str, raw: str, field_type: object) -> object:
    setting = PREFIX + name.upper()
    if field_type is bool:
        if raw.strip().lower() not in _BOOL:
            raise SettingsError(f"{setting} must be true or false, not {raw!r}")
        return _BOOL[raw.strip().lower()]
    if field_type is int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{setting} must be an integer, not {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{setting} must be positive")
        return value
    if field_type is float:
        try:
            number = float(raw)
        except ValueError:
            raise SettingsError(f"{setting} must be a number, not {raw!r}") from None
        if not number > 0:
            raise SettingsError(f"{setting} must be positive")
        return number
    if field_type is Path:
        return Path(raw)
    return raw


def split_values(value: str) -> tuple[str, ...]:
    """Several secrets or tokens in one setting, separated by spaces or commas."""
    return tuple(part for part in re.split(r"[\s,]+", value) if part)
