"""The timers' own errors."""

from __future__ import annotations

from events.errors import Unavailable


class NotDueYet(Unavailable):
    """A timer's task came before its time: Cloud Tasks should try again later."""

    code = "not_due_yet"
