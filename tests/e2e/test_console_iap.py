"""The console behind Identity-Aware Proxy: IAP's signed header (ES256, from a
stand-in of its key endpoint) signs a user in by e-mail; a forged, expired or
other-audience header, or an e-mail with no role, is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.auth import crypt, jwt

from tests.standin_http import StandInServer
from tests.support import ServerProcess

AUDIENCE = "/projects/123/global/backendServices/456"
KEY = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()  # fmt: skip


class Keys(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        public = KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        raw = json.dumps({"iap-key-1": public.decode()}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


def assertion(email: str, *, key: ec.EllipticCurvePrivateKey = KEY, audience: str = AUDIENCE,
              expires_in: int = 600) -> str:  # fmt: skip
    now = int(time.time())
    claims = {"iss": "https://cloud.google.com/iap", "aud": audience, "email": email,
              "sub": f"accounts.google.com:{email}", "iat": now - 5,
              "exp": now + expires_in}  # fmt: skip
    signer = crypt.ES256Signer.from_string(pem(key), "iap-key-1")
    token: bytes = jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    return token.decode()


@pytest.fixture(scope="module")
def behind_iap(shared_database_url: str) -> Iterator[ServerProcess]:
    keys = StandInServer(Keys).start()
    settings = {"HOOKLEDGER_IAP_AUDIENCE": AUDIENCE, "HOOKLEDGER_IAP_KEYS_URL": keys.url,
                "HOOKLEDGER_OPERATOR_EMAILS": "oncall@shop.example",
                "HOOKLEDGER_AUDITOR_EMAILS": "auditor@firm.example"}  # fmt: skip
    server = ServerProcess(shared_database_url, env=settings).start()
    yield server
    server.stop()
    keys.stop()


def get(server: ServerProcess, header: str) -> httpx.Response:
    return httpx.get(server.url + "/console", headers={"x-goog-iap-jwt-assertion": header})


def test_iaps_signed_header_signs_each_role_in_by_email(behind_iap: ServerProcess) -> None:
    operator = get(behind_iap, assertion("OnCall@shop.example"))
    assert operator.status_code == 200 and '<span class="who">operator</span>' in operator.text
    auditor = get(behind_iap, assertion("auditor@firm.example"))
    assert auditor.status_code == 200 and '<span class="who">auditor</span>' in auditor.text


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (assertion("oncall@shop.example", key=OTHER), 401),
        (assertion("oncall@shop.example", expires_in=-120), 401),
        (assertion("oncall@shop.example", audience="/projects/123/other"), 401),
        ("not-a-jwt", 401),
        (assertion("stranger@elsewhere.example"), 403),
    ],
    ids=["forged", "expired", "other audience", "garbage", "no role"],
)
def test_a_bad_iap_header_is_refused(behind_iap: ServerProcess, header: str, status: int) -> None:
    answer = get(behind_iap, header)
    assert answer.status_code == status, answer.text
