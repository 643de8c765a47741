"""Audit reads over HTTP, and the ``hookledger`` command line in subprocesses."""

from __future__ import annotations

import base64
import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hookledger.migrations import discover
from tests.e2e_helpers import (
    assert_error,
    cli_env,
    count_events,
    decision_body,
    order_body,
    run_cli,
    send_post_purchase,
    send_veriff,
    wait_for,
)
from tests.readme_scripts import run_readme_script
from tests.support import ROOT, ServerProcess, admin_execute, with_database

AUDIT_FIELDS = {
    "position", "version", "provider", "event_id", "type", "occurred_at",
    "recorded_at", "payload", "prev_hash", "hash",
}  # fmt: skip
GENESIS = "0" * 64
DOCUMENTED_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def audit(base_url: str, order_id: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base_url}/api/v1/orders/{order_id}/events", headers=headers, timeout=10)


def record_order_story(base_url: str, order_id: str) -> list[dict[str, Any]]:
    """Four deliveries of one order from both providers; returns the bodies sent."""
    bodies: list[dict[str, Any]] = [
        order_body(order_id, "order.created", createdAt="2024-05-01T09:00:00Z"),
        {"id": f"session-{order_id}", "action": "started", "vendorData": order_id},
        decision_body(order_id, "approved"),
        order_body(order_id, "order.paid", occurredAt="2024-05-01T10:30:00.5+02:00"),
    ]
    for body in bodies:
        if "orderId" in body:
            response = send_post_purchase(base_url, body)
        else:
            response = send_veriff(base_url, body)
        assert response.json().get("recorded") is True, response.text
    return bodies


# -- reads ---------------------------------------------------------------------


