"""Erasure as its users meet it: a running service takes deliveries; the data
protection officer erases one customer through the API or the CLI; a pg_dump of
the whole database then holds none of that customer's values (in clear, base64
or hex) and every value of the other customers; verify still passes and the
order still reads, its personal fields erased."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.countdown_helpers import HEADSTART, WINDOW_ENV, countdown_state, now_order, types_of
from tests.e2e_helpers import (
    decision_body,
    order_body,
    run_cli,
    send_post_purchase,
    send_veriff,
    wait_for,
)
from tests.support import ServerProcess

TOKEN = "operator-token-for-tests"


def person(name: str) -> dict[str, str]:
    born = f"19{len(name) * 11 % 90 + 10}-0{len(name) % 9 + 1}-1{len(name) % 10}"
    return {"firstName": name, "lastName": f"{name}sdottir", "dateOfBirth": born,
            "idNumber": f"ID-{name}-123"}  # fmt: skip


def deliver(url: str, order: str, email: str, name: str) -> list[str]:
    """An order and its Veriff decision; the personal values they carry."""
    body = order_body(order, customerEmail=email)
    assert send_post_purchase(url, body).status_code == 200
    decision = decision_body(order)
    decision["verification"]["person"] = person(name)
    assert send_veriff(url, decision).status_code == 200
    return [email, *person(name).values()]


def dump(database_url: str) -> bytes:
    return subprocess.run(["pg_dump", "--no-owner", database_url], check=True,
                          capture_output=True, timeout=120).stdout  # fmt: skip


def forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [raw, base64.b64encode(raw), raw.hex().encode(), base64.b64encode(f'"{value}"'.encode())]


@pytest.fixture
def server(database_url: str) -> Iterator[ServerProcess]:
    settings = {"HOOKLEDGER_OPERATOR_TOKENS": TOKEN, "HOOKLEDGER_BACKGROUND": "true"}
    process = ServerProcess(database_url, env=settings).start()
    try:
        yield process
    finally:
        process.stop()


def parquet_text(directory: Path) -> bytes:
    """The Parquet files' bytes, and their rows decoded (compression hides nothing)."""
    files = sorted(directory.rglob("*.parquet"))
    assert files, "the export wrote no file"
    rows = [json.dumps(pq.read_table(f).to_pylist(), default=str).encode() for f in files]
    return b"".join(f.read_bytes() for f in files) + b"".join(rows)


