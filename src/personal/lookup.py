"""Finding a subject by e-mail address without keeping the address: a keyed
hash (HMAC-SHA256 under one key per installation) of the address, held beside
the value and deleted with it. Once a subject's rows are gone, nothing left
confirms a guess of its address."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from events.connector import Database, Session
from personal.queries import QUERIES

KEY_BYTES = 32


def normalised(address: str) -> str:
    """The form an address is hashed in: trimmed, lower case."""
    return address.strip().lower()


def lookup_hash(key: bytes, address: str) -> bytes:
    """The keyed hash an address is found by."""
    return hmac.new(key, normalised(address).encode(), hashlib.sha256).digest()


async def lookup_key(db: Database | Session) -> bytes:
    """This installation's lookup key, made on first use."""
    await db.fetch_one(QUERIES["make_lookup_key"], (secrets.token_bytes(KEY_BYTES),))
    row = await db.fetch_one(QUERIES["lookup_key"])
    assert row is not None  # made just above
    return bytes(row[0])
