"""Chaos drills: the failures operators rehearse, against `hookledger serve` as a
newcomer starts it (the embedded Postgres, an intake process per CPU, the
background work in a process of its own), with the outbound providers and the
Cloud Tasks emulator standing in for Google's, under a steady stream of signed
orders and Veriff decisions sent as a provider sends them (retried until
answered 2xx).

Each drill injects one failure, waits until everything settled, and prints how
long recovery took and what was lost or doubled, both of which must be nothing:

- intake: SIGKILL an intake process (uvicorn starts another);
- background: SIGKILL the background process (serve starts another);
- postgres: SIGKILL the postmaster, an unclean stop (serve starts it again);
- outbound: SendGrid and Authorize.net answer 500, then hang past the action
  timeout, then recover;
- cloudtasks: the Cloud Tasks emulator stops for a while (the reconciler fires
  what falls due meanwhile), then starts again.

    python -m benchmarks.chaos [--drill NAME ...] [--rate 40] [--seconds 10]

It exits 1 if any drill lost or doubled anything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from tests.e2e_helpers import POST_PURCHASE_PATH, VERIFF_PATH, decision_body
from tests.emulators.cloudtasks import CloudTasksEmulator
from tests.fake_provider import FakeProvider
from tests.support import (
    POST_PURCHASE_SECRET,
    VERIFF_SECRET,
    free_port,
    post_purchase_headers,
    veriff_headers,
)

from hookledger.embedded import EmbeddedPostgres

DRILLS = ("intake", "background", "postgres", "outbound", "cloudtasks")
TASK_SECRET = "chaos-task-secret"
SETTLE_SECONDS = 120.0


@dataclass
class Sent:
    """What the providers were told was recorded: order ids, and Veriff decisions."""

    orders: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """Threads sending orders (and, for half of them, an approval) at ``rate`` per
    second, each delivery retried as a provider would until answered 2xx."""

    def __init__(self, base_url: str, rate: float, threads: int = 8) -> None:
        self.base_url = base_url
        self.sent = Sent()
        self._interval = threads / rate
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            n = 0
            while not self._stop.is_set():
                started = time.monotonic()
                order = f"chaos-{uuid.uuid4().hex[:12]}"
                email = f"{order}@example.com"
                raw = json.dumps({"event": "order.created", "orderId": order, "orderTotal": 42,
                                  "currency": "EUR", "customerEmail": email}).encode()  # fmt: skip
                if self._deliver(client, POST_PURCHASE_PATH, raw, post_purchase_headers(raw)):
                    with self.sent.lock:
                        self.sent.orders.append(order)
                n += 1
                if n % 2 == 0:
                    decision = json.dumps(decision_body(order)).encode()
                    if self._deliver(client, VERIFF_PATH, decision, veriff_headers(decision)):
                        with self.sent.lock:
                            self.sent.approvals.append(order)
                self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _deliver(
        self,
        client: httpx.Client,
        path: str,
        raw: bytes,
        signed: dict[str, str],
    ) -> bool:
        """Send until answered 2xx (True), or until the load stops (False); signed
        once, so that a retry is the same delivery."""
        while True:
            try:
                answer = client.post(path, content=raw, headers=signed)
                if answer.status_code < 300:
                    return True
                why = str(answer.status_code)
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            with self.sent.lock:
                self.sent.refused[why] += 1
            if self._stop.wait(0.5):
                return False


class Service:
    """`hookledger serve` with no options, on an embedded Postgres of its own."""

    def __init__(self, workdir: Path, sendgrid: FakeProvider, payments: FakeProvider,
                 tasks: CloudTasksEmulator | None, queue: str | None) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("HOOKLEDGER_")},
            "HOOKLEDGER_DATA_DIR": str(workdir / "data"),
            "HOOKLEDGER_POST_PURCHASE_SECRET": POST_PURCHASE_SECRET,
            "HOOKLEDGER_VERIFF_SECRET": VERIFF_SECRET,
            "HOOKLEDGER_COUNTDOWN_WINDOW": "6s",
            "HOOKLEDGER_COUNTDOWN_REMINDERS": "3s",
            "HOOKLEDGER_SAFE_MODE": "false",
            "HOOKLEDGER_SENDGRID_BASE_URL": sendgrid.url,
            "HOOKLEDGER_SENDGRID_API_KEY": "SG.chaos-key",
            "HOOKLEDGER_EMAIL_FROM": "chaos@example.com",
            "HOOKLEDGER_VERIFICATION_URL": "https://example.com/verify?order={order_id}",
            "HOOKLEDGER_PAYMENTS_BASE_URL": payments.url,
            "HOOKLEDGER_AUTHORIZENET_LOGIN_ID": "chaos-login",
            "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY": "chaos-transaction-key",
            "HOOKLEDGER_ACTION_TIMEOUT_SECONDS": "2",
            "HOOKLEDGER_ACTION_BACKOFF_SECONDS": "0.5",
            "HOOKLEDGER_ACTION_BACKOFF_MAX_SECONDS": "2",
            "HOOKLEDGER_ACTION_MAX_ATTEMPTS": "1000",
            "HOOKLEDGER_BREAKER_COOL_DOWN": "2s",
            "HOOKLEDGER_LOG_LEVEL": "WARNING",
        }
        if tasks is not None and queue is not None:
            self.env.update({
                "HOOKLEDGER_TIMER_BACKEND": "cloudtasks",
                "HOOKLEDGER_TASKS_QUEUE": queue,
                "HOOKLEDGER_TASKS_ENDPOINT": tasks.endpoint,
                "HOOKLEDGER_TASKS_TARGET_URL": self.url,
                "HOOKLEDGER_TASKS_SECRET": TASK_SECRET,
                "HOOKLEDGER_TASKS_RECONCILE_LAG": "3s",
            })  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hookledger.cli", "serve", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("serve did not become healthy in 90 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def children(self) -> list[tuple[int, str]]:
        """serve's direct children: (pid, command line)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.proc.pid:
                found.append((int(entry.name), command))
        return found

    def intake_pids(self) -> list[int]:
        return [pid for pid, command in self.children()
                if "spawn_main" in command]  # fmt: skip

    def background_pid(self) -> int | None:
        return next((pid for pid, command in self.children() if " worker" in command), None)


