"""Who may call the task endpoint: a Google-signed OIDC token for the configured
service account and audience, or the shared secret header.

Google's certificate endpoint is played by a local HTTP stand-in serving the
same JSON shape (key id -> PEM certificate), with a key pair made here; the
tokens are signed and checked with google-auth, as Google's are.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from api.rejections import Unauthorized
from api.task_auth import TaskAuth

ACCOUNT = "tasks-invoker@test-project.iam.gserviceaccount.com"
AUDIENCE = "https://hookledger.example.run.app"
KEY_ID = "key-1"


def key_pair() -> tuple[bytes, bytes]:
    """A private key (PEM) and a self-signed certificate for it (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-signer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private, cert.public_bytes(serialization.Encoding.PEM)


GOOGLE_KEY, GOOGLE_CERT = key_pair()
OTHER_KEY, _ = key_pair()


@pytest.fixture(scope="module")
def certs_url() -> Iterator[str]:
    body = json.dumps({KEY_ID: GOOGLE_CERT.decode()}).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Certs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/oauth2/v1/certs"
    server.shutdown()
    server.server_close()


def token(key: bytes = GOOGLE_KEY, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": ACCOUNT,
        "email_verified": True,
        "sub": "1234567890",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    signer = crypt.RSASigner.from_string(key, key_id=KEY_ID)  # type: ignore[no-untyped-call]
    encoded: bytes = jwt.encode(signer, payload)  # type: ignore[no-untyped-call,unused-ignore]
    return encoded.decode()


def auth(certs_url: str, secrets: tuple[str, ...] = ()) -> TaskAuth:
    return TaskAuth(
        secrets=lambda: secrets, service_account=ACCOUNT, audience=AUDIENCE, certs_url=certs_url
    )


async def test_a_google_signed_token_for_the_service_account_and_audience_is_let_in(
    certs_url: str,
) -> None:
    await auth(certs_url).check({"authorization": f"Bearer {token()}"})


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        ("another audience", {"aud": "https://elsewhere.example"}),
        ("another service account", {"email": "someone@test-project.iam.gserviceaccount.com"}),
        ("an unverified email", {"email_verified": False}),
        ("not issued by Google", {"iss": "https://issuer.example"}),
        ("expired", {"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}),
    ],
)
async def test_a_token_that_is_not_the_configured_caller_is_refused(
    certs_url: str, why: str, claims: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized):
        await auth(certs_url).check({"authorization": f"Bearer {token(**claims)}"})


async def test_a_token_signed_by_another_key_is_refused(certs_url: str) -> None:
    with pytest.raises(Unauthorized, match="does not verify"):
        await auth(certs_url).check({"authorization": f"Bearer {token(OTHER_KEY)}"})


async def test_the_shared_secret_header_lets_in_and_a_wrong_one_does_not(certs_url: str) -> None:
    checker = auth(certs_url, secrets=("new-secret", "old-secret"))
    await checker.check({"x-hookledger-task-secret": "old-secret"})
    for headers in ({"x-hookledger-task-secret": "guess"}, {}, {"authorization": "Bearer junk"}):
        with pytest.raises(Unauthorized):
            await checker.check(headers)


async def test_without_a_service_account_a_token_alone_is_refused(certs_url: str) -> None:
    checker = TaskAuth(secrets=lambda: (), service_account="", audience=AUDIENCE,
                       certs_url=certs_url)  # fmt: skip
    with pytest.raises(Unauthorized):
        await checker.check({"authorization": f"Bearer {token()}"})
