"""Checkpoints as C2SP signed notes: what is signed verifies with its key and
name, and any change to the text, the key or the name is refused."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from events import checkpoint_note
from events.checkpoint_note import Checkpoint, checkpoint_text, key_hash, sign, verify

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NAME = "hookledger.example/ledger"
POINT = Checkpoint(origin="hookledger.example/ledger", size=8, root=bytes(range(32)))


def test_a_checkpoint_note_has_the_c2sp_shape() -> None:
    note = sign(POINT, NAME, KEY)
    head = base64.b64encode(bytes(range(32))).decode()
    text = f"hookledger.example/ledger\n8\n{head}\n"
    assert checkpoint_text(POINT) == text
    body, signature_line = note.split("\n\n")
    assert body + "\n" == text
    dash, name, blob = signature_line.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", NAME)
    raw = base64.b64decode(blob)
    public = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert raw[:4] == hashlib.sha256(NAME.encode() + b"\n\x01" + public).digest()[:4]
    assert raw[:4] == key_hash(NAME, KEY.public_key())
    KEY.public_key().verify(raw[4:], text.encode())  # the signature is over the text alone


def test_a_signed_checkpoint_verifies_and_an_altered_one_does_not() -> None:
    note = sign(POINT, NAME, KEY)
    assert verify(note, NAME, KEY.public_key()) == POINT
    with pytest.raises(ValueError, match="does not verify"):
        verify(note.replace("\n8\n", "\n9\n"), NAME, KEY.public_key())
    with pytest.raises(ValueError, match="no signature"):
        verify(note, "someone.else/log", KEY.public_key())
    other = Ed25519PrivateKey.generate()
    with pytest.raises(ValueError, match="no signature"):
        verify(note, NAME, other.public_key())
    with pytest.raises(ValueError, match="not a signed note"):
        verify(checkpoint_text(POINT), NAME, KEY.public_key())


@given(origin=st.from_regex(r"[a-z0-9.\-/]{1,40}", fullmatch=True),
       size=st.integers(0, 2**63), root=st.binary(min_size=32, max_size=32))  # fmt: skip
def test_any_checkpoint_round_trips_through_its_note(origin: str, size: int, root: bytes) -> None:
    point = Checkpoint(origin=origin, size=size, root=root)
    assert verify(sign(point, NAME, KEY), NAME, KEY.public_key()) == point


def test_a_verifier_key_names_its_key_and_round_trips() -> None:
    key = Ed25519PrivateKey.generate()
    text = checkpoint_note.verifier_key("shop.example/log", key.public_key())
    name, public = checkpoint_note.parse_verifier_key(text)
    assert name == "shop.example/log"
    assert checkpoint_note.fingerprint(public) == checkpoint_note.fingerprint(key.public_key())


def test_a_verifier_key_with_a_changed_name_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    text = checkpoint_note.verifier_key("log-a", key.public_key())
    with pytest.raises(ValueError, match="hash does not match"):
        checkpoint_note.parse_verifier_key("log-b" + text.removeprefix("log-a"))


@given(
    size=st.integers(0, 2**40), root=st.binary(min_size=32, max_size=32), bit=st.integers(0, 511)
)
def test_any_one_bit_change_of_a_signature_is_rejected(size: int, root: bytes, bit: int) -> None:
    note = sign(Checkpoint(origin=NAME, size=size, root=root), NAME, KEY)
    text, _, line = note.rstrip("\n").rpartition("\n")
    dash, name, encoded = line.split(" ")
    blob = bytearray(base64.b64decode(encoded))
    blob[4 + bit // 8] ^= 1 << (bit % 8)  # the signature, after the 4-byte key hash
    forged = f"{text}\n{dash} {name} {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(ValueError):
        verify(forged, NAME, KEY.public_key())
