"""Outbound actions against a stand-in provider on 127.0.0.1: safe mode, sending
with the idempotency key, retries, dead letters and their CLI, crashes, and two
workers at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import msgspec
import pytest

from api.metrics import Metrics
from events.appender import Appender
from events.connector import Database
from events.model import AppendOutcome, NewEvent, RecordedEvent
from events.store import read_stream
from hookledger.settings import Settings
from hookledger.wiring import action_settings
from scheduler.actions.config import ActionSettings
from scheduler.actions.model import EMAIL_EXPIRED, EMAIL_REMINDER, REFUND, ActionRequest
from scheduler.actions.payments import ref_id
from scheduler.actions.queue import action_state, enqueue
from scheduler.actions.worker import ActionWorker
from tests.e2e_helpers import run_cli
from tests.fake_provider import DROP, FakeProvider, anet_answer
from tests.support import until

SENDGRID_KEY = "SG.test-sendgrid-key"
ANET_KEY = "test-anet-transaction-key"
REFUND_ORDER = ["transactionType", "amount", "payment", "refTransId", "order",
                "transactionSettings"]  # fmt: skip


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.close()


def settings_for(provider: FakeProvider, **changes: Any) -> ActionSettings:
    """Live mode against the stand-in, with tiny backoffs."""
    live = {
        "safe_mode": False,
        "sendgrid_api_key": SENDGRID_KEY,
        "sendgrid_base_url": provider.url,
        "payments_base_url": provider.url,
        "authorizenet_login_id": "test-login",
        "authorizenet_transaction_key": ANET_KEY,
        "max_attempts": 3,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 5.0,
    }
    return msgspec.structs.replace(action_settings(Settings()), **{**live, **changes})


def cli_settings(provider: FakeProvider) -> dict[str, str]:
    return {
        "HOOKLEDGER_SAFE_MODE": "false",
        "HOOKLEDGER_SENDGRID_API_KEY": SENDGRID_KEY,
        "HOOKLEDGER_SENDGRID_BASE_URL": provider.url,
        "HOOKLEDGER_PAYMENTS_BASE_URL": provider.url,
        "HOOKLEDGER_AUTHORIZENET_LOGIN_ID": "test-login",
        "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY": ANET_KEY,
    }


# The workers the running test made, closed when it ends (see close_workers).
_OPEN_WORKERS: list[ActionWorker] = []


def worker_for(
    db: Database, settings: ActionSettings, *, appender: Appender | None = None, **options: Any
) -> ActionWorker:
    """A worker closed when the test ends, whatever the test did with it."""
    worker = ActionWorker(db, appender or Appender(db, group_commit=False), settings, **options)
    _OPEN_WORKERS.append(worker)
    return worker


@pytest.fixture(autouse=True)
async def close_workers() -> AsyncIterator[None]:
    """Close each worker's HTTP client: its keep-alive sockets would otherwise be
    left to the garbage collector (a ResourceWarning, an error here)."""
    yield
    while _OPEN_WORKERS:
        await _OPEN_WORKERS.pop().close()


def email(
    order: str = "1001", kind: str = EMAIL_REMINDER, to: str | None = "ada@example.com"
) -> ActionRequest:
    params = {"to": to, "order_id": order, "due_at": "2026-01-05T12:00:00+00:00",
              "order_total": "49.90", "currency": "USD"}  # fmt: skip
    return ActionRequest.for_trigger(kind, order, f"countdown.{kind}:{order}", params)


def refund(order: str = "1001", transaction_id: str | None = "60000000000") -> ActionRequest:
    params = {"amount": "49.90", "currency": "USD", "transaction_id": transaction_id,
              "card_last4": "1111"}  # fmt: skip
    return ActionRequest.for_trigger(REFUND, order, f"countdown.expired:{order}", params)


async def queue(db: Database, *actions: ActionRequest) -> None:
    async with db.transaction() as session:
        await enqueue(session, actions)


async def outcomes(db: Database, order: str = "1001") -> list[RecordedEvent]:
    return [e for e in await read_stream(db, f"order-{order}") if e.provider == "hookledger"]


async def states(db: Database) -> dict[str, str]:
    return {r[0]: r[1] for r in await db.fetch_all("SELECT key, state FROM actions")}


async def listening(db: Database) -> bool:
    """Whether a worker has LISTENed (a NOTIFY sent before that would be lost)."""
    rows = await db.fetch_all(
        "SELECT 1 FROM pg_stat_activity"
        " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
    )
    return bool(rows)


async def is_done(db: Database, key: str) -> bool:
    return (await states(db))[key] == "done"


async def drain(worker: ActionWorker, db: Database, timeout: float = 10) -> None:
    """Run the worker until nothing is pending (retries come due within ms)."""
    async with asyncio.timeout(timeout):
        while "pending" in (await states(db)).values():
            if not await worker.run_once():
                await asyncio.sleep(0.01)


def sent_keys(provider: FakeProvider) -> list[str]:
    return [r.body["custom_args"]["hookledger_action"] for r in provider.requests]


class CrashAfterAppend(Appender):
    """Appends, then dies before the worker can move the rows on."""

    async def append_many(self, events: Sequence[NewEvent]) -> list[AppendOutcome]:
        await super().append_many(events)
        raise RuntimeError("killed between the append and the row update")


async def test_safe_mode_sends_nothing_and_records_the_exact_request_without_secrets(
    db: Database, provider: FakeProvider
) -> None:
    settings = settings_for(provider, safe_mode=True)
    actions = [email(), email(kind=EMAIL_EXPIRED), refund()]
    await queue(db, *actions)

    assert await worker_for(db, settings).run_once() == 3

    assert provider.requests == []
    assert set((await states(db)).values()) == {"done"}
    recorded = {e.payload["idempotency_key"]: e for e in await outcomes(db)}
    for action in actions:
        event = recorded[action.key]
        assert event.type == "action.dry_run"
        assert event.event_id == f"action:{action.key}:dry_run"
        assert event.payload["error"] is None and event.payload["response"] is None
        assert SENDGRID_KEY.encode() not in event.raw and ANET_KEY.encode() not in event.raw
    mail = recorded[actions[0].key].payload["request"]
    assert mail["method"] == "POST" and mail["url"] == f"{provider.url}/v3/mail/send"
    assert mail["headers"]["Authorization"] == "[redacted]"
    assert mail["body"]["personalizations"] == [{"to": [{"email": "ada@example.com"}]}]
    assert mail["body"]["custom_args"] == {"order_id": "1001", "hookledger_action": actions[0].key}
    assert "12:00 UTC" in mail["body"]["content"][0]["value"]
    anet = recorded[actions[2].key].payload["request"]["body"]["createTransactionRequest"]
    assert anet["merchantAuthentication"] == {"name": "test-login", "transactionKey": "[redacted]"}
    assert anet["refId"] == ref_id(actions[2].key)
    assert recorded[actions[2].key].payload["sent_key"] == ref_id(actions[2].key)


async def test_safe_mode_records_a_request_missing_data_would_make_fail_with_nulls(
    db: Database, provider: FakeProvider
) -> None:
    await queue(db, email(to=None), refund(transaction_id=None))

    await worker_for(db, settings_for(provider, safe_mode=True)).run_once()

    mail, money = sorted(await outcomes(db), key=lambda e: e.payload["action"])
    assert mail.payload["request"]["body"]["personalizations"] == [{"to": [{"email": None}]}]
    assert "no email address" in mail.payload["error"]
    refund_request = money.payload["request"]["body"]["createTransactionRequest"]
    assert refund_request["transactionRequest"]["refTransId"] is None
    assert "no transaction id" in money.payload["error"]
    assert {e.type for e in (mail, money)} == {"action.dry_run"}
    assert provider.requests == []


async def test_sent_actions_carry_their_idempotency_key_and_record_what_the_provider_saw(
    db: Database, provider: FakeProvider
) -> None:
    mail, money = email(), refund()
    await queue(db, mail, money)

    await worker_for(db, settings_for(provider)).run_once()

    seen = {r.path: r for r in provider.requests}
    assert seen["/v3/mail/send"].headers["authorization"] == f"Bearer {SENDGRID_KEY}"
    assert seen["/v3/mail/send"].body["custom_args"]["hookledger_action"] == mail.key
    gateway = seen["/xml/v1/request.api"].body["createTransactionRequest"]
    assert gateway["refId"] == ref_id(money.key)
    assert gateway["merchantAuthentication"]["transactionKey"] == ANET_KEY
    assert list(gateway["transactionRequest"]) == REFUND_ORDER
    assert gateway["transactionRequest"]["payment"]["creditCard"]["cardNumber"] == "XXXX1111"
    recorded = {e.payload["idempotency_key"]: e for e in await outcomes(db)}
    assert recorded[mail.key].event_id == f"action:{mail.key}:succeeded"
    assert recorded[mail.key].payload["request"]["body"] == seen["/v3/mail/send"].body
    assert recorded[mail.key].payload["response"] == {"status": 202, "body": ""}
    assert recorded[money.key].type == "action.succeeded"
    assert recorded[money.key].payload["sent_key"] == gateway["refId"]
    assert recorded[money.key].payload["response"]["status"] == 200
    assert set((await states(db)).values()) == {"done"}


async def test_transient_failures_are_retried_with_growing_backoff_then_succeed(
    db: Database, provider: FakeProvider
) -> None:
    provider.answer((503, b"busy"), (DROP, b""), (429, b"slow down"))
    await queue(db, mail := email())

    await drain(worker_for(db, settings_for(provider, max_attempts=5)), db)

    assert sent_keys(provider) == [mail.key] * 4
    events = await outcomes(db)
    assert [e.event_id for e in events] == [
        f"action:{mail.key}:failed:1",
        f"action:{mail.key}:failed:2",
        f"action:{mail.key}:failed:3",
        f"action:{mail.key}:succeeded",
    ]
    delays = [e.payload["retry_in_seconds"] for e in events[:3]]
    assert delays == sorted(delays) and all(0 < d <= 0.05 for d in delays)
    assert "HTTP 503" in events[0].payload["error"]
    assert "RemoteProtocolError" in events[1].payload["error"]
    assert await action_state(db, mail.key) == ("done", 4, None)


@pytest.mark.parametrize(
    ("action", "answer", "reason"),
    [
        (email(), (400, b'{"errors": [{"message": "bad from"}]}'), "HTTP 400"),
        (refund(), (200, anet_answer("Error", "54")), "transaction error 54"),
        (email(to=None), None, "no email address"),
    ],
    ids=["sendgrid-400", "gateway-error", "no-address"],
)
async def test_a_refusal_retrying_cannot_fix_is_dead_lettered_at_once(
    db: Database,
    provider: FakeProvider,
    action: ActionRequest,
    answer: tuple[int, bytes] | None,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if answer is not None:
        provider.answer(answer)
    await queue(db, action)

    await worker_for(db, settings_for(provider)).run_once()

    [event] = await outcomes(db)
    assert event.type == "action.dead_lettered"
    assert event.event_id == f"action:{action.key}:dead_lettered"
    assert reason in event.payload["error"] and "retrying cannot help" in event.payload["error"]
    assert await action_state(db, action.key) == ("dead", 1, event.payload["error"])
    assert len(provider.requests) == (0 if answer is None else 1)
    [line] = [r for r in caplog.records if r.getMessage() == "action dead-lettered"]
    assert (vars(line)["action"], vars(line)["order_id"]) == (action.key, "1001")
    assert "ada@example.com" not in caplog.text and SENDGRID_KEY not in caplog.text


async def test_persistent_failure_lands_in_dead_letters_and_a_cli_retry_now_succeeds(
    db: Database, database_url: str, provider: FakeProvider
) -> None:
    provider.answer(*[(500, b"down")] * 3)
    await queue(db, money := refund())
    await drain(worker_for(db, settings_for(provider)), db)
    assert [e.type for e in await outcomes(db)] == [
        "action.failed", "action.failed", "action.dead_lettered"
    ]  # fmt: skip

    table = await asyncio.to_thread(run_cli, database_url, "dead-letters")
    assert table.returncode == 0, table.stderr
    assert money.key in table.stdout and "gave up after 3 attempts: HTTP 500" in table.stdout
    listed = await asyncio.to_thread(run_cli, database_url, "dead-letters", "--json")
    [dead] = json.loads(listed.stdout)
    assert (dead["key"], dead["kind"], dead["order_id"], dead["attempts"]) == (
        money.key, REFUND, "1001", 3
    )  # fmt: skip

    in_safe_mode = await asyncio.to_thread(
        run_cli, database_url, "dead-letters", "retry", money.key, "--now"
    )
    assert in_safe_mode.returncode == 2 and "safe mode is on" in in_safe_mode.stderr
    retried = await asyncio.to_thread(
        run_cli, database_url, "dead-letters", "retry", money.key, "--now",
        env=cli_settings(provider),
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    assert "done" in retried.stdout
    assert len(provider.requests) == 4
    assert (await outcomes(db))[-1].event_id == f"action:{money.key}:succeeded"
    empty = await asyncio.to_thread(run_cli, database_url, "dead-letters")
    assert "no dead letters" in empty.stdout


async def test_a_requeued_dead_letter_is_picked_up_by_a_running_worker_woken_by_notify(
    db: Database, database_url: str, provider: FakeProvider
) -> None:
    provider.answer((400, b"refused"), (503, b"busy"))
    await queue(db, mail := email())
    worker = worker_for(db, settings_for(provider), poll_interval=60)
    await worker.run_once()
    assert (await states(db))[mail.key] == "dead"

    running = asyncio.create_task(worker.run())
    try:
        await until(lambda: listening(db))
        retried = await asyncio.to_thread(run_cli, database_url, "dead-letters", "retry", mail.key)
        assert retried.returncode == 0, retried.stderr
        await until(lambda: is_done(db, mail.key))
        recorded = await db.fetch_all(
            "SELECT payload->>'key', payload->>'from', payload->>'by' FROM events"
            " WHERE type = 'operator.retried'"
        )
        assert [(k, f) for k, f, _ in recorded] == [(mail.key, "cli")]
        assert recorded[0][2].endswith(" (cli)")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)

    # The second round's attempts are recorded under their own ids, after the
    # operator's retry.
    assert [e.event_id for e in await outcomes(db)] == [
        f"action:{mail.key}:dead_lettered",
        f"operator.retry:{mail.key}:1",
        f"action:{mail.key}:failed:1:retry1",
        f"action:{mail.key}:succeeded",
    ]
    assert sent_keys(provider) == [mail.key] * 3


async def test_a_crash_after_recording_a_success_finishes_the_action_without_sending_again(
    db: Database, provider: FakeProvider
) -> None:
    await queue(db, mail := email())
    settings = settings_for(provider)
    with pytest.raises(RuntimeError):
        await worker_for(db, settings, appender=CrashAfterAppend(db, group_commit=False)).run_once()
    assert (await states(db))[mail.key] == "pending"

    await worker_for(db, settings).run_once()

    assert await action_state(db, mail.key) == ("done", 1, None)
    assert [e.type for e in await outcomes(db)] == ["action.succeeded"]
    assert sent_keys(provider) == [mail.key]


async def test_a_crash_after_recording_a_failure_reruns_the_attempt_with_one_event(
    db: Database, provider: FakeProvider
) -> None:
    provider.answer((503, b"busy"), (503, b"busy"))
    await queue(db, mail := email())
    settings = settings_for(provider)
    with pytest.raises(RuntimeError):
        await worker_for(db, settings, appender=CrashAfterAppend(db, group_commit=False)).run_once()

    await drain(worker_for(db, settings), db)

    assert [e.event_id for e in await outcomes(db)] == [
        f"action:{mail.key}:failed:1",
        f"action:{mail.key}:succeeded",
    ]
    assert sent_keys(provider) == [mail.key] * 3


async def test_two_workers_at_once_perform_each_action_once(
    db: Database, provider: FakeProvider
) -> None:
    provider.delay = 0.01
    actions = [email(order=str(n)) for n in range(40)]
    await queue(db, *actions)
    settings = settings_for(provider)
    workers = [worker_for(db, settings, batch_size=5, concurrency=4) for _ in range(2)]

    async def work(worker: ActionWorker) -> int:
        performed = 0
        while taken := await worker.run_once():
            performed += taken
        return performed

    performed = await asyncio.gather(*(work(w) for w in workers))

    assert sum(performed) == 40 and min(performed) > 0
    assert sorted(sent_keys(provider)) == sorted(a.key for a in actions)
    assert set((await states(db)).values()) == {"done"}
    succeeded = await db.fetch_all("SELECT count(*) FROM events WHERE type = 'action.succeeded'")
    assert succeeded[0][0] == 40


async def test_enqueue_happens_once_per_key_and_only_if_the_callers_transaction_commits(
    db: Database,
) -> None:
    await queue(db, email())
    await queue(db, email(), email())
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await enqueue(session, [refund()])
            raise RuntimeError("the policy's batch failed")

    assert await states(db) == {email().key: "pending"}


async def test_action_outcomes_are_counted_by_kind_and_outcome(
    db: Database, provider: FakeProvider
) -> None:
    metrics = Metrics()
    await queue(db, email(), email(order="1002"), refund())

    await worker_for(
        db, settings_for(provider, safe_mode=True), observe=metrics.count_action
    ).run_once()

    def count(kind: str) -> float | None:
        labels = {"kind": kind, "outcome": "dry_run"}
        return metrics.registry.get_sample_value("hookledger_actions_total", labels)

    assert (count(EMAIL_REMINDER), count(REFUND)) == (2.0, 1.0)
