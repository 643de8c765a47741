"""Reading the new providers' bodies: event ids, types, orders, streams, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.providers.authorizenet import AuthorizeNet, event_type
from api.providers.base import Normalised, lookup
from api.providers.sendgrid import SendGrid
from api.providers.shopify import Shopify
from api.providers.standard import StandardSource
from api.providers.stripe import Stripe
from api.rejections import MalformedBody
from api.sendgrid_signature import new_key_pair

SHOPIFY = Shopify(["s"], "HOOKLEDGER_SHOPIFY_SECRET")
STRIPE = Stripe(["whsec_s"], "HOOKLEDGER_STRIPE_SECRET")
ANET = AuthorizeNet(["K"], "HOOKLEDGER_AUTHORIZENET_SECRET")
SENDGRID = SendGrid([new_key_pair()[1]], "HOOKLEDGER_SENDGRID_PUBLIC_KEY")


def one(found: list[Normalised]) -> Normalised:
    assert len(found) == 1
    return found[0]


# --- Shopify ------------------------------------------------------------------------


def shopify_headers(topic: str, **extra: str) -> dict[str, str]:
    return {
        "x-shopify-topic": topic,
        "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        **extra,
    }


def shopify_order(**extra: Any) -> dict[str, Any]:
    """An order webhook body as Shopify documents it (trimmed)."""
    return {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "name": "#9999",
        "order_number": 1234,
        "created_at": "2021-12-31T19:00:00-05:00",
        "updated_at": "2021-12-31T19:00:00-05:00",
        "email": "jon@example.com",
        "currency": "USD",
        "total_price": "403.00",
        **extra,
    }


@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        ("orders/create", "order.created"),
        ("orders/cancelled", "order.cancelled"),
        ("orders/paid", "order.paid"),
        ("orders/updated", "shopify.orders.updated"),
        ("orders/fulfilled", "shopify.orders.fulfilled"),
    ],
)
def test_shopify_order_topics_join_the_orders_stream(topic: str, kind: str) -> None:
    found = one(SHOPIFY.normalise(shopify_headers(topic), shopify_order()))
    assert found.type == kind
    assert found.order_id == "820982911946154508"
    assert found.stream == "order-820982911946154508"
    assert found.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_shopify_event_id_falls_back_to_the_webhook_id() -> None:
    headers = shopify_headers("orders/create")
    del headers["x-shopify-event-id"]
    assert one(SHOPIFY.normalise(headers, shopify_order())).event_id == (
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    )


def test_shopify_other_topic_keeps_its_name_and_a_stream_of_its_own() -> None:
    found = one(SHOPIFY.normalise(shopify_headers("products/update"), {"id": 632910392}))
    assert found.type == "shopify.products.update"
    assert found.order_id is None
    assert found.stream == "shopify-98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_shopify_refund_joins_the_order_it_refunds() -> None:
    body = {"id": 509562969, "order_id": 450789469, "created_at": "2021-12-31T19:00:00-05:00"}
    found = one(SHOPIFY.normalise(shopify_headers("refunds/create"), body))
    assert (found.type, found.stream) == ("shopify.refunds.create", "order-450789469")


def test_shopify_time_prefers_the_triggered_at_header_then_updated_at() -> None:
    headers = shopify_headers("orders/paid", **{"x-shopify-triggered-at": "2024-05-01T10:00:00Z"})
    found = one(SHOPIFY.normalise(headers, shopify_order()))
    assert found.occurred_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    found = one(SHOPIFY.normalise(shopify_headers("orders/paid"), shopify_order()))
    assert found.occurred_at == datetime(2022, 1, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"x-shopify-event-id": "e"}, shopify_order()),  # no topic
        ({"x-shopify-topic": "orders/create"}, shopify_order()),  # no event id
        (shopify_headers("orders/create"), {"name": "#1"}),  # an order without its id
        (shopify_headers("orders/create"), [shopify_order()]),
        (shopify_headers("orders/create"), shopify_order(id=True)),
        (shopify_headers("weird topic!"), {"id": 1}),
    ],
)
def test_shopify_refuses_what_shopify_could_not_have_sent(
    headers: dict[str, str], body: Any
) -> None:
    with pytest.raises(MalformedBody):
        SHOPIFY.normalise(headers, body)


# --- Stripe -------------------------------------------------------------------------


def stripe_event(metadata: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2022-11-15",
        "created": 1686089970,
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_3N", "object": "payment_intent", "metadata": metadata or {}}},
        **extra,
    }


def test_stripe_reads_id_type_time_and_the_order_from_metadata() -> None:
    found = one(STRIPE.normalise({}, stripe_event({"order_id": "1001"})))
    assert found.event_id == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert found.type == "payment_intent.succeeded"
    assert found.stream == "order-1001"
    assert found.occurred_at == datetime.fromtimestamp(1686089970, UTC)


def test_stripe_event_without_an_order_joins_the_stream_of_its_object() -> None:
    found = one(STRIPE.normalise({}, stripe_event()))
    assert (found.order_id, found.stream) == (None, "stripe-pi_3N")
    bare = stripe_event()
    del bare["data"]
    assert one(STRIPE.normalise({}, bare)).stream == "stripe-evt_1NG8Du2eZvKYlo2CUI79vXWy"


@pytest.mark.parametrize(
    "body",
    [stripe_event(id=None), stripe_event(type=None), stripe_event(type="has space"), []],
)
def test_stripe_refuses_an_event_without_usable_id_or_type(body: Any) -> None:
    with pytest.raises(MalformedBody):
        STRIPE.normalise({}, body)


# --- Authorize.net ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anet", "kind"),
    [
        ("net.authorize.payment.refund.created", "payment.refunded"),
        ("net.authorize.payment.void.created", "payment.voided"),
        ("net.authorize.payment.capture.created", "payment.captured"),
        ("net.authorize.payment.priorAuthCapture.created", "payment.captured"),
        ("net.authorize.payment.authcapture.created", "payment.captured"),
        ("net.authorize.payment.authorization.created", "payment.authorized"),
        ("net.authorize.payment.fraud.held", "payment.fraud.held"),
        ("net.authorize.customer.created", "authorizenet.customer.created"),
        ("net.authorize.customer.subscription.suspended",
         "authorizenet.customer.subscription.suspended"),
    ],
)  # fmt: skip
def test_authorizenet_event_types_map_onto_payment_events(anet: str, kind: str) -> None:
    assert event_type(anet) == kind


def anet_notification(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "notificationId": "d0e8e7fe-c3e7-4add-a480-27bc5ce28a18",
        "eventType": "net.authorize.payment.refund.created",
        "eventDate": "2023-12-12T12:45:09.3492643Z",
        "webhookId": "a585ea29-a370-495a-bd83-f9be7160f260",
        "payload": payload,
    }


def test_authorizenet_refund_joins_the_order_of_its_invoice_number() -> None:
    body = anet_notification({"entityName": "transaction", "id": "60020981676",
                              "invoiceNumber": "1001", "authAmount": 45.0})  # fmt: skip
    found = one(ANET.normalise({}, body))
    assert found.event_id == "d0e8e7fe-c3e7-4add-a480-27bc5ce28a18"
    assert (found.type, found.order_id, found.stream) == ("payment.refunded", "1001", "order-1001")
    assert found.occurred_at == datetime(2023, 12, 12, 12, 45, 9, 349264, tzinfo=UTC)


def test_authorizenet_reads_a_nested_invoice_number_too() -> None:
    body = anet_notification({"id": "6", "order": {"invoiceNumber": "1002"}})
    assert one(ANET.normalise({}, body)).stream == "order-1002"


def test_authorizenet_without_an_invoice_joins_the_stream_of_its_transaction() -> None:
    body = anet_notification({"id": "120011377052", "merchantReferenceId": "2M4zHFzshYBudvgIZ11B"})
    found = one(ANET.normalise({}, body))
    assert (found.order_id, found.stream) == (None, "authorizenet-120011377052")
    no_payload = anet_notification({})
    assert one(ANET.normalise({}, no_payload)).stream == (
        "authorizenet-d0e8e7fe-c3e7-4add-a480-27bc5ce28a18"
    )


@pytest.mark.parametrize(
    "body",
    [
        {**anet_notification({}), "notificationId": None},
        {**anet_notification({}), "eventType": None},
        anet_notification({"invoiceNumber": {"nested": 1}}),
        [],
    ],
)
def test_authorizenet_refuses_a_notification_it_could_not_have_sent(body: Any) -> None:
    with pytest.raises(MalformedBody):
        ANET.normalise({}, body)


# --- SendGrid -----------------------------------------------------------------------


def sg_event(event: str, sg_event_id: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "email": "example@test.com",
        "timestamp": 1513299569,
        "event": event,
        "sg_event_id": sg_event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **extra,
    }


def test_sendgrid_reads_one_event_per_element_with_the_order_from_custom_args() -> None:
    body = [
        sg_event("delivered", "sg1", order_id="1001", hookledger_action="email.sent:1001"),
        sg_event("open", "sg2", order_id=1001),
        sg_event("bounce", "sg3"),
    ]
    found = SENDGRID.normalise({}, body)
    assert [(f.event_id, f.type, f.stream) for f in found] == [
        ("sg1", "email.delivered", "order-1001"),
        ("sg2", "email.open", "order-1001"),
        ("sg3", "email.bounce", "sendgrid-14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"),
    ]
    assert found[0].occurred_at == datetime.fromtimestamp(1513299569, UTC)
    assert found[0].payload == body[0]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"event": "open"},
        [sg_event("open", "sg1"), "not an object"],
        [sg_event("open", None)],
        [{**sg_event("open", "sg1"), "event": None}],
        [sg_event("open", "sg1", order_id=["1"])],
    ],
)
def test_sendgrid_refuses_a_body_sendgrid_could_not_have_sent(body: Any) -> None:
    with pytest.raises(MalformedBody):
        SENDGRID.normalise({}, body)


# --- configured Standard Webhooks sources -------------------------------------------


def source(**paths: Any) -> StandardSource:
    defaults: dict[str, Any] = {"order_path": None, "type_path": None, "fixed_type": None,
                                "time_path": None}  # fmt: skip
    return StandardSource("returns", ["whsec_c2VjcmV0"], "[sources.returns].secret",
                          **{**defaults, **paths})  # fmt: skip


HEADERS = {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}


def test_source_reads_order_and_type_at_their_paths() -> None:
    body = {"type": "return.requested", "data": {"order": {"id": 1001}, "at": "2024-01-02"}}
    found = one(
        source(order_path="data.order.id", type_path="type", time_path="data.at").normalise(
            HEADERS, body
        )
    )
    assert (found.event_id, found.type, found.stream) == (
        "msg_1", "return.requested", "order-1001"
    )  # fmt: skip
    assert found.occurred_at == datetime(2024, 1, 2, tzinfo=UTC)


def test_source_with_a_fixed_type_and_no_order_gets_a_stream_per_message() -> None:
    found = one(source(fixed_type="review.posted").normalise(
        {"svix-id": "msg_2", "svix-timestamp": "1700000000"}, {"any": "thing"}
    ))  # fmt: skip
    assert (found.type, found.stream) == ("review.posted", "returns-msg_2")
    assert found.occurred_at == datetime.fromtimestamp(1700000000, UTC)


def test_source_refuses_a_body_without_a_type_at_its_path() -> None:
    with pytest.raises(MalformedBody):
        source(type_path="kind").normalise(HEADERS, {"type": "x"})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.b", 1),
        ("a.list.1.c", 3),
        ("a.list.9", None),
        ("a.b.c", None),
        ("missing", None),
        ("a.list.x", None),
    ],
)
def test_lookup_follows_dotted_paths_into_objects_and_lists(path: str, expected: Any) -> None:
    body = {"a": {"b": 1, "list": [{"c": 2}, {"c": 3}]}}
    assert lookup(body, path) == expected


@pytest.mark.parametrize("order_id", ["a/b", "/", "1001/"])
def test_an_order_id_no_read_could_serve_is_refused_naming_the_field(order_id: str) -> None:
    from api.providers.base import optional_order_identifier, order_identifier
    from api.rejections import MalformedBody

    with pytest.raises(MalformedBody, match="orderId must not contain '/'"):
        order_identifier(order_id, "orderId")
    with pytest.raises(MalformedBody, match="vendorData must not contain '/'"):
        optional_order_identifier(order_id, "vendorData")
    assert order_identifier("a%2Fb", "orderId") == "a%2Fb"
