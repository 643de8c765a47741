"""Ingestion benchmark: the real service and Postgres, driven over HTTP by wrk.

Runs ``hookledger serve`` twice on fresh scratch databases, once with group
commit and once with one commit per request, replays unique signed webhooks
over keep-alive connections, and prints durable events/s, latency and memory
side by side. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg import sql

from api.signatures import hmac_sha256_hex, standard_webhooks_sign

ROOT = Path(__file__).resolve().parents[1]
LUA_SCRIPT = Path(__file__).with_name("ingest.lua")

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "hl_bench_"
VERIFF_SECRET = "bench-veriff-secret"
# whsec_ + base64("bench-post-purchase-secret")
POST_PURCHASE_SECRET = "whsec_YmVuY2gtcG9zdC1wdXJjaGFzZS1zZWNyZXQ="

BODY_BYTES = 1024
MIN_REQUESTS = 300_000
# Comfortably above what two shared cores can ingest, so no request repeats.
REQUESTS_PER_SECOND_BUDGET = 25_000
STANDARD_WEBHOOKS_TOLERANCE = 300  # seconds; the server refuses older timestamps

TARGET_RATE = 5_000.0
TARGET_P99_MS = 30.0
TARGET_RATIO = 3.0

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
WRK_TIMEOUT = "10s"  # well above any healthy latency, so slow requests are measured, not dropped

# The kernel's loopback networking, billed to no process, takes about 0.1 core on a
# quiet machine; beyond this, other work competed with the benchmark for the CPUs.
NOISY_CORES = 0.25
SPEED_STEPS = 2_000_000

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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

    @property
    def rate(self) -> float:
        return self.events / self.wrk.seconds if self.wrk.seconds else 0.0

    @property
    def ok_responses(self) -> int:
        return self.wrk.requests - self.wrk.status_errors


# -- signed requests -------------------------------------------------------------


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def _padded(body: dict[str, Any]) -> bytes:
    """``body`` as JSON, grown to about BODY_BYTES with a filler field."""
    encoded = msgspec.json.encode(body)
    missing = BODY_BYTES - len(encoded) - len(b',"note":""')
    if missing <= 0:
        return encoded
    return msgspec.json.encode({**body, "note": "x" * missing})


def _order_body(event: str, order: str, at: str, serial: int) -> bytes:
    return _padded(
        {
            "event": event,
            "orderId": order,
            "createdAt": at,
            "customerEmail": f"customer-{order}@example.com",
            "currency": "EUR",
            "orderTotal": round(19.95 * (1 + serial % 5), 2),
            "lineItems": [
                {
                    "sku": f"SKU-{(serial + n) % 997:04d}",
                    "name": f"Item {n}",
                    "quantity": 1 + n,
                    "unitPrice": 19.95,
                }
                for n in range(3)
            ],
            "shippingAddress": {
                "name": "Sample Person",
                "line1": "Main Street 1",
                "city": "Tallinn",
                "postalCode": "10111",
                "country": "EE",
            },
        }
    )


def _decision_body(order: str, session: str, status: str, code: int, at: str) -> bytes:
    return _padded(
        {
            "status": "success",
            "verification": {
                "id": session,
                "attemptId": f"{session}-{code}",
                "code": code,
                "status": status,
                "reason": None,
                "reasonCode": None,
                "vendorData": order,
                "decisionTime": at,
                "acceptanceTime": at,
                "person": {
                    "firstName": "SAMPLE",
                    "lastName": "PERSON",
                    "dateOfBirth": "1990-01-01",
                    "nationality": "EE",
                    "idNumber": "39001010000",
                },
                "document": {
                    "type": "PASSPORT",
                    "country": "EE",
                    "number": "KE0000000",
                    "validUntil": "2030-01-01",
                },
            },
            "technicalData": {"ip": "203.0.113.7"},
        }
    )


def _http_request(host: str, provider: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"POST /api/v1/{provider}/webhook HTTP/1.1",
        f"Host: {host}",
        "User-Agent: hookledger-bench",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


ORDERS_PER_WINDOW = 256


def signed_requests(host: str, tag: str, count: int) -> Iterator[bytes]:
    """``count`` unique signed deliveries, four per order, half of each provider.

    Each order lives through order.created, a resubmission request, an approval
    and order.paid, so streams grow the way real ones do. An order's deliveries
    are ``ORDERS_PER_WINDOW`` requests apart, as a real order's are minutes apart:
    back-to-back deliveries to one stream would measure contention that real
    traffic does not have.
    """
    now = time.time()
    stamp = int(now)
    window = ORDERS_PER_WINDOW * 4
    for serial in range(count):
        base, offset = divmod(serial, window)
        step, slot = divmod(offset, ORDERS_PER_WINDOW)
        order = f"{tag}-{base * ORDERS_PER_WINDOW + slot}"
        at = _iso(now + serial / 1000)
        if step in (0, 3):
            body = _order_body("order.created" if step == 0 else "order.paid", order, at, serial)
            msg_id = f"msg_{tag}_{serial}"
            yield _http_request(
                host,
                "post-purchase",
                body,
                {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(stamp),
                    "webhook-signature": standard_webhooks_sign(
                        POST_PURCHASE_SECRET, msg_id, stamp, body
                    ),
                },
            )
        else:
            status, code = ("resubmission_requested", 9103) if step == 1 else ("approved", 9001)
            body = _decision_body(order, f"session-{order}", status, code, at)
            yield _http_request(
                host, "veriff", body, {"X-HMAC-Signature": hmac_sha256_hex(VERIFF_SECRET, body)}
            )


def write_request_files(prefix: Path, host: str, total: int, threads: int) -> list[Path]:
    """One file per wrk thread (``prefix.N``), records of ``<length>\\n<request>``."""
    tag = uuid.uuid4().hex[:10]
    paths = []
    for index in range(threads):
        path = prefix.with_name(f"{prefix.name}.{index}")
        with path.open("wb", buffering=1 << 20) as out:
            for request in signed_requests(host, f"{tag}-{index}", total // threads):
                out.write(b"%d\n" % len(request))
                out.write(request)
        paths.append(path)
    return paths


# -- databases ---------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def admin_url(url: str) -> str:
    """The given URL, or its server's ``postgres`` database when it names none."""
    return url if urlsplit(url).path.strip("/") else with_database(url, "postgres")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def postgres_context(url: str) -> str:
    with psycopg.connect(url) as conn:
        values = [
            str(row[0]) if (row := conn.execute(query).fetchone()) else "?"
            for query in ("SHOW server_version", "SHOW synchronous_commit", "SHOW fsync")
        ]
    return f"Postgres {values[0]} (synchronous_commit={values[1]}, fsync={values[2]})"


