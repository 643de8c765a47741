"""The key that signs checkpoints (HOOKLEDGER_CHECKPOINT_KEY): an Ed25519
private key given as a secret (a PEM, ``file:``, ``sm://``), or a Cloud KMS key
version (``kms://projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V``)
that signs without ever handing the key out. On the embedded database with no
key set, a local key pair is generated once under the data folder."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from events.checkpoint_log import Signer
from events.errors import UpstreamUnavailable
from hookledger.secret_manager import SecretManager
from hookledger.secrets import generated_once, resolve_one
from hookledger.settings import Settings, SettingsError

SETTING = "HOOKLEDGER_CHECKPOINT_KEY"
LOCAL_KEY_FILE = "checkpoint-key.pem"
CALL_TIMEOUT = 10.0
_KMS = re.compile(
    r"^(?:kms://)?(projects/[^/\s]+/locations/[^/\s]+/keyRings/[^/\s]+"
    r"/cryptoKeys/[^/\s]+/cryptoKeyVersions/[^/\s]+)$"
)


class LocalSigner:
    """A key held by this process."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key: Ed25519PublicKey = key.public_key()

    async def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class KmsSigner:
    """A Cloud KMS Ed25519 key version (algorithm EC_SIGN_ED25519), used through
    the official client's REST transport; ``endpoint`` points it elsewhere (a
    local stand-in) without credentials."""

    def __init__(self, name: str, public_key: Ed25519PublicKey, client: Any) -> None:
        self.name = name
        self.public_key = public_key
        self._client = client

    @classmethod
    async def open(cls, name: str, endpoint: str = "") -> KmsSigner:
        """Connect and read the key version's public key (refusing any key that
        is not Ed25519)."""
        client = _client(endpoint)
        answer = await _call(name, client.get_public_key, {"name": name})
        algorithm = answer.algorithm.name if hasattr(answer.algorithm, "name") else answer.algorithm
        if algorithm != "EC_SIGN_ED25519":
            raise SettingsError(
                f"{SETTING}: {name} is a {algorithm} key; EC_SIGN_ED25519 is needed"
            )
        key = load_pem_public_key(answer.pem.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise SettingsError(f"{SETTING}: {name} does not hold an Ed25519 public key")
        return cls(name, key, client)

    async def sign(self, message: bytes) -> bytes:
        answer = await _call(self.name, self._client.asymmetric_sign,
                             {"name": self.name, "data": message})  # fmt: skip
        signature = bytes(answer.signature)
        # Checked here rather than trusting the wire: a corrupted signature would
        # otherwise be published as the ledger's word.
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            raise UpstreamUnavailable(
                f"Cloud KMS: {self.name}: a signature that does not verify"
            ) from None
        return signature


async def _call(name: str, method: Any, request: dict[str, Any]) -> Any:
    from google.api_core import exceptions as google_errors

    try:
        return await asyncio.to_thread(method, request=request, timeout=CALL_TIMEOUT, retry=None)
    except google_errors.GoogleAPICallError as exc:
        raise UpstreamUnavailable(f"Cloud KMS: {name}: {exc.message}") from None
    except Exception as exc:  # no credentials, no network: say what, never a secret
        raise UpstreamUnavailable(f"Cloud KMS: {name}: {type(exc).__name__}") from None


def _client(endpoint: str) -> Any:
    from google.cloud import kms

    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return kms.KeyManagementServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": endpoint},
        )
    return kms.KeyManagementServiceClient(transport="rest")


async def load_signer(settings: Settings) -> Signer | None:
    """The configured checkpoint signer; None when checkpoints are not signed
    (no key set, and a real database: nothing is made up there)."""
    value = settings.checkpoint_key.strip()
    if found := _KMS.match(value):
        return await KmsSigner.open(found.group(1), settings.kms_endpoint)
    if value:
        manager = SecretManager(settings.secrets_endpoint)
        text = await asyncio.to_thread(resolve_one, value, SETTING, manager)
        return LocalSigner(private_key(text))
    if not settings.embedded:
        return None
    return LocalSigner(private_key(generated_once(settings, LOCAL_KEY_FILE, new_private_pem)))


def local_key_setting(settings: Settings) -> str:
    """The embedded database's local key, made once, as a ``file:`` setting: how
    ``serve`` hands it to its server processes."""
    generated_once(settings, LOCAL_KEY_FILE, new_private_pem)
    return f"file:{settings.data_dir / LOCAL_KEY_FILE}"


def new_private_pem() -> str:
    """A new Ed25519 private key as PKCS#8 PEM."""
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def private_key(text: str) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM (PKCS#8); SettingsError, never echoing it."""
    try:
        key = load_pem_private_key(text.strip().encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(
            f"{SETTING} must be an unencrypted Ed25519 private key in PEM (-----BEGIN PRIVATE "
            "KEY-----), a file: or sm:// reference to one, or a kms:// key version"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SettingsError(f"{SETTING} holds a {type(key).__name__}; an Ed25519 key is needed")
    return key
