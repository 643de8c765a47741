"""A provider that echoes the request in its error answers (credentials
included) leaves no credential anywhere hookledger records or shows: not in the
ledger's action events, not in the actions table, not in `dead-letters`, not in
the logs."""

from __future__ import annotations

import asyncio
import json

import pytest

from events.connector import Database
from events.store import read_stream
from scheduler.actions.scrub import SCRUBBED, scrub
from tests.e2e_helpers import run_cli
from tests.fake_provider import ECHO, FakeProvider
from tests.integration.test_actions import (
    ANET_KEY,
    SENDGRID_KEY,
    drain,
    email,
    queue,
    refund,
    settings_for,
    worker_for,
)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.mark.parametrize("make", [email, refund], ids=["sendgrid", "authorizenet"])
async def test_credentials_echoed_by_a_failing_provider_are_recorded_nowhere(
    db: Database,
    database_url: str,
    provider: FakeProvider,
    make: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert callable(make)
    provider.answer(*[(500, ECHO)] * 3)
    await queue(db, action := make())
    try:
        await drain(worker_for(db, settings_for(provider)), db)
    finally:
        provider.close()
    # The fake really echoed the credential: it saw it and sent it back.
    assert any(SENDGRID_KEY in json.dumps(r.headers) or ANET_KEY in json.dumps(r.body)
               for r in provider.requests)  # fmt: skip

    events = [e for e in await read_stream(db, "order-1001") if e.provider == "hookledger"]
    assert [e.type for e in events][-1] == "action.dead_lettered"
    recorded = [json.dumps(e.payload) + e.raw.decode() for e in events]
    rows = await db.fetch_all("SELECT last_error FROM actions WHERE key = %s", (action.key,))
    listed = await asyncio.to_thread(run_cli, database_url, "dead-letters", "--json")
    for text in [*recorded, str(rows), listed.stdout, caplog.text]:
        assert SENDGRID_KEY not in text and ANET_KEY not in text
    assert any(SCRUBBED in text for text in recorded)


def test_anything_shaped_like_a_credential_is_scrubbed_whoever_it_belongs_to() -> None:
    text = ("auth: Bearer abcdefgh12345678 key SG.aaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbb "
            "stripe sk_live_0123456789abcdef0123 ok")  # fmt: skip
    assert scrub(text, []) == f"auth: {SCRUBBED} key {SCRUBBED} stripe {SCRUBBED} ok"
    assert scrub("the key is hunter2-secret!", ["hunter2-secret"]) == f"the key is {SCRUBBED}!"
    assert scrub("plain words stay", ["ab"]) == "plain words stay"


async def test_each_request_sent_is_observed_with_its_provider_result_and_time(
    db: Database, provider: FakeProvider
) -> None:
    seen: list[tuple[str, str, float]] = []
    provider.answer((500, b"down"))
    await queue(db, email(), refund())
    try:
        worker = worker_for(db, settings_for(provider),
                            observe_call=lambda *call: seen.append(call))  # fmt: skip
        await drain(worker, db)
    finally:
        provider.close()
    assert sorted((p, r) for p, r, _ in seen) == [
        ("authorizenet", "succeeded"), ("sendgrid", "retry"), ("sendgrid", "succeeded"),
    ] or sorted((p, r) for p, r, _ in seen) == [
        ("authorizenet", "retry"), ("authorizenet", "succeeded"), ("sendgrid", "succeeded"),
    ]  # fmt: skip
    assert all(seconds >= 0 for _, _, seconds in seen)
