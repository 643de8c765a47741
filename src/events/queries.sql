-- Every query of the ledger, each under a "-- name: NAME" header. Queries are
-- prepared on the server once used often; "[unprepared]" ones are planned at
-- each call instead, because a plan made while their table was small (a
-- sequential scan) would stay in use long after it has grown.

-- name: take_append_lock
-- Appends are serialised across processes: positions then commit in order, so
-- a reader of "position > cursor" can never skip a late-committing event. Every
-- INSERT into events takes this lock by itself (migration 0007); a writer takes
-- it explicitly only to hold it from its reads on.
SELECT pg_advisory_xact_lock(7254910833)

-- name: snapshot_transaction [unprepared]
-- The first statement of Database.snapshot's transaction: every later read in it
-- sees the database as it was at that moment, whatever commits meanwhile.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY

-- name: plan_with_indexes
-- Set on the appender's connections, which prepare every query (see
-- Database.connect_writer): their plans keep to the indexes however small the
-- ledger was when they were made. JIT is off there too: a plan that must scan
-- sequentially anyway would cost more than jit_above_cost, and be compiled at
-- every execution.
SELECT set_config('enable_seqscan', 'off', false), set_config('jit', 'off', false)

-- name: commits_without_waiting
-- On an appender's connection for derived events only (see Appender).
SELECT set_config('synchronous_commit', 'off', false)

-- name: read_batch_state [unprepared]
-- What a batch must know before it is written, in one round trip: which of its
-- keys are recorded already ('recorded': provider, event_id, position, body
-- digest) and where its streams' chains end ('head': stream, last hash, version).
SELECT 'recorded' AS kind, e.provider AS name, e.event_id AS detail, e.position AS number,
       sha256(e.raw) AS digest
FROM events AS e
JOIN unnest(%b::text[], %b::text[]) AS k(provider, event_id)
  ON e.provider = k.provider AND e.event_id = k.event_id
UNION ALL
SELECT 'head', stream, last_hash, version, NULL
FROM streams
WHERE stream = ANY(%b::text[])

-- name: insert_events
-- The batch is one JSON array of row objects: one parameter, encoded in C by
-- msgspec, where a dozen binary arrays cost more to build than the rest of the
-- batch. The raw bodies travel as base64.
INSERT INTO events (provider, event_id, stream, stream_version, type, occurred_at,
                    recorded_at, payload, raw, metadata, prev_hash, hash, hash_rule, personal)
SELECT provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload, decode(raw, 'base64'), metadata, prev_hash, hash, hash_rule,
       personal
FROM jsonb_to_recordset(%s::jsonb)
     AS t(provider text, event_id text, stream text, stream_version int8, type text,
          occurred_at timestamptz, recorded_at timestamptz, payload jsonb, raw text,
          metadata jsonb, prev_hash text, hash text, hash_rule int2, personal jsonb)
RETURNING position, provider, event_id

-- name: insert_events_and_values
-- insert_events, and the personal values cut out of its events in the same
-- statement (their second JSON array, matched by idempotency key). A value
-- counted from its recording gets its due time now; one counted from its
-- order's countdown close gets it once that closes (an event of no order counts
-- from its recording).
WITH added AS (
    INSERT INTO events (provider, event_id, stream, stream_version, type, occurred_at,
                        recorded_at, payload, raw, metadata, prev_hash, hash, hash_rule, personal)
    SELECT provider, event_id, stream, stream_version, type, occurred_at,
           recorded_at, payload, decode(raw, 'base64'), metadata, prev_hash, hash, hash_rule,
           personal
    FROM jsonb_to_recordset(%s::jsonb)
         AS t(provider text, event_id text, stream text, stream_version int8, type text,
              occurred_at timestamptz, recorded_at timestamptz, payload jsonb, raw text,
              metadata jsonb, prev_hash text, hash text, hash_rule int2, personal jsonb)
    RETURNING position, provider, event_id, stream, recorded_at
), held AS (
    INSERT INTO personal_values (position, n, subject, path, salt, value, payload_value,
                                 lookup, anchor, keep_seconds, due_at)
    SELECT a.position, v.n, a.stream, v.path, decode(v.salt, 'base64'),
           decode(v.value, 'base64'), v.payload_value, decode(v.lookup, 'base64'),
           v.anchor, v.keep_seconds,
           CASE WHEN v.anchor = 'recorded' OR a.stream NOT LIKE 'order-%%'
                THEN a.recorded_at + make_interval(secs => v.keep_seconds) END
    FROM added AS a
    JOIN jsonb_to_recordset(%s::jsonb)
         AS v(provider text, event_id text, n int4, path text[], salt text, value text,
              payload_value jsonb, lookup text, anchor text, keep_seconds int8)
      ON v.provider = a.provider AND v.event_id = a.event_id
)
SELECT position, provider, event_id FROM added

