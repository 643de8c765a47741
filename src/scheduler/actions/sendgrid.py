"""Customer emails through SendGrid's v3 Mail Send API.

SendGrid has no idempotency header: the action's key travels in ``custom_args``
(``hookledger_action``, with ``order_id``), which SendGrid hands back on every
event webhook about the message, so the inbound SendGrid adapter can tie a
delivery, bounce or open to the action that sent it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scheduler.actions.config import ActionSettings
from scheduler.actions.http import HttpRequest, Prepared, Verdict, judge_status
from scheduler.actions.model import EMAIL_REMINDER, ActionRequest

PATH = "/v3/mail/send"
# The custom_args key that carries the idempotency key (a contract with the
# inbound SendGrid adapter).
ACTION_ARG = "hookledger_action"


class SendGrid:
    """Builds and judges ``POST /v3/mail/send`` for the reminder and expiry emails."""

    provider = "sendgrid"  # its name in the outbound metrics

    def __init__(self, settings: ActionSettings) -> None:
        self._settings = settings

    def prepare(self, action: ActionRequest) -> Prepared:
        settings = self._settings
        to = action.params.get("to") or None
        subject, text = compose(action, settings.verification_url)
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": to}]}],
            "from": {"email": settings.email_from},
            "subject": subject,
            "content": [{"type": "text/plain", "value": text}],
            # SendGrid takes string values only.
            "custom_args": {"order_id": action.order_id, ACTION_ARG: action.key},
        }
        request = HttpRequest(
            method="POST",
            url=settings.sendgrid_base_url.rstrip("/") + PATH,
            headers={
                "Authorization": f"Bearer {settings.sendgrid_api_key}",
                "Content-Type": "application/json",
            },
            body=body,
        )
        missing = None
        if to is None:
            missing = "no email address for the customer (none given, or erased)"
        elif not settings.sendgrid_api_key:
            missing = "no SendGrid API key configured (HOOKLEDGER_SENDGRID_API_KEY)"
        return Prepared(request, sent_key=action.key, missing=missing)

    def judge(self, status: int, body: bytes) -> Verdict:
        # SendGrid answers 202 Accepted once it has queued the message.
        return judge_status(status, body)


def compose(action: ActionRequest, verification_url: str) -> tuple[str, str]:
    """The subject and plain text of an action's email."""
    params = action.params
    order = action.order_id
    due = _readable_time(params.get("due_at"))
    total = _money(params.get("order_total"), params.get("currency"))
    if action.kind == EMAIL_REMINDER:
        link = verification_url.replace("{order_id}", order)
        return (
            f"Please verify your identity for order {order}",
            f"Hello,\n\n"
            f"before we can complete your order {order}{total}, we need to verify "
            f"your identity. Please complete the identity check by {due}:\n\n"
            f"{link}\n\n"
            f"If the check is not completed by then, the order will be cancelled "
            f"and your payment refunded.\n",
        )
    return (
        f"Your order {order} was cancelled and refunded",
        f"Hello,\n\n"
        f"the identity check for your order {order} was not completed by {due}, "
        f"so the order has been cancelled and your payment{total} has been "
        f"refunded to the card you paid with. Your bank may take a few days to "
        f"show the refund.\n",
    )


def _readable_time(value: Any) -> str:
    if not isinstance(value, str):
        return "the deadline"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _money(amount: Any, currency: Any) -> str:
    if amount is None:
        return ""
    return f" ({amount} {currency})" if currency else f" ({amount})"
