-- The Postgres timer backend's SQL, each query under a "-- name: NAME" header.

-- name: claim_timers
-- Due timers (overdue by more than %s seconds), oldest first; a timer another
-- worker holds is skipped, not waited on.
SELECT order_id, timer, due_at, now()
FROM countdown_timers
WHERE due_at <= now() - %s * interval '1 second'
ORDER BY due_at
LIMIT %s
FOR UPDATE SKIP LOCKED

-- name: delete_fired_timers
DELETE FROM countdown_timers AS t
USING unnest(%b::text[], %b::text[]) AS f(order_id, timer)
WHERE t.order_id = f.order_id AND t.timer = f.timer

-- name: move_expiry
UPDATE countdown_timers AS t SET due_at = f.due_at
FROM unnest(%b::text[], %b::timestamptz[]) AS f(order_id, due_at)
WHERE t.order_id = f.order_id AND t.timer = 'expire'

-- name: next_timer_in
SELECT extract(epoch FROM min(due_at) + %s * interval '1 second' - now())::float8
FROM countdown_timers

-- name: claim_order_timers
-- One order's due timers, for a Cloud Task: waits for a worker holding them,
-- then finds them gone if it fired them. Locked in key order, like the
-- projection's delete_timers, so the two never deadlock.
SELECT order_id, timer, due_at, now()
FROM countdown_timers
WHERE order_id = %s AND due_at <= now()
ORDER BY order_id, timer
FOR UPDATE

-- name: order_timer
SELECT due_at, due_at <= now() FROM countdown_timers WHERE order_id = %s AND timer = %s
