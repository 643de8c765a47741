"""Checkpoints in the C2SP ``tlog-checkpoint`` format, signed as a C2SP
``signed-note`` with Ed25519: what an auditor keeps of the ledger's tree.

A checkpoint's text is three lines: the log's origin, the tree size in decimal,
and the tree head in standard base64, each ending in a newline. The signed note
adds a blank line, then one line per signature: an em dash, a space, the key's
name, a space, and the base64 of the key's 4-byte hash followed by the
signature of the text. The key hash is the first 4 bytes of
SHA-256(name || "\\n" || 0x01 || the 32-byte Ed25519 public key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"  # the signature type byte of Ed25519 keys in signed notes
DASH = "\u2014"


class Checkpoint(msgspec.Struct, frozen=True):
    """What a checkpoint states: the tree of ``size`` leaves has head ``root``."""

    origin: str
    size: int
    root: bytes


def checkpoint_text(checkpoint: Checkpoint) -> str:
    """The note's text (the part that is signed)."""
    if not checkpoint.origin or "\n" in checkpoint.origin:
        raise ValueError("a checkpoint's origin is one non-empty line")
    if checkpoint.size < 0 or len(checkpoint.root) != 32:
        raise ValueError("a checkpoint needs a size >= 0 and a 32-byte head")
    head = base64.b64encode(checkpoint.root).decode()
    return f"{checkpoint.origin}\n{checkpoint.size}\n{head}\n"


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4 bytes that name a key in a signature line."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + raw).digest()[:4]


def sign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey) -> str:
    """The signed note of ``checkpoint``, signed by ``key`` under ``name``."""
    text = checkpoint_text(checkpoint)
    return signed_note(text, name, key.public_key(), key.sign(text.encode()))


def signed_note(text: str, name: str, public_key: Ed25519PublicKey, signature: bytes) -> str:
    """A note from its text and the Ed25519 ``signature`` of the text's bytes,
    made elsewhere (a key in Cloud KMS signs without handing the key out)."""
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise ValueError("a key name is non-empty, without spaces or '+'")
    if len(signature) != 64:
        raise ValueError("an Ed25519 signature is 64 bytes")
    blob = key_hash(name, public_key) + signature
    return f"{text}\n{DASH} {name} {base64.b64encode(blob).decode()}\n"


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The key as a C2SP note verifier key: ``name+hex key hash+base64(0x01 || key)``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    encoded = base64.b64encode(ED25519 + raw).decode()
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """The name and public key of a verifier key; ValueError if it is not one."""
    name, _, rest = text.strip().partition("+")
    hash_hex, _, encoded = rest.partition("+")
    try:
        blob = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError):
        raise ValueError("not a verifier key: name+hash+base64 expected") from None
    if not name or len(blob) != 33 or blob[:1] != ED25519:
        raise ValueError("not an Ed25519 verifier key")
    public_key = Ed25519PublicKey.from_public_bytes(blob[1:])
    if key_hash(name, public_key) != wanted:
        raise ValueError("the verifier key's hash does not match its name and key")
    return name, public_key


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the 32-byte public key: how evidence names its key."""
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def verify(note: str, name: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint of a signed note that ``public_key`` (named ``name``) has
    signed; ValueError saying why otherwise."""
    # The text's lines are never empty: the first blank line ends it.
    text, found, signatures = note.partition("\n\n")
    if not found or not text:
        raise ValueError("not a signed note: no blank line before the signatures")
    text += "\n"
    wanted = key_hash(name, public_key)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != name:
            continue
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        if blob[:4] != wanted:
            continue
        try:
            public_key.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise ValueError(f"the signature of {name!r} does not verify") from None
        return _parse(text)
    raise ValueError(f"no signature of {name!r} with this key")


def _parse(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise ValueError("a checkpoint has an origin, a size and a head, one per line")
    origin, size, head = lines[0], lines[1], lines[2]
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise ValueError(f"the size {size!r} is not a decimal number")
    try:
        root = base64.b64decode(head, validate=True)
    except binascii.Error:
        raise ValueError("the head is not base64") from None
    if len(root) != 32:
        raise ValueError("the head is not 32 bytes")
    return Checkpoint(origin=origin, size=int(size), root=root)
