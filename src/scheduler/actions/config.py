"""What the senders and the worker need to know, secrets already resolved."""

from __future__ import annotations

import msgspec


class ActionSettings(msgspec.Struct, frozen=True):
    """Built by the composition root from hookledger's settings (where the
    defaults are), secrets resolved.

    With ``safe_mode`` nothing is ever sent: each action is recorded as the
    request it would have sent. ``backoff_seconds`` is the first retry's delay;
    each later one doubles, up to ``backoff_max_seconds``.
    """

    safe_mode: bool
    sendgrid_api_key: str
    sendgrid_base_url: str
    email_from: str
    verification_url: str
    payments_base_url: str
    authorizenet_login_id: str
    authorizenet_transaction_key: str
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    # The circuit breaker of each outbound provider (see scheduler.actions.breaker).
    breaker_failures: int = 5
    breaker_cool_down_seconds: float = 30.0