-- name: read_after
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END,
       raw, metadata, prev_hash, hash, hash_rule, personal,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT n FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END
FROM events
WHERE position > %s
ORDER BY position
LIMIT %s

-- name: read_stream
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END,
       raw, metadata, prev_hash, hash, hash_rule, personal,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT n FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END
FROM events
WHERE stream = %s
ORDER BY stream_version

-- name: read_all_by_stream
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END,
       raw, metadata, prev_hash, hash, hash_rule, personal,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT n FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END
FROM events
ORDER BY stream, stream_version

-- name: stream_heads
SELECT stream, version, last_hash FROM streams ORDER BY stream

-- name: stream_head
SELECT stream, version, last_hash FROM streams WHERE stream = %s

-- name: ping
SELECT 1

-- name: try_lease
-- A session-level lock: it lasts until released or until the holder's connection
-- ends, so a consumer whose process died is taken over by another.
SELECT pg_try_advisory_lock(hashtextextended('hookledger-consumer:' || %s, 0))

-- name: release_lease
SELECT pg_advisory_unlock(hashtextextended('hookledger-consumer:' || %s, 0))

-- name: ensure_checkpoint
INSERT INTO checkpoints (name) VALUES (%s) ON CONFLICT (name) DO NOTHING

-- name: lock_checkpoint
SELECT position FROM checkpoints WHERE name = %s FOR UPDATE

-- name: read_checkpoint
SELECT position FROM checkpoints WHERE name = %s

-- name: advance_checkpoint
UPDATE checkpoints SET position = %s, updated_at = now() WHERE name = %s

-- name: reset_checkpoint
INSERT INTO checkpoints (name, position) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()

-- name: consumer_lags
-- Per consumer: how many events it has still to take, and how long the oldest
-- of them has waited.
SELECT c.name, c.position, greatest(h.head - c.position, 0),
       coalesce(extract(epoch FROM now() - (
           SELECT e.recorded_at FROM events AS e
           WHERE e.position > c.position ORDER BY e.position LIMIT 1)), 0)::float8
FROM checkpoints AS c,
     (SELECT coalesce(max(position), 0) AS head FROM events) AS h
ORDER BY c.name

-- name: quarantine_event
-- Set an event aside for a consumer, or count one more failure of one set aside
-- already; returns the attempts so far (1: a first failure).
INSERT INTO quarantine (consumer, position, error) VALUES (%s, %s, %s)
ON CONFLICT (consumer, position) DO UPDATE
SET error = excluded.error, last_seen_at = now(), attempts = quarantine.attempts + 1
RETURNING attempts

-- name: release_quarantined
DELETE FROM quarantine WHERE consumer = %s AND position = %s

-- name: release_quarantine_up_to
DELETE FROM quarantine WHERE consumer = ANY(%s::text[]) AND position <= %s

-- name: list_quarantine
SELECT q.consumer, q.position, e.provider, e.type, e.stream, e.event_id, q.error,
       q.first_seen_at, q.last_seen_at, q.attempts
FROM quarantine AS q
JOIN events AS e ON e.position = q.position
WHERE %s::text IS NULL OR q.consumer = %s::text
ORDER BY q.position, q.consumer

-- name: quarantine_counts
-- Every consumer with a checkpoint or a quarantined event, and how many it set aside.
SELECT name, count(q.position)::int
FROM (SELECT name FROM checkpoints UNION SELECT consumer FROM quarantine) AS c
LEFT JOIN quarantine AS q ON q.consumer = c.name
GROUP BY name
ORDER BY name

-- name: read_position
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END,
       raw, metadata, prev_hash, hash, hash_rule, personal,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT n FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END
FROM events
WHERE position = %s

-- name: tree_size
SELECT coalesce(max(leaf_index) + 1, 0) FROM tree_leaves

-- name: tree_nodes
-- Stored nodes by (level, index): level 0 from the leaves. One index lookup per
-- key, whatever the planner would guess for a long list (LATERAL: no hash join
-- over the whole tree).
SELECT 0::int2, l.leaf_index, l.hash
FROM unnest(%s::int8[]) AS k(leaf_index)
CROSS JOIN LATERAL (SELECT leaf_index, hash FROM tree_leaves AS t
                    WHERE t.leaf_index = k.leaf_index) AS l
