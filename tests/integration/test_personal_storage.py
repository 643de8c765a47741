"""Personal values held apart from the ledger: cut at append, read back in
place, proven by their commitments, erased without breaking a chain."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from events.appender import Appender
from events.connector import Database
from events.errors import ChainBroken
from events.model import NewEvent
from events.store import read_stream, verify_chains
from personal.cutter import PersonalCutter
from personal.erasure import erase, subjects_for_email
from personal.policy import load_policy
from personal.retention import arm, peek, sweep, sweep_once

EMAIL = "ada.lovelace@example.com"


def order_event(order: str, email: str = EMAIL) -> NewEvent:
    raw = json.dumps({"event": "order.created", "orderId": order, "customerEmail": email,
                      "orderTotal": 59.9, "currency": "EUR"}).encode()  # fmt: skip
    return NewEvent(provider="post-purchase", event_id=uuid.uuid4().hex, stream=f"order-{order}",
                    type="order.created", payload_json=raw, raw=raw)  # fmt: skip


def decision_event(order: str) -> NewEvent:
    raw = json.dumps({"status": "success", "verification": {
        "id": f"session-{order}", "status": "approved", "vendorData": order,
        "person": {"firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1815-12-10"},
        "document": {"number": "X1234567", "type": "PASSPORT"}}}).encode()  # fmt: skip
    return NewEvent(provider="veriff", event_id=uuid.uuid4().hex, stream=f"order-{order}",
                    type="verification.approved", payload_json=raw, raw=raw)  # fmt: skip


async def append(db: Database, *events: NewEvent) -> None:
    appender = Appender(db, cutter=PersonalCutter(load_policy()))
    await appender.start()
    try:
        await appender.append_many(list(events))
    finally:
        await appender.stop()


async def raw_bytes(db: Database) -> bytes:
    rows = await db.fetch_all("SELECT raw, payload::text FROM events")
    return b"".join(bytes(r[0]) + r[1].encode() for r in rows)


async def test_personal_values_leave_the_ledger_and_read_back_in_place(db: Database) -> None:
    await append(db, order_event("1"), decision_event("1"))

    stored = await raw_bytes(db)
    for value in (EMAIL, "Lovelace", "1815-12-10", "X1234567"):
        assert value.encode() not in stored
    assert b"59.9" in stored and b"session-1" in stored
    events = await read_stream(db, "order-1")
    assert events[0].payload["customerEmail"] == EMAIL
    assert events[1].payload["verification"]["person"]["dateOfBirth"] == "1815-12-10"
    assert events[0].hash_rule == 3 and events[0].personal and events[0].held == [0]
    assert (await verify_chains(db)).events == 2


async def test_erasing_an_order_forgets_its_values_and_the_chain_still_verifies(
    db: Database,
) -> None:
    await append(db, order_event("1"), decision_event("1"), order_event("2", "grace@example.com"))

    done = await erase(db, ["order-1"], reason="customer asked", by="dpo", via="test")

    assert done[0].values == 3 and done[0].event_id is not None
    assert {"customerEmail", "person", "document"} <= set(done[0].classes)
    events = await read_stream(db, "order-1")
    assert events[0].payload["customerEmail"] is None
    assert events[1].payload["verification"]["person"] is None
    assert events[1].payload["verification"]["id"] == "session-1"
    assert events[-1].type == "subject.erased"
    assert "Ada" not in json.dumps(events[-1].payload)
    assert (await read_stream(db, "order-2"))[0].payload["customerEmail"] == "grace@example.com"
    assert (await verify_chains(db)).events == 4
    left = await db.fetch_all("SELECT count(*) FROM personal_values WHERE subject = 'order-1'")
    assert left[0][0] == 0


async def test_erasing_one_order_forgets_the_address_in_the_same_persons_other_orders(
    db: Database,
) -> None:
    await append(db, order_event("1"), order_event("2"), order_event("3", "grace@example.com"))
    for order, email in (("1", EMAIL), ("2", EMAIL), ("3", "grace@example.com")):
        await db.fetch_all(
            "INSERT INTO orders (order_id, customer, status, updated_at)"
            " VALUES (%s, %s, 'created', now()) RETURNING 1",
            (order, email),
        )
        await db.fetch_all(
            "INSERT INTO actions (key, kind, order_id, trigger_event_id, params, state)"
            " VALUES (%s, 'email.reminder', %s, 't', jsonb_build_object('to', %s::text),"
            " 'pending') RETURNING 1",
            (f"reminder:{order}", order, email),
        )

    done = await erase(db, ["order-1"], reason="customer asked", by="dpo", via="test")

    assert done[0].values == 2 and done[0].cancelled_emails == 2
    customers = await db.fetch_all("SELECT order_id, customer FROM orders ORDER BY order_id")
    assert customers == [("1", None), ("2", None), ("3", "grace@example.com")]
    actions = await db.fetch_all("SELECT order_id, state, params ? 'to' FROM actions ORDER BY 1")
    assert actions == [("1", "dead", False), ("2", "dead", False), ("3", "pending", True)]


async def test_erasing_twice_records_nothing_new(db: Database) -> None:
    await append(db, order_event("1"))
    await erase(db, ["order-1"], reason="asked", by="dpo", via="test")
    again = await erase(db, ["order-1"], reason="asked", by="dpo", via="test")
    assert again[0].event_id is None and again[0].values == 0
    assert len(await read_stream(db, "order-1")) == 2


async def test_an_email_address_finds_its_orders_by_keyed_hash(db: Database) -> None:
    await append(db, order_event("1"), order_event("2"), order_event("3", "other@example.com"))
    assert await subjects_for_email(db, " ADA.Lovelace@example.com ") == ["order-1", "order-2"]
    rows = await db.fetch_all("SELECT lookup FROM personal_values WHERE lookup IS NOT NULL")
    assert all(EMAIL.encode() not in bytes(r[0]) for r in rows)


async def test_the_sweep_erases_values_whose_retention_ran_out(db: Database) -> None:
    await append(db, order_event("1"), order_event("2"))
    # Order 1's countdown closed 100 days ago: its address (kept 90 days) is due.
    closed = datetime.now(UTC) - timedelta(days=100)
    await db.fetch_all(
        "INSERT INTO countdowns (order_id, started_at, due_at, expires_at, reminders, reminded,"
        " state, closed_at, updated_at) VALUES ('1', %s, %s, %s, '{}', '{}', 'satisfied', %s,"
        " now()) RETURNING 1",
        (closed, closed, closed, closed),
    )
    await arm(db)
    assert [d.subject for d in await peek(db)] == ["order-1"]
    done = await sweep(db)
    assert (done.subjects, done.values) == (1, 1)
    assert (await sweep_once(db)).subjects == 0
    assert (await read_stream(db, "order-1"))[0].payload["customerEmail"] is None
    assert (await read_stream(db, "order-1"))[-1].type == "subject.expired"
    assert (await read_stream(db, "order-2"))[0].payload["customerEmail"] == EMAIL
    assert (await verify_chains(db)).events == 3


async def test_verify_finds_a_held_value_that_was_changed(db: Database) -> None:
    await append(db, order_event("1"))
    await db.fetch_all("UPDATE personal_values SET value = convert_to('\"eve@example.com\"',"
                       " 'UTF8') RETURNING 1")  # fmt: skip
    with pytest.raises(ChainBroken, match="commitment"):
        await verify_chains(db)
