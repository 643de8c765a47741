"""The report: every run side by side, against the targets."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable, Sequence

from benchmarks.ingest.measure import CATCH_UP_TARGET_SECONDS, CAUGHT_UP_LAG_SECONDS, CatchUp
from benchmarks.ingest.run import RunResult

TARGET_RATE = 5_000.0
TARGET_P99_MS = 30.0
TARGET_RATIO = 3.0

# The kernel's loopback networking, billed to no process, takes about 0.1 core on a
# quiet machine; beyond this, other work competed with the benchmark for the CPUs.
NOISY_CORES = 0.25


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(
    results: Sequence[RunResult], trees: Sequence[str], args: argparse.Namespace, context: str
) -> None:
    """Print the runs side by side: group commit first, then one commit per request,
    each once per code tree (``trees``: each tree's label and where its code was)."""
    runs = sorted(results, key=lambda r: not r.group_commit)  # stable: trees keep their order
    group = [r for r in runs if r.group_commit]
    rows: list[tuple[str, ...]] = []

    def add(name: str, value: Callable[[RunResult], str], target: str = "") -> None:
        rows.append((name, *map(value, runs), target))

    def optional(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    def verdicts(ok: Callable[[RunResult], bool]) -> str:
        return " / ".join(_verdict(ok(r)) for r in group)

    add(
        "durable events/s",
        lambda r: f"{r.rate:,.0f}",
        f">= {TARGET_RATE:,.0f}  {verdicts(lambda r: r.rate >= TARGET_RATE)}",
    )
    if args.serve_default:
        # Events include the countdown's decisions made during the load.
        add("deliveries accepted/s", lambda r: f"{r.wrk.accepted / r.wrk.seconds:,.0f}")
    add("p50 latency (ms)", lambda r: f"{r.wrk.p50_ms:.1f}")
    add("p90 latency (ms)", lambda r: f"{r.wrk.p90_ms:.1f}")
    add(
        "p99 latency (ms)",
        lambda r: f"{r.wrk.p99_ms:.1f}",
        f"<= {TARGET_P99_MS:.0f}  {verdicts(lambda r: r.wrk.p99_ms <= TARGET_P99_MS)}",
    )
    add("max latency (ms)", lambda r: f"{r.wrk.max_ms:.0f}")
    add("events in the database", lambda r: f"{r.events:,}")
    add("responses completed", lambda r: f"{r.wrk.requests:,}")
    add("non-2xx responses", lambda r: f"{r.wrk.status_errors:,}", "0")
    add("refused: 503 / 429", lambda r: f"{r.wrk.shed:,} / {r.wrk.limited:,}")
    add("refused without Retry-After", lambda r: f"{r.wrk.no_retry_after:,}", "0")
    add("socket errors / timeouts", lambda r: f"{r.wrk.socket_errors} / {r.wrk.timeouts}", "0 / 0")
    add("server peak RSS (MiB)", lambda r: f"{r.server.peak_rss_mib:.0f}")
    add(
        "server CPU per event (ms)",
        lambda r: f"{r.cpu.server * r.wrk.seconds * 1000 / r.events:.3f}" if r.events else "n/a",
    )
    add("CPU cores: server", lambda r: f"{r.cpu.server:.2f}")
    add("CPU cores: Postgres backends", lambda r: f"{r.cpu.postgres:.2f}")
    add("CPU cores: wrk", lambda r: f"{r.cpu.wrk:.2f}")
    add("CPU cores: everything else", lambda r: f"{r.cpu.others:.2f}")
    add("CPU cores: stolen by the hypervisor", lambda r: f"{r.cpu.stolen:.2f}")
    add("one core's speed (M Python steps/s)", lambda r: f"{r.speed:.1f}")
    add("connections per worker", lambda r: " / ".join(map(str, r.connections)) or "n/a")
    add("mean commit batch (events)", lambda r: optional(r.server.mean_batch, ".1f"))
    add("mean commit batch time (ms)", lambda r: optional(r.server.mean_batch_ms, ".2f"))
    add("measured seconds", lambda r: f"{r.wrk.seconds:.1f}")
    if any(r.caught_up is not None for r in runs):
        add("consumer lag at load end (s)",
            lambda r: optional(r.caught_up.lag_at_end if r.caught_up else None, ".1f"))  # fmt: skip
        add(
            f"lag under {CAUGHT_UP_LAG_SECONDS:.0f} s after (s)",
            lambda r: optional(r.caught_up.seconds if r.caught_up else None, ".1f"),
            f"<= {CATCH_UP_TARGET_SECONDS:.0f}  "
            + verdicts(lambda r: _caught_up_in_time(r.caught_up)),
        )

    several = args.runs > 1
    header = ("", *(r.label if several else _column(r, len(trees)) for r in runs),
              "target (group commit)")  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    print()
    shape = ("`hookledger serve` with no options" if args.serve_default
             else f"{args.workers} server worker(s), intake only")  # fmt: skip
    print(
        f"hookledger ingest: {args.duration} s per run, {args.connections} keep-alive "
        f"connections, {shape}, wrk {args.wrk_threads} thread(s)"
    )
    print(f"{os.cpu_count()} CPUs shared by server, Postgres and wrk; {context}")
    if len(trees) > 1:
        print("code trees, run alternately: " + "; ".join(trees))
    print()
    for row in [header, *rows]:
        cells = [f"{row[0]:<{widths[0]}}"]
        cells += [f"{cell:>{width}}" for cell, width in zip(row[1:-1], widths[1:], strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip())
    print()
    for tree in dict.fromkeys(r.tree for r in runs):
        pair = [r for r in runs if r.tree == tree]
        if several:
            _print_medians(tree, pair)
        if all(r.group_commit for r in pair):
            continue  # serve's default: group commit only
        ratio = _ratio(pair)
        named = f" ({tree})" if len(trees) > 1 else ""
        print(
            f"group commit / one commit per request{named}: {ratio:.2f}x   "
            f"target >= {TARGET_RATIO:.0f}x  {_verdict(ratio >= TARGET_RATIO)}"
        )

    for result in runs:
        print(f"\n{result.label}:")
        for note in _notes(result, args.connections):
            print(f"  {note}")


def _caught_up_in_time(caught_up: CatchUp | None) -> bool:
    return (
        caught_up is not None
        and caught_up.seconds is not None
        and caught_up.seconds <= CATCH_UP_TARGET_SECONDS
    )


def _print_medians(tree: str, runs: Sequence[RunResult]) -> None:
    """Each mode's median rate and p99 over its runs, against the targets."""
    for group_commit in (True, False):
        chosen = [r for r in runs if r.group_commit == group_commit]
        if not chosen:
            continue
        rate = statistics.median(r.rate for r in chosen)
        p99 = statistics.median(r.wrk.p99_ms for r in chosen)
        mode = "group commit" if group_commit else "one commit per request"
        line = (f"median of {len(chosen)} runs, {mode} ({tree}): {rate:,.0f} events/s, "
                f"p99 {p99:.1f} ms")  # fmt: skip
        if group_commit:
            line += (f"   targets >= {TARGET_RATE:,.0f} {_verdict(rate >= TARGET_RATE)}, "
                     f"<= {TARGET_P99_MS:.0f} ms {_verdict(p99 <= TARGET_P99_MS)}")  # fmt: skip
        print(line)


def _column(result: RunResult, trees: int) -> str:
    mode = "group commit" if result.group_commit else "one commit/request"
    return mode if trees == 1 else f"{mode}: {result.tree}"


def _ratio(runs: Sequence[RunResult]) -> float:
    """Group commit's rate over one commit per request's, for one tree's runs."""
    group = next(r.rate for r in runs if r.group_commit)
    single = next(r.rate for r in runs if not r.group_commit)
    return group / single if single else float("inf")


def _notes(result: RunResult, connections: int) -> list[str]:
    notes = []
    if result.cpu.others + result.cpu.stolen > NOISY_CORES:
        notes.append(
            f"other work took {result.cpu.others:.2f} cores and the hypervisor "
            f"{result.cpu.stolen:.2f} during the run: noisy figures"
        )
    # Requests in flight when wrk stops may be committed without wrk counting the answer.
    # (With the background work in the server, events include its decisions.)
    if result.caught_up is None and abs(result.events - result.ok_responses) > connections:
        notes.append(f"{result.events:,} events but {result.ok_responses:,} 2xx responses")
    if result.wrk.shed or result.wrk.limited:
        notes.append("latency percentiles cover every answer, refusals included")
    if result.wrk.wrapped:
        notes.append("wrk ran out of requests and replayed some (raise --requests)")
    if result.server.outcomes:
        # Every provider's series exists from the start: show only what happened.
        seen = {k: v for k, v in result.server.outcomes.items() if v}
        outcomes = ", ".join(f"{k}={v:,}" for k, v in sorted(seen.items()))
        notes.append(f"server outcomes: {outcomes}")
    if result.exit_code not in (0, None):
        notes.append(f"server exit code {result.exit_code}")
    logged = ", ".join(f"{k}={v:,}" for k, v in sorted(result.log_counts.items()))
    notes.append(f"server log lines: {logged or 'none'}")
    notes.extend(f"  {count:,} x {message}" for message, count in result.log_messages)
    return notes
