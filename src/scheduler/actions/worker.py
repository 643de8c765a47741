"""The action worker: claims due actions, performs them (or records them as dry
runs in safe mode), records every attempt's outcome in the ledger, and only then
moves the action's row on."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable

import httpx
import msgspec

from events.appender import Appender
from events.connector import Database, Session
from events.errors import HookledgerError, Unavailable
from events.model import NewEvent
from events.retry import retry_delay
from events.wakeup import Wakeup
from scheduler.actions.breaker import CLOSED, CircuitBreaker
from scheduler.actions.config import ActionSettings
from scheduler.actions.http import Prepared, Sender, Verdict, send
from scheduler.actions.model import EMAIL_EXPIRED, EMAIL_REMINDER, REFUND, ClaimedAction
from scheduler.actions.outcome import (
    STATE_AFTER,
    Outcome,
    final_event_ids,
    outcome_event,
)
from scheduler.actions.payments import AuthorizeNet
from scheduler.actions.queue import (
    CHANNEL,
    Finish,
    claim_due,
    claim_key,
    finish,
    record_breakers,
    recorded_outcomes,
    seconds_to_next_due,
)
from scheduler.actions.sendgrid import SendGrid

log = logging.getLogger(__name__)

# How long past a cool-down and a send's timeout a written breaker state is
# trusted by the other processes, unless written again.
BREAKER_GRACE_SECONDS = 60.0

ActionObserver = Callable[[str, str], None]
"""Called once per recorded attempt with the action's kind and outcome."""

CallObserver = Callable[[str, str, float], None]
"""Called once per request sent with the provider, its result (``succeeded``,
``retry``, ``give_up``) and the seconds it took."""


class _Attempt(msgspec.Struct, frozen=True):
    claimed: ClaimedAction
    outcome: Outcome
    event: NewEvent
    finish: Finish
    cause: str


