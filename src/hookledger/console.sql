-- The console's reads, each under a "-- name: NAME" header.

-- name: make_key
INSERT INTO installation_keys (name, key) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING true

-- name: read_key
SELECT key FROM installation_keys WHERE name = %s

-- name: overview
-- Countdown timers due within the hour, dead letters, the ledger's size, and
-- the newest checkpoint (size, when signed).
SELECT (SELECT count(*) FROM countdown_timers WHERE due_at <= now() + interval '1 hour'),
       (SELECT count(*) FROM actions WHERE state = 'dead'),
       (SELECT coalesce(max(position), 0) FROM events),
       (SELECT size || ' events, signed ' || to_char(signed_at AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD HH24:MI:SS') || ' UTC'
        FROM tree_checkpoints ORDER BY size DESC LIMIT 1)

-- name: orders_page
-- A page of orders after a keyset cursor (order id), optionally only these ids
-- and only one status, with their countdown's state.
SELECT o.order_id, to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
       o.status, c.state, o.total::text, o.currency
FROM orders AS o
LEFT JOIN countdowns AS c USING (order_id)
WHERE (%s::text[] IS NULL OR o.order_id = ANY(%s::text[]))
  AND (%s::text = '' OR o.status = %s::text)
  AND o.order_id > %s::text
ORDER BY o.order_id
LIMIT %s

-- name: requeue_dead
-- scheduler/actions' requeue, answering what the ledger records of it.
UPDATE actions
SET state = 'pending', attempts = 0, retries = retries + 1,
    next_attempt_at = now(), updated_at = now()
WHERE key = %s AND state = 'dead'
RETURNING order_id, kind, retries, last_error

-- name: make_link
INSERT INTO console_links (token_sha256, expires_at)
VALUES (sha256(convert_to(%s, 'UTF8')), now() + make_interval(secs => %s))
RETURNING true

-- name: redeem_link
-- A link works once, before it expires.
UPDATE console_links SET used_at = now()
WHERE token_sha256 = sha256(convert_to(%s, 'UTF8')) AND used_at IS NULL AND expires_at > now()
RETURNING true
