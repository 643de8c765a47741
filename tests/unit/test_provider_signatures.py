"""The signature schemes of Shopify, Stripe, Authorize.net, SendGrid and configured
Standard Webhooks sources, checked against the providers' own code and samples.

Where a provider publishes a library that signs or verifies (stripe, sendgrid's
``sendgrid.helpers.eventwebhook``, svix), it signs and ours verifies, and the
other way round. Shopify publishes no sample signature: its scheme is checked
against the published HMAC-SHA256 test vectors of RFC 4231 (base64-encoded) and
against an independent HMAC implementation (``cryptography``). Authorize.net's
check uses a signature its sandbox made, published on its developer forum.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import stripe
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sendgrid.helpers.eventwebhook import EventWebhook
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from api.providers.authorizenet import AuthorizeNet
from api.providers.base import Adapter
from api.providers.post_purchase import PostPurchase
from api.providers.sendgrid import SendGrid
from api.providers.shopify import Shopify
from api.providers.standard import StandardSource
from api.providers.stripe import Stripe
from api.providers.veriff import Veriff
from api.rejections import (
    MALFORMED,
    MISMATCH,
    MISSING,
    NO_SECRET,
    STALE,
    Rejected,
    SignatureRejected,
)
from api.sendgrid_signature import (
    SENDGRID_TOLERANCE,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    sendgrid_sign,
    verify_sendgrid,
)
from api.signatures import (
    STRIPE_TOLERANCE,
    authorizenet_sign,
    shopify_sign,
    standard_webhooks_sign,
    stripe_sign,
    verify_authorizenet,
    verify_shopify,
    verify_stripe,
)
from tests.support import (
    AUTHORIZENET_SECRET,
    POST_PURCHASE_SECRET,
    SENDGRID_PRIVATE_KEY,
    SENDGRID_PUBLIC_KEY,
    SHOPIFY_SECRET,
    SOURCE,
    SOURCE_SECRET,
    STRIPE_SECRET,
    VERIFF_SECRET,
    signed,
)

NOW = 1_700_000_000
EXAMPLES = settings(max_examples=40, deadline=None)

keys = st.binary(min_size=1, max_size=64)
texts = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                max_size=40)  # fmt: skip
bodies = st.binary(max_size=300)


def rejected(reason: str) -> pytest.RaisesExc[Rejected]:
    """Expect a refusal for exactly this reason."""
    return pytest.raises(Rejected, check=lambda exc: exc.reason == reason)


# --- Shopify ------------------------------------------------------------------------

# RFC 4231 test cases 1, 2 and 4: key, data, HMAC-SHA256 (hex). Shopify's header is
# the same digest in base64.
RFC_4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "data", "digest"), RFC_4231, ids=["case1", "case2", "case4"])
def test_shopify_signature_is_the_base64_of_the_published_hmac_sha256_vectors(
    key: bytes, data: bytes, digest: str
) -> None:
    secret = key.decode("ascii")
    expected = base64.b64encode(bytes.fromhex(digest)).decode()
    assert shopify_sign(secret, data) == expected
    verify_shopify([secret], data, expected)


@EXAMPLES
@given(secret=texts, body=bodies)
def test_shopify_accepts_what_an_independent_hmac_implementation_signs(
    secret: str, body: bytes
) -> None:
    mac = crypto_hmac.HMAC(secret.encode(), hashes.SHA256())
    mac.update(body)
    verify_shopify([secret], body, base64.b64encode(mac.finalize()).decode())


@EXAMPLES
@given(secrets=st.lists(texts, min_size=1, max_size=4, unique=True), pick=st.integers(0))
def test_shopify_accepts_any_active_secret_while_one_rotates(secrets: list[str], pick: int) -> None:
    body = b'{"id":1}'
    verify_shopify(secrets, body, shopify_sign(secrets[pick % len(secrets)], body))


def test_shopify_refuses_a_missing_header_and_a_retired_secret() -> None:
    with rejected(MISSING):
        verify_shopify(["new"], b"{}", None)
    with rejected(MISMATCH):
        verify_shopify(["new"], b"{}", shopify_sign("old", b"{}"))


def test_shopify_refuses_a_second_base64_spelling_of_the_same_digest() -> None:
    # The last character of a 44-character base64 digest carries two unused bits:
    # "...A=" and "...B=" decode alike. Only the canonical spelling is Shopify's.
    body = b"{}"
    good = shopify_sign("secret", body)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(good[-2])
    other = good[:-2] + alphabet[last ^ 1] + "="
    assert base64.b64decode(other) == base64.b64decode(good)
    with rejected(MISMATCH):
        verify_shopify(["secret"], body, other)


# --- Authorize.net ------------------------------------------------------------------

# A notification and the X-ANET-Signature Authorize.net's sandbox sent with it,
# posted with the sandbox Signature Key on Authorize.net's developer forum
# ("The verification of the webhook signature is contingent on the value of
# authAmount", 2023-12). The sandbox signed the amount as 1.10 (it delivered 1.1).
ANET_KEY = (
    "A6214F6105625D5ED957CF02E749BB440DBD4E418533D219CAD26AECD104BFFE"
    "7F47DBBE5C81927CCA484AE7722BE82CE57FB5318EDE02122277A2FE90EE68EB"
)
ANET_BODY = (
    b'{"notificationId":"570f7282-687a-42b7-903b-48e487d7694d",'
    b'"eventType":"net.authorize.payment.authcapture.created",'
    b'"eventDate":"2023-12-12T12:45:09.3492643Z",'
    b'"webhookId":"a585ea29-a370-495a-bd83-f9be7160f260",'
    b'"payload":{"responseCode":1,"avsResponse":"P","authAmount":1.10,'
    b'"merchantReferenceId":"2M4zHFzshYBudvgIZ11B","entityName":"transaction",'
    b'"id":"120011377052"}}'
)
ANET_SIGNATURE = (
    "sha512=8E3D41B0191A9A1E668FB729F350B73C6BBB81D676070FE7CFF001CA2543ABA9"
    "1BD16A4374A0F6FA4542659728C7DAF79D7EC901FEC582FC2DA3263A2D604DCF"
)


def test_authorizenet_accepts_the_signature_its_sandbox_made() -> None:
    verify_authorizenet([ANET_KEY], ANET_BODY, ANET_SIGNATURE)
    assert authorizenet_sign(ANET_KEY, ANET_BODY) == ANET_SIGNATURE


def test_authorizenet_key_is_the_signature_keys_text_not_the_bytes_it_spells() -> None:
    decoded = hmac.new(bytes.fromhex(ANET_KEY), ANET_BODY, hashlib.sha512).hexdigest().upper()
    assert "sha512=" + decoded != ANET_SIGNATURE


@pytest.mark.parametrize(
    "header",
    [ANET_SIGNATURE.lower(), "SHA512=" + ANET_SIGNATURE[7:], " " + ANET_SIGNATURE + " "],
)
def test_authorizenet_compares_the_hex_case_insensitively(header: str) -> None:
    verify_authorizenet([ANET_KEY], ANET_BODY, header)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, MISSING),
        ("", MISSING),
        (ANET_SIGNATURE[7:], MALFORMED),
        ("sha256=" + ANET_SIGNATURE[7:], MALFORMED),
        ("sha512=", MALFORMED),
        ("sha512=" + "0" * 128, MISMATCH),
    ],
)
def test_authorizenet_refuses_a_missing_malformed_or_wrong_header(
    header: str | None, reason: str
) -> None:
    with rejected(reason):
        verify_authorizenet([ANET_KEY], ANET_BODY, header)


def test_authorizenet_refuses_the_amount_reformatted() -> None:
    with rejected(MISMATCH):
        verify_authorizenet([ANET_KEY], ANET_BODY.replace(b"1.10", b"1.1"), ANET_SIGNATURE)


def test_authorizenet_accepts_either_of_two_active_keys() -> None:
    verify_authorizenet(["F" * 128, ANET_KEY], ANET_BODY, ANET_SIGNATURE)


# --- Stripe -------------------------------------------------------------------------

stripe_secrets = texts.map(lambda text: "whsec_" + text)
json_texts = st.text(max_size=200)


@EXAMPLES
@given(secret=stripe_secrets, text=json_texts)
def test_stripe_accepts_what_the_stripe_library_signs(secret: str, text: str) -> None:
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(text, secret, now)
    verify_stripe([secret], header, text.encode(), now)
    assert header == stripe_sign(secret, now, text.encode())


@EXAMPLES
@given(secret=stripe_secrets, text=json_texts)
def test_the_stripe_library_accepts_what_stripe_sign_produces(secret: str, text: str) -> None:
    header = stripe_sign(secret, int(time.time()), text.encode())
    assert stripe.WebhookSignature.verify_header(text, header, secret, STRIPE_TOLERANCE)


def test_stripe_accepts_one_matching_v1_among_several_and_ignores_other_schemes() -> None:
    body = b'{"id":"evt_1"}'
    good = stripe_sign("whsec_new", NOW, body)
    old = stripe_sign("whsec_old", NOW, body).rpartition("=")[2]
    header = f"t={NOW},v1={old},v0=ignored,{good.partition(',')[2]}"
    verify_stripe(["whsec_new"], header, body, NOW)
    assert stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_new")


@pytest.mark.parametrize("offset", [-STRIPE_TOLERANCE, STRIPE_TOLERANCE])
def test_stripe_accepts_a_timestamp_at_the_edge_of_the_tolerance(offset: int) -> None:
    body = b"{}"
    verify_stripe(["whsec_k"], stripe_sign("whsec_k", NOW, body), body, NOW + offset)


@pytest.mark.parametrize("offset", [-STRIPE_TOLERANCE - 1, STRIPE_TOLERANCE + 0.5, 10**6])
def test_stripe_refuses_a_timestamp_outside_the_tolerance(offset: float) -> None:
    body = b"{}"
    with rejected(STALE):
        verify_stripe(["whsec_k"], stripe_sign("whsec_k", NOW, body), body, NOW + offset)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, MISSING),
        ("v1=abc", MALFORMED),
        (f"t={NOW}", MALFORMED),
        (f"t={NOW},t={NOW},v1=abc", MALFORMED),
        ("t=soon,v1=abc", MALFORMED),
        (f"t={NOW},v1=abc", MISMATCH),
    ],
)
def test_stripe_refuses_missing_malformed_or_wrong_headers(header: str | None, reason: str) -> None:
    with rejected(reason):
        verify_stripe(["whsec_k"], header, b"{}", NOW)


# --- SendGrid -----------------------------------------------------------------------

# SendGrid's own published sample (the test vector of sendgrid-python's
# EventWebhook): a verification key, and a body SendGrid signed with its half.
SG_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GR"
    "qe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SG_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15T"
    "luLtEZtM="
)
SG_TIMESTAMP = "1600112502"
SG_BODY = (
    b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",'
    b'"smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",'
    b'"timestamp":1600112492}]\r\n'
)
SG_HEADERS = {SIGNATURE_HEADER: SG_SIGNATURE, TIMESTAMP_HEADER: SG_TIMESTAMP}
SG_SIGNED_AT = int(SG_TIMESTAMP)

LOCAL_PRIVATE, LOCAL_PUBLIC = SENDGRID_PRIVATE_KEY, SENDGRID_PUBLIC_KEY


def test_sendgrid_accepts_the_delivery_sendgrid_signed() -> None:
    verify_sendgrid([load_public_key(SG_PUBLIC_KEY)], SG_HEADERS, SG_BODY, SG_SIGNED_AT)
    # ... which SendGrid's own helper accepts too.
    helper = EventWebhook(SG_PUBLIC_KEY)
    assert helper.verify_signature(SG_BODY.decode(), SG_SIGNATURE, SG_TIMESTAMP)


def test_sendgrid_delivery_is_stale_five_minutes_after_it_was_signed() -> None:
    key = load_public_key(SG_PUBLIC_KEY)
    verify_sendgrid([key], SG_HEADERS, SG_BODY, SG_SIGNED_AT + SENDGRID_TOLERANCE)
    with rejected(STALE):
        verify_sendgrid([key], SG_HEADERS, SG_BODY, SG_SIGNED_AT + SENDGRID_TOLERANCE + 1)


@EXAMPLES
@given(text=json_texts, offset=st.integers(-SENDGRID_TOLERANCE, SENDGRID_TOLERANCE))
def test_sendgrids_helper_accepts_what_sendgrid_sign_produces(text: str, offset: int) -> None:
    headers = sendgrid_sign(LOCAL_PRIVATE, NOW, text.encode())
    helper = EventWebhook(LOCAL_PUBLIC)
    assert helper.verify_signature(text, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])
    verify_sendgrid([load_public_key(LOCAL_PUBLIC)], headers, text.encode(), NOW + offset)


@settings(max_examples=15, deadline=None)
@given(text=json_texts)
def test_sendgrid_accepts_what_an_independent_ecdsa_signer_signs(text: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    signature = private.sign(f"{NOW}{text}".encode(), ec.ECDSA(hashes.SHA256()))
    headers = {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: str(NOW)}
    verify_sendgrid([load_public_key(LOCAL_PUBLIC), load_public_key(public)], headers,
                    text.encode(), NOW)  # fmt: skip


def test_sendgrid_refuses_a_delivery_under_another_key() -> None:
    with rejected(MISMATCH):
        verify_sendgrid([load_public_key(LOCAL_PUBLIC)], SG_HEADERS, SG_BODY, SG_SIGNED_AT)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({TIMESTAMP_HEADER: SG_TIMESTAMP}, MISSING),
        ({SIGNATURE_HEADER: SG_SIGNATURE}, MISSING),
        ({**SG_HEADERS, SIGNATURE_HEADER: "not base64!"}, MALFORMED),
        ({**SG_HEADERS, TIMESTAMP_HEADER: "yesterday"}, MALFORMED),
        ({**SG_HEADERS, TIMESTAMP_HEADER: "-1600112502"}, MALFORMED),
    ],
)
def test_sendgrid_refuses_missing_or_malformed_headers(
    headers: dict[str, str], reason: str
) -> None:
    with rejected(reason):
        verify_sendgrid([load_public_key(SG_PUBLIC_KEY)], headers, SG_BODY, SG_SIGNED_AT)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "not base64",
        SG_PUBLIC_KEY[:-4],
        # An Ed25519 key is not a SendGrid verification key.
        "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=",
    ],
)
def test_sendgrid_verification_key_that_cannot_be_used_is_refused_at_start(key: str) -> None:
    with pytest.raises(ValueError, match="SendGrid verification key"):
        SendGrid([key], "HOOKLEDGER_SENDGRID_PUBLIC_KEY")


# --- configured Standard Webhooks sources, against svix -----------------------------


def source(secret: str = SOURCE_SECRET) -> StandardSource:
    return StandardSource(
        "returns", [secret], "[sources.returns].secret",
        order_path="data.order.id", type_path="type", fixed_type=None, time_path=None,
    )  # fmt: skip


@EXAMPLES
@given(msg_id=texts, text=json_texts)
def test_configured_source_accepts_what_svix_signs_under_svix_header_names(
    msg_id: str, text: str
) -> None:
    now = int(time.time())
    signature = SvixWebhook(SOURCE_SECRET).sign(msg_id, datetime.fromtimestamp(now, UTC), text)
    headers = {"svix-id": msg_id, "svix-timestamp": str(now), "svix-signature": signature}
    source().verify(headers, text.encode(), now)


@EXAMPLES
@given(msg_id=texts, text=json_texts)
def test_svix_accepts_what_standard_webhooks_sign_produces(msg_id: str, text: str) -> None:
    now = int(time.time())
    signature = standard_webhooks_sign(SOURCE_SECRET, msg_id, now, text.encode())
    headers = {"svix-id": msg_id, "svix-timestamp": str(now), "svix-signature": signature}
    SvixWebhook(SOURCE_SECRET).verify(text.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(SOURCE_SECRET).verify(text.encode() + b" ", headers)


def test_configured_source_with_a_secret_that_is_not_whsec_fails_to_build() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        source("whsec_not base64!")


# --- every scheme: no one-byte change gets through ----------------------------------


class Scheme:
    """A provider's signer and verifier, and the headers its signature covers."""

    def __init__(
        self, name: str, build: Callable[[list[str]], Adapter], secret: str, signed: tuple[str, ...]
    ) -> None:
        self.name = name
        self.build = build
        self.adapter = build([secret])
        self.signed = signed

    def sign(self, body: bytes) -> dict[str, str]:
        headers = signed(self.name, body, now=NOW)
        del headers["content-type"]
        return headers

    def verify(self, headers: dict[str, str], body: bytes) -> None:
        self.adapter.verify(headers, body, NOW)


