"""What a provider answers is recorded (in the ledger, which never forgets) and
logged: before that, every credential the request carried, and anything shaped
like one, is cut out. A provider that echoes the request's ``Authorization``
header in an error page must not leave the API key in an ``action.failed``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

SCRUBBED = "[scrubbed]"
# Shapes of credentials, whoever's: an Authorization value, SendGrid and Stripe
# keys, Standard Webhooks secrets, JWTs. Short ones are left: too many false hits.
_SHAPES = re.compile(
    r"(?i:\b(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|\bwhsec_[A-Za-z0-9+/=]{16,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
# A credential shorter than this is not searched for by value (it would match
# ordinary words); the shapes above still apply.
MIN_SECRET_CHARS = 6


def secret_values(fields: Any, names: frozenset[str]) -> set[str]:
    """Every value under a key in ``names`` (any case, at any depth), and for an
    ``Authorization``-style value also its credential without the scheme."""
    found: set[str] = set()
    if isinstance(fields, dict):
        for key, value in fields.items():
            if str(key).lower() in names and isinstance(value, str) and value:
                found.add(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    found.add(credential)
            else:
                found |= secret_values(value, names)
    elif isinstance(fields, list):
        for value in fields:
            found |= secret_values(value, names)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret value, and anything shaped like a credential,
    replaced by ``[scrubbed]``. Longest values first, so that a credential's
    "Bearer ..." form goes whole."""
    for secret in sorted((s for s in secrets if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True):
        text = text.replace(secret, SCRUBBED)
    return _SHAPES.sub(SCRUBBED, text)
