"""Building and judging the providers' requests, and the actions' settings,
without a network or a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookledger.settings import Settings, SettingsError, from_env
from hookledger.wiring import action_settings
from scheduler.actions.model import EMAIL_EXPIRED, EMAIL_REMINDER, ActionRequest
from scheduler.actions.payments import AuthorizeNet
from scheduler.actions.sendgrid import SendGrid, compose
from tests.fake_provider import BOM, anet_answer

DEFAULTS = action_settings(Settings())
GATEWAY = AuthorizeNet(DEFAULTS)


def email(kind: str) -> ActionRequest:
    params = {"to": "ada@example.com", "due_at": "2026-01-05T13:00:00+01:00",
              "order_total": "49.90", "currency": "EUR"}  # fmt: skip
    return ActionRequest.for_trigger(kind, "1001", "countdown.x:1001", params)


def test_the_reminder_says_when_and_where_to_verify() -> None:
    subject, text = compose(email(EMAIL_REMINDER), "https://shop.test/verify/{order_id}")
    assert "1001" in subject
    assert "2026-01-05 12:00 UTC" in text and "https://shop.test/verify/1001" in text
    assert "49.90 EUR" in text


def test_the_expiry_email_says_the_order_was_cancelled_and_refunded() -> None:
    subject, text = compose(email(EMAIL_EXPIRED), "https://shop.test/verify")
    assert "cancelled" in subject and "refunded" in subject
    assert "has been cancelled" in text and "refunded" in text


def test_an_unknown_action_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action kind"):
        ActionRequest("x:1", "sms", "1001", "1", {})


def test_a_missing_api_key_makes_an_email_unsendable() -> None:
    prepared = SendGrid(DEFAULTS).prepare(email(EMAIL_REMINDER))
    assert prepared.missing is not None and "HOOKLEDGER_SENDGRID_API_KEY" in prepared.missing


@pytest.mark.parametrize(
    ("status", "body", "result"),
    [
        (200, anet_answer("Ok"), "succeeded"),
        (200, anet_answer("Ok").removeprefix(BOM), "succeeded"),
        (200, anet_answer("Error", "54"), "give_up"),
        (200, b"<html>gateway timeout</html>", "retry"),
        (503, b"", "retry"),
        (429, b"", "retry"),
        (401, b"", "give_up"),
    ],
)
def test_the_gateway_answer_decides_success_retry_or_giving_up(
    status: int, body: bytes, result: str
) -> None:
    assert GATEWAY.judge(status, body).result == result


def test_a_duplicate_refund_refusal_tells_the_operator_to_check_the_gateway() -> None:
    verdict = GATEWAY.judge(200, anet_answer("Error", "11"))
    assert verdict.result == "give_up"
    assert verdict.error is not None and "earlier attempt probably went through" in verdict.error


def test_action_settings_come_from_the_environment_with_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "sendgrid").write_text("SG.from-file\n")
    settings = from_env({
        "HOOKLEDGER_SENDGRID_API_KEY": f"file:{tmp_path / 'sendgrid'}",
        "HOOKLEDGER_ACTION_BACKOFF_SECONDS": "0.5",
        "HOOKLEDGER_ACTION_MAX_ATTEMPTS": "7",
        "HOOKLEDGER_SAFE_MODE": "false",
    })  # fmt: skip
    actions = action_settings(settings)
    assert actions.sendgrid_api_key == "SG.from-file"
    assert (actions.backoff_seconds, actions.max_attempts, actions.safe_mode) == (0.5, 7, False)
    assert action_settings(from_env({})).safe_mode is True


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_a_backoff_that_is_not_a_positive_number_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="HOOKLEDGER_ACTION_BACKOFF_SECONDS"):
        from_env({"HOOKLEDGER_ACTION_BACKOFF_SECONDS": value})
