-- Every query of the outbound action queue, each under a "-- name: NAME" header
-- (loaded by events.queries.load).

-- name: enqueue
-- In the caller's transaction: an action decided twice is queued once.
INSERT INTO actions (key, kind, order_id, trigger_event_id, params)
SELECT key, kind, order_id, trigger_event_id, params::jsonb
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
     AS t(key, kind, order_id, trigger_event_id, params)
ON CONFLICT (key) DO NOTHING
RETURNING key

-- name: notify_enqueued
-- One per enqueue (sent at commit): NOTIFY takes a cluster-wide lock.
SELECT pg_notify('hookledger_actions', '')

-- name: claim_due
-- Locked until the claiming transaction ends; a second worker skips them.
SELECT key, kind, order_id, trigger_event_id, params, attempts, retries
FROM actions
WHERE state = 'pending' AND next_attempt_at <= now()
ORDER BY next_attempt_at
LIMIT %s
FOR UPDATE SKIP LOCKED

-- name: claim_key
SELECT key, kind, order_id, trigger_event_id, params, attempts, retries
FROM actions
WHERE key = %s AND state = 'pending'
FOR UPDATE SKIP LOCKED

-- name: recorded_outcomes
-- Outcomes already in the ledger (a worker died after appending them and
-- before updating its rows): the error each carries.
SELECT event_id, payload ->> 'error'
FROM events
WHERE provider = 'hookledger' AND event_id = ANY(%s::text[])

-- name: finish_attempts
UPDATE actions AS a
SET state = u.state,
    attempts = u.attempts,
    next_attempt_at = clock_timestamp() + u.delay * interval '1 second',
    last_error = u.error,
    updated_at = clock_timestamp()
FROM unnest(%s::text[], %s::text[], %s::int4[], %s::float8[], %s::text[])
     AS u(key, state, attempts, delay, error)
WHERE a.key = u.key

-- name: dead_letters
SELECT key, kind, order_id, attempts, retries, last_error, updated_at
FROM actions
WHERE state = 'dead'
ORDER BY updated_at, key

-- name: requeue_dead
-- A dead action pending again, due now, its attempts counted afresh; what the
-- ledger records of the retry.
UPDATE actions
SET state = 'pending', attempts = 0, retries = retries + 1,
    next_attempt_at = now(), updated_at = now()
WHERE key = %s AND state = 'dead'
RETURNING order_id, kind, retries, last_error

-- name: action_state
SELECT state, attempts, last_error FROM actions WHERE key = %s

-- name: next_due
-- Seconds until the soonest pending action is due (negative: due already).
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
FROM actions
WHERE state = 'pending'

-- name: record_breakers
-- A sending process's breakers whose state changed, each kept for the seconds
-- given (its cool-down and a grace) unless written again.
INSERT INTO circuit_breakers (provider, holder, state, changed_at, expires_at)
-- (From the write, not from the transaction's start: its sends came between.)
SELECT provider, %s, state, clock_timestamp(), clock_timestamp() + make_interval(secs => %s)
FROM unnest(%s::text[], %s::text[]) AS t(provider, state)
ON CONFLICT (provider, holder) DO UPDATE
SET state = EXCLUDED.state, changed_at = EXCLUDED.changed_at, expires_at = EXCLUDED.expires_at

-- name: open_circuits
-- Each provider whose breaker some live sending process holds open or half-open.
SELECT provider, max(state)
FROM circuit_breakers
WHERE state <> 'closed' AND expires_at > now()
GROUP BY provider
