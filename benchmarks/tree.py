"""Tree benchmark: the ledger's Merkle tree at N events (default 1,000,000).

Fills a scratch database (``hl_bench_*``) with N events by COPY (bodies of about
300 bytes, 50 events per order stream; their hashes are random, which is all
the tree reads), then times and prints:

- the tree built from scratch by its consumer (the path a new deployment or a
  rebuild takes), and its rate, which is also how fast it catches up with live
  intake;
- the tree recomputed from the events alone, as ``verify`` does;
- inclusion proofs at N events (p50 / p99 of 1,000 random events);
- evidence files for orders of 50 events (p50 / p99 of 100 orders).

See benchmarks/README.md. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.databases import DEFAULT_SERVER, scratch_database
from events.checkpoint_log import sign_checkpoint
from events.checkpoint_note import verifier_key
from events.connector import Database
from events.consumer import ConsumerRunner
from events.evidence import build_evidence
from events.queries import QUERIES
from events.tree import (
    TreeConsumer,
    inclusion_proof,
    leaf_of,
    read_hashes_after,
    rebuild,
    tree_size,
)
from hookledger.checkpoint_key import LocalSigner
from hookledger.migrations import migrate

PER_ORDER = 50
COPY_BATCH = 50_000
BODY = b'{"event":"order.created","orderId":"x","orderTotal":59.9,"currency":"EUR",' + (
    b'"customer":{"email":"someone@example.com","name":"Some One"},"items":'
    + b'[{"sku":"A-1","qty":1,"price":59.9}],"note":"'
    + b"x" * 120
    + b'"}'
)
COLUMNS = ("provider", "event_id", "stream", "stream_version", "type", "recorded_at",
           "payload", "raw", "metadata", "prev_hash", "hash", "hash_rule")  # fmt: skip


async def fill(db: Database, total: int) -> None:
    """N events by COPY, in batches (each its own transaction)."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    payload = BODY.decode()
    written = 0
    while written < total:
        size = min(COPY_BATCH, total - written)
        rows = [
            ("bench", f"e{n}", f"order-{n // PER_ORDER}", n % PER_ORDER + 1, "order.created", at,
             payload, BODY, '{"correlation_id":"b"}', "0" * 64, os.urandom(32).hex(), 2)
            for n in range(written, written + size)
        ]  # fmt: skip
        async with db.transaction() as session:
            await session.copy_rows("events", COLUMNS, rows)
        written += size
        print(f"\r  filled {written:,} events", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


async def build_by_consumer(db: Database, total: int) -> float:
    """Run the tree's consumer until it has every event; its seconds."""
    runner = ConsumerRunner(
        db, TreeConsumer(), batch_size=10_000, poll_interval=0.2, read=read_hashes_after
    )
    started = time.perf_counter()
    task = asyncio.create_task(runner.run())
    while await tree_size(db) < total:  # noqa: ASYNC110 - polling the database, not a flag
        await asyncio.sleep(0.2)
    seconds = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return seconds


async def rebuild_from_events(db: Database) -> float:
    started = time.perf_counter()
    async with db.snapshot() as session:
        rows = session.stream_batches(QUERIES["event_hashes_in_order"], size=5000)
        await rebuild(rows, set())
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


async def run(url: str, total: int) -> None:
    db = Database(url, max_size=4)
    await db.open()
    try:
        await migrate(db)
        await fill(db, total)
        seconds = await build_by_consumer(db, total)
        print(f"tree built by its consumer: {total:,} events in {seconds:.1f} s "
              f"({total / seconds:,.0f} events/s; target: 1,000,000 in <= 10 s, "
              f"catch-up >= 10,000 events/s)")  # fmt: skip
        seconds = await rebuild_from_events(db)
        print(f"tree recomputed from the events (verify): {seconds:.1f} s "
              f"({total / seconds:,.0f} events/s)")  # fmt: skip
        rng = random.Random(7)
        proofs = []
        for _ in range(1000):
            started = time.perf_counter()
            leaf = await leaf_of(db, rng.randint(1, total))
            assert leaf is not None
            await inclusion_proof(db, leaf.index, total)
            proofs.append(time.perf_counter() - started)
        print(f"inclusion proof at {total:,} events: {percentiles(proofs)} (target <= 5 ms)")
        signer = LocalSigner(Ed25519PrivateKey.generate())
        signed, _ = await sign_checkpoint(db, signer, "bench")
        key = verifier_key("bench", signer.public_key)
        files = []
        for _ in range(100):
            stream = f"order-{rng.randrange(total // PER_ORDER)}"
            started = time.perf_counter()
            document = await build_evidence(db, stream, signed, key)
            files.append(time.perf_counter() - started)
            assert document is not None and len(document["events"]) == PER_ORDER
        print(f"evidence of a {PER_ORDER}-event order: {percentiles(files)} (target <= 50 ms)")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=DEFAULT_SERVER)
    args = parser.parse_args()
    with scratch_database(args.database_url) as url:
        asyncio.run(run(url, args.events))


if __name__ == "__main__":
    main()