def _schemes() -> list[Scheme]:
    def returns(secrets: list[str]) -> Adapter:
        return StandardSource(SOURCE, secrets, "[sources.returns].secret", order_path=None,
                              type_path="type", fixed_type=None, time_path=None)  # fmt: skip

    def built_in(kind: type[Adapter]) -> Callable[[list[str]], Adapter]:
        return lambda secrets: kind(secrets, f"HOOKLEDGER_{kind.__name__.upper()}_SECRET")

    return [
        Scheme("veriff", built_in(Veriff), VERIFF_SECRET, ("x-hmac-signature",)),
        Scheme("post-purchase", built_in(PostPurchase), POST_PURCHASE_SECRET,
               ("webhook-id", "webhook-timestamp", "webhook-signature")),
        Scheme(SOURCE, returns, SOURCE_SECRET, ("svix-id", "svix-timestamp", "svix-signature")),
        Scheme("shopify", built_in(Shopify), SHOPIFY_SECRET, ("x-shopify-hmac-sha256",)),
        Scheme("stripe", built_in(Stripe), STRIPE_SECRET, ("stripe-signature",)),
        Scheme("authorizenet", built_in(AuthorizeNet), AUTHORIZENET_SECRET,
               ("x-anet-signature",)),
        Scheme("sendgrid", built_in(SendGrid), SENDGRID_PUBLIC_KEY,
               (SIGNATURE_HEADER, TIMESTAMP_HEADER)),
    ]  # fmt: skip


