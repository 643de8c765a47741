"""The configured personal-data policy, and what it finds in the built-in
sample bodies (`hookledger personal-data`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hookledger.samples import SAMPLES
from hookledger.settings import Settings, SettingsError
from personal.cutter import PersonalCutter
from personal.policy import PersonalPolicy, PersonalPolicyError, load_policy


def personal_policy(settings: Settings) -> PersonalPolicy:
    """``HOOKLEDGER_PERSONAL_DATA_POLICY``'s policy, else the default."""
    path = Path(settings.personal_data_policy) if settings.personal_data_policy else None
    try:
        return load_policy(path)
    except PersonalPolicyError as exc:
        raise SettingsError(f"HOOKLEDGER_PERSONAL_DATA_POLICY: {exc}") from None


def personal_cutter(settings: Settings) -> PersonalCutter:
    """What cuts the personal values out of each event appended."""
    return PersonalCutter(personal_policy(settings))


def describe(policy: PersonalPolicy) -> dict[str, Any]:
    """The rules, and the personal paths of every sample body (never a value)."""
    rules = [
        {"provider": r.provider, "types": r.types, "personal": r.personal,
         "keep": r.keep, "from": r.from_}
        for r in policy.rules
    ]  # fmt: skip
    samples = []
    for provider, builders in SAMPLES.items():
        for kind, build in builders.items():
            found = policy.find(provider, kind, build("sample-order"))
            samples.append({
                "provider": provider,
                "type": kind,
                "personal": [
                    {"path": ".".join(str(k) for k in f.path), "keep": _keep(f.retention.keep),
                     "from": f.retention.anchor}
                    for f in found
                ],
            })  # fmt: skip
    return {"rules": rules, "samples": samples}


def _keep(keep: Any) -> str:
    seconds = int(keep.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
