"""The Cloud Tasks timer backend end to end: a real server, gcloud-tasks-emulator
(in its own venv) dispatching the tasks the server made, a 600 ms window.

The emulator sends no OIDC token, so these servers authenticate tasks with the
shared-secret header; the OIDC path is pinned in test_task_auth.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc  # type: ignore[import-untyped,unused-ignore]
import httpx
import psycopg
import pytest
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from tests.countdown_helpers import (
    HEADSTART,
    WINDOW_ENV,
    all_due,
    countdown_state,
    expiry_lateness,
    now_order,
    types_of,
)
from tests.e2e_helpers import decision_body, run_cli, send_post_purchase, send_veriff, wait_for
from tests.emulators.cloudtasks import CloudTasksEmulator
from tests.support import ServerProcess

TASK_SECRET = "test-task-secret-7f3a"
TASK_PATH = "/internal/tasks/countdown"
MAX_RETRIES = 5
RETRY_COUNT = "x-cloudtasks-taskretrycount"


@pytest.fixture(scope="module")
def emulator() -> Iterator[CloudTasksEmulator]:
    process = CloudTasksEmulator().start()
    yield process
    process.stop()


@pytest.fixture
def tasks_client(emulator: CloudTasksEmulator) -> Iterator[tasks_v2.CloudTasksClient]:
    channel = grpc.insecure_channel(emulator.endpoint)
    yield tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    channel.close()


@pytest.fixture
def queue(tasks_client: tasks_v2.CloudTasksClient) -> str:
    """A queue of this test's own, made with the official client."""
    parent = "projects/test-project/locations/europe-west1"
    name = f"{parent}/queues/countdowns-{uuid.uuid4().hex[:8]}"
    tasks_client.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))
    return name


def cloudtasks_server(
    database_url: str,
    emulator: CloudTasksEmulator,
    queue: str,
    lag: str = "10m",
    reminders: str = WINDOW_ENV["HOOKLEDGER_COUNTDOWN_REMINDERS"],
) -> ServerProcess:
    """A server on the cloudtasks backend; the reconciler takes timers ``lag`` overdue."""
    process = ServerProcess(database_url, env=WINDOW_ENV)
    process.env.update({
        "HOOKLEDGER_TIMER_BACKEND": "cloudtasks",
        "HOOKLEDGER_TASKS_QUEUE": queue,
        "HOOKLEDGER_TASKS_TARGET_URL": process.url,
        "HOOKLEDGER_TASKS_ENDPOINT": emulator.endpoint,
        "HOOKLEDGER_TASKS_SECRET": TASK_SECRET,
        "HOOKLEDGER_TASKS_MAX_RETRIES": str(MAX_RETRIES),
        "HOOKLEDGER_TASKS_RECONCILE_LAG": lag,
        "HOOKLEDGER_COUNTDOWN_REMINDERS": reminders,
    })  # fmt: skip
    return process.start()


@pytest.fixture
def server(database_url: str, emulator: CloudTasksEmulator, queue: str) -> Iterator[ServerProcess]:
    # The reconciler stays out of the way: the tasks must do the firing.
    process = cloudtasks_server(database_url, emulator, queue)
    yield process
    process.stop()


def task_body(order: str, timer: str = "expire", due_at: str | None = None) -> bytes:
    with_due = due_at or "2020-01-01T00:00:00+00:00"
    return json.dumps({"order_id": order, "timer": timer, "due_at": with_due}).encode()


def expired_count(database_url: str, order: str) -> int:
    return types_of(database_url, order).count("countdown.expired")


def test_the_emulator_s_task_reaches_the_endpoint_and_the_countdown_expires_once(
    server: ServerProcess, database_url: str, emulator: CloudTasksEmulator, queue: str
) -> None:
    order = f"ct-{uuid.uuid4().hex[:8]}"
    assert send_post_purchase(server.url, now_order(order)).status_code == 200
    lateness = wait_for(lambda: expiry_lateness(database_url, order), timeout=20)
    assert lateness is not None, server.output()
    assert 0 <= lateness < 8  # the emulator dispatches about 3 s after schedule_time
    assert '"outcome": "fired"' in server.output()
    # The expiry's task and the reminder's, named by their timers' hashes.
    assert emulator.output().count(f"Created task {queue}/tasks/countdown-") >= 2

    # Cloud Tasks delivers at least once: the same task again changes nothing.
    def decisions() -> list[str]:  # the actions' outcomes keep coming meanwhile
        return [t for t in types_of(database_url, order) if not t.startswith("action.")]

    before = decisions()
    again = httpx.post(server.url + TASK_PATH, content=task_body(order),
                       headers={"x-hookledger-task-secret": TASK_SECRET})  # fmt: skip
    assert again.status_code == 200
    assert again.json()["outcome"] == "gone"
    assert decisions() == before
    assert expired_count(database_url, order) == 1