UNION ALL
SELECT n.level, n.index, n.hash
FROM unnest(%s::int2[], %s::int8[]) AS k(level, index)
CROSS JOIN LATERAL (SELECT level, index, hash FROM tree_nodes AS t
                    WHERE t.level = k.level AND t.index = k.index) AS n

-- name: tree_leaf_at
SELECT l.leaf_index, l.hash, e.hash FROM tree_leaves AS l
LEFT JOIN events AS e USING (position)
WHERE l.position = %s

-- name: tree_leaves_at
-- The leaves of the events at these positions (one index lookup each).
SELECT l.position, l.leaf_index, l.hash
FROM unnest(%s::int8[]) AS k(position)
CROSS JOIN LATERAL (SELECT position, leaf_index, hash FROM tree_leaves AS t
                    WHERE t.position = k.position) AS l

-- name: tree_leaf_event
-- The event behind leaf %s, if the ledger still has it.
SELECT l.position, e.hash FROM tree_leaves AS l
LEFT JOIN events AS e USING (position)
WHERE l.leaf_index = %s

-- name: event_hashes_in_order
-- What the tree is built from: every event's position and hash, in order.
SELECT position, hash FROM events ORDER BY position

-- name: tree_leaf_hashes_in_order
SELECT leaf_index, position, hash FROM tree_leaves ORDER BY leaf_index

-- name: record_checkpoint
INSERT INTO tree_checkpoints (size, root, origin, note, key_fingerprint)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (size) DO NOTHING
RETURNING signed_at

-- name: latest_checkpoint
SELECT size, root, origin, note, key_fingerprint, signed_at
FROM tree_checkpoints ORDER BY size DESC LIMIT 1

-- name: checkpoint_at
SELECT size, root, origin, note, key_fingerprint, signed_at
FROM tree_checkpoints WHERE size = %s

-- name: checkpoint_covering
-- The first checkpoint whose tree holds leaf %s (the smallest covering it).
SELECT size, root, origin, note, key_fingerprint, signed_at
FROM tree_checkpoints WHERE size > %s ORDER BY size LIMIT 1

-- name: all_checkpoints
SELECT size, root, origin, note, key_fingerprint, signed_at
FROM tree_checkpoints ORDER BY size

-- name: read_hashes_after
-- What the tree needs of each event: a light read, so it catches up fast.
SELECT position, hash FROM events WHERE position > %s ORDER BY position LIMIT %s

-- name: commit_without_waiting
SET LOCAL synchronous_commit = off

-- name: read_all_by_position
-- Every event as the standard reads give it, with the personal values still
-- held (in entry order; an erased one is missing): the bytes its provider
-- signed, joined back, for verify --signatures.
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END,
       raw, metadata, prev_hash, hash, hash_rule, personal,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT n FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END,
       CASE WHEN personal IS NULL THEN NULL
            ELSE ARRAY(SELECT value FROM personal_values AS p
                       WHERE p.position = events.position ORDER BY n) END
FROM events
ORDER BY position

-- name: read_heads_after
-- What the projections and the policy need of each new event: they read the
-- streams it touched whole, so its body would be read (and decoded) twice.
SELECT position, provider, event_id, stream, type FROM events
WHERE position > %s ORDER BY position LIMIT %s

-- name: held_values
-- The salts and values still held of these events' personal values.
SELECT position, n, salt, value FROM personal_values
WHERE position = ANY(%s::int8[])
ORDER BY position, n

-- name: held_personal_events
-- Every event that still holds personal values, with them (for verify): its
-- skeleton, its payload as read, its entries, and the held values' indexes,
-- salts and values, of the whole ledger.
SELECT e.stream, e.stream_version, e.raw, personal_payload(e.payload, e.position), e.personal,
       array_agg(p.n ORDER BY p.n), array_agg(p.salt ORDER BY p.n),
       array_agg(p.value ORDER BY p.n)
FROM events AS e
JOIN personal_values AS p ON p.position = e.position
GROUP BY e.position
ORDER BY e.position

-- name: held_personal_events_of_stream
-- Every event that still holds personal values, with them (for verify): its
-- skeleton, its payload as read, its entries, and the held values' indexes,
-- salts and values, of one stream (through its index).
SELECT e.stream, e.stream_version, e.raw, personal_payload(e.payload, e.position), e.personal,
       array_agg(p.n ORDER BY p.n), array_agg(p.salt ORDER BY p.n),
       array_agg(p.value ORDER BY p.n)
FROM events AS e
JOIN personal_values AS p ON p.position = e.position
WHERE e.stream = %s
GROUP BY e.position
ORDER BY e.position
