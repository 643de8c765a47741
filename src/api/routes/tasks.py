"""``POST /internal/tasks/countdown``: Cloud Tasks firing a countdown timer.

The answer tells Cloud Tasks whether to retry: 2xx when the timer is decided,
already gone or moved (a duplicate or late task changes nothing); 401 for a
caller without credentials; 4xx/5xx otherwise, so Cloud Tasks tries again,
until ``X-CloudTasks-TaskRetryCount`` reaches the configured limit: then the
task is recorded on the dead-letter list and answered 200, and the reconciler
sweep fires its timer once the cause is gone.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post

from api.rejections import MalformedBody, NotFound
from api.services import Services
from events.errors import HookledgerError

log = logging.getLogger(__name__)


class CountdownTaskBody(msgspec.Struct, frozen=True):
    """What the task carries: the timer row it stands for."""

    order_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    timer: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    due_at: Annotated[datetime, msgspec.Meta(tz=True)]


@post("/internal/tasks/countdown", summary="Cloud Tasks: fire a countdown timer",
      tags=["internal"], status_code=200, include_in_schema=False)  # fmt: skip
async def countdown_task(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services: Services = request.app.state.services
    if services.task_auth is None or services.fire_task is None:
        raise NotFound("the Cloud Tasks timer backend is not configured")
    await services.task_auth.check(request.headers)
    retry_count = _retry_count(request.headers.get("x-cloudtasks-taskretrycount"))
    task_name = request.headers.get("x-cloudtasks-taskname", "")[:500]
    order_id: str | None = None
    try:
        task = _task(await request.body())
        order_id = task.order_id
        outcome = await services.fire_task(task.order_id, task.timer, task.due_at)
    except HookledgerError as exc:
        if retry_count < services.task_max_retries or services.dead_task is None:
            # "not_due_yet": the task came before its time (Cloud Tasks retries it).
            services.metrics.count_task("early" if exc.code == "not_due_yet" else "failed")
            raise
        services.metrics.count_task("dead_letter")
        gave_up = {"task": task_name, "order_id": order_id, "retry_count": retry_count}
        log.error("countdown task gave up", extra={**gave_up, "error": exc.code})
        try:
            await services.dead_task(task_name or "(unnamed)", order_id, retry_count, exc.detail)
        except HookledgerError as recorded:  # logged; the reconciler still fires it
            log.error("dead task not recorded", extra={"task": task_name, "error": recorded.code})
        return Response({"outcome": "dead_letter", "error": exc.code}, status_code=200)
    log.info("countdown task", extra={"order_id": task.order_id, "timer": task.timer,
                                      "outcome": outcome, "retry_count": retry_count})  # fmt: skip
    services.metrics.count_task(outcome)
    return Response({"outcome": outcome}, status_code=200)


def _task(body: bytes) -> CountdownTaskBody:
    try:
        return msgspec.json.decode(body, type=CountdownTaskBody)
    except msgspec.DecodeError as exc:
        raise MalformedBody(f"not a countdown task: {exc}") from None


def _retry_count(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
