"""Secret values: given directly, as ``file:/path`` or as a Secret Manager
reference (``sm://PROJECT/SECRET[#VERSION]``, ``projects/P/secrets/S/versions/V``);
never logged. References are read again in the background (``SecretStore.run``),
so a rotated secret takes effect without a restart; the values it replaced stay
accepted for one more refresh interval, while senders switch over.

On the embedded database (a newcomer's laptop) a provider without a configured
secret gets a generated local one, kept in ``DATA_DIR/local-secrets.json``, so
``hookledger send`` can sign for it. With a real database URL nothing is made up:
a provider without a secret refuses every delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets as random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from api.providers import BUILT_IN
from events.errors import UpstreamUnavailable
from hookledger.secret_manager import SecretManager, reference
from hookledger.settings import Settings, SettingsError, split_values, variable

log = logging.getLogger(__name__)

LOCAL_SECRETS_FILE = "local-secrets.json"


def resolve(value: str, setting: str, manager: SecretManager | None = None) -> tuple[str, ...]:
    """All active values of a secret setting, references read now."""
    values: list[str] = []
    for part in split_values(value):
        if part.startswith("file:") or reference(part) is not None:
            values.extend(split_values(resolve_one(part, setting, manager)))
        else:
            values.append(part)
    return tuple(values)


def resolve_one(value: str, setting: str, manager: SecretManager | None = None) -> str:
    """One secret's whole text (a PEM key has spaces and lines: it is not split)."""
    if value.startswith("file:"):
        path = Path(value.removeprefix("file:"))
        try:
            return path.read_text()
        except OSError as exc:
            raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if (name := reference(value)) is not None:
        try:
            return (manager or SecretManager()).access(name)
        except UpstreamUnavailable as exc:
            raise SettingsError(f"{setting}: {exc.detail}") from None
    return value


def generated_once(settings: Settings, file_name: str, make: Callable[[], str]) -> str:
    """A local secret under the data folder, made by ``make`` on first use and
    kept (readable by its owner only): the embedded database's stand-in for a
    configured one."""
    path = settings.data_dir / file_name
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: a concurrent first run either
        # wins the link or reads the complete secret of the one that did.
        fd, temporary = tempfile.mkstemp(dir=settings.data_dir, prefix=f".{file_name}-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(make())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_text()


class LiveSecret:
    """A secret setting's active values, as adapters and routes read them at each
    use: the latest read first, then those it replaced, until ``overlap_until``."""

    def __init__(self, setting: str, value: str, values: tuple[str, ...]) -> None:
        self.setting = setting
        self.value = value
        self._current = values
        self._previous: tuple[str, ...] = ()
        self._previous_until = 0.0

    @property
    def values(self) -> tuple[str, ...]:
        if self._previous and time.monotonic() < self._previous_until:
            return self._current + tuple(v for v in self._previous if v not in self._current)
        return self._current

    def first(self) -> str:
        """The newest value (what we sign or authenticate with), or ``""``."""
        return self._current[0] if self._current else ""

    @property
    def refreshable(self) -> bool:
        """Whether reading it again can give other values."""
        return any(p.startswith("file:") or reference(p) for p in split_values(self.value))

    def update(self, values: tuple[str, ...], overlap: float) -> bool:
        """Take newly read values; True if they changed."""
        if values == self._current:
            return False
        self._previous = self._current
        self._previous_until = time.monotonic() + overlap
        self._current = values
        return True


class SecretStore:
    """Every secret setting of a process, and their background refresh."""

    def __init__(self, endpoint: str = "", refresh_seconds: float = 300.0) -> None:
        self._manager = SecretManager(endpoint)
        self._refresh_seconds = refresh_seconds
        self._secrets: dict[str, LiveSecret] = {}
        self._listeners: list[Callable[[], None]] = []
        self.failures: dict[str, str] = {}
        self.refreshed_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretStore:
        return cls(settings.secrets_endpoint, settings.secrets_refresh.total_seconds())

    def resolve(self, value: str, setting: str) -> tuple[str, ...]:
        """The values now (SettingsError if a reference cannot be read)."""
        return resolve(value, setting, self._manager)

    def live(self, value: str, setting: str, fallback: tuple[str, ...] = ()) -> LiveSecret:
        """A holder for the setting, read now; ``fallback`` when it is empty. Asked
        again for the same setting and value, the holder made first: every user
        of a secret then follows its refreshes (the task secret is both checked
        on the task route and sent by the task sync)."""
        held = self._secrets.get(setting)
        if held is not None and held.value == value:
            return held
        secret = LiveSecret(setting, value, self.resolve(value, setting) or fallback)
        self._secrets[setting] = secret
        return secret

    def get(self, setting: str) -> LiveSecret:
        """The holder of a setting made by ``live`` (KeyError if none was)."""
        return self._secrets[setting]

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after a refresh that changed any secret: for users
        that copy values out (the outbound actions' credentials)."""
        self._listeners.append(listener)

    def settings(self) -> list[str]:
        """The names of the secret settings held (never their values)."""
        return sorted(self._secrets)

    async def refresh(self) -> int:
        """Read every reference again; a failure keeps the values held. Returns
        how many secrets changed."""
        changed = 0
        for secret in [s for s in self._secrets.values() if s.refreshable]:
            try:
                values = await asyncio.to_thread(self.resolve, secret.value, secret.setting)
            except SettingsError as exc:
                self.failures[secret.setting] = str(exc)
                log.warning("secret not refreshed; keeping its values",
                            extra={"setting": secret.setting, "error": str(exc)})  # fmt: skip
                continue
            self.failures.pop(secret.setting, None)
            if values and secret.update(values, overlap=self._refresh_seconds):
                changed += 1
                log.info("secret rotated", extra={"setting": secret.setting})
        self.refreshed_at = time.time()
        if changed:
            for listener in self._listeners:
                listener()
        return changed

    async def run(self) -> None:
        """Refresh every ``refresh_seconds`` until cancelled."""
        if not any(s.refreshable for s in self._secrets.values()):
            return
        while True:
            await asyncio.sleep(self._refresh_seconds)
            await self.refresh()


def provider_secrets(
    settings: Settings, store: SecretStore | None = None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each inbound provider's setting name and active secret values."""
    live = live_provider_secrets(settings, store or SecretStore.from_settings(settings))
    return {provider: (secret.setting, secret.values) for provider, secret in live.items()}


def live_provider_secrets(settings: Settings, store: SecretStore) -> dict[str, LiveSecret]:
    """Each inbound provider's secret, held by ``store`` for its refreshes."""
    local = local_secrets(settings.data_dir) if settings.embedded else {}
    return {
        provider: store.live(
            getattr(settings, adapter.secrets_field),
            variable(adapter.secrets_field),
            (local[provider],) if provider in local else (),
        )
        for provider, adapter in BUILT_IN.items()
    }


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
        for name, adapter in BUILT_IN.items():
            if name not in known:
                made.update(adapter.local_secret())
        if made:
            _write_private(path, {**known, **made})
        return {**known, **made}


def _write_private(path: Path, values: dict[str, str]) -> None:
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)
    os.replace(temporary, path)


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
    return (
        generated_once(settings, LOCAL_EXPORT_KEY_FILE, lambda: random.token_hex(32))
        .strip()
        .encode()
    )
