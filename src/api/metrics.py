"""Prometheus metrics of the intake and the appender."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from events.checkpoints import ConsumerLag


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

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def render(self, lags: Sequence[ConsumerLag] = ()) -> bytes:
        """The text exposition; ``lags`` (read from the database at scrape time,
        the same for every process) are added as gauges."""
        if self.multiprocess:
            combined = CollectorRegistry()
            MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
            text = generate_latest(combined)
        else:
            text = generate_latest(self.registry)
        if lags:
            scraped = CollectorRegistry()
            scraped.register(_LagCollector(lags))
            text += generate_latest(scraped)
        return text


class _LagCollector(Collector):
    def __init__(self, lags: Sequence[ConsumerLag]) -> None:
        self._lags = lags

    def collect(self) -> Iterable[Metric]:
        events = GaugeMetricFamily(
            "hookledger_consumer_lag_events",
            "Events a consumer (projection, policy, exporter) has still to take",
            labels=["consumer"],
        )
        seconds = GaugeMetricFamily(
            "hookledger_consumer_lag_seconds",
            "How long the oldest event a consumer has still to take has waited",
            labels=["consumer"],
        )
        for lag in self._lags:
            events.add_metric([lag.name], lag.events)
            seconds.add_metric([lag.name], lag.seconds)
        return [events, seconds]
