-- The projections' SQL, each under a "-- name: NAME" header. Each projection
-- rewrites the rows of the orders a batch touched: delete them, insert them anew.

-- name: read_order_streams [unprepared]
-- Whole order streams, without the events the consumer named (if any) has set
-- aside: the rest of an order goes on being applied.
SELECT stream, position, provider, event_id, type, occurred_at, recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END
FROM events
WHERE stream = ANY(%b::text[])
  AND NOT EXISTS (SELECT 1 FROM quarantine AS q
                  WHERE q.consumer = %s::text AND q.position = events.position)
ORDER BY stream, stream_version

-- name: streams_after [unprepared]
SELECT DISTINCT stream FROM events WHERE position > %s AND position <= %s AND stream LIKE 'order-%%'

-- name: head_position
SELECT coalesce(max(position), 0) FROM events

-- name: delete_orders
DELETE FROM orders WHERE order_id = ANY(%b::text[])

-- name: insert_orders
INSERT INTO orders (order_id, created_at, total, currency, customer, status, updated_at)
SELECT order_id, created_at, total, currency, customer, status, now()
FROM unnest(%b::text[], %b::timestamptz[], %b::numeric[], %b::text[], %b::text[], %b::text[])
     AS t(order_id, created_at, total, currency, customer, status)

-- name: delete_verifications
DELETE FROM verifications WHERE order_id = ANY(%b::text[])

-- name: insert_verifications
INSERT INTO verifications (order_id, sessions, latest_decision, decided_at, submitted_at,
                           attempts, updated_at)
SELECT order_id, sessions::text[], latest_decision, decided_at, submitted_at,
       attempts, now()
FROM unnest(%b::text[], %b::text[], %b::text[], %b::timestamptz[], %b::timestamptz[], %b::int4[])
     AS t(order_id, sessions, latest_decision, decided_at, submitted_at, attempts)

-- name: delete_countdowns
DELETE FROM countdowns WHERE order_id = ANY(%b::text[])

-- name: insert_countdowns
INSERT INTO countdowns (order_id, started_at, due_at, expires_at, reminders, reminded, state,
                        closed_at, updated_at)
SELECT order_id, started_at, due_at, expires_at, reminders::timestamptz[], reminded::timestamptz[],
       state, closed_at, now()
FROM unnest(%b::text[], %b::timestamptz[], %b::timestamptz[], %b::timestamptz[], %b::text[],
            %b::text[], %b::text[], %b::timestamptz[])
     AS t(order_id, started_at, due_at, expires_at, reminders, reminded, state, closed_at)

-- name: delete_timers
-- Rows locked in key order first, as every claim of timers waits for them, so
-- two transactions never each hold a row the other waits for.
WITH locked AS (
    SELECT order_id, timer FROM countdown_timers
    WHERE order_id = ANY(%b::text[])
    ORDER BY order_id, timer
    FOR UPDATE
)
DELETE FROM countdown_timers AS t USING locked
WHERE t.order_id = locked.order_id AND t.timer = locked.timer

-- name: insert_timers
INSERT INTO countdown_timers (order_id, timer, due_at)
SELECT * FROM unnest(%b::text[], %b::text[], %b::timestamptz[])

-- name: notify_timers
SELECT pg_notify('hookledger_timers', '')

-- name: order_row
SELECT order_id, created_at, total, currency, customer, status, updated_at
FROM orders WHERE order_id = %s

-- name: verification_row
SELECT order_id, sessions, latest_decision, decided_at, submitted_at, attempts, updated_at
FROM verifications WHERE order_id = %s

-- name: countdown_row
SELECT order_id, started_at, due_at, expires_at, reminders, reminded, state, closed_at, updated_at
FROM countdowns WHERE order_id = %s

-- name: create_shadow
DROP TABLE IF EXISTS {shadow};
CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)

-- name: swap_in_shadow
ALTER TABLE {live} RENAME TO {old};
ALTER TABLE {shadow} RENAME TO {live};
DROP TABLE {old}

-- name: drop_shadow
DROP TABLE IF EXISTS {shadow}

-- name: repeatable_read
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ

-- name: export_snapshot
-- Lets the rebuild's partition processes read the very snapshot the rebuild holds.
SELECT pg_export_snapshot()

-- name: read_order_streams_part
-- One partition of a rebuild: the order streams whose name hashes to it.
SELECT stream, position, provider, event_id, type, occurred_at, recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END
FROM events
WHERE stream LIKE 'order-%%' AND position <= %s AND abs(hashtext(stream) %% %s) = %s
ORDER BY stream, stream_version

-- name: regrant_projections
-- Tables made LIKE the live ones do not inherit their grants: give the swapped-in
-- tables the service role's rights again (as migration 0004 did).
DO $$
BEGIN
    GRANT SELECT, INSERT, UPDATE, DELETE ON orders, verifications, countdowns, countdown_timers
        TO hookledger_writer;
EXCEPTION
    WHEN undefined_object OR insufficient_privilege THEN
        RAISE NOTICE 'projections not granted to hookledger_writer: %', SQLERRM;
END
$$
