"""The command line of ``python -m benchmarks.ingest``: options, checks, the runs
in turn, the report."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

import benchmarks.ingest
from benchmarks.databases import DEFAULT_SERVER, LOOPBACK, admin_url, postgres_context
from benchmarks.ingest.report import report
from benchmarks.ingest.run import RunResult, run
from benchmarks.ingest.trees import CodeTree, TreeError, other_tree, this_tree

MODES = (("group commit", True), ("one commit per request", False))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description=(benchmarks.ingest.__doc__ or "").splitlines()[0],
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per run (default 15)")
    parser.add_argument(
        "--connections", type=int, default=64, help="keep-alive connections (default 64)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (default: one per CPU, as a deployment on this machine would run)",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_SERVER,
        help="any database on the Postgres server to use; scratch databases are made beside it",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (default 1: the server needs the cores)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="signed requests to prepare per run (default: plenty)",
    )
    parser.add_argument(
        "--compare",
        metavar="PATH_OR_GIT_REF",
        help="also measure another code tree (a checkout's directory, or a git ref of this "
        "repository), each run alternating with this tree's; its server runs on this venv",
    )
    parser.add_argument(
        "--checkpointing",
        action="store_true",
        help="also run each mode with the Merkle tree and signed checkpoints following the "
        "intake (benchmarks.checkpointing, beside the server), alternating with runs without",
    )
    parser.add_argument(
        "--serve-default",
        action="store_true",
        help="run `hookledger serve` as a newcomer does, with no options (an intake process "
        "per CPU, the background work in a process of its own), group commit only, and "
        "measure how long the background work takes to catch up after the load",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="runs of each mode; the report adds the medians"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the server logs in this directory")
    parser.add_argument("--verbose", action="store_true", help="also print wrk's own report")
    return parser


def run_all(
    trees: Sequence[CodeTree], wrk: str, server_url: str, workdir: Path, args: argparse.Namespace
) -> list[RunResult]:
    """Each mode, each tree in turn: with two trees, their runs alternate, so that
    both meet the shared machine's moments alike."""
    results = []
    modes = MODES[:1] if args.serve_default else MODES
    for number in range(1, args.runs + 1):
        for label, group_commit in modes:
            for tree in trees:
                named = label if len(trees) == 1 else f"{label}, {tree.label}"
                if args.runs > 1:
                    named += f", run {number}"
                results.append(run(named, group_commit, tree, wrk, server_url, workdir, args,
                                   number=number))  # fmt: skip
                if args.checkpointing:
                    results.append(run(f"{named}, checkpointing", group_commit, tree, wrk,
                                       server_url, workdir, args, checkpointing=True,
                                       number=number))  # fmt: skip
    return results


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if min(args.duration, args.workers, args.wrk_threads, args.runs) <= 0:
        print("--duration, --workers, --wrk-threads and --runs must be positive", file=sys.stderr)
        return 2
    if args.connections < args.wrk_threads:
        print("--connections must be at least --wrk-threads", file=sys.stderr)
        return 2
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "wrk is not installed; the benchmark needs it as a cheap load generator.\n"
            "Install it with:  sudo apt-get update && sudo apt-get install -y wrk\n"
            "(macOS: brew install wrk)",
            file=sys.stderr,
        )
        return 2
    host = urlsplit(args.database_url).hostname
    if host is not None and host not in LOOPBACK:
        print(
            f"refusing database host {host!r}: the benchmark stays on this machine", file=sys.stderr
        )
        return 2
    server_url = admin_url(args.database_url)
    try:
        context = postgres_context(server_url)
    except psycopg.Error as exc:
        print(f"cannot reach Postgres at {server_url}: {exc}", file=sys.stderr)
        return 2
    inherited = sorted(k for k in os.environ if k.startswith("HOOKLEDGER_"))
    if inherited:
        print(f"note: the server inherits {', '.join(inherited)} from this environment")

    # A CI timeout's SIGTERM gets the same clean-up as Ctrl-C: server stopped, databases dropped.
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="hl-bench-") as scratch:
        workdir = Path(scratch)
        trees = [this_tree()]
        try:
            if args.compare:
                trees.append(other_tree(args.compare, workdir))
        except TreeError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        try:
            results = run_all(trees, wrk, server_url, workdir, args)
        except KeyboardInterrupt:
            print("interrupted; the server was stopped and the databases dropped", file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if args.log_dir is not None:
                args.log_dir.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("server-*.log"):
                    shutil.copy(log, args.log_dir / log.name)
    report(results, [f"{tree.label} = {tree.origin}" for tree in trees], args, context)
    return 0
