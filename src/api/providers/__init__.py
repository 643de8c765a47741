"""Provider adapters: one signature scheme each, and how to read their bodies.

``BUILT_IN`` is the one list of built-in providers: the wiring, the secrets,
the reserved source names, ``hookledger send`` and the tests all read it. A new
provider is its adapter module, its line here, its samples and its tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from api.providers.authorizenet import AuthorizeNet
from api.providers.base import Adapter
from api.providers.post_purchase import PostPurchase
from api.providers.sendgrid import SendGrid
from api.providers.shopify import Shopify
from api.providers.stripe import Stripe
from api.providers.veriff import Veriff

BUILT_IN: Mapping[str, type[Adapter]] = MappingProxyType({
    adapter.name: adapter
    for adapter in (Veriff, PostPurchase, Shopify, Stripe, AuthorizeNet, SendGrid)
})  # fmt: skip