def ledger_counts(url: str, sent: Sent) -> dict[str, int]:
    """What the ledger holds against what the providers were told."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT stream, type, count(*) FROM events WHERE stream LIKE 'order-chaos-%' "
            "GROUP BY stream, type"
        ).fetchall()
        action_rows = conn.execute(
            "SELECT payload->>'idempotency_key', count(*) FROM events "
            "WHERE type = 'action.succeeded' AND stream LIKE 'order-chaos-%' GROUP BY 1"
        ).fetchall()
    per: dict[str, Counter[str]] = {}
    for stream, kind, count in rows:
        per.setdefault(stream.removeprefix("order-"), Counter())[kind] = count
    with sent.lock:
        orders, approvals = list(sent.orders), list(sent.approvals)
    lost = sum(1 for o in orders if per.get(o, Counter())["order.created"] == 0)
    lost += sum(1 for o in approvals if per.get(o, Counter())["verification.approved"] == 0)
    once = ("order.", "countdown.", "verification.")
    doubled = sum(1 for kinds in per.values() for kind, n in kinds.items()
                  if n > 1 and kind.startswith(once))  # fmt: skip
    doubled += sum(1 for _, n in action_rows if n > 1)
    undecided = sum(1 for o in orders if per.get(o, Counter())["countdown.started"] == 0)
    return {"acknowledged": len(orders) + len(approvals), "lost": lost, "doubled": doubled,
            "orders without a countdown": undecided}  # fmt: skip


def settled(url: str) -> bool:
    """Consumers caught up, and no action or timer left that is due."""
    with psycopg.connect(url) as conn:
        behind = conn.execute(
            "SELECT (SELECT coalesce(max(position), 0) FROM events) "
            "- (SELECT coalesce(min(position), 0) FROM checkpoints)"
        ).fetchone()
        pending = conn.execute(
            "SELECT (SELECT count(*) FROM actions WHERE state = 'pending'), "
            "(SELECT count(*) FROM countdown_timers WHERE due_at < now() - interval '5 s')"
        ).fetchone()
    return bool(behind and behind[0] == 0 and pending and pending == (0, 0))


@dataclass
class Outcome:
    drill: str
    recovered_seconds: float | None
    counts: dict[str, int]
    note: str = ""

    @property
    def clean(self) -> bool:
        return self.counts["lost"] == 0 and self.counts["doubled"] == 0


def resent(*fakes: FakeProvider) -> int:
    """Action keys the fake providers received more than once."""
    keys: Counter[str] = Counter()
    for fake in fakes:
        for seen in list(fake.requests):
            body = seen.body if isinstance(seen.body, dict) else {}
            email_key = body.get("custom_args", {}).get("hookledger_action")
            refund_key = body.get("createTransactionRequest", {}).get("refId")
            keys[str(email_key or refund_key)] += 1
    return sum(1 for n in keys.values() if n > 1)


def wait_until(check: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``check`` held, or None."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def delivers(service: Service) -> bool:
    body = json.dumps({"event": "order.created", "orderId": f"probe-{uuid.uuid4().hex[:8]}"})
    raw = body.encode()
    try:
        answer = httpx.post(service.url + POST_PURCHASE_PATH, content=raw,
                            headers=post_purchase_headers(raw), timeout=2)  # fmt: skip
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def drill(name: str, service: Service, url: str, args: argparse.Namespace,
          sendgrid: FakeProvider, payments: FakeProvider,
          tasks: CloudTasksEmulator | None) -> Outcome:  # fmt: skip
    """Run one drill under load; return how it went."""
    note = ""
    with Load(service.url, args.rate) as load:
        time.sleep(args.seconds / 2)
        if name == "intake":
            before = sorted(service.intake_pids())
            os.kill(before[0], signal.SIGKILL)
            recovered = wait_until(
                lambda: len(service.intake_pids()) == len(before)
                and before[0] not in service.intake_pids(), 60)  # fmt: skip
            note = f"killed intake process {before[0]} of {len(before)}"
        elif name == "background":
            pid = service.background_pid()
            assert pid is not None, "no background process"
            os.kill(pid, signal.SIGKILL)
            recovered = wait_until(lambda: service.background_pid() not in (None, pid), 60)
            note = f"killed background process {pid}"
        elif name == "postgres":
            pgdata = Path(service.env["HOOKLEDGER_DATA_DIR"]) / "pg"
            postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGKILL)
            time.sleep(1)
            recovered = wait_until(lambda: delivers(service), 90)
            note = f"killed postmaster {postmaster} (no clean shutdown)"
        elif name == "outbound":
            for fake in (sendgrid, payments):
                fake.answer(*[(500, b'{"error": "chaos"}')] * 20)
            time.sleep(args.seconds / 2)
            for fake in (sendgrid, payments):
                fake.delay = 3.0  # past the 2 s action timeout
            time.sleep(args.seconds / 2)
            for fake in (sendgrid, payments):
                fake.delay = 0.0
            recovered = wait_until(lambda: settled(url), SETTLE_SECONDS)
            note = "500s, then hanging past the action timeout, then answering again"
            note += f"; {resent(sendgrid, payments)} actions sent again under the same key "
            note += "(a request that timed out may have been performed: at least once)"
        elif name == "cloudtasks":
            assert tasks is not None
            tasks.stop()
            time.sleep(args.seconds)
            tasks.start()
            recovered = wait_until(lambda: delivers(service), 30)
            note = f"emulator stopped for {args.seconds:.0f} s"
        else:
            raise ValueError(name)
        time.sleep(args.seconds / 2)
    settle = wait_until(lambda: settled(url), SETTLE_SECONDS)
    if settle is None:
        note += f"; background work not settled {SETTLE_SECONDS:.0f} s after the load"
    else:
        note += f"; background work settled {settle:.1f} s after the load"
    counts = ledger_counts(url, load.sent)
    refused = ", ".join(f"{k}: {v}" for k, v in sorted(load.sent.refused.items()))
    if refused:
        note += f"; retried deliveries ({refused})"
    return Outcome(name, recovered, counts, note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos",
                                     description=(__doc__ or "").splitlines()[0])  # fmt: skip
    parser.add_argument("--drill", action="append", choices=DRILLS,
                        help="run only this drill (again for more); default: all")  # fmt: skip
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second (default 40)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="load before and after each failure (default 10)")  # fmt: skip
    args = parser.parse_args(argv)
    chosen = args.drill or list(DRILLS)
    sendgrid, payments = FakeProvider(), FakeProvider()
    tasks: CloudTasksEmulator | None = None
    queue = None
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="hl-chaos-") as scratch:
        workdir = Path(scratch)
        if "cloudtasks" in chosen:
            tasks = CloudTasksEmulator().start()
            queue = make_queue(tasks)
        database = EmbeddedPostgres(workdir / "data")
        service = Service(workdir, sendgrid, payments, tasks, queue)
        try:
            url = database.start()
            service.start()
            for name in chosen:
                print(f"[{name}] ...", flush=True)
                outcome = drill(name, service, url, args, sendgrid, payments, tasks)
                outcomes.append(outcome)
                print(f"[{name}] {report_line(outcome)}", flush=True)
        finally:
            service.stop()
            database.stop()
            if tasks is not None:
                tasks.stop()
            sendgrid.close()
            payments.close()
    print()
    for outcome in outcomes:
        print(f"{outcome.drill:<11} {report_line(outcome)}")
    return 0 if all(o.clean for o in outcomes) else 1


def report_line(outcome: Outcome) -> str:
    recovered = ("not recovered" if outcome.recovered_seconds is None
                 else f"recovered in {outcome.recovered_seconds:.1f} s")  # fmt: skip
    counts = ", ".join(f"{k} {v}" for k, v in outcome.counts.items())
    verdict = "ok" if outcome.clean else "LOST OR DOUBLED"
    return f"{verdict}: {recovered}; {counts}; {outcome.note}"


def make_queue(emulator: CloudTasksEmulator) -> str:
    """A queue on the emulator, made with the official client."""
    import grpc  # type: ignore[import-untyped,unused-ignore]
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    channel = grpc.insecure_channel(emulator.endpoint)
    try:
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        parent = "projects/chaos/locations/europe-west1"
        name = f"{parent}/queues/countdowns"
        client.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))
        return name
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
