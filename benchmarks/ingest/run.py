"""One run: a fresh database, the server of one code tree, wrk for ``--duration``
seconds, and what was measured meanwhile."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.databases import count_events, scratch_database
from benchmarks.ingest.load import WrkResult, run_wrk
from benchmarks.ingest.measure import (
    CatchUp,
    CpuSnapshot,
    CpuUse,
    PeakMemory,
    ServerSample,
    catch_up,
    server_sample,
    summarise_log,
)
from benchmarks.ingest.requests import (
    MIN_REQUESTS,
    REQUESTS_PER_SECOND_BUDGET,
    STANDARD_WEBHOOKS_TOLERANCE,
    write_request_files,
)
from benchmarks.ingest.server import Server
from benchmarks.ingest.trees import CodeTree
from benchmarks.machine import connections_held, python_speed


@dataclass(frozen=True)
class RunResult:
    label: str
    events: int
    wrk: WrkResult
    server: ServerSample
    cpu: CpuUse
    log_counts: dict[str, int]
    log_messages: list[tuple[str, int]]
    exit_code: int | None
    speed: float
    connections: list[int]
    group_commit: bool
    tree: str
    # With the background work in the server (serve's default): its catching up.
    caught_up: CatchUp | None = None

    @property
    def rate(self) -> float:
        return self.events / self.wrk.seconds if self.wrk.seconds else 0.0

    @property
    def ok_responses(self) -> int:
        return self.wrk.requests - self.wrk.status_errors


def run(
    label: str,
    group_commit: bool,
    tree: CodeTree,
    wrk: str,
    server_url: str,
    workdir: Path,
    args: argparse.Namespace,
    *,
    checkpointing: bool = False,
    number: int = 1,
) -> RunResult:
    slug = ("group" if group_commit else "single") + tree.slug + ("-cp" if checkpointing else "")
    slug += f"-{number}"
    speed = python_speed()
    with scratch_database(server_url) as url:
        server = Server(url, args.workers, group_commit, workdir / f"server-{slug}.log", tree,
                        default_shape=args.serve_default)  # fmt: skip
        total = args.requests or max(MIN_REQUESTS, args.duration * REQUESTS_PER_SECOND_BUDGET)
        print(f"[{label}] signing {total:,} requests ...", flush=True)
        started = time.monotonic()
        prefix = workdir / f"requests-{slug}"
        files = write_request_files(prefix, f"127.0.0.1:{server.port}", total, args.wrk_threads)
        try:
            print(
                f"[{label}] starting the server (database {url.rsplit('/', 1)[1]}) ...", flush=True
            )
            side: subprocess.Popen[bytes] | None = None
            try:
                server.start()
                if checkpointing:
                    side = subprocess.Popen([sys.executable, "-m", "benchmarks.checkpointing", url])
                memory = PeakMemory(server.pids).start()
                # The server refuses post-purchase timestamps older than the tolerance.
                if time.monotonic() - started + args.duration > STANDARD_WEBHOOKS_TOLERANCE:
                    print(
                        f"[{label}] warning: signatures expire during the run; expect 401s",
                        file=sys.stderr,
                    )
                before = CpuSnapshot.take(server.pids(), url)
                print(
                    f"[{label}] wrk: {args.connections} connections for {args.duration} s ...",
                    flush=True,
                )
                # Counted halfway through, once wrk has opened every connection.
                split: list[int] = []
                counter = threading.Timer(
                    args.duration / 2,
                    lambda: split.extend(connections_held(server.pids(), server.port)),
                )
                counter.start()
                try:
                    measured = run_wrk(wrk, server.port, prefix, args)
                finally:
                    counter.cancel()  # wrk failed early: no count of a server being stopped
                    counter.join()
                after = CpuSnapshot.take(server.pids(), url)
                caught_up = None
                # With the background work in the server, the ledger goes on
                # growing after the load (its decisions): count what the load made.
                at_end = count_events(url) if args.serve_default else None
                if args.serve_default:
                    print(f"[{label}] waiting for the background work to catch up ...",
                          flush=True)  # fmt: skip
                    caught_up = catch_up(server.metrics, time.monotonic)
                sample = server_sample(server.metrics(), memory.stop(), len(server.pids()))
            finally:
                if side is not None:
                    side.terminate()
                    side.wait(30)
                exit_code = server.stop()
        finally:
            for path in files:
                path.unlink(missing_ok=True)
        # After the stop: the server has drained its queue, so this is what is durable.
        events = count_events(url) if at_end is None else at_end
    counts, messages = summarise_log(server.log)
    cpu = CpuUse.between(before, after, measured.seconds)
    return RunResult(
        label, events, measured, sample, cpu, counts, messages, exit_code, speed, split,
        group_commit, tree.label + (", checkpointing" if checkpointing else ""), caught_up,
    )  # fmt: skip
