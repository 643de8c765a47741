"""Refused signatures are limited per address, in fixed windows; the address is
the peer's, or behind trusted proxies the one the outermost of them saw."""

from __future__ import annotations

from api.rate_limit import SignatureLimiter, source_address


def test_refusals_over_the_limit_in_a_window_must_wait_until_it_ends() -> None:
    limiter = SignatureLimiter(limit=3, window=60.0)
    assert [limiter.refused("a", now=10.0 + n) for n in range(3)] == [None, None, None]
    assert limiter.refused("a", now=13.0) == 57.0
    assert limiter.refused("b", now=13.0) is None  # each address on its own
    assert limiter.refused("a", now=70.5) is None  # a new window


def test_no_limit_when_the_setting_is_zero() -> None:
    limiter = SignatureLimiter(limit=0)
    assert all(limiter.refused("a") is None for _ in range(1000))


def test_the_address_is_the_peer_unless_proxies_are_trusted() -> None:
    headers = {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.1"}
    assert source_address("10.0.0.9", headers, 0) == "10.0.0.9"  # a client can write XFF
    assert source_address("10.0.0.9", headers, 1) == "10.0.0.1"
    assert source_address("10.0.0.9", headers, 2) == "1.2.3.4"
    assert source_address("10.0.0.9", {}, 1) == "10.0.0.9"
    assert source_address(None, {}, 0) == "unknown"