class ActionWorker:
    """Performs queued actions; any number of workers may run side by side.

    A claimed batch stays locked (``FOR UPDATE SKIP LOCKED``) while it is
    performed, so no two workers perform the same action. If a worker dies
    before its rows are updated, the rows return to pending and the actions run
    again with the same idempotency keys; an attempt whose outcome the ledger
    already holds is not repeated, and a repeated failure's event is absorbed by
    the ledger's unique key.
    """

    def __init__(
        self,
        db: Database,
        appender: Appender,
        settings: ActionSettings,
        *,
        client: httpx.AsyncClient | None = None,
        observe: ActionObserver | None = None,
        observe_call: CallObserver | None = None,
        observe_breaker: Callable[[str, str], None] | None = None,
        batch_size: int = 200,
        concurrency: int = 16,
        poll_interval: float = 1.0,
    ) -> None:
        self._db = db
        self._appender = appender
        self._settings = settings
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_seconds)
        self._observe = observe
        self._observe_call = observe_call
        self._observe_breaker = observe_breaker
        self.breakers: dict[str, CircuitBreaker] = {}
        # What this process last wrote of its breakers (the intake reads them).
        self._recorded_states: dict[str, str] = {}
        self._recorded_at = 0.0
        self._holder = f"{socket.gethostname()}:{os.getpid()}"[:200]
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._poll_interval = poll_interval
        self._senders: dict[str, Sender] = {}
        self.reconfigure(settings)

    def reconfigure(self, settings: ActionSettings) -> None:
        """Take new settings (rotated credentials) for the next attempts."""
        self._settings = settings
        sendgrid, payments = SendGrid(settings), AuthorizeNet(settings)
        self._senders = {EMAIL_REMINDER: sendgrid, EMAIL_EXPIRED: sendgrid, REFUND: payments}
        for sender in (sendgrid, payments):
            if sender.provider not in self.breakers:
                self.breakers[sender.provider] = CircuitBreaker(
                    sender.provider,
                    settings.breaker_failures,
                    settings.breaker_cool_down_seconds,
                    self._observe_breaker,
                )

    async def close(self) -> None:
        """Close the HTTP client if the worker made it."""
        if self._own_client:
            await self._client.aclose()

    async def run(self) -> None:
        """Perform due actions until cancelled. Sleeps until the next retry is
        due, an enqueue's NOTIFY arrives, or ``poll_interval`` passes (a lost
        notification delays an action, never skips it)."""
        wakeup = Wakeup(self._db, CHANNEL)
        try:
            while True:
                await wakeup.listen()
                timeout = self._poll_interval
                try:
                    claimed = await self.run_once()
                    if claimed >= self._batch_size:
                        continue
                    due = await seconds_to_next_due(self._db)
                    # Due already after a batch of ours: a retry this batch set came
                    # due while it finished (short backoffs); take it now rather than
                    # after a whole poll interval.
                    if claimed and due is not None and due <= 0:
                        continue
                    # Due already after claiming nothing means another worker holds
                    # it: poll, don't spin.
                    if due is not None and due > 0:
                        timeout = min(timeout, due)
                except Unavailable as exc:
                    log.warning("action worker waits for the database", extra={"error": exc.detail})
                except HookledgerError as exc:
                    # Keep going: the batch's rows were not moved on and will be
                    # claimed again; the log says why it failed. Anything else is a
                    # bug: it ends the job, and its supervisor restarts it.
                    log.error("action batch failed", extra={"error": exc.detail})
                await wakeup.wait(timeout)
        finally:
            await wakeup.close()

    async def run_once(self, *, key: str | None = None) -> int:
        """Claim one batch of due actions (or the pending action ``key``, due or
        not), perform it, and return how many actions were claimed."""
        failures: list[BaseException] = []
        async with self._db.transaction() as session:
            if key is None:
                claimed = await claim_due(session, self._batch_size)
            else:
                claimed = await claim_key(session, key)
            if not claimed:
                return 0
            ended = await self._already_ended(session, claimed)
            tried = await asyncio.gather(
                *(self._attempt(c) for c in claimed if c.request.key not in ended)
            )
            # Held by an open breaker: back to pending, attempts untouched, no event.
            held = [t for t in tried if isinstance(t, Finish)]
            attempts = [t for t in tried if isinstance(t, _Attempt)]
            appended = await asyncio.gather(
                *(self._appender.append(a.event) for a in attempts), return_exceptions=True
            )
            recorded: list[_Attempt] = []
            for attempt, result in zip(attempts, appended, strict=True):
                if isinstance(result, BaseException):
                    failures.append(result)
                else:
                    recorded.append(attempt)
            # Only outcomes now durable in the ledger move their rows on; the
            # others stay pending and run again.
            await finish(session, [*ended.values(), *held, *(a.finish for a in recorded)])
            await self._record_breakers(session)
        for attempt in recorded:
            self._report(attempt)
        if failures:
            raise failures[0]
        return len(claimed)

    async def _record_breakers(self, session: Session) -> None:
        """Share the breakers that changed since last written: /__selftest and
        /metrics are answered by other processes."""
        keep = (self._settings.breaker_cool_down_seconds + self._settings.timeout_seconds
                + BREAKER_GRACE_SECONDS)  # fmt: skip
        # A breaker that stays open (open, probe, open again within one batch)
        # does not change as written: it is written again before it expires.
        stale = time.monotonic() - self._recorded_at > keep / 2
        changed = {p: b.state for p, b in self.breakers.items()
                   if self._recorded_states.get(p, CLOSED) != b.state
                   or (stale and b.state != CLOSED)}  # fmt: skip
        if not changed:
            return
        await record_breakers(session, self._holder, changed, keep)
        self._recorded_states.update(changed)
        self._recorded_at = time.monotonic()

    async def _already_ended(
        self, session: Session, claimed: list[ClaimedAction]
    ) -> dict[str, Finish]:
        """Actions whose outcome this round is already in the ledger: a worker
        died after recording it. They are not performed again, only moved on."""
        wanted = {ident: (c, state) for c in claimed for ident, state in final_event_ids(c).items()}
        ended: dict[str, Finish] = {}
        for ident, error in (await recorded_outcomes(session, list(wanted))).items():
            c, state = wanted[ident]
            kept_error = error if state == "dead" else None
            ended[c.request.key] = Finish(c.request.key, state, c.attempts + 1, error=kept_error)
        return ended

    async def _attempt(self, claimed: ClaimedAction) -> _Attempt | Finish:
        action = claimed.request
        attempt = claimed.attempts + 1
        sender = self._senders[action.kind]
        prepared = sender.prepare(action)
        if self._settings.safe_mode:
            error = f"would not be sent: {prepared.missing}" if prepared.missing else None
            return _recorded(claimed, "dry_run", prepared, None, error)
        breaker = self.breakers[sender.provider]
        if prepared.missing:
            verdict = Verdict(
                "give_up",
                error=f"cannot send: {prepared.missing}; retrying cannot help",
                cause=prepared.missing,
            )
        else:
            async with self._slots:
                # Asked once a slot is free, not before: the sends of this batch
                # that went first may have opened it (each hanging to its timeout).
                if (wait := breaker.wait()) is not None:
                    error = f"waiting: the {sender.provider} circuit is open"
                    return Finish(action.key, "pending", claimed.attempts, wait, error)
                started = time.perf_counter()
                verdict = await send(self._client, prepared.request, sender)
            if self._observe_call is not None:
                self._observe_call(sender.provider, verdict.result, time.perf_counter() - started)
            # Any answer but one worth retrying shows the provider up (a 4xx too).
            if verdict.result == "retry":
                breaker.failed()
            else:
                breaker.succeeded()
        if verdict.result == "succeeded":
            return _recorded(claimed, "succeeded", prepared, verdict, None)
        if verdict.result == "retry" and attempt < self._settings.max_attempts:
            settings = self._settings
            delay = retry_delay(attempt, settings.backoff_seconds, settings.backoff_max_seconds)
            return _recorded(claimed, "failed", prepared, verdict, verdict.error, delay)
        error = verdict.error
        if verdict.result == "retry":
            error = f"gave up after {attempt} attempts: {error}"
        return _recorded(claimed, "dead_lettered", prepared, verdict, error)

    def _report(self, attempt: _Attempt) -> None:
        action = attempt.claimed.request
        if self._observe is not None:
            self._observe(action.kind, attempt.outcome)
        if attempt.outcome not in ("failed", "dead_lettered"):
            return
        # No error text: a provider's answer may quote personal data.
        extra = {
            "action": action.key,
            "order_id": action.order_id,
            "attempt": attempt.finish.attempts,
            "cause": attempt.cause,
        }
        if attempt.outcome == "failed":
            log.warning("action failed, will retry", extra=extra)
        else:
            log.error("action dead-lettered", extra=extra)


def _recorded(
    claimed: ClaimedAction,
    outcome: Outcome,
    prepared: Prepared,
    verdict: Verdict | None,
    error: str | None,
    delay: float | None = None,
) -> _Attempt:
    key = claimed.request.key
    attempt = claimed.attempts + 1
    return _Attempt(
        claimed=claimed,
        outcome=outcome,
        event=outcome_event(claimed, outcome, prepared, verdict, error, delay),
        finish=Finish(key, STATE_AFTER[outcome], attempt, delay or 0.0, error),
        cause=verdict.cause if verdict is not None else "",
    )
