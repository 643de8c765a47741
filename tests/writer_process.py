"""A separate writer process for the ordering race test:
``python -m tests.writer_process URL WRITER_ID COUNT``."""

from __future__ import annotations

import asyncio
import random
import sys

from events.appender import Appender
from events.connector import Database
from tests.factories import new_event

CONCURRENCY = 32


async def write(url: str, writer: str, count: int) -> None:
    db = Database(url, max_size=2)
    await db.open()
    appender = Appender(db, max_batch=random.choice([1, 8, 64]))
    await appender.start()
    queue = list(range(count))

    async def client() -> None:
        while queue:
            n = queue.pop()
            # Few streams shared by all writers, so their appends contend.
            stream = f"order-{random.randrange(10)}"
            await appender.append(new_event(stream=stream, event_id=f"{writer}-{n}"))

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    await appender.stop()
    await db.close()


if __name__ == "__main__":
    asyncio.run(write(sys.argv[1], sys.argv[2], int(sys.argv[3])))
