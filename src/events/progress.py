"""How a long job over events (an export, a replay) reports how far it is; the
display (a bar, plain lines) is the caller's."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def advance(self, count: int) -> None:
        """``count`` more events are done."""
        ...
