"""The console's jobs, queued by the web process and run by the background
process's runner: a retry of many dead letters runs to its end, each retry in
the ledger; a job whose runner died half-way is taken again from the start and
does not retry anything twice."""

from __future__ import annotations

from events.connector import Database
from events.store import read_stream
from hookledger.console_jobs import ConsoleJobs, retry_dead_letter
from hookledger.console_reads import ConsoleReads


async def dead_letters(db: Database, keys: list[str]) -> None:
    await db.fetch_all(
        "INSERT INTO actions (key, kind, order_id, trigger_event_id, params, state, attempts,"
        " last_error) SELECT k, 'refund', 'o-1', 't', '{}', 'dead', 5, 'provider said 500'"
        " FROM unnest(%s::text[]) AS k RETURNING 1",
        (keys,),
    )


async def job_row(db: Database, job: int) -> tuple[int, int, int, bool]:
    row = await db.fetch_one(
        "SELECT total, done, failed, finished_at IS NOT NULL FROM console_jobs WHERE id = %s",
        (job,),
    )
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), bool(row[3])


async def test_a_queued_retry_waits_for_the_runner_then_runs_to_its_end(db: Database) -> None:
    keys = [f"refund:job-{n}" for n in range(45)]
    await dead_letters(db, keys)
    job = await ConsoleReads(db).retry_all(keys, "refund", "operator token x", "10.0.0.7")
    assert await job_row(db, job) == (45, 0, 0, False)  # queued: nothing done by the request

    assert await ConsoleJobs(db).run_next()
    assert await job_row(db, job) == (45, 45, 0, True)
    states = await db.fetch_all("SELECT DISTINCT state FROM actions")
    assert states == [("pending",)]
    retried = [e for e in await read_stream(db, "order-o-1") if e.type == "operator.retried"]
    assert len(retried) == 45 and retried[0].payload["from"] == "10.0.0.7"
    assert not await ConsoleJobs(db).run_next()  # nothing else waits


async def test_a_job_whose_runner_died_is_taken_again_and_retries_nothing_twice(
    db: Database,
) -> None:
    keys = [f"refund:again-{n}" for n in range(3)]
    await dead_letters(db, keys)
    job = await ConsoleReads(db).retry_all(keys, "refund", "operator token x", "10.0.0.7")
    # A runner took it, retried the first dead letter, and died.
    await db.fetch_all("UPDATE console_jobs SET picked_at = now(), done = 1 WHERE id = %s"
                       " RETURNING 1", (job,))  # fmt: skip
    assert await retry_dead_letter(db, keys[0], "operator token x", "10.0.0.7")

    assert await ConsoleJobs(db).run_next()
    assert await job_row(db, job) == (3, 2, 1, True)  # the first was no longer dead
    retried = [e for e in await read_stream(db, "order-o-1") if e.type == "operator.retried"]
    assert sorted(e.payload["key"] for e in retried) == sorted(keys)