# -- the server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    # http.client rather than httpx/urllib: no proxy settings can send this off the machine.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers when workers > 1)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: fields start after the last ")".
        parent = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def peak_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def process_cpu(pids: Sequence[int]) -> dict[int, float]:
    """User plus system CPU seconds of each process still alive."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def machine_seconds() -> tuple[float, float]:
    """CPU seconds since boot, over all cores: spent on anything but idling, and of
    those, stolen by the hypervisor for other guests (a shared VM's noise)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, iowait, steal = fields[3], fields[4], fields[7]
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle - iowait) / ticks, steal / ticks


def python_speed() -> float:
    """Millions of steps per second of a plain Python loop, best of three: how fast
    one core of this machine is right now (shared machines vary by half or more)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for step in range(SPEED_STEPS):
            total += step
        best = min(best, time.perf_counter() - started)
    return SPEED_STEPS / best / 1e6


def connections_held(pids: Sequence[int], port: int) -> list[int]:
    """How many established connections to ``port`` each process holds, most
    first, leaving out processes that hold none. uvicorn's workers share one
    listening socket and the first to wake accepts every connection waiting, so
    a burst of connects can land unevenly; the split changes the batches."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "01" and int(local.rpartition(":")[2], 16) == port:  # 01: established
                inodes.add(f"socket:[{inode}]")
    held = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        count = 0
        for fd in fds:
            try:
                count += os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
            except OSError:
                continue
        if count:
            held.append(count)
    return sorted(held, reverse=True)


