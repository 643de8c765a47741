"""Gauges an operator watches that only the database knows (timers waiting and
overdue, dead letters, open circuits, the Cloud Tasks backlog, the last verify,
the checkpoints), read at each scrape of /metrics."""

from __future__ import annotations

from pathlib import Path

from api.metrics import OUTBOUND, Gauge
from events.connector import Database
from events.queries import load
from personal.retention import erasure_totals, retention_state
from scheduler.actions.queue import open_circuits

QUERIES = load(Path(__file__).with_name("operations.sql"))


async def operation_gauges(db: Database) -> list[Gauge]:
    """The gauges, read now."""
    row = await db.fetch_one(QUERIES["operation_gauges"])
    pending, overdue, dead_actions, dead_tasks = (int(v) for v in row) if row else (0, 0, 0, 0)
    dead = "Dead letters waiting for an operator, by kind"
    gauges = [
        Gauge("hookledger_database_up", "1 when this scrape could read the database", {}, 1),
        Gauge("hookledger_timers_pending", "Countdown timers waiting to fire", {}, pending),
        Gauge("hookledger_timers_overdue", "Countdown timers due and not fired yet", {}, overdue),
        Gauge("hookledger_dead_letters", dead, {"kind": "action"}, dead_actions),
        Gauge("hookledger_dead_letters", dead, {"kind": "task"}, dead_tasks),
    ]
    # Written by whichever process sends the actions (see open_circuits).
    circuits = await open_circuits(db)
    for provider in OUTBOUND:
        gauges.append(Gauge("hookledger_circuit_open", "1 while an outbound provider's circuit "
                            "breaker holds its actions back", {"provider": provider},
                            1.0 if provider in circuits else 0.0))  # fmt: skip
    due = await db.fetch_one(QUERIES["tasks_due"])
    gauges.append(Gauge("hookledger_tasks_queue_depth", "Cloud Tasks due and not yet delivered "
                        "(their timers still wait)", {}, int(due[0]) if due else 0))  # fmt: skip
    verified = await db.fetch_one(QUERIES["last_verify"])
    if verified is not None:  # absent until the first `hookledger verify`
        gauges += [
            Gauge("hookledger_verify_ok", "1 if the last `hookledger verify` of the whole "
                  "ledger held, 0 if it failed", {}, 1.0 if verified[0] else 0.0),
            Gauge("hookledger_verify_last_run_timestamp_seconds", "When the last "
                  "`hookledger verify` of the whole ledger finished", {}, float(verified[1])),
        ]  # fmt: skip
    gauges += await personal_gauges(db)
    checkpoint = await db.fetch_one(QUERIES["checkpoint_gauges"])
    if checkpoint is not None:  # absent until the first checkpoint: nothing is late yet
        age, unsigned = float(checkpoint[0]), int(checkpoint[1])
        age_help = "Seconds since the newest signed checkpoint"
        unsigned_help = "Leaves of the Merkle tree no signed checkpoint covers yet"
        gauges += [
            Gauge("hookledger_checkpoint_age_seconds", age_help, {}, age),
            Gauge("hookledger_checkpoint_unsigned_leaves", unsigned_help, {}, unsigned),
        ]
    return gauges


async def personal_gauges(db: Database) -> list[Gauge]:
    """Personal values held and due, the sweep's lag, and the erasures so far
    (counters kept in the database: erasures run in any process)."""
    held, due, waiting, lag = await retention_state(db)
    gauges = [
        Gauge("hookledger_personal_values", "Personal values held apart from the ledger "
              "(the planner's estimate)", {"state": "held"}, held),
        Gauge("hookledger_personal_values", "Personal values held apart from the ledger "
              "(the planner's estimate)", {"state": "due"}, due),
        Gauge("hookledger_personal_values", "Personal values held apart from the ledger "
              "(the planner's estimate)", {"state": "waiting_for_countdown"}, waiting),
        Gauge("hookledger_retention_lag_seconds", "How long the oldest personal value due "
              "for erasure has waited for the retention sweep", {}, lag),
    ]  # fmt: skip
    for cause, subjects, values in await erasure_totals(db):
        gauges += [
            Gauge("hookledger_personal_erased_subjects", "Subjects whose personal values "
                  "were erased so far, by cause (request, retention)", {"cause": cause}, subjects),
            Gauge("hookledger_personal_erased_values", "Personal values erased so far, by "
                  "cause (request, retention)", {"cause": cause}, values),
        ]  # fmt: skip
    return gauges


async def record_verify(db: Database, ok: bool, events: int, detail: str) -> None:
    """Keep the outcome of a `hookledger verify` of the whole ledger for /metrics."""
    async with db.transaction() as session:
        await session.execute(QUERIES["record_verify"], (ok, events, detail))
