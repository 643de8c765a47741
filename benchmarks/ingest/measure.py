"""What a run measures besides wrk's figures: CPU by whom, the server's memory,
its own metrics and its log."""

from __future__ import annotations

import json
import resource
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.databases import backend_pids
from benchmarks.machine import machine_seconds, process_cpu, resident_bytes

# How often the server's memory is sampled: psutil has no high-water mark, and
# an intake server's memory grows steadily rather than in short spikes.
MEMORY_INTERVAL = 0.2


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds, to subtract: who used the cores during the run."""

    machine: float
    stolen: float
    server: dict[int, float]
    postgres: dict[int, float]
    children: float

    @classmethod
    def take(cls, server_pids: Sequence[int], database_url: str) -> CpuSnapshot:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, stolen = machine_seconds()
        return cls(
            machine=busy,
            stolen=stolen,
            server=process_cpu(server_pids),
            postgres=process_cpu(backend_pids(database_url)),
            children=usage.ru_utime + usage.ru_stime,
        )


@dataclass(frozen=True)
class CpuUse:
    """Cores kept busy during the run, on average."""

    server: float
    postgres: float
    wrk: float
    machine: float
    stolen: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot, seconds: float) -> CpuUse:
        def grown(start: dict[int, float], end: dict[int, float]) -> float:
            return sum(value - start.get(pid, 0.0) for pid, value in end.items())

        return cls(
            server=grown(before.server, after.server) / seconds,
            postgres=grown(before.postgres, after.postgres) / seconds,
            # wrk is the only child waited for in between.
            wrk=(after.children - before.children) / seconds,
            machine=(after.machine - before.machine) / seconds,
            stolen=(after.stolen - before.stolen) / seconds,
        )

    @property
    def others(self) -> float:
        """Other work on this machine (Postgres' own background processes included),
        and kernel time (loopback networking) billed to no process."""
        return max(0.0, self.machine - self.stolen - self.server - self.postgres - self.wrk)


@dataclass(frozen=True)
class ServerSample:
    """What the server's processes looked like just before it was stopped."""

    peak_rss_mib: float
    processes: int
    outcomes: dict[str, int] = field(default_factory=dict)
    mean_batch: float | None = None
    mean_batch_ms: float | None = None


def server_sample(metrics: str, peak_rss: int, processes: int) -> ServerSample:
    """The sample, from the text of the server's ``/metrics`` and its peak memory."""
    outcomes, means = read_metrics(metrics)
    seconds = means.get("hookledger_append_batch_seconds")
    return ServerSample(
        peak_rss_mib=peak_rss / 2**20,
        processes=processes,
        outcomes=outcomes,
        mean_batch=means.get("hookledger_append_batch_size"),
        mean_batch_ms=seconds * 1000 if seconds is not None else None,
    )


def read_metrics(text: str) -> tuple[dict[str, int], dict[str, float]]:
    """Webhook outcomes by ``provider:outcome``, and each histogram's mean."""
    outcomes: Counter[str] = Counter()
    means: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "hookledger_webhooks":
            for sample in family.samples:
                if sample.name == "hookledger_webhooks_total":
                    key = f"{sample.labels.get('provider')}:{sample.labels.get('outcome')}"
                    outcomes[key] += int(sample.value)
        elif family.type == "histogram" and family.name.startswith("hookledger_"):
            # _sum and _count are the unlabelled samples (the buckets carry `le`).
            totals = {s.name.removeprefix(family.name): s.value for s in family.samples
                      if not s.labels}  # fmt: skip
            if totals.get("_count"):
                means[family.name] = totals["_sum"] / totals["_count"]
    return dict(outcomes), means


class PeakMemory:
    """The highest resident memory of the server's processes together, sampled
    in a thread from ``start`` to ``stop``."""

    def __init__(self, pids: Callable[[], Sequence[int]]) -> None:
        self._pids = pids
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
        self.peak = 0

    def start(self) -> PeakMemory:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stopping.set()
        self._thread.join()
        self.peak = max(self.peak, resident_bytes(self._pids()))
        return self.peak

    def _sample(self) -> None:
        while not self._stopping.wait(MEMORY_INTERVAL):
            self.peak = max(self.peak, resident_bytes(self._pids()))


def summarise_log(path: Path) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Lines per severity, and the most frequent warnings and errors."""
    severities: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            severities["plain"] += 1
            continue
        if not isinstance(record, dict):
            severities["plain"] += 1
            continue
        severity = str(record.get("severity", "?"))
        severities[severity] += 1
        if severity in ("WARNING", "ERROR", "CRITICAL"):
            detail = record.get("error") or record.get("detail") or ""
            problems[f"{severity} {record.get('message')} {detail}".strip()[:160]] += 1
    return dict(severities), problems.most_common(5)


# The background work keeps up when every consumer's lag is back under this...
CAUGHT_UP_LAG_SECONDS = 5.0
# ...within this long of the load's end (the target); measured up to a minute.
CATCH_UP_TARGET_SECONDS = 10.0
CATCH_UP_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class CatchUp:
    """The consumers' lag when the load ended, and how long it took to fall back."""

    lag_at_end: float
    seconds: float | None  # None: still behind after CATCH_UP_LIMIT_SECONDS


def largest_lag(metrics_text: str) -> float:
    """The largest ``hookledger_consumer_lag_seconds`` of a /metrics text."""
    lags = [
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "hookledger_consumer_lag_seconds"
        for sample in family.samples
    ]
    return max(lags, default=0.0)


def catch_up(metrics: Callable[[], str], clock: Callable[[], float]) -> CatchUp:
    """Poll the server's lag from the moment the load ended until it is back
    under CAUGHT_UP_LAG_SECONDS."""
    ended = clock()
    lag_at_end = lag = largest_lag(metrics())
    while lag >= CAUGHT_UP_LAG_SECONDS:
        if clock() - ended > CATCH_UP_LIMIT_SECONDS:
            return CatchUp(lag_at_end, None)
        threading.Event().wait(0.25)
        lag = largest_lag(metrics())
    return CatchUp(lag_at_end, clock() - ended)
