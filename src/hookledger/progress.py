"""PLACEHOLDER progress reporter until the exporter branch lands its own."""

from __future__ import annotations

import sys
import time
from types import TracebackType


class Progress:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.started = time.perf_counter()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def update(self, done: int) -> None:
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed else 0.0
        print(f"{self.label}: {done}/{self.total} events, {rate:,.0f}/s", file=sys.stderr)
