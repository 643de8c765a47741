"""Refunds through the payment gateway: Authorize.net's JSON API,
``createTransactionRequest`` with a ``refundTransaction``.

Authorize.net has no idempotency key either. The action's key goes as
``refId`` (at most 20 characters: a digest of the key, recorded next to the key
in the outcome), which the gateway echoes back. What keeps a repeated refund
from being paid twice is the gateway's duplicate window: an identical refund
(same card, amount and invoice number, the order id) within
``DUPLICATE_WINDOW_SECONDS`` is refused with error 11.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from scheduler.actions.config import ActionSettings
from scheduler.actions.http import (
    ERROR_EXCERPT_CHARS,
    HttpRequest,
    Prepared,
    Verdict,
    excerpt,
    judge_status,
)
from scheduler.actions.model import ActionRequest

PATH = "/xml/v1/request.api"
REF_ID_CHARS = 20
INVOICE_CHARS = 20
# The longest window Authorize.net accepts (8 hours): it outlasts every automatic retry.
DUPLICATE_WINDOW_SECONDS = 28800
_BOM = b"\xef\xbb\xbf"
_LAST4 = re.compile(r"^\d{4}$")


def ref_id(key: str) -> str:
    """The idempotency key as Authorize.net's 20-character ``refId``."""
    return hashlib.sha256(key.encode()).hexdigest()[:REF_ID_CHARS]


class AuthorizeNet:
    """Builds and judges the refund of an order's settled transaction."""

    provider = "authorizenet"  # its name in the outbound metrics

    def __init__(self, settings: ActionSettings) -> None:
        self._settings = settings

    def prepare(self, action: ActionRequest) -> Prepared:
        settings = self._settings
        params = action.params
        amount = params.get("amount")
        last4 = params.get("card_last4")
        transaction_id = params.get("transaction_id")
        # Authorize.net's JSON is translated to its XML schema: keys must come
        # in the schema's order.
        body: dict[str, Any] = {
            "createTransactionRequest": {
                "merchantAuthentication": {
                    "name": settings.authorizenet_login_id,
                    "transactionKey": settings.authorizenet_transaction_key,
                },
                "refId": ref_id(action.key),
                "transactionRequest": {
                    "transactionType": "refundTransaction",
                    "amount": amount,
                    "payment": {
                        "creditCard": {
                            "cardNumber": f"XXXX{last4}" if last4 else None,
                            "expirationDate": "XXXX",
                        }
                    },
                    "refTransId": transaction_id,
                    "order": {"invoiceNumber": action.order_id[:INVOICE_CHARS]},
                    "transactionSettings": {
                        "setting": [
                            {
                                "settingName": "duplicateWindow",
                                "settingValue": str(DUPLICATE_WINDOW_SECONDS),
                            }
                        ]
                    },
                },
            }
        }
        request = HttpRequest(
            method="POST",
            url=settings.payments_base_url.rstrip("/") + PATH,
            headers={"Content-Type": "application/json"},
            body=body,
        )
        return Prepared(request, sent_key=ref_id(action.key), missing=self._missing(params))

    def _missing(self, params: dict[str, Any]) -> str | None:
        if not params.get("transaction_id"):
            return "no transaction id to refund"
        if not _positive_decimal(params.get("amount")):
            return f"no valid refund amount (got {params.get('amount')!r})"
        if not (isinstance(params.get("card_last4"), str) and _LAST4.match(params["card_last4"])):
            return "no last four card digits (Authorize.net needs them for a refund)"
        settings = self._settings
        if not (settings.authorizenet_login_id and settings.authorizenet_transaction_key):
            return (
                "no Authorize.net credentials configured (HOOKLEDGER_AUTHORIZENET_LOGIN_ID, "
                "HOOKLEDGER_AUTHORIZENET_TRANSACTION_KEY)"
            )
        return None

    def judge(self, status: int, body: bytes) -> Verdict:
        """Authorize.net answers 200 even when it refuses: only ``resultCode`` "Ok"
        with an approved transaction (response code 1) is a refund."""
        if not 200 <= status < 300:
            return judge_status(status, body)
        try:
            doc = msgspec.json.decode(body.removeprefix(_BOM))
        except msgspec.DecodeError:
            doc = None
        if not isinstance(doc, dict):
            # A proxy's page, a cut-off body: the refund's fate is unknown, and
            # the duplicate window makes asking again safe.
            return Verdict(
                "retry",
                error=f"unreadable answer from Authorize.net: {excerpt(body, ERROR_EXCERPT_CHARS)}",
                cause="unreadable answer",
            )
        messages = doc.get("messages") or {}
        transaction = doc.get("transactionResponse") or {}
        if messages.get("resultCode") == "Ok" and transaction.get("responseCode", "1") == "1":
            return Verdict("succeeded")
        return Verdict("give_up", error=_refusal(messages, transaction), cause="gateway refused")


def _refusal(messages: dict[str, Any], transaction: dict[str, Any]) -> str:
    parts = [f"{m.get('code')}: {m.get('text')}" for m in messages.get("message") or []]
    codes = set()
    for error in transaction.get("errors") or []:
        codes.add(str(error.get("errorCode")))
        parts.append(f"transaction error {error.get('errorCode')}: {error.get('errorText')}")
    text = "; ".join(parts) or "no message"
    result = messages.get("resultCode") or "answer"
    detail = f"Authorize.net {result} ({text}); retrying cannot help"
    if "11" in codes:
        detail += (
            ". Error 11 means an identical refund was accepted within the duplicate window:"
            " an earlier attempt probably went through; check the gateway before retrying"
        )
    return detail


def _positive_decimal(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite() and Decimal(value) > 0
    except InvalidOperation:
        return False
