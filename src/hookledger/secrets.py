"""Secret values: given directly or as ``file:/path``; never logged.

On the embedded database (a newcomer's laptop) a provider without a configured
secret gets a generated local one, kept in ``DATA_DIR/local-secrets.json``, so
``hookledger send`` can sign for it. With a real database URL nothing is made up:
a provider without a secret refuses every delivery.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets as random
import tempfile
from collections.abc import Callable
from pathlib import Path

from api.sendgrid_signature import new_key_pair
from hookledger.settings import Settings, SettingsError, split_values

LOCAL_SECRETS_FILE = "local-secrets.json"
# The private half of the local SendGrid key pair: only `hookledger send` uses it.
SENDGRID_SIGNING_KEY = "sendgrid-signing-key"


def resolve(value: str, setting: str) -> tuple[str, ...]:
    """All active values of a secret setting."""
    values: list[str] = []
    for part in split_values(value):
        if part.startswith("file:"):
            path = Path(part.removeprefix("file:"))
            try:
                values.extend(split_values(path.read_text()))
            except OSError as exc:
                raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from None
        else:
            values.append(part)
    return tuple(values)


def provider_secrets(settings: Settings) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each inbound provider's setting name and active secret values."""
    configured = {
        "veriff": ("HOOKLEDGER_VERIFF_SECRET", settings.veriff_secret),
        "post-purchase": ("HOOKLEDGER_POST_PURCHASE_SECRET", settings.post_purchase_secret),
        "shopify": ("HOOKLEDGER_SHOPIFY_SECRET", settings.shopify_secret),
        "stripe": ("HOOKLEDGER_STRIPE_SECRET", settings.stripe_secret),
        "authorizenet": ("HOOKLEDGER_AUTHORIZENET_SECRET", settings.authorizenet_secret),
        "sendgrid": ("HOOKLEDGER_SENDGRID_PUBLIC_KEY", settings.sendgrid_public_key),
    }
    local = local_secrets(settings.data_dir) if settings.embedded else {}
    result: dict[str, tuple[str, tuple[str, ...]]] = {}
    for provider, (setting, value) in configured.items():
        values = resolve(value, setting)
        if not values and provider in local:
            values = (local[provider],)
        result[provider] = (setting, values)
    return result


def local_secrets(data_dir: Path) -> dict[str, str]:
    """The generated secrets of a local installation, made on first use.

    An installation made before a provider existed gets that provider's secret
    added; the ones it has are kept.
    """
    path = data_dir / LOCAL_SECRETS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    # serve and send may both make the file at once: one at a time.
    with (data_dir / (LOCAL_SECRETS_FILE + ".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        made: dict[str, str] = {}
        for name, make in _LOCAL.items():
            if name not in known:
                made.update(make())
        if made:
            _write_private(path, {**known, **made})
        return {**known, **made}


def _write_private(path: Path, values: dict[str, str]) -> None:
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    os.replace(temporary, path)


def _sendgrid_key_pair() -> dict[str, str]:
    private, public = new_key_pair()
    return {"sendgrid": public, SENDGRID_SIGNING_KEY: private}


# Each provider's local secret, made the way the provider's own secrets look.
_LOCAL: dict[str, Callable[[], dict[str, str]]] = {
    "veriff": lambda: {"veriff": random.token_hex(32)},
    "post-purchase": lambda: {
        "post-purchase": "whsec_" + base64.b64encode(random.token_bytes(24)).decode()
    },
    "shopify": lambda: {"shopify": random.token_hex(32)},
    "stripe": lambda: {"stripe": "whsec_" + random.token_hex(24)},
    # Authorize.net's Signature Keys are 128 uppercase hex characters.
    "authorizenet": lambda: {"authorizenet": random.token_hex(64).upper()},
    "sendgrid": _sendgrid_key_pair,
}


LOCAL_EXPORT_KEY_FILE = "local-export-hash-key"


def export_hash_key(settings: Settings) -> bytes:
    """The key of the export policy's keyed hash (``HOOKLEDGER_EXPORT_HASH_KEY``).

    Of several values the first is used: changing it changes every hashed value,
    so analysts' joins across the change break (keep it stable). On the embedded
    database a local key is generated once; with a real database the setting is
    required, since a made-up key would hash differently on every run.
    """
    values = resolve(settings.export_hash_key, "HOOKLEDGER_EXPORT_HASH_KEY")
    if values:
        return values[0].encode()
    if not settings.embedded:
        raise SettingsError(
            "HOOKLEDGER_EXPORT_HASH_KEY is not set: the export policy replaces personal "
            "fields by a keyed hash and needs a stable secret key"
        )
    path = settings.data_dir / LOCAL_EXPORT_KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a concurrent first run either
        # wins the link or reads the complete key of the one that did.
        fd, temporary = tempfile.mkstemp(dir=settings.data_dir, prefix=".export-key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(random.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text().strip().encode()
