"""`hookledger info`: what this installation is and where its data lives, with no
secret's value and no password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from api.providers import BUILT_IN
from hookledger import __version__
from hookledger.secrets import LOCAL_SECRETS_FILE
from hookledger.settings import Settings, variable

# Secret settings besides the providers' (whose fields the registry names).
OTHER_SECRETS = ("api_token", "tasks_secret", "sendgrid_api_key",
                 "authorizenet_transaction_key", "export_hash_key", "checkpoint_key",
                 "metrics_token", "operator_tokens", "auditor_tokens")  # fmt: skip


def hide_password(url: str) -> str:
    """A database URL or connection string with its password replaced by ***."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", url)


def secret_state(value: str) -> str:
    """How a secret setting is given, never its value."""
    if not value:
        return "unset"
    if value.startswith("sm://"):
        return "set (Secret Manager)"
    if value.startswith("file:"):
        return "set (file)"
    if value.startswith(("kms://", "projects/")) and "/cryptoKeyVersions/" in value:
        return "set (Cloud KMS)"
    return "set"


def describe(settings: Settings, embedded_exists: bool) -> list[tuple[str, str]]:
    """The lines of `hookledger info`, as (label, value)."""
    if settings.embedded:
        state = "exists" if embedded_exists else "not made yet: `hookledger serve` makes it"
        database = f"embedded Postgres in {settings.data_dir / 'pg'} ({state})"
    else:
        database = hide_password(settings.database_url or "")
    local = settings.embedded and (settings.data_dir / LOCAL_SECRETS_FILE).is_file()
    lines = [
        ("version", __version__),
        ("database", database),
        ("data folder", str(settings.data_dir)),
        ("timer backend", settings.timer_backend),
        ("safe mode", "on" if settings.safe_mode else "off: emails and refunds are sent"),
    ]
    for adapter in BUILT_IN.values():
        state = secret_state(getattr(settings, adapter.secrets_field))
        if state == "unset" and settings.embedded:
            state = "local (generated)" if local else "local (made by `serve`)"
        lines.append((f"secret {variable(adapter.secrets_field)}", state))
    for field in OTHER_SECRETS:
        lines.append((f"secret {variable(field)}", secret_state(getattr(settings, field))))
    return lines