def test_order_events_returns_the_stream_in_order_with_every_field(
    server: ServerProcess,
) -> None:
    send_post_purchase(server.url, order_body("other-order"))
    bodies = record_order_story(server.url, "9001")

    response = audit(server.url, "9001")
    assert response.status_code == 200
    document = response.json()
    assert document["order_id"] == "9001"
    assert document["stream"] == "order-9001"
    events = document["events"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 4
    assert positions[0] == 2  # the other order came first
    for event, body in zip(events, bodies, strict=True):
        assert set(event) >= AUDIT_FIELDS
        assert event["payload"] == body
        assert base64.b64decode(event["raw_base64"]) == json.dumps(body).encode()
    assert [e["provider"] for e in events] == ["post-purchase", "veriff", "veriff", "post-purchase"]
    assert [e["type"] for e in events] == [
        "order.created", "verification.started", "verification.approved", "order.paid",
    ]  # fmt: skip
    assert events[1]["event_id"] == "event:session-9001::started"
    assert events[2]["event_id"].startswith("decision:")
    assert events[0]["occurred_at"] == "2024-05-01T09:00:00.000000Z"
    assert events[1]["occurred_at"] is None
    assert events[2]["occurred_at"] == "2024-05-01T10:00:00.123456Z"
    assert events[3]["occurred_at"] == "2024-05-01T08:30:00.500000Z"
    for event in events:
        assert DOCUMENTED_TIME.match(event["recorded_at"])
    assert events[0]["prev_hash"] == GENESIS
    for earlier, later in itertools.pairwise(events):
        assert later["prev_hash"] == earlier["hash"]


def test_unknown_order_is_404_with_a_json_error(server: ServerProcess) -> None:
    send_post_purchase(server.url, order_body("9002"))
    body = assert_error(audit(server.url, "no-such-order"), 404, "not_found")
    assert "no-such-order" in body["detail"]


def test_reads_require_the_bearer_token_when_one_is_configured(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_API_TOKEN": "first-token second"}).start()
    try:
        # The intake is signed, not token-protected.
        assert send_post_purchase(server.url, order_body("9003")).status_code == 200
        assert_error(audit(server.url, "9003"), 401, "unauthorized")
        assert_error(audit(server.url, "9003", token="wrong-token"), 401, "unauthorized")
        assert_error(audit(server.url, "9003", token="first-token-x"), 401)
        assert audit(server.url, "9003", token="first-token").status_code == 200
        assert audit(server.url, "9003", token="second").status_code == 200
        # Without a valid token even an unknown order is not revealed as such.
        assert_error(audit(server.url, "nothing", token="wrong"), 401)
    finally:
        server.stop()


def test_bearer_scheme_is_case_insensitive_and_required(database_url: str) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_API_TOKEN": "first-token"}).start()
    try:
        send_post_purchase(server.url, order_body("9010"))
        url = f"{server.url}/api/v1/orders/9010/events"
        lower = httpx.get(url, headers={"authorization": "bearer first-token"}, timeout=10)
        bare = httpx.get(url, headers={"authorization": "first-token"}, timeout=10)
        assert lower.status_code == 200
        assert_error(bare, 401)
    finally:
        server.stop()


def auditor_verifies(document: dict[str, Any]) -> bool:
    """The README's auditor check, run as published on ``document``."""
    fetch = 'json.load(urllib.request.urlopen("http://127.0.0.1:8080/api/v1/orders/1001/events"))'
    try:
        run_readme_script("chain intact", {fetch: "DOCUMENT"}, {"DOCUMENT": document})
    except AssertionError:
        return False
    return True


def test_auditor_recomputes_every_hash_from_the_response_alone(server: ServerProcess) -> None:
    record_order_story(server.url, "9004")
    document = audit(server.url, "9004").json()
    assert len(document["events"]) == 4
    assert auditor_verifies(document)

    # The recomputation does notice a change to any hashed field.
    for field, value in [
        ("type", "order.refunded"),
        ("occurred_at", "2024-05-01T09:00:00.000001Z"),
        ("recorded_at", "2000-01-01T00:00:00.000000Z"),
        ("event_id", "forged"),
        ("raw_base64", base64.b64encode(b"{}").decode()),
        ("metadata", {"correlation_id": "forged"}),
        ("hash_rule", 1),
    ]:
        forged = json.loads(json.dumps(document))
        forged["events"][2][field] = value
        assert not auditor_verifies(forged), field

    # And a payload that is not the raw body's value, as a projection would read it.
    forged = json.loads(json.dumps(document))
    forged["events"][0]["payload"]["status"] = "forged"
    assert not auditor_verifies(forged)


def test_every_timestamp_read_has_the_documented_form(server: ServerProcess) -> None:
    # The earliest time the intake accepts (the year 0005 it once recorded is refused now).
    send_post_purchase(server.url, order_body("9005", occurredAt="2000-01-01T00:00:00Z"))
    document = audit(server.url, "9005").json()
    [event] = document["events"]
    assert DOCUMENTED_TIME.match(event["recorded_at"])
    assert event["occurred_at"] == "2000-01-01T00:00:00.000000Z"
    assert auditor_verifies(document)


def test_order_id_with_a_nul_is_not_found_rather_than_a_server_error(
    server: ServerProcess,
) -> None:
    assert_error(audit(server.url, "%00"), 404, "not_found")


# -- command line --------------------------------------------------------------


def test_cli_history_prints_a_table_and_json(server: ServerProcess, database_url: str) -> None:
    record_order_story(server.url, "9006")
    api_events = audit(server.url, "9006").json()["events"]

    table = run_cli(database_url, "history", "9006")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "VER", "POSITION", "RECORDED_AT", "PROVIDER", "TYPE", "EVENT_ID", "HASH", "PERSONAL",
    ]  # fmt: skip
    assert len(lines) == 1 + len(api_events)
    for line, event in zip(lines[1:], api_events, strict=True):
        cells = line.split()
        assert cells[:5] == [
            str(event["version"]), str(event["position"]), event["recorded_at"],
            event["provider"], event["type"],
        ]  # fmt: skip
        assert cells[5] == event["event_id"]
        assert cells[6] == event["hash"][:16]

    as_json = run_cli(database_url, "history", "9006", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == api_events

    missing = run_cli(database_url, "history", "no-such-order")
    assert missing.returncode == 1
    assert "no-such-order" in missing.stderr

    # A stream that is no order's is read by its name.
    lonely = {"event": "verification.updated", "id": "evt_lonely_9006", "status": "approved"}
    assert send_veriff(server.url, lonely).json()["recorded"] is True
    stream = run_cli(database_url, "history", "veriff-evt_lonely_9006", "--json")
    assert stream.returncode == 0, stream.stderr
    assert [e["stream"] for e in json.loads(stream.stdout)] == ["veriff-evt_lonely_9006"]


def test_cli_status_prints_values_as_a_person_reads_them(
    server: ServerProcess, database_url: str
) -> None:
    record_order_story(server.url, "9010")

    # This server runs no background work: the projections are built by a replay.
    replayed = run_cli(database_url, "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "4 events of 1 order " in replayed.stdout, replayed.stdout
    status = run_cli(database_url, "status", "9010")
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert "['" not in out and "None" not in out and "(none)=" not in out
    sessions = re.search(r"^  sessions +(.+)$", out, re.MULTILINE)
    assert sessions is not None, out
    assert "session-9010" in sessions.group(1).split(", "), out
    assert re.search(r"^  submitted_at +-$", out, re.MULTILINE), out


def tamper(database_url: str, stream: str, version: int) -> None:
    """What only a superuser can do: switch the append-only triggers off and edit."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        conn.execute(
            "UPDATE events SET type = 'x' WHERE stream = %s AND stream_version = %s",
            (stream, version),
        )
        conn.execute("ALTER TABLE events ENABLE TRIGGER USER")


def test_cli_verify_passes_intact_chains_and_names_a_tampered_event(
    server: ServerProcess, database_url: str
) -> None:
    record_order_story(server.url, "9007")
    send_post_purchase(server.url, order_body("9008"))

    intact = run_cli(database_url, "verify")
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "5 events in 2 streams" in intact.stdout
    one = run_cli(database_url, "verify", "--stream", "order-9008")
    assert one.stdout.strip() == "ok: 1 event in 1 stream verify", one.stdout
    nowhere = run_cli(database_url, "verify", "--stream", "order-no-such")
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == "no stream 'order-no-such' in the ledger"

    tamper(database_url, "order-9007", 3)
    broken = run_cli(database_url, "verify")
    assert broken.returncode != 0
    assert "order-9007" in broken.stdout
    assert "version 3" in broken.stdout
    # The untouched stream on its own still verifies.
    alone = run_cli(database_url, "verify", "--stream", "order-9008")
    assert alone.returncode == 0, alone.stdout + alone.stderr


def test_cli_send_posts_signed_samples_that_are_recorded(
    server: ServerProcess, database_url: str
) -> None:
    created = run_cli(
        database_url, "send", "post-purchase", "order.created", "--order", "9009",
        "--url", server.url,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stdout.startswith("200 ")
    assert json.loads(created.stdout.split(" ", 1)[1])["recorded"] is True

    approved = run_cli(
        database_url, "send", "veriff", "verification.approved", "--order", "9009",
        "--url", server.url,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stdout + approved.stderr

    events = audit(server.url, "9009").json()["events"]
    assert [(e["provider"], e["type"]) for e in events] == [
        ("post-purchase", "order.created"),
        ("veriff", "verification.approved"),
    ]
    assert count_events(database_url) == 2


def test_cli_send_tells_a_missing_file_from_an_unknown_sample_and_lists_every_sample(
    database_url: str, tmp_path: Path
) -> None:
    missing = run_cli(database_url, "send", "veriff", str(tmp_path / "nosuchfile.json"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"no such file: {tmp_path / 'nosuchfile.json'}"
    unknown = run_cli(database_url, "send", "veriff", "verification.maybe")
    assert unknown.returncode == 2
    assert "no sample 'verification.maybe' for veriff" in unknown.stderr
    listed = run_cli(database_url, "send", "--list")
    assert listed.returncode == 0, listed.stderr
    providers = {line.split()[0] for line in listed.stdout.splitlines()}
    assert {"veriff", "stripe", "post-purchase", "sendgrid"} <= providers
    assert "veriff verification.approved" in listed.stdout.splitlines()


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A database with no schema at all."""
    name = f"hl_empty_{uuid.uuid4().hex[:12]}"
    admin_execute(server_url, f"CREATE DATABASE {name}")
    yield with_database(server_url, name)
    admin_execute(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_cli_migrate_run_by_four_processes_at_once_applies_each_version_once(
    empty_database_url: str,
) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "hookledger.cli", "migrate"],
            env=cli_env(empty_database_url),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = []
    deadline = time.monotonic() + 60
    for process in processes:
        stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert process.returncode == 0, stdout + stderr
        outputs.append(stdout)

    wanted = [m.version for m in discover()]
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version"
        ).fetchall()
    assert rows == [(version, 1) for version in wanted]
    # Exactly one process applied the migrations; the others found them done.
    applying = [out for out in outputs if "applied " in out]
    assert len(applying) == 1
    assert sum("up to date" in out for out in outputs) == 3
    assert count_events(empty_database_url) == 0


def test_an_order_id_with_a_slash_is_refused_at_intake_since_no_read_could_serve_it(
    server: ServerProcess, database_url: str
) -> None:
    refused = send_post_purchase(server.url, order_body("a/b"))
    assert assert_error(refused, 400, "malformed_body")["detail"].startswith(
        "orderId must not contain '/'"
    )
    assert count_events(database_url) == 0
    # An id that is served: percent signs and all.
    assert send_post_purchase(server.url, order_body("a%2Fb")).json()["recorded"] is True
    assert audit(server.url, "a%252Fb").json()["events"][0]["stream"] == "order-a%2Fb"


def test_payments_from_every_provider_move_the_orders_status_live_and_on_replay(
    database_url: str,
) -> None:
    server = ServerProcess(database_url, env={"HOOKLEDGER_BACKGROUND": "true"}).start()
    secrets = {k: v for k, v in server.env.items() if k.endswith(("_SECRET", "_PUBLIC_KEY"))}

    def send(provider: str, sample: str) -> None:
        done = run_cli(database_url, "send", provider, sample, "--order", "9020",
                       "--url", server.url, env=secrets)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def status() -> str | None:
        shown = run_cli(database_url, "status", "9020", "--json")
        return json.loads(shown.stdout)["order"]["status"] if shown.returncode == 0 else None

    def becomes(expected: str) -> None:
        # The projection as the service keeps it, then rebuilt from the ledger.
        assert wait_for(lambda: status() == expected, timeout=20), status()
        assert run_cli(database_url, "replay", "--all").returncode == 0
        assert status() == expected

    try:
        send("post-purchase", "order.created")
        becomes("created")
        send("authorizenet", "payment.captured")
        becomes("paid")
        send("stripe", "charge.refunded")
        becomes("refunded")
    finally:
        server.stop()


def test_cli_output_cut_short_by_its_reader_ends_quietly(
    server: ServerProcess, database_url: str
) -> None:
    # `hookledger history ... | head -1`: the reader leaves before the table ends.
    for n in range(30):
        send_post_purchase(server.url, order_body("9030", seq=n), msg_id=f"msg_pipe_{n}")
    reader = subprocess.Popen(
        [sys.executable, "-m", "hookledger.cli", "history", "9030"],
        env=cli_env(database_url), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.readline()
    reader.stdout.close()
    errors = reader.stderr.read().decode()
    reader.stderr.close()
    reader.wait(30)
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