def backend_pids(url: str) -> list[int]:
    """The Postgres backends serving this database, other than the one asking."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


class Server:
    """``hookledger serve`` as an operator runs it, in its own process group."""

    def __init__(self, database_url: str, workers: int, group_commit: bool, log: Path) -> None:
        self.port = free_port()
        self.workers = workers
        self.log = log
        self.env = {
            **os.environ,
            "HOOKLEDGER_DATABASE_URL": database_url,
            "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
            "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
            "HOOKLEDGER_GROUP_COMMIT": "true" if group_commit else "false",
            # Closes the audit reads as in production, and silences the warning about it.
            "HOOKLEDGER_API_TOKEN": uuid.uuid4().hex,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hookledger.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                    # Intake alone: projections and timers run in `hookledger worker`
                    # processes of their own in a deployment sized for this load.
                    "--no-workers",
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Ctrl-C reaches only the harness, which then stops the server cleanly.
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if http_get(self.port, "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server was not ready in {READY_TIMEOUT:.0f} s:\n{self.tail()}")

    def pids(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc is not None else []

    def sample(self) -> ServerSample:
        pids = self.pids()
        # With several workers, any worker's /metrics sums them all.
        outcomes, means = _read_metrics(http_get(self.port, "/metrics", 10.0)[1])
        seconds = means.get("hookledger_append_batch_seconds")
        return ServerSample(
            peak_rss_mib=sum(peak_rss_kib(pid) for pid in pids) / 1024,
            processes=len(pids),
            outcomes=outcomes,
            mean_batch=means.get("hookledger_append_batch_size"),
            mean_batch_ms=seconds * 1000 if seconds is not None else None,
        )

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(
                    f"  server ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killing it",
                    file=sys.stderr,
                )
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _read_metrics(text: bytes) -> tuple[dict[str, int], dict[str, float]]:
    """Webhook outcomes by ``provider:outcome``, and each histogram's mean."""
    outcomes: dict[str, int] = {}
    totals: dict[tuple[str, str], float] = {}
    for line in text.decode().splitlines():
        if match := re.match(r"hookledger_webhooks_total\{(.*)\} (\S+)$", line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            key = f"{labels.get('provider')}:{labels.get('outcome')}"
            outcomes[key] = outcomes.get(key, 0) + int(float(match.group(2)))
        elif match := re.match(r"(hookledger_\w+)_(sum|count) (\S+)$", line):
            totals[match.group(1), match.group(2)] = float(match.group(3))
    means = {
        name: total / count
        for (name, kind), total in totals.items()
        if kind == "sum" and (count := totals.get((name, "count")))
    }
    return outcomes, means


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


# -- wrk ---------------------------------------------------------------------------


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
    line = next((x for x in done.stdout.splitlines() if x.startswith("HLBENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    if args.verbose:
        print(done.stdout)
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
    )


# -- one run -----------------------------------------------------------------------


def run(
    label: str,
    group_commit: bool,
    wrk: str,
    server_url: str,
    workdir: Path,
    args: argparse.Namespace,
) -> RunResult:
    slug = "group" if group_commit else "single"
    speed = python_speed()
    with scratch_database(server_url) as url:
        server = Server(url, args.workers, group_commit, workdir / f"server-{slug}.log")
        total = args.requests or max(MIN_REQUESTS, args.duration * REQUESTS_PER_SECOND_BUDGET)
        print(f"[{label}] signing {total:,} requests ...", flush=True)
        started = time.monotonic()
        prefix = workdir / f"requests-{slug}"
        files = write_request_files(prefix, f"127.0.0.1:{server.port}", total, args.wrk_threads)
        try:
            print(
                f"[{label}] starting the server (database {url.rsplit('/', 1)[1]}) ...", flush=True
            )
            try:
                server.start()
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
                sample = server.sample()
            finally:
                exit_code = server.stop()
        finally:
            for path in files:
                path.unlink(missing_ok=True)
        # After the stop: the server has drained its queue, so this is what is durable.
        events = count_events(url)
    counts, messages = summarise_log(server.log)
    cpu = CpuUse.between(before, after, measured.seconds)
    return RunResult(
        label, events, measured, sample, cpu, counts, messages, exit_code, speed, split
    )


# -- report ------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(group: RunResult, single: RunResult, args: argparse.Namespace, context: str) -> None:
    rows: list[tuple[str, str, str, str]] = []

    def add(name: str, value: Callable[[RunResult], str], target: str = "") -> None:
        rows.append((name, value(group), value(single), target))

    def optional(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    ratio = group.rate / single.rate if single.rate else float("inf")
    add(
        "durable events/s",
        lambda r: f"{r.rate:,.0f}",
        f">= {TARGET_RATE:,.0f}  {_verdict(group.rate >= TARGET_RATE)}",
    )
    add("p50 latency (ms)", lambda r: f"{r.wrk.p50_ms:.1f}")
    add("p90 latency (ms)", lambda r: f"{r.wrk.p90_ms:.1f}")
    add(
        "p99 latency (ms)",
        lambda r: f"{r.wrk.p99_ms:.1f}",
        f"<= {TARGET_P99_MS:.0f}  {_verdict(group.wrk.p99_ms <= TARGET_P99_MS)}",
    )
    add("max latency (ms)", lambda r: f"{r.wrk.max_ms:.0f}")
    add("events in the database", lambda r: f"{r.events:,}")
    add("responses completed", lambda r: f"{r.wrk.requests:,}")
    add("non-2xx responses", lambda r: f"{r.wrk.status_errors:,}", "0")
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

    header = ("", "group commit", "one commit/request", "target (group commit)")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    print()
    print(
        f"hookledger ingest: {args.duration} s per run, {args.connections} keep-alive "
        f"connections, {args.workers} server worker(s), wrk {args.wrk_threads} thread(s)"
    )
    print(f"{os.cpu_count()} CPUs shared by server, Postgres and wrk; {context}")
    print()
    for row in [header, *rows]:
        line = f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        print(line.rstrip())
    print()
    print(
        f"group commit / one commit per request: {ratio:.2f}x   "
        f"target >= {TARGET_RATIO:.0f}x  {_verdict(ratio >= TARGET_RATIO)}"
    )

    for result in (group, single):
        print(f"\n{result.label}:")
        for note in _notes(result, args.connections):
            print(f"  {note}")


def _notes(result: RunResult, connections: int) -> list[str]:
    notes = []
    if result.cpu.others + result.cpu.stolen > NOISY_CORES:
        notes.append(
            f"other work took {result.cpu.others:.2f} cores and the hypervisor "
            f"{result.cpu.stolen:.2f} during the run: noisy figures"
        )
    # Requests in flight when wrk stops may be committed without wrk counting the answer.
    if abs(result.events - result.ok_responses) > connections:
        notes.append(f"{result.events:,} events but {result.ok_responses:,} 2xx responses")
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


# -- main --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest", description=__doc__.splitlines()[0] if __doc__ else ""
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
    parser.add_argument("--log-dir", type=Path, help="keep the server logs in this directory")
    parser.add_argument("--verbose", action="store_true", help="also print wrk's own report")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.duration <= 0 or args.workers <= 0 or args.wrk_threads <= 0:
        print("--duration, --workers and --wrk-threads must be positive", file=sys.stderr)
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
        try:
            group = run("group commit", True, wrk, server_url, workdir, args)
            single = run("one commit per request", False, wrk, server_url, workdir, args)
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
    report(group, single, args, context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
