"""What every provider adapter provides, and the helpers they share."""

from __future__ import annotations

import re
import secrets as random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

import msgspec

from api.rejections import NO_SECRET, MalformedBody, Rejected
from events.times import RANGE_TEXT, read_time

MAX_KEY_LENGTH = 256
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class Normalised(msgspec.Struct, frozen=True):
    """One event read out of a provider's body."""

    event_id: str
    type: str
    order_id: str | None
    stream: str
    occurred_at: datetime | None
    payload: Any


class SecretValues(Protocol):
    """A secret whose active values may change while the process runs."""

    @property
    def values(self) -> tuple[str, ...]: ...


class FixedSecret:
    """Values that never change (tests, plain settings)."""

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values


class CannotSign(Exception):
    """This installation holds no key that can sign for the provider."""


class Adapter(ABC):
    """A provider: checks a delivery's signature and reads its events.

    A built-in provider also says which setting holds its secret, how to make a
    local one for an embedded installation and how ``hookledger send`` signs a
    sample; ``api.providers.BUILT_IN`` lists them, and everything else reads it.
    """

    name: str
    scheme: str
    signature_headers: tuple[str, ...] = ()
    # A batch provider's body is a JSON array of events, one per element; each
    # element is recorded with its own bytes (see ``api.intake``).
    batch = False
    # The ``hookledger.settings.Settings`` field that holds a built-in provider's
    # secrets (its variable: HOOKLEDGER_ and the field in capitals).
    secrets_field: ClassVar[str] = ""

    @classmethod
    def local_secret(cls) -> dict[str, str]:
        """A generated secret for an embedded installation, under the provider's
        name (and any private half under a name of its own), made the way the
        provider's own secrets look."""
        return {cls.name: random.token_hex(32)}

    @classmethod
    def signing_key(cls, secret: str, local: Mapping[str, str]) -> str:
        """What signs a delivery that ``secret`` verifies: the secret itself,
        unless the provider signs with a private key (``local``: the embedded
        installation's generated secrets). CannotSign when none is held."""
        return secret

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        """Content type and signature headers of one delivery of ``body``, signed
        with ``key`` the provider's way (``topic``: Shopify's)."""
        raise CannotSign(f"hookledger cannot sign for {cls.name}")

    def __init__(self, secrets: Sequence[str] | SecretValues, secret_setting: str) -> None:
        self._secrets: SecretValues = (
            FixedSecret(tuple(secrets)) if isinstance(secrets, Sequence) else secrets
        )
        self.secret_setting = secret_setting

    @property
    def secrets(self) -> tuple[str, ...]:
        """The active secret values now: a rotation shows here without a restart."""
        return self._secrets.values

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        """Raise SignatureRejected unless the delivery is signed by a known secret."""
        if not self.secrets:
            raise Rejected(
                NO_SECRET,
                f"no secret is configured for provider {self.name!r}: set {self.secret_setting}",
            )
        self.check_signature(headers, body, now)

    @abstractmethod
    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None: ...

    @abstractmethod
    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        """The events in a verified, parsed body; MalformedBody if it is not one of ours."""


def stream_for(order_id: str | None, fallback: str) -> str:
    """Events of an order share its stream; others get a stream of their own."""
    return f"order-{order_id}" if order_id is not None else fallback


def identifier(value: Any, what: str) -> str:
    """A non-empty id of bounded length (a string or an integer in the body)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedBody(f"{what} must be a string or an integer")
    text = str(value).strip()
    if not text:
        raise MalformedBody(f"{what} is empty")
    if len(text) > MAX_KEY_LENGTH:
        raise MalformedBody(f"{what} is longer than {MAX_KEY_LENGTH} characters")
    if "\x00" in text:  # Postgres text cannot hold NUL
        raise MalformedBody(f"{what} must not contain NUL characters")
    return text


def order_identifier(value: Any, what: str) -> str:
    """An order's id: an id the reads can serve at ``/api/v1/orders/{id}``, which
    no id with a ``/`` can be (a router splits the path there, encoded or not)."""
    text = identifier(value, what)
    if "/" in text:
        raise MalformedBody(f"{what} must not contain '/': no read could serve the order")
    return text


def optional_order_identifier(value: Any, what: str) -> str | None:
    """An order's id that may be absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return order_identifier(value, what)


def optional_identifier(value: Any, what: str) -> str | None:
    """An id that may be absent (None, or a blank string)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return identifier(value, what)


def event_name(value: Any, what: str) -> str:
    """An event type such as ``order.created``."""
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > 100:
        raise MalformedBody(f"{what} must be a name like 'order.created'")
    return value


def parse_time(value: Any, field: str) -> datetime | None:
    """An ISO 8601 time or epoch seconds at ``field``; None when absent or
    unreadable. A time no provider could have sent (outside
    ``events.times``' range, such as the year 9999 or ``1e300`` seconds) is
    refused: every later computation with it would be nonsense or overflow."""
    moment, readable = read_time(value)
    if readable and moment is None:
        raise MalformedBody(f"{field} is not a time hookledger accepts ({RANGE_TEXT})")
    return moment


def check_order_time(kind: str, body: Any) -> None:
    """The folds read an order event's ``createdAt`` (the countdown starts
    there): refuse one out of range whatever the provider called its event."""
    if kind.startswith("order.") and isinstance(body, dict):
        parse_time(body.get("createdAt"), "createdAt")


def json_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedBody("the body must be a JSON object")
    return payload


def lookup(body: Any, path: str) -> Any:
    """The value at a dotted path such as ``data.order.id`` (a digit segment indexes
    a list); None where the path leads nowhere."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isascii() and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
    return value
