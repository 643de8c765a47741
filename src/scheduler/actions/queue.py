"""PLACEHOLDER until the actions branch lands."""

from __future__ import annotations

from collections.abc import Sequence

from events.connector import Session
from scheduler.actions.model import ActionRequest

ENQUEUED: list[ActionRequest] = []


async def enqueue(session: Session, actions: Sequence[ActionRequest]) -> None:
    ENQUEUED.extend(actions)
