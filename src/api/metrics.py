"""Prometheus metrics of the intake, the appender and the outbound actions."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import Gauge as PromGauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.rejections import (
    REASONS,
    BodyTooLarge,
    MalformedBody,
    RateLimited,
    SignatureRejected,
    UnsupportedMediaType,
    reason_of,
)
from events.checkpoints import ConsumerLag
from events.errors import AppenderStopped, DatabaseUnavailable, HookledgerError, Overloaded

# What becomes of a delivery (and of each event in it) once it is verified.
ACCEPTED = ("recorded", "duplicate", "conflict")
# The refusals a known provider's delivery can meet, by error code.
REFUSED = tuple(
    kind.code
    for kind in (
        SignatureRejected,
        MalformedBody,
        UnsupportedMediaType,
        BodyTooLarge,
        DatabaseUnavailable,
        AppenderStopped,
        Overloaded,
        RateLimited,
    )
)


# What a Cloud Task's call can come to, each with its series from the start.
TASK_OUTCOMES = ("fired", "gone", "moved", "early", "failed", "dead_letter")
# The outbound providers, each with its series from the start.
OUTBOUND = ("sendgrid", "authorizenet")


class Gauge(msgspec.Struct, frozen=True):
    """One gauge sample read at scrape time (from the database)."""

    name: str
    help: str
    labels: dict[str, str]
    value: float


# Counts by (minute's start in Unix seconds, provider, outcome or reason).
MinuteTally = dict[tuple[int, str, str], int]


def _by_minute(tally: MinuteTally, provider: str, label: str) -> None:
    key = (int(time.time()) // 60 * 60, provider, label)
    tally[key] = tally.get(key, 0) + 1


class Metrics:
    """One registry per service, so tests and several apps in one process don't clash.

    With several server processes (``serve --workers N``), prometheus_client keeps
    each process's values in files under PROMETHEUS_MULTIPROC_DIR and
    ``multiprocess`` makes a scrape of any worker report the sum of all.
    """

    def __init__(self, *, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.rejections_by_minute: MinuteTally = {}
        self.deliveries_by_minute: MinuteTally = {}
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "hookledger_webhooks",
            "Webhook deliveries by provider and outcome",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.webhook_events = Counter(
            "hookledger_webhook_events",
            "Events read out of verified deliveries, by provider and outcome "
            "(a batch delivery holds several)",
            ["provider", "outcome"],
            registry=self.registry,
        )
        self.signature_rejections = Counter(
            "hookledger_signature_rejections",
            "Deliveries refused for their signature, by provider and reason",
            ["provider", "reason"],
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

        self.webhook_seconds = Histogram(
            "hookledger_webhook_seconds",
            "Seconds from a delivery's arrival to its answer, by provider (refusals included)",
            ["provider"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.safe_mode = PromGauge(
            "hookledger_safe_mode",
            "1 while safe mode is on (actions are recorded, never sent)",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.tasks = Counter(
            "hookledger_tasks",
            "Cloud Tasks calls of the countdown endpoint, by outcome (fired, gone, moved, "
            "early: before its time, failed: to be retried, dead_letter: given up)",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in TASK_OUTCOMES:
            self.tasks.labels(outcome)
        self.outbound_calls = Counter(
            "hookledger_outbound_calls",
            "Requests sent to outbound providers, by provider and result (succeeded, "
            "retry: worth another try, give_up)",
            ["provider", "result"],
            registry=self.registry,
        )
        self.outbound_seconds = Histogram(
            "hookledger_outbound_seconds",
            "Seconds per request to an outbound provider, by provider",
            ["provider"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
            registry=self.registry,
        )
        for provider in OUTBOUND:
            self.outbound_seconds.labels(provider)
            for result in ("succeeded", "retry", "give_up"):
                self.outbound_calls.labels(provider, result)
        self.background_restarts = Counter(
            "hookledger_background_restarts",
            "Background jobs started again after they died, by job",
            ["job"],
            registry=self.registry,
        )

        # Labelled series looked up once: labels() takes a lock and builds a key
        # on every call, and the intake counts each delivery and each event.
        self._deliveries: dict[tuple[str, str], Counter] = {}
        self._timings: dict[str, Histogram] = {}
        self._events: dict[tuple[str, str], Counter] = {}
        # The consumers that set events aside, so their quarantine series show at zero.
        self.consumers: tuple[str, ...] = ()
        # The newest self-test report, refreshed in the background (never by a scrape).
        self.selftest_report: dict[str, Any] | None = None

    def accepted(self, provider: str, delivery: str, events: Iterable[str]) -> None:
        """Count a verified delivery by its outcome, and each of its events by theirs."""
        _series(self._deliveries, self.webhooks, provider, delivery).inc()
        _by_minute(self.deliveries_by_minute, provider, delivery)
        for kind in events:
            _series(self._events, self.webhook_events, provider, kind).inc()

    def observe_webhook(self, provider: str, seconds: float) -> None:
        series = self._timings.get(provider)
        if series is None:
            series = self._timings[provider] = self.webhook_seconds.labels(provider)
        series.observe(seconds)

    def count_task(self, outcome: str) -> None:
        self.tasks.labels(outcome).inc()

    def observe_call(self, provider: str, result: str, seconds: float) -> None:
        self.outbound_calls.labels(provider, result).inc()
        self.outbound_seconds.labels(provider).observe(seconds)

    def count_action(self, kind: str, outcome: str) -> None:
        self.actions.labels(kind, outcome).inc()

    def register_providers(self, providers: Iterable[str]) -> None:
        """Start every provider's series at zero, so a dashboard shows a provider
        that has had no delivery yet, and a rate over a first refusal works."""
        for provider in providers:
            self.webhook_seconds.labels(provider)
            for outcome in (*ACCEPTED, *REFUSED):
                self.webhooks.labels(provider, outcome)
            for outcome in ACCEPTED:
                self.webhook_events.labels(provider, outcome)
            for reason in REASONS:
                self.signature_rejections.labels(provider, reason)

    def refused(self, provider: str, exc: HookledgerError) -> None:
        """Count a refused delivery under its error code (and why, for a signature)."""
        self.webhooks.labels(provider, exc.code).inc()
        _by_minute(self.deliveries_by_minute, provider, exc.code)
        if isinstance(exc, SignatureRejected):
            reason = reason_of(exc)
            self.signature_rejections.labels(provider, reason).inc()
            _by_minute(self.rejections_by_minute, provider, reason)

    def take_by_minute(self) -> tuple[MinuteTally, MinuteTally]:
        """The signature rejections (by minute, provider and reason) and the
        deliveries (by minute, provider and outcome) tallied since the last
        call, for the console (the composition root writes them every few
        seconds)."""
        taken = self.rejections_by_minute, self.deliveries_by_minute
        self.rejections_by_minute, self.deliveries_by_minute = {}, {}
        return taken

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def register_jobs(self, names: Iterable[str]) -> None:
        """Start every background job's restart count at zero."""
        for name in names:
            self.background_restarts.labels(name)

    def count_restart(self, job: str) -> None:
        self.background_restarts.labels(job).inc()

    def register_consumers(self, names: Iterable[str]) -> None:
        """The consumers whose quarantined events are counted, each shown from
        the start (at zero until one sets an event aside)."""
        self.consumers = tuple(names)

    def render(
        self,
        lags: Sequence[ConsumerLag] = (),
        quarantined: Mapping[str, int] | None = None,
        gauges: Sequence[Gauge] = (),
    ) -> bytes:
        """The text exposition; ``lags`` and ``quarantined`` (read from the
        database at scrape time, the same for every process) are added as gauges."""
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
        if quarantined is not None:
            counts = {**dict.fromkeys(self.consumers, 0), **quarantined}
            scraped = CollectorRegistry()
            scraped.register(_QuarantineCollector(counts))
            text += generate_latest(scraped)
        gauges = [*gauges, *selftest_gauges(self.selftest_report)]
        if gauges:
            scraped = CollectorRegistry()
            scraped.register(_GaugeCollector(gauges))
            text += generate_latest(scraped)
        return text


