"""Prometheus metrics of the intake, the appender and the outbound actions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector


class Metrics:
    """One registry per service, so tests and several apps in one process don't clash.

    With several server processes (``serve --workers N``), prometheus_client keeps
    each process's values in files under PROMETHEUS_MULTIPROC_DIR and
    ``multiprocess`` makes a scrape of any worker report the sum of all.
    """

    def __init__(self, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "hookledger_webhooks",
            "Webhook deliveries by provider and outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "hookledger_append_batch_size",
            "Events written per group-commit batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "hookledger_append_batch_seconds",
            "Seconds per group-commit batch, lock to commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.actions = Counter(
            "hookledger_actions",
            "Outbound action attempts by kind and outcome (dry_run, succeeded, failed, "
            "dead_lettered)",
            ["kind", "outcome"],
            registry=self.registry,
        )

    def count_action(self, kind: str, outcome: str) -> None:
        self.actions.labels(kind, outcome).inc()

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return generate_latest(combined)
