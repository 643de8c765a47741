"""The Merkle tree and the checkpoint job alone, as a worker runs them, against
one database until SIGTERM: what `benchmarks.ingest --checkpointing` runs beside
the intake to measure what checkpointing costs it. Not a benchmark by itself."""

from __future__ import annotations

import asyncio
import signal
import sys

from events.connector import Database
from events.consumer import ConsumerRunner
from events.tree import TreeConsumer, read_hashes_after
from hookledger.checkpoint_key import new_private_pem
from hookledger.checkpointer import Checkpointer
from hookledger.settings import from_env

INTERVAL = "10s"  # six times as often as the default: the cost shows, if there is one


async def run(url: str) -> None:
    settings = from_env({"HOOKLEDGER_DATABASE_URL": url, "HOOKLEDGER_CHECKPOINT_INTERVAL": INTERVAL,
                         "HOOKLEDGER_CHECKPOINT_KEY": new_private_pem()})  # fmt: skip
    db = Database(url, max_size=3)
    await db.open()
    tree = ConsumerRunner(db, TreeConsumer(), batch_size=10_000, read=read_hashes_after,
                          poll_interval=1.0, woken=False)  # fmt: skip
    jobs = [asyncio.create_task(tree.run()), asyncio.create_task(Checkpointer(db, settings).run())]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for job in jobs:
        job.cancel()
    await asyncio.gather(*jobs, return_exceptions=True)
    await db.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