def test_an_erasure_through_the_api_leaves_nothing_of_the_customer_in_a_dump(
    server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    gone = deliver(server.url, "ord-erase", "erase.me@example.com", "Gudrun")
    kept = deliver(server.url, "ord-keep", "keep.me@example.com", "Ingeborg")
    wait_for(lambda: httpx.get(f"{server.url}/api/v1/orders/ord-erase").status_code == 200, 20)

    refused = httpx.post(f"{server.url}/api/v1/erasures",
                         json={"order_id": "ord-erase", "reason": "asked"})  # fmt: skip
    assert refused.status_code == 401
    answer = httpx.post(
        f"{server.url}/api/v1/erasures",
        json={"email": "Erase.Me@example.com", "reason": "article 17 request #12",
              "requested_by": "dpo@shop.example"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert done["erased"] and done["subjects"][0]["subject"] == "order-ord-erase"
    assert {"customerEmail", "person"} <= set(done["subjects"][0]["classes"])

    def projected() -> bool:
        order = httpx.get(f"{server.url}/api/v1/orders/ord-erase").json()
        return order["order"]["customer"] is None

    wait_for(projected, 20)
    contents = dump(database_url)
    for value in gone:
        for form in forms(value):
            assert form not in contents, f"{value!r} found in the dump as {form[:40]!r}"
    for value in kept:
        assert value.encode() in contents
    exported = run_cli(database_url, "export", "--to", "parquet", str(tmp_path / "pq"),
                       env={"HOOKLEDGER_EXPORT_HASH_KEY": "k" * 32})  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    written = parquet_text(tmp_path / "pq")
    for value in gone:
        assert all(form not in written for form in forms(value)), value
    # The export policy hashes addresses and drops Veriff's person: the other
    # customer's order shows, its address as a keyed hash.
    assert b"ord-keep" in written
    assert run_cli(database_url, "verify").returncode == 0

    history = httpx.get(f"{server.url}/api/v1/orders/ord-erase/events").json()["events"]
    states = [e["state"] for event in history for e in event.get("personal", [])]
    assert states and set(states) == {"erased"}
    assert history[-1]["type"] == "subject.erased"
    assert "Gudrun" not in str(history)

    again = httpx.post(f"{server.url}/api/v1/erasures",
                       json={"order_id": "ord-erase", "reason": "asked twice"},
                       headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert again.status_code == 200 and again.json()["erased"] is False

    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'hookledger_personal_erased_subjects{cause="request"} 1.0' in metrics
    erased = done["subjects"][0]["values"]
    assert f'hookledger_personal_erased_values{{cause="request"}} {erased:.1f}' in metrics
    assert "hookledger_retention_lag_seconds 0.0" in metrics


def test_the_cli_erases_by_order_and_says_what_it_did(
    server: ServerProcess, database_url: str
) -> None:
    gone = deliver(server.url, "ord-cli", "cli.erase@example.com", "Sigrid")
    done = run_cli(database_url, "erase", "--order", "ord-cli", "--reason", "asked by phone")
    assert done.returncode == 0, done.stderr
    assert "order-ord-cli: erased" in done.stdout and "customerEmail" in done.stdout
    again = run_cli(database_url, "erase", "--order", "ord-cli")
    assert "nothing left to erase" in again.stdout
    missing = run_cli(database_url, "erase", "--order", "no-such-order")
    assert missing.returncode == 1 and "no order" in missing.stderr
    contents = dump(database_url)
    assert all(form not in contents for value in gone for form in forms(value))
    history = run_cli(database_url, "history", "ord-cli")
    assert "erased" in history.stdout
    dry = run_cli(database_url, "retention", "--dry-run")
    assert dry.returncode == 0 and "due now" in dry.stdout


def test_an_erased_customers_order_still_expires_refunds_and_replays(
    database_url: str,
) -> None:
    settings = {**WINDOW_ENV, "HOOKLEDGER_COUNTDOWN_WINDOW": "4s",
                "HOOKLEDGER_COUNTDOWN_REMINDERS": "2s"}  # fmt: skip
    server = ServerProcess(database_url, env=settings).start()
    try:
        order = "ord-expire-erased"
        body = now_order(order, HEADSTART, customerEmail="gone@example.com")
        assert send_post_purchase(server.url, body).status_code == 200
        wait_for(lambda: "countdown.started" in types_of(database_url, order), 15)
        assert run_cli(database_url, "erase", "--order", order).returncode == 0
        assert wait_for(lambda: countdown_state(database_url, order) == "expired", 20)
        history = wait_for(
            lambda: (t := types_of(database_url, order)).count("action.dry_run") >= 3 and t, 20
        )
        assert history and "subject.erased" in history
        state = httpx.get(f"{server.url}/api/v1/orders/{order}", timeout=5).json()
        assert state["order"]["customer"] is None and state["order"]["status"] == "cancelled"
        assert {a["action"] for a in state["actions"]} >= {"refund", "email.expired"}
        before = run_cli(database_url, "status", order, "--json").stdout
        assert run_cli(database_url, "replay", "--all").returncode == 0
        after = run_cli(database_url, "status", order, "--json").stdout
        strip = ("updated_at", "seconds_left")
        assert _without(before, strip) == _without(after, strip)
        assert "gone@example.com" not in dump(database_url).decode(errors="replace")
    finally:
        server.stop()


def _without(text: str, keys: tuple[str, ...]) -> dict[str, object]:
    state = json.loads(text)
    for section in state.values():
        if isinstance(section, dict):
            for key in keys:
                section.pop(key, None)
    return dict(state)
