"""Named Standard Webhooks sources, declared in the TOML file that
``HOOKLEDGER_PROVIDERS_FILE`` names; adding one needs no code:

    [sources.returns]
    secret = "file:/run/secrets/returns"   # like any secret: value(s) or file:
    order_path = "data.order.id"           # optional: where the order id is
    type_path = "type"                     # where the type is ...
    # type = "return.requested"            # ... or one fixed type
    time_path = "data.created_at"          # optional: when it happened

A file that cannot be used stops the start with an error naming the file and
what is wrong with it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from api.providers import BUILT_IN
from api.providers.base import event_name
from api.providers.standard import StandardSource
from api.rejections import MalformedBody
from hookledger.secrets import SecretStore, resolve
from hookledger.settings import SettingsError

# "hookledger" records the service's own decisions; "unknown" is the metrics
# label of deliveries to no provider.
RESERVED = frozenset(BUILT_IN) | {"hookledger", "unknown"}
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")


class Source(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One ``[sources.NAME]`` table."""

    secret: str
    order_path: str | None = None
    type_path: str | None = None
    type: str | None = None
    time_path: str | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    sources: dict[str, Source] = msgspec.field(default_factory=dict)


def load_sources(file: str, store: SecretStore | None = None) -> dict[str, StandardSource]:
    """The sources the file declares (none when ``file`` is empty), ready to serve."""
    if not file:
        return {}
    path = Path(file)

    def fail(problem: str) -> SettingsError:
        return SettingsError(f"HOOKLEDGER_PROVIDERS_FILE {path}: {problem}")

    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise fail(f"cannot read it: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"not valid TOML: {exc}") from None
    try:
        declared = msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise fail(str(exc)) from None

    sources: dict[str, StandardSource] = {}
    for name, source in declared.sources.items():
        where = f"[sources.{name}]"
        problem = _problem(name, source)
        if problem:
            raise fail(f"{where}: {problem}")
        setting = f"{where}.secret in {path}"
        try:
            sources[name] = StandardSource(
                name,
                store.live(source.secret, setting) if store else resolve(source.secret, setting),
                setting,
                order_path=source.order_path,
                type_path=source.type_path,
                fixed_type=source.type,
                time_path=source.time_path,
            )
        except ValueError as exc:
            raise fail(f"{where}.secret: {exc}") from None
    return sources


def _problem(name: str, source: Source) -> str | None:
    """What is wrong with one declared source, or None."""
    if name in RESERVED:
        return f"{name!r} is a built-in provider or reserved; choose another name"
    if not _NAME.match(name):
        return "a name is lowercase letters, digits and '-', starting with a letter (40 at most)"
    if (source.type_path is None) == (source.type is None):
        return "give exactly one of type_path (where the type is) and type (a fixed type)"
    if source.type is not None:
        try:
            event_name(source.type, "type")
        except MalformedBody as exc:
            return f"{exc.detail}, not {source.type!r}"
    for field in ("order_path", "type_path", "time_path"):
        value = getattr(source, field)
        if value is not None and not _PATH.match(value):
            return f"{field} {value!r} is not a dotted path like 'data.order.id'"
    return None
