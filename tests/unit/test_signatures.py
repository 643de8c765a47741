"""Signature schemes: Veriff's hex HMAC and Standard Webhooks, without a server."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.providers.base import Adapter
from api.providers.post_purchase import PostPurchase
from api.providers.veriff import Veriff
from api.rejections import SignatureRejected
from api.signatures import (
    STANDARD_WEBHOOKS_TOLERANCE,
    hmac_sha256_hex,
    standard_webhooks_key,
    standard_webhooks_sign,
    verify_hex_hmac,
    verify_standard_webhooks,
)

NOW = 1_700_000_000
EXAMPLES = settings(max_examples=60, deadline=None)

hex_secrets = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
)
keys = st.binary(min_size=1, max_size=64)
whsec_secrets = keys.map(lambda key: "whsec_" + base64.b64encode(key).decode())
bodies = st.binary(max_size=300)
msg_ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60
)


def sw_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_sign(secret, msg_id, timestamp, body),
    }


def change_one_byte(data: bytes, index: int, replacement: int) -> bytes:
    index %= len(data)
    assume(data[index] != replacement)
    return data[:index] + bytes([replacement]) + data[index + 1 :]


def change_one_char(text: str, index: int, replacement: str) -> str:
    index %= len(text)
    assume(text[index] != replacement)
    return text[:index] + replacement + text[index + 1 :]


# --- Veriff: lowercase hex HMAC-SHA256 of the raw body -------------------------------


def test_hmac_sha256_hex_matches_a_known_vector() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"
    assert hmac_sha256_hex("Jefe", b"what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


@EXAMPLES
@given(secret=hex_secrets, body=bodies)
def test_hex_hmac_accepts_the_signature_of_the_body(secret: str, body: bytes) -> None:
    verify_hex_hmac([secret], body, hmac_sha256_hex(secret, body))


@EXAMPLES
@given(
    secret=hex_secrets,
    body=bodies.filter(bool),
    index=st.integers(min_value=0),
    replacement=st.integers(0, 255),
)
def test_hex_hmac_rejects_any_one_byte_change_of_the_body(
    secret: str, body: bytes, index: int, replacement: int
) -> None:
    signature = hmac_sha256_hex(secret, body)
    changed = change_one_byte(body, index, replacement)
    with pytest.raises(SignatureRejected):
        verify_hex_hmac([secret], changed, signature)


@EXAMPLES
@given(
    secret=hex_secrets,
    body=bodies,
    index=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=32, max_codepoint=126),
)
def test_hex_hmac_rejects_any_one_character_change_of_the_signature(
    secret: str, body: bytes, index: int, replacement: str
) -> None:
    signature = change_one_char(hmac_sha256_hex(secret, body), index, replacement)
    with pytest.raises(SignatureRejected):
        verify_hex_hmac([secret], body, signature)


@EXAMPLES
@given(
    secrets=st.lists(hex_secrets, min_size=1, max_size=4, unique=True),
    pick=st.integers(min_value=0),
    body=bodies,
)
def test_hex_hmac_accepts_a_signature_under_any_active_secret(
    secrets: list[str], pick: int, body: bytes
) -> None:
    signer = secrets[pick % len(secrets)]
    verify_hex_hmac(secrets, body, hmac_sha256_hex(signer, body))


@EXAMPLES
@given(secrets=st.lists(hex_secrets, min_size=1, max_size=4, unique=True), other=hex_secrets)
def test_hex_hmac_rejects_a_signature_under_a_retired_secret(
    secrets: list[str], other: str
) -> None:
    assume(other not in secrets)
    body = b'{"id":"x"}'
    with pytest.raises(SignatureRejected):
        verify_hex_hmac(secrets, body, hmac_sha256_hex(other, body))


@pytest.mark.parametrize("signature", [None, ""])
def test_hex_hmac_rejects_a_missing_signature(signature: str | None) -> None:
    with pytest.raises(SignatureRejected, match="missing"):
        verify_hex_hmac(["secret"], b"{}", signature)


def test_hex_hmac_tolerates_surrounding_whitespace_in_the_header() -> None:
    verify_hex_hmac(["secret"], b"{}", "  " + hmac_sha256_hex("secret", b"{}") + "\n")


def test_veriff_adapter_reads_x_hmac_signature_and_falls_back_to_x_signature() -> None:
    body = b'{"id":"x","status":"approved"}'
    adapter = Veriff(["secret"], "HOOKLEDGER_VERIFF_SECRET")
    good = hmac_sha256_hex("secret", body)
    adapter.verify({"x-hmac-signature": good}, body, NOW)
    adapter.verify({"x-signature": good}, body, NOW)
    with pytest.raises(SignatureRejected):
        adapter.verify({"x-hmac-signature": "0" * 64}, body, NOW)
    with pytest.raises(SignatureRejected):
        adapter.verify({}, body, NOW)


# --- no secret configured -----------------------------------------------------------


@pytest.mark.parametrize(
    ("adapter", "setting"),
    [
        (Veriff((), "HOOKLEDGER_VERIFF_SECRET"), "HOOKLEDGER_VERIFF_SECRET"),
        (PostPurchase((), "HOOKLEDGER_POST_PURCHASE_SECRET"), "HOOKLEDGER_POST_PURCHASE_SECRET"),
    ],
)
def test_adapter_without_secret_rejects_and_names_the_setting(
    adapter: Adapter, setting: str
) -> None:
    body = b'{"event":"order.created","orderId":"1"}'
    headers = {
        "x-hmac-signature": hmac_sha256_hex("", body),
        **sw_headers("whsec_" + base64.b64encode(b"k").decode(), "msg_1", NOW, body),
    }
    with pytest.raises(SignatureRejected) as caught:
        adapter.verify(headers, body, NOW)
    assert setting in caught.value.detail
    assert adapter.name in caught.value.detail


# --- Standard Webhooks --------------------------------------------------------------


def test_standard_webhooks_sign_matches_the_specification_example() -> None:
    # The example from the Standard Webhooks specification / reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signature = standard_webhooks_sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@EXAMPLES
@given(secret=whsec_secrets, msg_id=msg_ids, body=bodies)
def test_standard_webhooks_accepts_the_signature_of_id_timestamp_and_body(
    secret: str, msg_id: str, body: bytes
) -> None:
    verify_standard_webhooks([secret], sw_headers(secret, msg_id, NOW, body), body, NOW)


@EXAMPLES
@given(
    secret=whsec_secrets,
    msg_id=msg_ids,
    body=bodies.filter(bool),
    index=st.integers(min_value=0),
    replacement=st.integers(0, 255),
)
def test_standard_webhooks_rejects_any_one_byte_change_of_the_body(
    secret: str, msg_id: str, body: bytes, index: int, replacement: int
) -> None:
    headers = sw_headers(secret, msg_id, NOW, body)
    with pytest.raises(SignatureRejected):
        verify_standard_webhooks([secret], headers, change_one_byte(body, index, replacement), NOW)


@pytest.mark.parametrize("header", ["webhook-timestamp", "webhook-id", "webhook-signature"])
@EXAMPLES
@given(
    secret=whsec_secrets,
    msg_id=msg_ids,
    index=st.integers(min_value=0),
    replacement=st.characters(min_codepoint=32, max_codepoint=126),
)
def test_standard_webhooks_rejects_any_one_character_change_of_a_signed_header(
    header: str, secret: str, msg_id: str, index: int, replacement: str
) -> None:
    body = b'{"event":"order.created"}'
    headers = sw_headers(secret, msg_id, NOW, body)
    headers[header] = change_one_char(headers[header], index, replacement)
    with pytest.raises(SignatureRejected):
        verify_standard_webhooks([secret], headers, body, NOW)


@EXAMPLES
@given(
    secrets=st.lists(whsec_secrets, min_size=1, max_size=4, unique=True),
    pick=st.integers(min_value=0),
    msg_id=msg_ids,
)
def test_standard_webhooks_accepts_a_signature_under_any_active_secret(
    secrets: list[str], pick: int, msg_id: str
) -> None:
    body = b'{"event":"order.created","orderId":"1"}'
    signer = secrets[pick % len(secrets)]
    verify_standard_webhooks(secrets, sw_headers(signer, msg_id, NOW, body), body, NOW)


@EXAMPLES
@given(secrets=st.lists(whsec_secrets, min_size=1, max_size=4, unique=True), other=keys)
def test_standard_webhooks_rejects_a_signature_under_a_retired_secret(
    secrets: list[str], other: bytes
) -> None:
    assume(all(standard_webhooks_key(secret) != other for secret in secrets))
    retired = "whsec_" + base64.b64encode(other).decode()
    body = b"{}"
    with pytest.raises(SignatureRejected):
        verify_standard_webhooks(secrets, sw_headers(retired, "msg_1", NOW, body), body, NOW)


@EXAMPLES
@given(offset=st.integers(-STANDARD_WEBHOOKS_TOLERANCE, STANDARD_WEBHOOKS_TOLERANCE))
def test_standard_webhooks_accepts_timestamps_within_tolerance(offset: int) -> None:
    secret = "whsec_" + base64.b64encode(b"tolerance").decode()
    body = b"{}"
    verify_standard_webhooks([secret], sw_headers(secret, "msg_1", NOW + offset, body), body, NOW)


@EXAMPLES
@given(age=st.floats(STANDARD_WEBHOOKS_TOLERANCE + 0.001, 10**9))
def test_standard_webhooks_rejects_timestamp_older_than_tolerance(age: float) -> None:
    secret = "whsec_" + base64.b64encode(b"tolerance").decode()
    body = b"{}"
    headers = sw_headers(secret, "msg_1", NOW, body)
    with pytest.raises(SignatureRejected, match="away from now"):
        verify_standard_webhooks([secret], headers, body, NOW + age)


@EXAMPLES
@given(lead=st.floats(STANDARD_WEBHOOKS_TOLERANCE + 0.001, 10**9))
def test_standard_webhooks_rejects_timestamp_newer_than_tolerance(lead: float) -> None:
    secret = "whsec_" + base64.b64encode(b"tolerance").decode()
    body = b"{}"
    headers = sw_headers(secret, "msg_1", NOW, body)
    with pytest.raises(SignatureRejected, match="away from now"):
        verify_standard_webhooks([secret], headers, body, NOW - lead)


@pytest.mark.parametrize("offset", [-300, 300])
def test_standard_webhooks_accepts_timestamp_exactly_at_tolerance(offset: int) -> None:
    secret = "whsec_" + base64.b64encode(b"tolerance").decode()
    body = b"{}"
    verify_standard_webhooks([secret], sw_headers(secret, "m", NOW, body), body, NOW + offset)


@pytest.mark.parametrize("offset", [-301, -300.5, 300.5, 301])
def test_standard_webhooks_rejects_timestamp_just_past_tolerance(offset: float) -> None:
    secret = "whsec_" + base64.b64encode(b"tolerance").decode()
    body = b"{}"
    with pytest.raises(SignatureRejected, match="away from now"):
        verify_standard_webhooks([secret], sw_headers(secret, "m", NOW, body), body, NOW + offset)


@EXAMPLES
@given(
    secret=whsec_secrets,
    decoys=st.lists(keys, min_size=1, max_size=4),
    position=st.integers(min_value=0),
    other_versions=st.lists(st.sampled_from(["v1a,", "v2,", "v1x"]), max_size=2),
)
def test_standard_webhooks_accepts_when_one_of_several_v1_entries_matches(
    secret: str, decoys: list[bytes], position: int, other_versions: list[str]
) -> None:
    body = b'{"event":"order.created"}'
    good = standard_webhooks_sign(secret, "msg_1", NOW, body)
    entries = ["v1," + base64.b64encode(decoy).decode() for decoy in decoys]
    entries += [prefix + good[3:] for prefix in other_versions]
    assume(good not in entries)

    def headers(signature: str) -> dict[str, str]:
        return {
            "webhook-id": "msg_1",
            "webhook-timestamp": str(NOW),
            "webhook-signature": signature,
        }

    with pytest.raises(SignatureRejected):
        verify_standard_webhooks([secret], headers(" ".join(entries)), body, NOW)
    entries.insert(position % (len(entries) + 1), good)
    verify_standard_webhooks([secret], headers(" ".join(entries)), body, NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_rejects_a_missing_header(missing: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k").decode()
    headers = sw_headers(secret, "msg_1", NOW, b"{}")
    del headers[missing]
    with pytest.raises(SignatureRejected, match="missing"):
        verify_standard_webhooks([secret], headers, b"{}", NOW)


@pytest.mark.parametrize("stamp", ["soon", "1700000000.0", "", "0x6553f100"])
def test_standard_webhooks_rejects_a_timestamp_that_is_not_an_integer(stamp: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k").decode()
    headers = sw_headers(secret, "msg_1", NOW, b"{}")
    headers["webhook-timestamp"] = stamp
    with pytest.raises(SignatureRejected):
        verify_standard_webhooks([secret], headers, b"{}", NOW)


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_a", "plain-text"])
def test_standard_webhooks_key_refuses_a_secret_that_is_not_base64(secret: str) -> None:
    # (Base64 without its padding is accepted, as the reference library does.)
    with pytest.raises(ValueError, match="whsec_"):
        standard_webhooks_key(secret)


def test_standard_webhooks_key_accepts_the_secret_with_or_without_prefix() -> None:
    encoded = base64.b64encode(b"raw key bytes").decode()
    assert standard_webhooks_key("whsec_" + encoded) == b"raw key bytes"
    assert standard_webhooks_key(encoded) == b"raw key bytes"


def test_post_purchase_adapter_verifies_standard_webhooks_headers() -> None:
    secret = "whsec_" + base64.b64encode(b"post-purchase").decode()
    adapter = PostPurchase([secret], "HOOKLEDGER_POST_PURCHASE_SECRET")
    body = b'{"event":"order.created","orderId":"1"}'
    adapter.verify(sw_headers(secret, "msg_1", NOW, body), body, NOW)
    with pytest.raises(SignatureRejected):
        adapter.verify(sw_headers(secret, "msg_1", NOW, body), body + b" ", NOW)


# --- cross-check with the official standardwebhooks library -------------------------

body_texts = st.text(max_size=200)


@settings(max_examples=40, deadline=None)
@given(key=keys, msg_id=msg_ids, text=body_texts)
def test_standard_webhooks_accepts_what_the_official_library_signs(
    key: bytes, msg_id: str, text: str
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    timestamp = int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), text)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    verify_standard_webhooks([secret], headers, text.encode(), time.time())
    assert signature == standard_webhooks_sign(secret, msg_id, timestamp, text.encode())


@settings(max_examples=40, deadline=None)
@given(key=keys, msg_id=msg_ids, text=body_texts)
def test_official_library_accepts_what_standard_webhooks_sign_produces(
    key: bytes, msg_id: str, text: str
) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    timestamp = int(time.time())
    headers = sw_headers(secret, msg_id, timestamp, text.encode())
    Webhook(secret).verify(text.encode(), headers, json_parse=False)


@settings(max_examples=40, deadline=None)
@given(key=keys, other=keys, msg_id=msg_ids)
def test_official_library_and_ours_agree_on_a_wrong_secret(
    key: bytes, other: bytes, msg_id: str
) -> None:
    assume(key != other)
    secret = "whsec_" + base64.b64encode(key).decode()
    wrong = "whsec_" + base64.b64encode(other).decode()
    timestamp = int(time.time())
    body = b'{"event":"order.created"}'
    headers = sw_headers(wrong, msg_id, timestamp, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers, json_parse=False)
    with pytest.raises(SignatureRejected):
        verify_standard_webhooks([secret], headers, body, time.time())


def test_standard_webhooks_key_accepts_base64_without_padding() -> None:
    padded = "whsec_" + base64.b64encode(b"sixteen-byte-key!").decode()
    assert padded.endswith("=")
    assert standard_webhooks_key(padded.rstrip("=")) == b"sixteen-byte-key!"
