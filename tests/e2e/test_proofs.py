"""Proofs as an auditor who distrusts the operator uses them: the real service
over HTTP, the CLI in subprocesses, and the README's own evidence checker (only
hashlib and cryptography), each holding where it should and failing on any
tampering of the evidence."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from events import merkle
from events.checkpoint_note import parse_verifier_key, verify
from tests.e2e_helpers import (
    decision_body,
    order_body,
    run_cli,
    send_post_purchase,
    send_veriff,
    wait_for,
)
from tests.readme_scripts import readme_script
from tests.support import ServerProcess

KEY_PEM = (
    Ed25519PrivateKey.generate()
    .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    .decode()
)
ORIGIN = "shop.example/hookledger"
SETTINGS = {"HOOKLEDGER_CHECKPOINT_KEY": KEY_PEM, "HOOKLEDGER_CHECKPOINT_ORIGIN": ORIGIN,
            "HOOKLEDGER_CHECKPOINT_INTERVAL": "1s", "HOOKLEDGER_BACKGROUND": "true"}  # fmt: skip


@pytest.fixture
def signing_server(database_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    env = {**SETTINGS, "HOOKLEDGER_CHECKPOINT_DIR": str(tmp_path / "published")}
    process = ServerProcess(database_url, env=env).start()
    yield process
    process.stop()


def get(server: ServerProcess, path: str) -> Any:
    """A proof read; a 503 says the tree has not caught up with the newest
    deliveries yet (it follows the ledger in the background): ask again."""

    def answered() -> httpx.Response | None:
        answer = httpx.get(f"{server.url}{path}", timeout=10)
        return None if answer.status_code == 503 else answer

    answer = wait_for(answered, timeout=15)
    assert answer is not None, f"{path}: still 503 after 15 s\n{server.output()[-2000:]}"
    assert answer.status_code == 200, answer.text
    return answer.json()


def record_orders(server: ServerProcess) -> None:
    for order in ("p1", "p2", "p3"):
        send_post_purchase(server.url, order_body(order))
    send_veriff(server.url, decision_body("p2", "approved"))


def readme_checker(
    tmp_path: Path,
) -> Callable[[dict[str, Any], str], subprocess.CompletedProcess[str]]:
    script = tmp_path / "check_evidence.py"
    script.write_text(readme_script("evidence holds"))

    def check(document: dict[str, Any], key: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "evidence.json"
        path.write_text(json.dumps(document))
        return subprocess.run([sys.executable, str(script), str(path), key],
                              capture_output=True, text=True, timeout=30, check=False)  # fmt: skip

    return check


def flip_base64(text: str) -> str:
    data = bytearray(base64.b64decode(text))
    data[0] ^= 1
    return base64.b64encode(bytes(data)).decode()


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "payload": lambda d: d["events"][0]["payload"].update(orderTotal=0.01),
    "metadata": lambda d: d["events"][0]["metadata"].update(correlation_id="forged"),
    "raw": lambda d: d["events"][0].update(raw_base64=base64.b64encode(b"{}").decode()),
    "type": lambda d: d["events"][1].update(type="order.refunded"),
    "event removed": lambda d: d["events"].pop(0),
    "events swapped": lambda d: d["events"].reverse(),
    "proof": lambda d: d["events"][1].update(
        inclusion_proof=[
            flip_base64(d["events"][1]["inclusion_proof"][0]),
            *d["events"][1]["inclusion_proof"][1:],
        ]
    ),
    "leaf index": lambda d: d["events"][0].update(leaf_index=d["events"][0]["leaf_index"] + 1),
    "checkpoint": lambda d: d.update(checkpoint=d["checkpoint"].replace("\n", "\n1", 1)),
}


def test_evidence_holds_for_the_readme_checker_and_the_cli_and_fails_when_tampered(
    signing_server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    record_orders(signing_server)
    key = get(signing_server, "/api/v1/checkpoints/key")["verifier_key"]
    document = get(signing_server, "/api/v1/orders/p2/evidence")
    assert len(document["events"]) >= 3  # the order, the countdown, the decision, ...
    check = readme_checker(tmp_path)
    held = check(document, key)
    assert held.returncode == 0, held.stderr
    assert f"evidence holds: {len(document['events'])} events of order-p2" in held.stdout
    path = tmp_path / "served.json"
    path.write_text(json.dumps(document))
    assert run_cli(database_url, "verify-evidence", str(path), "--key", key).returncode == 0
    for name, change in TAMPERINGS.items():
        forged = copy.deepcopy(document)
        change(forged)
        assert check(forged, key).returncode != 0, name
        path.write_text(json.dumps(forged))
        refused = run_cli(database_url, "verify-evidence", str(path), "--key", key)
        assert refused.returncode == 1, (name, refused.stdout)
        assert "REJECTED" in refused.stdout
    # A key other than the service's is no proof, whatever the file says.
    other = (
        parse_verifier_key(key)[0] + "+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode()
    )
    assert check(document, other).returncode != 0


def test_the_cli_writes_evidence_and_verify_holds_the_ledger_against_a_kept_checkpoint(
    signing_server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    record_orders(signing_server)
    # Published outside the database: the service writes each signed note to its folder.
    latest = tmp_path / "published" / "latest.note"
    assert wait_for(latest.exists, timeout=15)
    assert latest.read_text().startswith(f"{ORIGIN}\n")
    assert "checkpoint signed" in signing_server.output()
    env = {"HOOKLEDGER_CHECKPOINT_KEY": KEY_PEM, "HOOKLEDGER_CHECKPOINT_ORIGIN": ORIGIN}
    written = run_cli(database_url, "evidence", "p1", "-o", str(tmp_path / "p1.json"), env=env)
    assert written.returncode == 0, written.stderr
    assert run_cli(database_url, "verify-evidence", str(tmp_path / "p1.json")).returncode == 0
    kept = run_cli(database_url, "checkpoint", env=env)
    assert kept.returncode == 0 and kept.stdout.startswith(f"{ORIGIN}\n")
    (tmp_path / "kept.note").write_text(kept.stdout)
    checked = run_cli(database_url, "verify", "--checkpoint", str(tmp_path / "kept.note"), env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "matches the stored tree" in checked.stdout


def test_served_proofs_verify_against_the_signed_checkpoints(
    signing_server: ServerProcess,
) -> None:
    send_post_purchase(signing_server.url, order_body("q1"))
    first = wait_for(lambda: (c := get(signing_server, "/api/v1/checkpoints/latest"))["size"] and c,
                     timeout=15)  # fmt: skip
    record_orders(signing_server)
    send_post_purchase(signing_server.url, order_body("q2"))
    key = parse_verifier_key(get(signing_server, "/api/v1/checkpoints/key")["verifier_key"])
    document = get(signing_server, "/api/v1/orders/q2/evidence")  # signs a covering checkpoint
    latest = get(signing_server, "/api/v1/checkpoints/latest")
    old = verify(first["note"], *key)
    new = verify(latest["note"], *key)
    assert new.size > old.size
    answer = get(signing_server, f"/api/v1/proofs/consistency?from={old.size}&to={new.size}")
    proof = [base64.b64decode(p) for p in answer["proof"]]
    assert merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    position = document["events"][0]["position"]
    inclusion = get(signing_server, f"/api/v1/events/{position}/proof?size={new.size}")
    leaf = merkle.leaf_hash(bytes.fromhex(inclusion["event_hash"]))
    path = [base64.b64decode(p) for p in inclusion["proof"]]
    assert merkle.verify_inclusion(leaf, inclusion["leaf_index"], new.size, path, new.root)
    assert get(signing_server, f"/api/v1/checkpoints/{new.size}")["root"] == latest["root"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/checkpoints/99999999999999999999999", 404),
        ("/api/v1/events/99999999999999999999999/proof", 404),
        ("/api/v1/events/1/proof?size=0", 400),
        ("/api/v1/proofs/consistency?from=0", 400),
        ("/api/v1/proofs/consistency?from=abc", 400),
        ("/api/v1/proofs/consistency?from=1&to=99999999999999999999999", 404),
        ("/api/v1/orders/nobody/evidence", 404),
    ],
)
def test_bad_proof_requests_get_a_clear_error(
    signing_server: ServerProcess, path: str, status: int
) -> None:
    send_post_purchase(signing_server.url, order_body("r1"))
    answer = httpx.get(f"{signing_server.url}{path}", timeout=10)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_evidence_proves_held_personal_values_and_still_holds_once_they_are_erased(
    signing_server: ServerProcess, database_url: str, tmp_path: Path
) -> None:
    send_post_purchase(signing_server.url, order_body("pe", customerEmail="pe@example.com"))
    decision = decision_body("pe", "approved")
    decision["verification"]["person"] = {"firstName": "Ragna", "dateOfBirth": "1971-02-03"}
    send_veriff(signing_server.url, decision)
    key = get(signing_server, "/api/v1/checkpoints/key")["verifier_key"]
    check = readme_checker(tmp_path)
    path = tmp_path / "personal.json"

    document = get(signing_server, "/api/v1/orders/pe/evidence")
    held = [c for e in document["events"] for c in e.get("personal", [])]
    assert held and all(c["state"] == "held" and "salt_base64" in c for c in held)
    assert check(document, key).returncode == 0
    forged = copy.deepcopy(document)
    entry = next(c for e in forged["events"] for c in e.get("personal", []))
    entry["value_base64"] = base64.b64encode(b'"eve@example.com"').decode()
    assert check(forged, key).returncode != 0
    path.write_text(json.dumps(forged))
    assert run_cli(database_url, "verify-evidence", str(path), "--key", key).returncode == 1

    assert run_cli(database_url, "erase", "--order", "pe").returncode == 0

    def covered() -> dict[str, Any] | None:
        answer = httpx.get(f"{signing_server.url}/api/v1/orders/pe/evidence", timeout=10)
        found = answer.json() if answer.status_code == 200 else None
        return found if found and found["events"][-1]["type"] == "subject.erased" else None

    after = wait_for(covered, timeout=20)
    assert after is not None
    states = {c["state"] for e in after["events"] for c in e.get("personal", [])}
    assert states == {"erased"} and "Ragna" not in json.dumps(after)
    assert check(after, key).returncode == 0
    path.write_text(json.dumps(after))
    assert run_cli(database_url, "verify-evidence", str(path), "--key", key).returncode == 0
