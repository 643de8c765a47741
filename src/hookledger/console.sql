-- The console's reads, each under a "-- name: NAME" header.

-- name: make_key
INSERT INTO installation_keys (name, key) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING true

-- name: read_key
SELECT key FROM installation_keys WHERE name = %s

-- name: overview
-- Countdown timers due within the hour, dead letters (actions and Cloud
-- Tasks), the ledger's size, and the newest checkpoint (size, when signed).
SELECT (SELECT count(*) FROM countdown_timers WHERE due_at <= now() + interval '1 hour'),
       (SELECT count(*) FROM actions WHERE state = 'dead')
         + (SELECT count(*) FROM task_dead_letters),
       (SELECT coalesce(max(position), 0) FROM events),
       (SELECT size || ' events, signed ' || to_char(signed_at AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD HH24:MI:SS') || ' UTC'
        FROM tree_checkpoints ORDER BY size DESC LIMIT 1)

-- name: orders_page
-- A page of orders after a keyset cursor (order id, in byte order), optionally
-- only these ids or those from a prefix up to (not including) its successor,
-- one status, one countdown state, with their countdown's state.
SELECT o.order_id, to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
       o.status, c.state, o.total::text, o.currency
FROM orders AS o
LEFT JOIN countdowns AS c USING (order_id)
WHERE (%s::text[] IS NULL OR o.order_id = ANY(%s::text[]))
  AND o.order_id COLLATE "C" >= %s::text
  AND (%s::text IS NULL OR o.order_id COLLATE "C" < %s::text)
  AND (%s::text = '' OR o.status = %s::text)
  AND (%s::text = '' OR c.state = %s::text)
  AND o.order_id COLLATE "C" > %s::text
ORDER BY o.order_id COLLATE "C"
LIMIT %s

-- name: make_link
INSERT INTO console_links (token_sha256, expires_at)
VALUES (sha256(convert_to(%s, 'UTF8')), now() + make_interval(secs => %s))
RETURNING true

-- name: redeem_link
-- A link works once, before it expires.
UPDATE console_links SET used_at = now()
WHERE token_sha256 = sha256(convert_to(%s, 'UTF8')) AND used_at IS NULL AND expires_at > now()
RETURNING true

-- name: add_rejections
-- One intake process's tally of refused signatures, added to the minutes'.
INSERT INTO signature_rejections (minute, provider, reason, count)
SELECT to_timestamp(m), p, r, c
FROM unnest(%s::int8[], %s::text[], %s::text[], %s::int8[]) AS t(m, p, r, c)
ON CONFLICT (minute, provider, reason)
DO UPDATE SET count = signature_rejections.count + excluded.count

-- name: rejections_by_hour
-- Refused signatures of the last 24 hours by provider, reason and hour.
SELECT provider, reason, to_char(date_trunc('hour', minute) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:00'),
       sum(count)::int8
FROM signature_rejections
WHERE minute > now() - interval '24 hours'
GROUP BY 1, 2, 3
ORDER BY 3 DESC, 4 DESC
LIMIT 200

-- name: blocked_countdowns
-- Orders whose reminder or refund waits or gave up because its provider fails:
-- pending actions that have failed at least once, and dead ones, of orders
-- whose countdown is running or expired.
SELECT a.order_id, a.kind, a.state, a.attempts, a.last_error, c.state,
       to_char(a.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
FROM actions AS a
JOIN countdowns AS c USING (order_id)
WHERE ((a.state = 'pending' AND a.attempts > 0) OR a.state = 'dead')
  AND c.state IN ('running', 'expired')
ORDER BY a.updated_at DESC
LIMIT 200

-- name: add_deliveries
INSERT INTO delivery_minutes (minute, provider, outcome, count)
SELECT to_timestamp(m), p, o, c
FROM unnest(%s::int8[], %s::text[], %s::text[], %s::int8[]) AS t(m, p, o, c)
ON CONFLICT (minute, provider, outcome)
DO UPDATE SET count = delivery_minutes.count + excluded.count

-- name: deliveries_summary
-- Deliveries per provider and outcome over the last hour and the last day.
SELECT provider, outcome,
       coalesce(sum(count) FILTER (WHERE minute > now() - interval '1 hour'), 0)::int8,
       sum(count)::int8
FROM delivery_minutes
WHERE minute > now() - interval '24 hours'
GROUP BY provider, outcome
ORDER BY provider, outcome

-- name: queue_job
-- A job for the background process's runner (console_jobs.py).
INSERT INTO console_jobs (what, by, total, kind, params) VALUES (%s, %s, %s, %s, %s)
RETURNING id

-- name: next_job
-- The oldest unfinished job, taken (again, from the start, if a runner died
-- in it: the runner holds a lease, so no other is working on it).
UPDATE console_jobs SET picked_at = now(), done = 0, failed = 0
WHERE id = (SELECT id FROM console_jobs WHERE finished_at IS NULL ORDER BY id LIMIT 1)
RETURNING id, kind, params, by

-- name: job_progress
UPDATE console_jobs SET done = %s, failed = %s,
    finished_at = CASE WHEN %s THEN now() END
WHERE id = %s
RETURNING id

-- name: read_job
SELECT id, what, by, total, done, failed,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       picked_at IS NOT NULL
FROM console_jobs WHERE id = %s

-- name: recent_jobs
-- The console's latest jobs of one sort (their "what" starts with it).
SELECT id, what, by, total, done, failed,
       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       picked_at IS NOT NULL
FROM console_jobs WHERE what LIKE %s || '%%'
ORDER BY id DESC LIMIT 10

-- name: rename_job
UPDATE console_jobs SET what = %s WHERE id = %s RETURNING id

-- name: operator_actions
-- What operators did, newest first, before a keyset cursor (a position). The
-- types are those of migration 0017's index, which serves this read.
SELECT position, stream, type,
       to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       coalesce(metadata->>'by', payload->>'by'),
       coalesce(payload->>'from', payload->>'via'),
       payload
FROM events
WHERE type IN ('operator.retried', 'operator.replayed', 'subject.erased')
  AND position < %s
ORDER BY position DESC
LIMIT %s