def test_an_unauthenticated_task_call_gets_401_and_changes_nothing(
    server: ServerProcess,
    database_url: str,
    tasks_client: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:
    timers = httpx.get(server.url + "/__selftest", timeout=10).json()["checks"]["timers"]
    assert timers == {"status": "ok", "reason": "cloudtasks queue RUNNING; 0 timers overdue"}
    tasks_client.pause_queue(name=queue)  # the real task waits while we knock
    timers = httpx.get(server.url + "/__selftest", timeout=10).json()["checks"]["timers"]
    assert timers["status"] == "degraded"
    assert timers["reason"].startswith("cloudtasks queue PAUSED")
    order = f"ct-{uuid.uuid4().hex[:8]}"
    assert send_post_purchase(server.url, now_order(order)).status_code == 200
    assert wait_for(lambda: countdown_state(database_url, order) == "running", 10)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT due_at FROM countdown_timers WHERE order_id = %s AND timer = 'expire'",
            (order,),
        ).fetchone()
    assert row is not None
    due = row[0].isoformat()
    assert wait_for(lambda: all_due(database_url, [order]), 10)  # now it is due
    for headers in ({}, {"x-hookledger-task-secret": "wrong"}, {"authorization": "Bearer x.y.z"}):
        answer = httpx.post(server.url + TASK_PATH, content=task_body(order, due_at=due),
                            headers=headers)  # fmt: skip
        assert answer.status_code == 401, answer.text
    assert countdown_state(database_url, order) == "running"
    assert "countdown.expired" not in types_of(database_url, order)
    tasks_client.resume_queue(name=queue)
    assert wait_for(lambda: countdown_state(database_url, order) == "expired", 20)
    assert expired_count(database_url, order) == 1


def test_a_task_that_keeps_failing_is_answered_2xx_at_the_retry_limit_and_dead_lettered(
    server: ServerProcess, database_url: str
) -> None:
    headers = {"x-hookledger-task-secret": TASK_SECRET, "x-cloudtasks-taskname": "broken-1"}
    url = server.url + TASK_PATH
    early = httpx.post(url, content=b"{not json", headers={**headers, RETRY_COUNT: "1"})
    assert early.status_code == 400  # Cloud Tasks will try again
    assert run_cli(database_url, "dead-letters").stdout.strip() == "no dead letters"
    last = httpx.post(url, content=b"{not json", headers={**headers, RETRY_COUNT: str(MAX_RETRIES)})
    assert last.status_code == 200
    assert last.json()["outcome"] == "dead_letter"
    listed = run_cli(database_url, "dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    dead = json.loads(listed.stdout)
    assert [(d["key"], d["kind"], d["attempts"]) for d in dead] == [
        ("broken-1", "countdown.task", MAX_RETRIES + 1)
    ]
    # Counted by outcome: the first call failed (retried), the last gave up.
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'hookledger_tasks_total{outcome="failed"} 1.0' in metrics
    assert 'hookledger_tasks_total{outcome="dead_letter"} 1.0' in metrics
    assert 'hookledger_tasks_total{outcome="early"} 0.0' in metrics


def test_a_timer_whose_task_never_ran_is_expired_by_the_reconciler(
    database_url: str, emulator: CloudTasksEmulator, tasks_client: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:  # fmt: skip
    tasks_client.pause_queue(name=queue)  # every task is lost, as far as we can tell
    # No reminder: its timer, claimed first, would decide the expiry with it.
    process = cloudtasks_server(database_url, emulator, queue, lag="1s", reminders="none")
    try:
        order = f"ct-{uuid.uuid4().hex[:8]}"
        assert send_post_purchase(process.url, now_order(order)).status_code == 200
        lateness = wait_for(lambda: expiry_lateness(database_url, order), timeout=20)
        assert lateness is not None, process.output()
        assert lateness >= 1  # not before the reconciler's lag
        assert expired_count(database_url, order) == 1
    finally:
        process.stop()


def test_a_satisfied_countdown_s_tasks_are_let_go_and_run_to_no_effect(
    server: ServerProcess, database_url: str
) -> None:
    order = f"ct-{uuid.uuid4().hex[:8]}"
    # Ahead: the approval must come before the expiry's task fires.
    assert send_post_purchase(server.url, now_order(order, HEADSTART)).status_code == 200
    assert wait_for(lambda: "countdown.started" in types_of(database_url, order), 10)
    assert send_veriff(server.url, decision_body(order)).status_code == 200
    assert wait_for(lambda: countdown_state(database_url, order) == "satisfied", 10)

    def tasks_held() -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM timer_tasks WHERE order_id = %s", (order,)
            ).fetchone()
        return int(row[0]) if row else -1

    # The emulator cannot delete (UNIMPLEMENTED): the sync logs it and lets go.
    assert wait_for(lambda: tasks_held() == 0, 10)
    # Its tasks still run at their times, and find nothing to do.
    assert wait_for(lambda: '"outcome": "gone"' in server.output(), 15), server.output()
    assert "countdown.expired" not in types_of(database_url, order)
