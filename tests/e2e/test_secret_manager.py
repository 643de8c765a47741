"""Secret Manager references, read with the official client (REST transport)
from a local stand-in of the API (see tests/secret_manager_standin.py: there is
no Secret Manager emulator for Python 3.11), cached and refreshed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hookledger.secret_manager import reference
from hookledger.secrets import SecretStore
from hookledger.settings import SettingsError, from_env
from hookledger.wiring import action_settings, follow_action_secrets
from scheduler.actions.config import ActionSettings
from tests.e2e_helpers import send_veriff, wait_for
from tests.secret_manager_standin import SecretManagerStandIn
from tests.support import ServerProcess

PROJECT = "test-project"


@pytest.fixture
def standin() -> Iterator[SecretManagerStandIn]:
    server = SecretManagerStandIn().start()
    yield server
    server.stop()


def test_references_name_a_secret_version_and_anything_else_is_a_value() -> None:
    assert reference("sm://p/s") == "projects/p/secrets/s/versions/latest"
    assert reference("sm://p/s#3") == "projects/p/secrets/s/versions/3"
    assert reference("projects/p/secrets/s") == "projects/p/secrets/s/versions/latest"
    assert reference("projects/p/secrets/s/versions/2") == "projects/p/secrets/s/versions/2"
    for value in ("plain-secret", "sm://p", "sm://p/s/x", "projects/p", "whsec_abc"):
        assert reference(value) is None


def test_each_form_of_reference_reads_its_version(standin: SecretManagerStandIn) -> None:
    standin.put(PROJECT, "veriff", "first")
    standin.put(PROJECT, "veriff", "second third")
    store = SecretStore(standin.url)
    setting = "HOOKLEDGER_VERIFF_SECRET"
    assert store.resolve(f"sm://{PROJECT}/veriff", setting) == ("second", "third")
    assert store.resolve(f"sm://{PROJECT}/veriff#1", setting) == ("first",)
    assert store.resolve(f"projects/{PROJECT}/secrets/veriff/versions/1", setting) == ("first",)
    assert store.resolve(f"plain sm://{PROJECT}/veriff#1", setting) == ("plain", "first")


def test_a_missing_secret_names_the_setting_and_the_reference(
    standin: SecretManagerStandIn,
) -> None:
    with pytest.raises(SettingsError) as raised:
        SecretStore(standin.url).resolve(f"sm://{PROJECT}/nope", "HOOKLEDGER_API_TOKEN")
    assert "HOOKLEDGER_API_TOKEN" in str(raised.value)
    assert f"projects/{PROJECT}/secrets/nope/versions/latest" in str(raised.value)


async def test_a_rotated_secret_is_taken_on_refresh_and_the_old_one_is_kept_a_while(
    standin: SecretManagerStandIn,
) -> None:
    standin.put(PROJECT, "token", "old-token")
    store = SecretStore(standin.url, refresh_seconds=0.5)
    secret = store.live(f"sm://{PROJECT}/token", "HOOKLEDGER_API_TOKEN")
    assert list(secret.values) == ["old-token"]
    assert await store.refresh() == 0  # unchanged: nothing rotates
    standin.put(PROJECT, "token", "new-token")
    assert await store.refresh() == 1
    assert list(secret.values) == ["new-token", "old-token"]
    assert secret.first() == "new-token"
    await asyncio.sleep(0.6)
    assert list(secret.values) == ["new-token"]


async def test_a_failed_refresh_keeps_the_values_it_had(standin: SecretManagerStandIn) -> None:
    standin.put(PROJECT, "token", "kept")
    store = SecretStore(standin.url, refresh_seconds=60)
    secret = store.live(f"sm://{PROJECT}/token", "HOOKLEDGER_API_TOKEN")
    standin.versions.clear()
    assert await store.refresh() == 0
    assert secret.values == ("kept",)
    assert "HOOKLEDGER_API_TOKEN" in store.failures


def test_a_rotated_provider_secret_takes_effect_in_a_running_server(
    database_url: str, standin: SecretManagerStandIn
) -> None:
    name = f"veriff-{uuid.uuid4().hex[:6]}"
    standin.put(PROJECT, name, "veriff-secret-one")
    server = ServerProcess(database_url, env={
        "HOOKLEDGER_VERIFF_SECRET": f"sm://{PROJECT}/{name}",
        "HOOKLEDGER_SECRETS_ENDPOINT": standin.url,
        "HOOKLEDGER_SECRETS_REFRESH": "300ms",
    }).start()  # fmt: skip
    body = {"id": "s-1", "status": "approved", "event": "verification.updated"}
    try:
        assert send_veriff(server.url, body, secret="veriff-secret-one").status_code == 200
        assert send_veriff(server.url, body, secret="veriff-secret-two").status_code == 401
        standin.put(PROJECT, name, "veriff-secret-two")

        def accepted(secret: str) -> bool:
            return send_veriff(server.url, body, secret=secret).status_code == 200

        assert wait_for(lambda: accepted("veriff-secret-two"), 10)  # no restart
        assert wait_for(lambda: not accepted("veriff-secret-one"), 10)  # after the overlap
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


async def test_rotated_outbound_credentials_reach_the_action_worker(tmp_path: Path) -> None:
    key_file = tmp_path / "sendgrid-key"
    key_file.write_text("SG.first-key")
    settings = from_env({"HOOKLEDGER_SENDGRID_API_KEY": f"file:{key_file}",
                         "HOOKLEDGER_SECRETS_REFRESH": "1s"})  # fmt: skip
    store = SecretStore.from_settings(settings)
    config = action_settings(settings, store)
    assert config.sendgrid_api_key == "SG.first-key"
    handed: list[ActionSettings] = []

    class Worker:
        def reconfigure(self, settings: ActionSettings) -> None:
            handed.append(settings)

    follow_action_secrets(store, config, Worker())
    assert await store.refresh() == 0
    assert handed == []
    key_file.write_text("SG.second-key")
    assert await store.refresh() == 1
    assert [h.sendgrid_api_key for h in handed] == ["SG.second-key"]
    assert handed[0].email_from == config.email_from
