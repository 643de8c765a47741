"""The Cloud Tasks timer backend: one Cloud Task per pending timer row.

A sync loop diffs ``countdown_timers`` against ``timer_tasks`` (the tasks made
so far): a timer without a task gets one, named by a hash of its order, timer
and due time, so creating it again after a crash cannot make two (Cloud Tasks
answers ALREADY_EXISTS, which counts as done); a task whose timer row moved or
went away is deleted where Cloud Tasks allows (the emulator does not: logged,
and left to find nothing when it runs). Cloud Tasks then calls
``POST /internal/tasks/countdown``, which decides the order's due timers the
way the Postgres worker does. The database, not Cloud Tasks, makes an expiry
happen once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from google.api_core import exceptions as google_errors

from events.connector import Database, Row
from events.errors import UpstreamUnavailable
from events.queries import load
from events.wakeup import Wakeup
from scheduler.actions.model import DeadLetter
from scheduler.timers import CHANNEL, run_batches

log = logging.getLogger(__name__)

QUERIES = load(Path(__file__).with_name("cloudtasks.sql"))
TASK_PATH = "/internal/tasks/countdown"
SECRET_HEADER = "x-hookledger-task-secret"  # noqa: S105 (a header name)
CALL_TIMEOUT = 10.0
CHECK_TIMEOUT = 3.0
DEAD_TASK_KIND = "countdown.task"


@dataclass(frozen=True)
class TaskTarget:
    """Where and how Cloud Tasks calls back: the queue, the endpoint's URL, the
    OIDC identity it signs as, and the shared secret for callers without OIDC."""

    queue: str
    url: str
    service_account: str = ""
    audience: str = ""
    secret: Callable[[], str] = lambda: ""


class CountdownTask(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of a countdown task."""

    order_id: str
    timer: str
    due_at: datetime


def task_id(order_id: str, timer: str, due_at: datetime) -> str:
    """A timer's task id: the same timer row always gets the same id."""
    key = f"{order_id}\n{timer}\n{due_at.astimezone(UTC).isoformat()}"
    return "countdown-" + hashlib.sha256(key.encode()).hexdigest()


class TaskQueue:
    """The Cloud Tasks queue, through the official asyncio client.

    ``endpoint`` (``host:port``) points it at an emulator over plain gRPC; empty
    means Google's endpoint with the process's default credentials.
    """

    def __init__(self, queue: str, endpoint: str = "") -> None:
        self.queue = queue
        self._endpoint = endpoint
        self._client: Any = None

    def _tasks(self) -> Any:
        # Made on first use: a grpc.aio channel belongs to the running loop.
        if self._client is None:
            from google.cloud import tasks_v2
            from google.cloud.tasks_v2.services.cloud_tasks.transports import (
                CloudTasksGrpcAsyncIOTransport,
            )

            if self._endpoint:
                import grpc  # type: ignore[import-untyped,unused-ignore]

                channel = grpc.aio.insecure_channel(self._endpoint)
                transport = CloudTasksGrpcAsyncIOTransport(channel=channel)
                self._client = tasks_v2.CloudTasksAsyncClient(transport=transport)
            else:
                self._client = tasks_v2.CloudTasksAsyncClient()
        return self._client

    async def create(self, task: Any) -> bool:
        """Create ``task``; False if a task of that name exists (or existed lately)."""
        try:
            await self._tasks().create_task(
                parent=self.queue, task=task, retry=None, timeout=CALL_TIMEOUT
            )
        except google_errors.AlreadyExists:
            return False
        except google_errors.GoogleAPIError as exc:
            raise UpstreamUnavailable(f"Cloud Tasks refused a task: {_reason(exc)}") from None
        return True

    async def delete(self, name: str) -> None:
        """Delete a task where Cloud Tasks lets us; one already gone is fine."""
        try:
            await self._tasks().delete_task(name=name, retry=None, timeout=CALL_TIMEOUT)
        except (google_errors.NotFound, google_errors.MethodNotImplemented) as exc:
            # Ran already, or an emulator that cannot delete: the endpoint will
            # find nothing due, so nothing depends on the deletion.
            log.debug("task not deleted", extra={"task": name, "reason": type(exc).__name__})
        except google_errors.GoogleAPIError as exc:
            raise UpstreamUnavailable(
                f"Cloud Tasks did not delete a task: {_reason(exc)}"
            ) from None

    async def check(self) -> str:
        """The queue's state (e.g. ``RUNNING``); UpstreamUnavailable if unreachable."""
        try:
            queue = await self._tasks().get_queue(
                name=self.queue, retry=None, timeout=CHECK_TIMEOUT
            )
        except google_errors.GoogleAPIError as exc:
            raise UpstreamUnavailable(f"Cloud Tasks queue not reachable: {_reason(exc)}") from None
        return str(queue.state.name)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.transport.close()
            self._client = None


