"""PLACEHOLDER until the actions branch lands."""

from __future__ import annotations

from typing import Any

import msgspec


class ActionRequest(msgspec.Struct, frozen=True):
    key: str
    kind: str
    order_id: str
    trigger_event_id: str
    params: dict[str, Any]
