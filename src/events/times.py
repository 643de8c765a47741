"""The times hookledger believes: one fixed range, for the intake and the folds.

No provider can have sent a time outside it (the ledger started long after 2000,
and nothing it runs is planned past 2100), and keeping every time well inside
what ``datetime`` can hold means that adding a countdown window to one never
overflows. The intake refuses a body with a time outside the range; the folds
read one (from an event recorded before the intake checked) as no time at all.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # inclusive
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
RANGE_TEXT = (
    f"from {EARLIEST:%Y-%m-%dT%H:%M:%SZ} inclusive to {LATEST:%Y-%m-%dT%H:%M:%SZ} exclusive"
)
# The longest ISO 8601 text worth parsing (with microseconds and an offset).
_MAX_TEXT = 64
# The datetime at each end of what Python can hold, as aware UTC values.
_MAX = datetime.max.replace(tzinfo=UTC)
_MIN = datetime.min.replace(tzinfo=UTC)


def in_range(moment: datetime) -> bool:
    """Whether ``moment`` (aware) lies in the accepted range."""
    return EARLIEST <= moment < LATEST


def believable(moment: datetime | None) -> datetime | None:
    """``moment`` if it lies in the range, else None."""
    return moment if moment is not None and in_range(moment) else None


def read_time(value: Any) -> tuple[datetime | None, bool]:
    """An ISO 8601 text or epoch seconds as an aware UTC time.

    Returns (time, readable): (None, False) for something that is not a time
    (absent, a boolean, an unparseable text); (None, True) for a time that is
    readable but outside the range (a year 9999, ``1e300`` seconds); (time, True)
    otherwise. Never raises.
    """
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        seconds = float(value) if isinstance(value, float) or abs(value) < 2**62 else math.inf
        if not (math.isfinite(seconds) and EARLIEST.timestamp() <= seconds < LATEST.timestamp()):
            return None, True
        return datetime.fromtimestamp(seconds, UTC), True
    moment = any_time(value)
    if moment is None:
        return None, isinstance(value, str) and _overflows(value)
    return believable(moment), True


def any_time(value: Any) -> datetime | None:
    """An ISO 8601 text as an aware UTC time, whatever its year (hookledger's own
    decisions, computed from believable times); None if it is not one. Never raises."""
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # a time that falls outside years 1..9999 in UTC
        return None


def _overflows(text: str) -> bool:
    """A readable time that only its offset pushes out of years 1..9999."""
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return len(text) <= _MAX_TEXT


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held at the ends of what ``datetime`` can hold instead
    of overflowing (a time that far away is never reached anyway)."""
    try:
        return moment + delta
    except OverflowError:
        return _MAX if delta > timedelta(0) else _MIN
