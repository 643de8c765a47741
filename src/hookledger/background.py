"""The background work of a process: projection runners, the countdown policy,
the timers, the outbound actions and (when configured) the BigQuery exporter.
`hookledger worker` runs only this; `hookledger serve` runs it beside the HTTP
routes unless told not to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from events.appender import Appender
from events.connector import Database
from events.consumer import ConsumerRunner
from events.store import read_heads_after
from events.tree import TreeConsumer, read_hashes_after
from hookledger.checkpointer import Checkpointer
from hookledger.console_jobs import ConsoleJobs
from hookledger.exports import bigquery_config, run_bigquery_exporter
from hookledger.secrets import SecretStore
from hookledger.settings import Settings
from hookledger.supervisor import JobFactory, Supervisor
from personal import retention
from projections.projectors import PROJECTIONS, ProjectionConsumer
from projections.stream_cache import StreamCache
from scheduler.actions.config import ActionSettings
from scheduler.actions.worker import ActionWorker
from scheduler.cloudtasks import TaskQueue, TaskSync, TaskTarget
from scheduler.countdown import CountdownConfig
from scheduler.policy import CountdownPolicy
from scheduler.timers import PostgresTimers

log = logging.getLogger(__name__)


def countdown_config(settings: Settings) -> CountdownConfig:
    """The countdown rules the settings ask for."""
    return CountdownConfig(
        window=settings.countdown_window,
        reminders=settings.countdown_reminders,
        grace=settings.countdown_grace,
    )


class Background:
    """Starts and stops one process's background tasks."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        appender: Appender,
        actions: ActionSettings,
        checkpointer: Checkpointer,
        *,
        observe_action: Callable[[str, str], None] | None = None,
        observe_call: Callable[[str, str, float], None] | None = None,
        secrets: SecretStore | None = None,
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        # The projections and the policy read each touched order's stream whole:
        # of the new events the heads are enough, and one read (and fold) of
        # each stream serves them all.
        streams = StreamCache()
        self.runners = [
            ConsumerRunner(db, ProjectionConsumer(projection, streams), read=read_heads_after)
            for projection in PROJECTIONS.values()
        ]
        # The policy's decisions are derived: made again, under the same ids,
        # should a crash lose the latest (see Appender's ``derived``).
        self._decisions = Appender(db, max_batch=settings.max_batch, derived=True)
        policy = CountdownPolicy(self._decisions, countdown_config(settings), streams=streams)
        self.policy = ConsumerRunner(db, policy, read=read_heads_after)
        # The tree reads only hashes: bigger batches, fewer round trips.
        # The tree only has to lead the checkpoints: it reads once a second, not
        # at every append's NOTIFY, so its cost is a few statements per second
        # whatever the intake rate (and catching up, 10,000 events a batch).
        self.tree = ConsumerRunner(db, TreeConsumer(), batch_size=10_000, read=read_hashes_after,
                                   poll_interval=1.0, woken=False)  # fmt: skip
        self.checkpointer = checkpointer
        self._db = db
        self._settings = settings
        self.task_sync: TaskSync | None = None
        lag = 0.0
        if settings.timer_backend == "cloudtasks":
            store = secrets or SecretStore.from_settings(settings)
            self.task_sync = TaskSync(db, task_queue(settings), task_target(settings, store))
            # Beside Cloud Tasks, the Postgres timers are the reconciler sweep.
            lag = settings.tasks_reconcile_lag.total_seconds()
        self.timers = PostgresTimers(db, appender, lag=lag)
        # A dry run is database work only: bigger batches, fewer round trips. Real
        # sends keep batches small, since a batch's rows stay locked while it sends.
        self.actions = ActionWorker(
            db,
            appender,
            actions,
            observe=observe_action,
            observe_call=observe_call,
            batch_size=1000 if actions.safe_mode else 200,
        )
        self.supervisor = Supervisor(on_restart=on_restart)
        self._bigquery = bigquery_config(settings)

    def jobs(self) -> dict[str, JobFactory]:
        """Each job's name and how to start it (again)."""
        jobs: dict[str, JobFactory] = {r.consumer.name: r.run for r in self.runners}
        jobs[self.policy.consumer.name] = self.policy.run
        jobs[self.tree.consumer.name] = self.tree.run
        jobs["checkpoints"] = self.checkpointer.run
        jobs["timers"] = self.timers.run
        if self.task_sync is not None:
            jobs["task_sync"] = self.task_sync.run
        jobs["actions"] = self.actions.run
        jobs["retention"] = partial(
            retention.run, self._db, self._settings.retention_interval.total_seconds()
        )
        # What operators started from the console: here, not in the web process
        # that took the request (Cloud Run may throttle or stop it).
        jobs["console_jobs"] = ConsoleJobs(self._db).run
        # A job runs until cancelled: the exporter is one only where it has work.
        if self._bigquery is not None:
            jobs["exporter.bigquery"] = partial(
                run_bigquery_exporter, self._db, self._settings, self._bigquery
            )
            # Imported here: the BigQuery client weighs tens of MiB in every
            # process, and only processes that export need it.
            from exporter.checkpoints_table import CheckpointsTable

            table = CheckpointsTable(self._db, self._bigquery)
            jobs["exporter.checkpoints"] = partial(table.run, self._settings.export_interval)
        return jobs

    async def start(self) -> None:
        await self._decisions.start()
        if self._bigquery is None:
            log.info("bigquery export not configured (HOOKLEDGER_BIGQUERY_PROJECT is unset)")
        for name, job in self.jobs().items():
            self.supervisor.start(name, job)

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self._decisions.stop()
        await self.actions.close()


def task_queue(settings: Settings) -> TaskQueue:
    """The configured Cloud Tasks queue (an emulator's when an endpoint is set)."""
    return TaskQueue(settings.tasks_queue, settings.tasks_endpoint)


def task_target(settings: Settings, secrets: SecretStore) -> TaskTarget:
    """How tasks call this service back."""
    secret = secrets.live(settings.tasks_secret, "HOOKLEDGER_TASKS_SECRET")
    return TaskTarget(
        queue=settings.tasks_queue,
        url=settings.tasks_target_url,
        service_account=settings.tasks_service_account,
        audience=settings.tasks_audience,
        secret=secret.first,
    )
