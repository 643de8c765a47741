"""The one list of built-in providers: every adapter on it names its secret's
setting, makes a local secret its own scheme accepts, and signs what it verifies."""

from __future__ import annotations

import time

import msgspec
import pytest

from api.providers import BUILT_IN
from api.providers.base import Adapter, CannotSign
from api.providers.sendgrid import SendGrid
from api.rejections import SignatureRejected
from hookledger.settings import Settings, from_env, variable
from hookledger.sources import RESERVED

BODIES = {
    "sendgrid": b'[{"event": "delivered", "sg_event_id": "e1", "sg_message_id": "m1"}]',
}
BODY = b'{"id": "evt_1", "type": "order.created"}'


def test_every_built_in_provider_is_listed_under_the_name_it_serves() -> None:
    assert set(BUILT_IN) == {"veriff", "post-purchase", "shopify", "stripe", "authorizenet",
                             "sendgrid"}  # fmt: skip
    assert all(name == adapter.name for name, adapter in BUILT_IN.items())


@pytest.mark.parametrize("adapter", BUILT_IN.values(), ids=list(BUILT_IN))
def test_each_provider_names_a_settings_field_that_its_variable_sets(
    adapter: type[Adapter],
) -> None:
    fields = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    assert fields.get(adapter.secrets_field) is str
    loaded = from_env({variable(adapter.secrets_field): "value"})
    assert getattr(loaded, adapter.secrets_field) == "value"


@pytest.mark.parametrize("adapter", BUILT_IN.values(), ids=list(BUILT_IN))
def test_a_local_secret_signs_a_delivery_that_the_provider_then_verifies(
    adapter: type[Adapter],
) -> None:
    local = adapter.local_secret()
    secret = local[adapter.name]
    provider = adapter([secret], variable(adapter.secrets_field))
    body = BODIES.get(adapter.name, BODY)
    now = int(time.time())
    headers = adapter.sign(adapter.signing_key(secret, local), body, now=now, topic="orders/create")
    provider.verify(headers, body, now)
    assert headers["content-type"] == "application/json"


def test_sendgrid_cannot_sign_without_the_private_half_of_the_key_in_use() -> None:
    local = SendGrid.local_secret()
    other = SendGrid.local_secret()["sendgrid"]
    with pytest.raises(CannotSign, match="private key"):
        SendGrid.signing_key(other, local)
    with pytest.raises(CannotSign):
        SendGrid.signing_key(local["sendgrid"], {})


def test_no_declared_source_may_take_a_built_in_provider_s_name() -> None:
    assert set(BUILT_IN) <= RESERVED


@pytest.mark.parametrize("adapter", BUILT_IN.values(), ids=list(BUILT_IN))
def test_a_delivery_without_its_signature_is_told_which_headers_were_looked_for(
    adapter: type[Adapter],
) -> None:
    local = adapter.local_secret()
    provider = adapter([local[adapter.name]], variable(adapter.secrets_field))
    body = BODIES.get(adapter.name, BODY)
    headers = {"content-type": "application/json", "x-shopify-topic": "orders/create"}
    with pytest.raises(SignatureRejected) as refused:
        provider.verify(headers, body, int(time.time()))
    detail = refused.value.detail
    assert detail.startswith("missing ")
    assert detail != "missing signature header"
    # Each header named is one of the provider's own (as its engineer would spell it).
    named = detail.removeprefix("missing ").removesuffix(" header").replace(" or ", ", ")
    assert all(name.strip().lower() in adapter.signature_headers for name in named.split(","))
