"""Refused signatures, limited per source address: after ``limit`` refusals in a
window, further requests from that address that fail their signature get 429
(with Retry-After) rather than 401. A correctly signed delivery is never
refused: the signature is checked first, and only failures count."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping

# Addresses remembered at most; the least recently refused go first.
MAX_ADDRESSES = 10_000


class SignatureLimiter:
    """Fixed windows of ``window`` seconds per address."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def refused(self, address: str, now: float | None = None) -> float | None:
        """Count one refused signature from ``address``; the seconds to wait
        when it is over the limit, else None."""
        if self.limit <= 0:
            return None
        now = time.monotonic() if now is None else now
        start, count = self._seen.pop(address, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        count += 1
        self._seen[address] = (start, count)
        while len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        if count > self.limit:
            return max(1.0, start + self.window - now)
        return None


def source_address(client: str | None, headers: Mapping[str, str], trusted_proxies: int) -> str:
    """Who sent the request: the peer, or behind ``trusted_proxies`` proxies the
    address the outermost trusted one put in X-Forwarded-For (entries before it
    could be made up by the client)."""
    if trusted_proxies > 0:
        forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
        if forwarded:
            return forwarded[-min(trusted_proxies, len(forwarded))][:64]
    return client or "unknown"