def _reason(exc: Exception) -> str:
    # The service's words (a status and its message), never the request's content.
    return str(getattr(exc, "message", "") or type(exc).__name__)


def build_task(target: TaskTarget, order_id: str, timer: str, due_at: datetime) -> Any:
    """The Cloud Task for one timer row, to run at its due time."""
    from google.cloud import tasks_v2

    body = msgspec.json.encode(CountdownTask(order_id, timer, due_at))
    headers = {"content-type": "application/json"}
    if secret := target.secret():
        headers[SECRET_HEADER] = secret
    request = tasks_v2.HttpRequest(
        url=target.url.rstrip("/") + TASK_PATH,
        http_method=tasks_v2.HttpMethod.POST,
        headers=headers,
        body=body,
    )
    if target.service_account:
        request.oidc_token = tasks_v2.OidcToken(
            service_account_email=target.service_account,
            audience=target.audience or target.url.rstrip("/"),
        )
    return tasks_v2.Task(
        name=f"{target.queue}/tasks/{task_id(order_id, timer, due_at)}",
        schedule_time=due_at.astimezone(UTC),
        http_request=request,
    )


class TaskSync:
    """Keeps one Cloud Task per pending timer row; any number may run, one acts
    at a time (an advisory lock per round)."""

    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        target: TaskTarget,
        *,
        batch_size: int = 200,
        poll_interval: float = 5.0,
    ) -> None:
        self._db = db
        self._queue = queue
        self._target = target
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wakeup = Wakeup(db, CHANNEL)
        self.created = 0

    async def run(self) -> None:
        """Run until cancelled."""
        try:
            await run_batches("task_sync", self._wakeup, self.run_once, self._batch_size,
                              self._idle, self._poll_interval)  # fmt: skip
        finally:
            await self._queue.close()

    async def _idle(self) -> None:
        await self._wakeup.wait(self._poll_interval)

    async def run_once(self) -> int:
        """Create the missing tasks and delete the stale ones of one batch."""
        async with self._db.transaction() as session:
            locked = await session.fetch_one(QUERIES["sync_lock"])
            if not locked or not locked[0]:
                return 0
            missing = await session.fetch_all(QUERIES["timers_without_task"], (self._batch_size,))
            made = await self._create(missing)
            if made:
                await session.execute(QUERIES["remember_tasks"], _columns(made))
            stale = await session.fetch_all(QUERIES["tasks_without_timer"], (self._batch_size,))
            gone = await self._delete([r[3] for r in stale])
            if gone:
                await session.execute(QUERIES["forget_tasks"], [gone])
        self.created += len(made)
        return len(missing) + len(stale)

    async def _create(self, rows: Sequence[Row]) -> list[tuple[str, str, datetime, str]]:
        tasks = [build_task(self._target, r[0], r[1], r[2]) for r in rows]
        results = await asyncio.gather(
            *(self._queue.create(t) for t in tasks), return_exceptions=True
        )
        made = []
        for row, task, result in zip(rows, tasks, results, strict=True):
            if isinstance(result, BaseException):
                # Not remembered: the next round tries again.
                log.warning("task not created", extra={"order_id": row[0], "error": str(result)})
                continue
            made.append((row[0], row[1], row[2], task.name))
        return made

    async def _delete(self, names: Sequence[str]) -> list[str]:
        results = await asyncio.gather(
            *(self._queue.delete(n) for n in names), return_exceptions=True
        )
        gone = []
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("task not deleted", extra={"task": name, "error": str(result)})
                continue
            gone.append(name)
        return gone


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def record_dead_task(
    db: Database, task_name: str, order_id: str | None, retry_count: int, error: str
) -> None:
    """Put a task that gave up on the dead-letter list."""
    async with db.transaction() as session:
        params = (task_name, order_id, retry_count, error)
        await session.execute(QUERIES["record_dead_task"], params)


async def dead_tasks(db: Database) -> list[DeadLetter]:
    """Every task on the dead-letter list, in the shape of the dead actions
    (kind ``countdown.task``; attempts = retries + the first try)."""
    return [
        DeadLetter(name, DEAD_TASK_KIND, order or "", retry_count + 1, 0, error, at)
        for name, order, retry_count, error, at in await db.fetch_all(QUERIES["dead_tasks"])
    ]
