"""A local stand-in for Cloud KMS's REST API, NOT an emulator (none runs on
Python 3.11): it answers the two routes the official client's REST transport
calls for an asymmetric key version, ``GET /v1/{name}/publicKey`` and ``POST
/v1/{name}:asymmetricSign``, with the JSON fields the real API gives, signing
with a real Ed25519 key it holds. The adapter under test is the real
google-cloud-kms client."""

from __future__ import annotations

import base64
import json
import re
import zlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.standin_http import JsonHandler, StandInServer

_VERSION = (
    r"projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/:]+"
)
_PUBLIC = re.compile(rf"^/v1/({_VERSION})/publicKey$")
_SIGN = re.compile(rf"^/v1/({_VERSION}):asymmetricSign$")


class KmsStandIn(StandInServer):
    """Key versions by resource name, each an Ed25519 key (or another algorithm's
    name, to see it refused); ``signs`` counts the signatures made."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        self.signs = 0
        self.corrupt = False  # answer signatures that do not verify
        standin = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                found = _PUBLIC.match(self.path.split("?", 1)[0])
                if found is None or found.group(1) not in standin.keys:
                    self._missing()
                    return
                name = found.group(1)
                algorithm, key = standin.keys[name]
                pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
                self._answer(200, {"name": name, "pem": pem.decode(), "algorithm": algorithm,
                                   "pemCrc32c": str(zlib.crc32(pem)),
                                   "protectionLevel": "SOFTWARE"})  # fmt: skip

            def do_POST(self) -> None:
                found = _SIGN.match(self.path.split("?", 1)[0])
                body = json.loads(self.rfile.read(int(self.headers["content-length"] or 0)))
                if found is None or found.group(1) not in standin.keys:
                    self._missing()
                    return
                _, key = standin.keys[found.group(1)]
                signature = key.sign(base64.b64decode(body["data"]))
                if standin.corrupt:
                    signature = bytes([signature[0] ^ 1]) + signature[1:]
                standin.signs += 1
                self._answer(200, {"name": found.group(1),
                                   "signature": base64.b64encode(signature).decode(),
                                   "signatureCrc32c": str(zlib.crc32(signature)),
                                   "verifiedDataCrc32c": False,
                                   "protectionLevel": "SOFTWARE"})  # fmt: skip

            def _missing(self) -> None:
                self._answer(404, {"error": {"code": 404, "message": "CryptoKeyVersion not found",
                                             "status": "NOT_FOUND"}})  # fmt: skip

        super().__init__(Handler)

    def add(self, name: str, algorithm: str = "EC_SIGN_ED25519") -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        self.keys[name] = (algorithm, key)
        return key
