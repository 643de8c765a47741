"""The checkpoint key in each of its forms: a PEM (as a value, a file or a Secret
Manager reference), a Cloud KMS key version through the official client against
a local stand-in of its REST routes, and the embedded database's local key,
made once. Every form signs notes the published key verifies."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.checkpoint_note import Checkpoint, checkpoint_text, signed_note, verify
from events.errors import UpstreamUnavailable
from hookledger.checkpoint_key import KmsSigner, LocalSigner, load_signer, new_private_pem
from hookledger.settings import Settings, SettingsError
from tests.kms_standin import KmsStandIn
from tests.secret_manager_standin import SecretManagerStandIn

VERSION = "projects/p/locations/global/keyRings/r/cryptoKeys/checkpoints/cryptoKeyVersions/1"
POINT = Checkpoint(origin="shop.example/log", size=42, root=bytes(range(32)))


async def signs_verifiable_notes(signer: LocalSigner | KmsSigner | object) -> None:
    assert isinstance(signer, LocalSigner | KmsSigner)
    text = checkpoint_text(POINT)
    note = signed_note(text, POINT.origin, signer.public_key, await signer.sign(text.encode()))
    assert verify(note, POINT.origin, signer.public_key) == POINT


@pytest.fixture
def kms() -> Iterator[KmsStandIn]:
    server = KmsStandIn().start()
    yield server
    server.stop()


async def test_a_kms_key_version_signs_through_the_official_client(kms: KmsStandIn) -> None:
    kms.add(VERSION)
    for value in (f"kms://{VERSION}", VERSION):
        signer = await load_signer(Settings(database_url="postgresql://x", checkpoint_key=value,
                                            kms_endpoint=kms.url))  # fmt: skip
        await signs_verifiable_notes(signer)
    assert kms.signs == 2


async def test_a_kms_key_of_another_algorithm_is_refused(kms: KmsStandIn) -> None:
    kms.add(VERSION, algorithm="RSA_SIGN_PSS_2048_SHA256")
    with pytest.raises(SettingsError, match="EC_SIGN_ED25519"):
        await KmsSigner.open(VERSION, kms.url)


async def test_a_kms_signature_that_does_not_verify_is_not_used(kms: KmsStandIn) -> None:
    kms.add(VERSION)
    signer = await KmsSigner.open(VERSION, kms.url)
    kms.corrupt = True
    with pytest.raises(UpstreamUnavailable, match="does not verify"):
        await signer.sign(b"text")


async def test_kms_out_of_reach_is_unavailable_naming_the_key(kms: KmsStandIn) -> None:
    url = kms.url
    kms.stop()
    with pytest.raises(UpstreamUnavailable, match="cryptoKeyVersions/1"):
        await KmsSigner.open(VERSION, url)


async def test_a_pem_as_value_file_or_secret_manager_reference_signs(tmp_path: Path) -> None:
    pem = new_private_pem()
    (tmp_path / "key.pem").write_text(pem)
    manager = SecretManagerStandIn().start()
    manager.put("p", "checkpoint-key", pem)
    try:
        for value in (pem, f"file:{tmp_path / 'key.pem'}", "sm://p/checkpoint-key"):
            settings = Settings(database_url="postgresql://x", checkpoint_key=value,
                                secrets_endpoint=manager.url)  # fmt: skip
            await signs_verifiable_notes(await load_signer(settings))
    finally:
        manager.stop()


async def test_a_bad_key_is_refused_without_echoing_it() -> None:
    for value in ("not-a-key-s3cr3t", new_private_pem().replace("A", "B", 3)):
        with pytest.raises(SettingsError) as caught:
            await load_signer(Settings(database_url="postgresql://x", checkpoint_key=value))
        assert "HOOKLEDGER_CHECKPOINT_KEY" in str(caught.value)
        assert value[:20] not in str(caught.value)


async def test_the_embedded_database_makes_one_local_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = await load_signer(settings)
    second = await load_signer(settings)
    assert isinstance(first, LocalSigner) and isinstance(second, LocalSigner)
    assert first.public_key.public_bytes_raw() == second.public_key.public_bytes_raw()
    assert os.stat(tmp_path / "checkpoint-key.pem").st_mode & 0o777 == 0o600
    await signs_verifiable_notes(first)


async def test_a_real_database_without_a_key_signs_nothing() -> None:
    assert await load_signer(Settings(database_url="postgresql://x")) is None