SELFTEST_STATES = ("ok", "safe_mode", "degraded", "error")


def selftest_gauges(report: Mapping[str, Any] | None) -> list[Gauge]:
    """One gauge per subsystem and state (1 for the state it is in), and the
    whole report's state likewise; none before the first self-test."""
    if report is None:
        return []
    check_help = "The self-test's state of each subsystem (1 for the state it is in)"
    status_help = "The whole self-test's state (error: /__selftest answers 503)"
    gauges = []
    checks: Mapping[str, Any] = report.get("checks", {})
    for name, check in sorted(checks.items()):
        for state in SELFTEST_STATES:
            value = 1.0 if check.get("status") == state else 0.0
            labels = {"subsystem": name, "state": state}
            gauges.append(Gauge("hookledger_selftest_check", check_help, labels, value))
    for state in ("ok", "degraded", "error"):
        value = 1.0 if report.get("status") == state else 0.0
        gauges.append(Gauge("hookledger_selftest_status", status_help, {"state": state}, value))
    return gauges


def _series(
    cache: dict[tuple[str, str], Counter], counter: Counter, provider: str, outcome: str
) -> Counter:
    series = cache.get((provider, outcome))
    if series is None:
        series = cache[provider, outcome] = counter.labels(provider, outcome)
    return series


class _GaugeCollector(Collector):
    def __init__(self, gauges: Sequence[Gauge]) -> None:
        self._gauges = gauges

    def collect(self) -> Iterable[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for gauge in self._gauges:
            family = families.get(gauge.name)
            if family is None:
                family = families[gauge.name] = GaugeMetricFamily(
                    gauge.name, gauge.help, labels=list(gauge.labels)
                )
            family.add_metric(list(gauge.labels.values()), gauge.value)
        return list(families.values())


class _QuarantineCollector(Collector):
    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "hookledger_quarantined_events",
            "Events a consumer could not apply and set aside (hookledger quarantine)",
            labels=["consumer"],
        )
        for name, count in sorted(self._counts.items()):
            gauge.add_metric([name], count)
        return [gauge]


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
