"""Circuit breakers on the outbound providers: failures in a row open a
provider's breaker, its actions then wait without spending attempts, one probe
after the cool-down closes it when the provider is back; no action is lost and
none is sent twice."""

from __future__ import annotations

import asyncio

import pytest

from events.connector import Database
from hookledger.operations import operation_gauges
from hookledger.secrets import SecretStore
from hookledger.selftest import SelfTest
from hookledger.settings import Settings
from scheduler.actions import worker as worker_module
from scheduler.actions.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.fake_provider import FakeProvider
from tests.integration.test_actions import (
    drain,
    email,
    queue,
    sent_keys,
    settings_for,
    states,
    worker_for,
)


def test_a_breaker_opens_after_failures_in_a_row_and_one_probe_decides() -> None:
    seen: list[str] = []
    breaker = CircuitBreaker("p", threshold=2, cool_down=10.0, observe=lambda _, s: seen.append(s))
    assert breaker.wait(now=0) is None
    breaker.failed(now=0)
    breaker.succeeded()  # a success between failures starts the count again
    breaker.failed(now=1)
    assert breaker.state == CLOSED
    breaker.failed(now=2)
    assert breaker.state == OPEN and breaker.wait(now=5) == 7.0
    assert breaker.wait(now=12) is None and breaker.state == HALF_OPEN  # the probe
    assert breaker.wait(now=12) is not None  # nothing else while it is out
    breaker.failed(now=13)
    assert breaker.state == OPEN and breaker.wait(now=14) == 9.0
    assert breaker.wait(now=23) is None
    breaker.succeeded()
    assert breaker.state == CLOSED and breaker.wait(now=23) is None
    assert seen == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]


async def test_actions_wait_while_the_provider_is_down_and_all_go_once_when_it_is_back(
    db: Database,
) -> None:
    provider = FakeProvider()
    provider.answer(*[(503, b"down")] * 3)
    orders = [f"cb-{n}" for n in range(6)]
    await queue(db, *(email(order) for order in orders))
    settings = settings_for(provider, max_attempts=3, breaker_failures=2,
                            breaker_cool_down_seconds=0.3)  # fmt: skip
    worker = worker_for(db, settings, batch_size=1)
    try:
        # Two failures open the breaker; the others then wait without an attempt.
        await worker.run_once()
        await worker.run_once()
        assert worker.breakers["sendgrid"].state == OPEN
        before = len(provider.requests)
        for _ in range(4):
            await worker.run_once()
        assert len(provider.requests) == before  # nothing sent while open
        rows = await db.fetch_all("SELECT attempts FROM actions WHERE state = 'pending'")
        assert max(r[0] for r in rows) <= 1  # waiting spent no attempt
        await asyncio.sleep(0.35)
        # The probe meets the third failure: open again; then the provider is back.
        await drain(worker, db, timeout=20)
    finally:
        provider.close()
    assert set((await states(db)).values()) == {"done"}
    # The fake answered its first three requests 503, every later one 202.
    delivered = sent_keys(provider)[3:]
    assert len(delivered) == len(set(delivered)) == len(orders)  # each once, none lost
    assert worker.breakers["sendgrid"].state == CLOSED


async def test_a_hanging_provider_costs_a_batch_a_few_timeouts_not_one_per_action(
    db: Database,
) -> None:
    # A batch bigger than the sends in flight: once the first ones time out, the
    # breaker holds the rest back, however long the batch's queue of sends.
    provider = FakeProvider()
    provider.delay = 1.0
    await queue(db, *(email(f"hang-{n}") for n in range(24)))
    settings = settings_for(provider, timeout_seconds=0.2, breaker_failures=2,
                            breaker_cool_down_seconds=60)  # fmt: skip
    worker = worker_for(db, settings, batch_size=24, concurrency=2)
    try:
        await worker.run_once()
    finally:
        provider.close()
    assert worker.breakers["sendgrid"].state == OPEN
    assert len(provider.requests) <= 4  # the failures that opened it, and those in flight
    rows = await db.fetch_all("SELECT attempts FROM actions WHERE state = 'pending'")
    assert len(rows) == 24 and sum(r[0] for r in rows) == len(provider.requests)


async def test_an_open_breaker_shows_in_the_selftest_and_metrics_of_any_process(
    db: Database,
) -> None:
    # The intake processes answer /__selftest and /metrics; the breakers live in
    # the process that sends: what they see is what the sender wrote.
    provider = FakeProvider()
    provider.answer((503, b"down"))
    await queue(db, email("cb-shared"))
    settings = settings_for(provider, breaker_failures=1, breaker_cool_down_seconds=60)
    worker = worker_for(db, settings, batch_size=1)
    try:
        await worker.run_once()
    finally:
        provider.close()
    assert worker.breakers["sendgrid"].state == OPEN
    elsewhere = Settings(database_url="postgresql://unused", safe_mode=False)
    report = await SelfTest(elsewhere, db, {}, settings, SecretStore()).run()
    sendgrid = report["checks"]["outbound.sendgrid"]
    assert sendgrid["status"] == "degraded" and "circuit open" in sendgrid["reason"]
    assert report["checks"]["outbound.payments"]["status"] == "ok"
    assert await circuit_gauges(db) == {"sendgrid": 1.0, "authorizenet": 0.0}


async def test_a_dead_senders_open_breaker_stops_counting_once_it_expires(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(
            "INSERT INTO circuit_breakers (provider, holder, state, expires_at) VALUES "
            "('sendgrid', 'gone:1', 'open', now() - interval '1 second'), "
            "('authorizenet', 'live:2', 'half_open', now() + interval '1 minute')"
        )
    assert await circuit_gauges(db) == {"sendgrid": 0.0, "authorizenet": 1.0}


async def circuit_gauges(db: Database) -> dict[str, float]:
    return {g.labels["provider"]: g.value for g in await operation_gauges(db)
            if g.name == "hookledger_circuit_open"}  # fmt: skip


async def test_a_breaker_that_stays_open_keeps_showing_open_past_its_row_s_expiry(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Open, probe, open again, each within one batch: the state written never
    # changes, yet the row must be written again before it expires.
    # Trusted 1.25 s after each write: the drill below lasts three times that.
    monkeypatch.setattr(worker_module, "BREAKER_GRACE_SECONDS", 1.0)
    provider = FakeProvider()
    provider.answer(*[(503, b"down")] * 200)
    await queue(db, *(email(f"long-{n}") for n in range(3)))
    settings = settings_for(provider, breaker_failures=1, breaker_cool_down_seconds=0.05,
                            timeout_seconds=0.2, max_attempts=1000)  # fmt: skip
    worker = worker_for(db, settings, batch_size=3)
    try:
        deadline = asyncio.get_running_loop().time() + 4.0
        while asyncio.get_running_loop().time() < deadline:
            await worker.run_once()
            await asyncio.sleep(0.06)
    finally:
        provider.close()
    assert worker.breakers["sendgrid"].state != CLOSED
    assert await circuit_gauges(db) == {"sendgrid": 1.0, "authorizenet": 0.0}
