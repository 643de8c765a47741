"""SendGrid's Event Webhook: a JSON array of email events, signed with ECDSA.

One event per element: event id ``sg_event_id``, type ``email.<event>``
(``email.delivered``, ``email.bounce``, ``email.open`` ...), time ``timestamp``.
Order: hookledger's own emails carry the custom args ``order_id`` and
``hookledger_action``, which SendGrid echoes as top-level keys of every event;
events without ``order_id`` share the stream of their message
(``sendgrid-<sg_message_id>``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from api.providers.base import (
    Adapter,
    CannotSign,
    Normalised,
    SecretValues,
    event_name,
    identifier,
    json_object,
    optional_identifier,
    optional_order_identifier,
    parse_time,
    stream_for,
)
from api.rejections import MalformedBody
from api.sendgrid_signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    new_key_pair,
    sendgrid_sign,
    verify_sendgrid,
)

log = logging.getLogger(__name__)


class SendGrid(Adapter):
    name = "sendgrid"
    scheme = "sendgrid-ecdsa-p256"
    signature_headers = (SIGNATURE_HEADER, TIMESTAMP_HEADER)
    batch = True
    secrets_field = "sendgrid_public_key"
    # Where an embedded installation keeps the private half of its local key pair.
    SIGNING_KEY = "sendgrid-signing-key"

    @classmethod
    def local_secret(cls) -> dict[str, str]:
        private, public = new_key_pair()
        return {cls.name: public, cls.SIGNING_KEY: private}

    @classmethod
    def signing_key(cls, secret: str, local: Mapping[str, str]) -> str:
        # Only the local key pair's private half signs, and only while its public
        # half is the verification key in use.
        if local.get(cls.name) == secret and cls.SIGNING_KEY in local:
            return local[cls.SIGNING_KEY]
        raise CannotSign(
            "SendGrid signs its deliveries with a private key that hookledger does not "
            "have (HOOKLEDGER_SENDGRID_PUBLIC_KEY is the public half), so `send sendgrid` "
            "works only on an embedded installation with its generated local key; use "
            "SendGrid's 'Test Your Integration' to send a real signed delivery"
        )

    @classmethod
    def sign(cls, key: str, body: bytes, *, now: int, topic: str) -> dict[str, str]:
        return {"content-type": "application/json", **sendgrid_sign(key, now, body)}

    def __init__(self, secrets: Sequence[str] | SecretValues, secret_setting: str) -> None:
        super().__init__(secrets, secret_setting)
        # Parsed at start: a key that cannot be read fails the start (ValueError).
        self._parsed = self.secrets
        self.keys = tuple(load_public_key(value) for value in self._parsed)

    def check_signature(self, headers: Mapping[str, str], body: bytes, now: float) -> None:
        if self.secrets != self._parsed:
            self._reload_keys()
        verify_sendgrid(self.keys, headers, body, now)

    def _reload_keys(self) -> None:
        """A rotated key: parse it once; one that cannot be read keeps the old keys."""
        values = self.secrets
        try:
            self.keys = tuple(load_public_key(value) for value in values)
        except ValueError:
            log.error("a rotated SendGrid key cannot be read; keeping the previous keys",
                      extra={"setting": self.secret_setting})  # fmt: skip
        self._parsed = values

    def normalise(self, headers: Mapping[str, str], payload: Any) -> list[Normalised]:
        if not isinstance(payload, list) or not payload:
            raise MalformedBody("the body must be a non-empty JSON array of events")
        return [self._event(json_object(element)) for element in payload]

    def _event(self, element: dict[str, Any]) -> Normalised:
        event_id = identifier(element.get("sg_event_id"), "sg_event_id")
        order = optional_order_identifier(element.get("order_id"), "order_id")
        message = optional_identifier(element.get("sg_message_id"), "sg_message_id")
        return Normalised(
            event_id=event_id,
            type="email." + event_name(element.get("event"), "event"),
            order_id=order,
            stream=stream_for(order, f"sendgrid-{message or event_id}"),
            occurred_at=parse_time(element.get("timestamp"), "timestamp"),
            payload=element,
        )