SCHEMES = _schemes()


def _equivalent(scheme: Scheme, header: str, original: str, changed: str) -> bool:
    """Changes a scheme documents as no change: Authorize.net's hex in any case."""
    return scheme.name == "authorizenet" and changed.lower() == original.lower()


# Header values are text: a change is to another printable ASCII character, most
# often one of the kind signatures and timestamps are made of (the likeliest to slip by).
header_chars = st.sampled_from("0123456789abcdefABCDEF+/=,") | st.characters(
    min_codepoint=32, max_codepoint=126
)


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.name for s in SCHEMES])
@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(min_size=1, max_size=200),
    target=st.integers(min_value=0),
    position=st.integers(min_value=0),
    replacement=st.integers(0, 255),
    char=header_chars,
)
def test_any_one_byte_change_of_body_signed_header_or_signature_is_refused(
    scheme: Scheme, body: bytes, target: int, position: int, replacement: int, char: str
) -> None:
    headers = scheme.sign(body)
    scheme.verify(headers, body)  # unchanged: accepted
    targets = ["body", *scheme.signed]
    what = targets[target % len(targets)]
    if what == "body":
        index = position % len(body)
        assume(body[index] != replacement)
        changed_body = body[:index] + bytes([replacement]) + body[index + 1 :]
        with pytest.raises(SignatureRejected):
            scheme.verify(headers, changed_body)
        return
    original = headers[what]
    index = position % len(original)
    changed = original[:index] + char + original[index + 1 :]
    assume(changed != original and not _equivalent(scheme, what, original, changed))
    with pytest.raises(SignatureRejected):
        scheme.verify({**headers, what: changed}, body)


@pytest.mark.parametrize("scheme", SCHEMES, ids=[s.name for s in SCHEMES])
def test_every_scheme_without_a_secret_refuses_and_names_the_setting(scheme: Scheme) -> None:
    empty = scheme.build([])
    body = b"[]"
    with rejected(NO_SECRET) as caught:
        empty.verify(scheme.sign(body), body, NOW)
    assert empty.secret_setting in caught.value.detail
