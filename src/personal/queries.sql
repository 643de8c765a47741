-- The queries of personal data (erasure, retention, lookups), each under a
-- "-- name: NAME" header.

-- name: make_lookup_key
INSERT INTO personal_lookup_key (key) VALUES (%s) ON CONFLICT DO NOTHING RETURNING true

-- name: lookup_key
SELECT key FROM personal_lookup_key

-- name: subjects_by_lookup
-- The order streams holding a value with this keyed hash (an e-mail address).
SELECT DISTINCT subject FROM personal_values
WHERE lookup = %s AND subject LIKE 'order-%%'
ORDER BY subject

-- name: held_for_erasure
-- What an erasure of these subjects deletes: their values, and wherever else
-- their addresses' keyed hashes appear (a batch delivery's own stream). Locked:
-- a concurrent sweep waits, then finds them gone.
SELECT position, n, subject, path
FROM personal_values
WHERE subject = ANY(%s::text[])
   OR lookup = ANY(ARRAY(SELECT lookup FROM personal_values
                         WHERE subject = ANY(%s::text[]) AND lookup IS NOT NULL)
                   || %s::bytea[])
ORDER BY position, n
FOR UPDATE

-- name: erasure_preview
-- What an erasure of these subjects would delete (held_for_erasure, counted,
-- nothing locked): how many values, and of how many subjects besides them.
SELECT count(*), count(DISTINCT subject) FILTER (WHERE subject <> ALL(%s::text[]))
FROM personal_values
WHERE subject = ANY(%s::text[])
   OR lookup = ANY(ARRAY(SELECT lookup FROM personal_values
                         WHERE subject = ANY(%s::text[]) AND lookup IS NOT NULL))

-- name: delete_values
DELETE FROM personal_values AS p
USING unnest(%s::int8[], %s::int4[]) AS d(position, n)
WHERE p.position = d.position AND p.n = d.n

-- name: forget_customers
-- The orders projection's copy of the customers' addresses.
UPDATE orders SET customer = NULL WHERE order_id = ANY(%s::text[]) AND customer IS NOT NULL

-- name: cancel_emails
-- E-mails not yet sent to an erased customer are dead-lettered, never sent.
UPDATE actions
SET state = 'dead', last_error = 'subject erased: not sent', updated_at = now()
WHERE order_id = ANY(%s::text[]) AND state = 'pending' AND kind LIKE 'email.%%'
RETURNING order_id

-- name: forget_action_addresses
-- Every action's copy of the address goes, sent or not.
UPDATE actions SET params = params - 'to', updated_at = now()
WHERE order_id = ANY(%s::text[]) AND params ? 'to'

-- name: last_erasure
SELECT position, event_id, recorded_at, payload
FROM events
WHERE stream = %s AND type = 'subject.erased'
ORDER BY stream_version DESC
LIMIT 1

-- name: count_erased
UPDATE personal_erasures SET subjects = subjects + %s, "values" = "values" + %s
WHERE cause = %s

-- name: erasure_totals
SELECT cause, subjects, "values" FROM personal_erasures

-- name: arm_countdown_values
-- Values kept "from countdown_closed" get their due time once their order's
-- countdown closed (satisfied, expired or cancelled).
UPDATE personal_values AS p
SET due_at = c.closed_at + make_interval(secs => p.keep_seconds)
FROM countdowns AS c
WHERE p.due_at IS NULL
  AND p.subject LIKE 'order-%%'
  AND c.order_id = substr(p.subject, 7)
  AND c.closed_at IS NOT NULL

-- name: due_subjects
-- The subjects with values due for erasure, oldest first.
SELECT subject, min(due_at) AS due
FROM personal_values
WHERE due_at <= %s
GROUP BY subject
ORDER BY due
LIMIT %s

-- name: take_due
-- A sweep's batch: the due values of these subjects, deleted at once.
DELETE FROM personal_values
WHERE subject = ANY(%s::text[]) AND due_at <= %s
RETURNING position, n, subject, path, lookup IS NOT NULL

-- name: peek_due
-- What the next sweep would erase (retention --dry-run): per subject, how many
-- values of which classes, due since when.
SELECT subject, count(*), array_agg(DISTINCT path[array_length(path, 1)]), min(due_at)
FROM personal_values
WHERE due_at <= %s
GROUP BY subject
ORDER BY min(due_at)
LIMIT %s

-- name: retention_state
-- Values held (the planner's estimate: exact would scan them all at every
-- scrape); due now; waiting for their countdown to close; the oldest due.
SELECT greatest((SELECT reltuples FROM pg_class WHERE oid = 'personal_values'::regclass), 0)::int8,
       (SELECT count(*) FROM personal_values WHERE due_at <= now()),
       (SELECT count(*) FROM personal_values WHERE due_at IS NULL),
       coalesce((SELECT extract(epoch FROM now() - min(due_at))::float8
                 FROM personal_values WHERE due_at <= now()), 0)

-- name: addresses_left
-- Of these order subjects, those still holding an e-mail address.
SELECT DISTINCT subject FROM personal_values
WHERE subject = ANY(%s::text[]) AND lookup IS NOT NULL

-- name: recorded_whole
-- Provider events of these subjects recorded before personal values were held
-- apart (hash rules 1 and 2): their values are in the ledger for good.
SELECT stream, count(*) FROM events
WHERE stream = ANY(%s::text[]) AND hash_rule < 3 AND provider <> 'hookledger'
GROUP BY stream
