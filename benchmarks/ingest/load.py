"""The load: wrk replaying the signed deliveries over keep-alive connections."""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).with_name("ingest.lua")
WRK_TIMEOUT = "10s"  # well above any healthy latency, so slow requests are measured, not dropped


@dataclass(frozen=True)
class WrkResult:
    seconds: float
    requests: int
    status_errors: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    wrapped: int
    # Answers by kind (see ingest.lua): 2xx, 503, 429, other, refusals without Retry-After.
    accepted: int = 0
    shed: int = 0
    limited: int = 0
    other: int = 0
    no_retry_after: int = 0


def run_wrk(wrk: str, port: int, prefix: Path, args: argparse.Namespace) -> WrkResult:
    command = [
        wrk,
        "-t",
        str(args.wrk_threads),
        "-c",
        str(args.connections),
        "-d",
        f"{args.duration}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}/",
        "--",
        str(prefix),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 120, check=False
    )
    if args.verbose:
        print(done.stdout)
    return parse_wrk_output(done.returncode, done.stdout, done.stderr)


def parse_wrk_output(returncode: int, stdout: str, stderr: str) -> WrkResult:
    """The figures of the HLBENCH line ingest.lua's ``done()`` prints."""
    line = next((x for x in stdout.splitlines() if x.startswith("HLBENCH ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({returncode}):\n{stdout}\n{stderr}")
    data = json.loads(line.removeprefix("HLBENCH "))
    return WrkResult(
        seconds=data["duration_us"] / 1e6,
        requests=data["requests"],
        status_errors=data["status_errors"],
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
        timeouts=data["timeouts"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        wrapped=data["wrapped"],
        accepted=data["accepted"],
        shed=data["shed"],
        limited=data["limited"],
        other=data["other"],
        no_retry_after=data["no_retry_after"],
    )
