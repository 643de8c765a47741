"""A circuit breaker per outbound provider. After ``threshold`` failures in a
row (answers worth retrying: 5xx, 408, 429, timeouts, lost connections) it
opens for ``cool_down`` seconds: actions for that provider then wait, without
spending their attempts. When the cool-down ends one action is let through as a
probe (half-open); its success closes the breaker, its failure opens it again.
A refusal retrying cannot fix (4xx) says nothing about the provider's health."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """One provider's breaker (per process); ``observe`` hears each change of state."""

    def __init__(
        self,
        provider: str,
        threshold: int = 5,
        cool_down: float = 30.0,
        observe: Callable[[str, str], None] | None = None,
    ) -> None:
        self.provider = provider
        self.threshold = threshold
        self.cool_down = cool_down
        self._observe = observe
        self.state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    def wait(self, now: float | None = None) -> float | None:
        """None if a request may go now, else the seconds until one may. A
        request let through while half-open is the probe: no other goes with it."""
        now = time.monotonic() if now is None else now
        if self.state == CLOSED:
            return None
        left = self._opened_at + self.cool_down - now
        if self.state == OPEN and left > 0:
            return left
        if self._probing:
            return max(0.1, self.cool_down / 10)  # the probe's answer decides
        self._change(HALF_OPEN)
        self._probing = True
        return None

    def succeeded(self) -> None:
        self._failures = 0
        self._probing = False
        if self.state != CLOSED:
            self._change(CLOSED)

    def failed(self, now: float | None = None) -> None:
        self._failures += 1
        self._probing = False
        if self.state == HALF_OPEN or self._failures >= self.threshold:
            self._opened_at = time.monotonic() if now is None else now
            if self.state != OPEN:
                self._change(OPEN)

    def _change(self, state: str) -> None:
        self.state = state
        level = logging.WARNING if state == OPEN else logging.INFO
        log.log(level, f"circuit {state.replace('_', '-')}",
                extra={"provider": self.provider, "failures": self._failures,
                       "cool_down_seconds": self.cool_down})  # fmt: skip
        if self._observe is not None:
            self._observe(self.provider, state)
