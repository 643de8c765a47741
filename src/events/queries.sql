-- Every query of the ledger, each under a "-- name: NAME" header. Queries are
-- prepared on the server once used often; "[unprepared]" ones are planned at
-- each call instead, because a plan made while their table was small (a
-- sequential scan) would stay in use long after it has grown.

-- name: take_append_lock
-- Appends are serialised across processes: positions then commit in order, so
-- a reader of "position > cursor" can never skip a late-committing event.
SELECT pg_advisory_xact_lock(7254910833)

-- name: find_recorded [unprepared]
SELECT e.provider, e.event_id, e.position, sha256(e.raw) AS raw_digest
FROM events AS e
JOIN unnest(%b::text[], %b::text[]) AS k(provider, event_id)
  ON e.provider = k.provider AND e.event_id = k.event_id

-- name: read_stream_heads [unprepared]
SELECT stream, version, last_hash
FROM streams
WHERE stream = ANY(%b::text[])

-- name: insert_events
INSERT INTO events (provider, event_id, stream, stream_version, type, occurred_at,
                    recorded_at, payload, raw, metadata, prev_hash, hash)
SELECT provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload::jsonb, raw, metadata::jsonb, prev_hash, hash
FROM unnest(%b::text[], %b::text[], %b::text[], %b::int8[], %b::text[], %b::timestamptz[],
            %b::timestamptz[], %b::text[], %b::bytea[], %b::text[], %b::text[], %b::text[])
     AS t(provider, event_id, stream, stream_version, type, occurred_at,
          recorded_at, payload, raw, metadata, prev_hash, hash)
RETURNING position, provider, event_id

-- name: upsert_stream_heads
INSERT INTO streams (stream, version, last_hash, updated_at)
SELECT stream, version, last_hash, now()
FROM unnest(%b::text[], %b::int8[], %b::text[]) AS t(stream, version, last_hash)
ON CONFLICT (stream) DO UPDATE
SET version = excluded.version, last_hash = excluded.last_hash, updated_at = excluded.updated_at

-- name: notify_appended
SELECT pg_notify('hookledger_events', %s)

-- name: read_after
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload, raw, metadata, prev_hash, hash
FROM events
WHERE position > %s
ORDER BY position
LIMIT %s

-- name: read_stream
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload, raw, metadata, prev_hash, hash
FROM events
WHERE stream = %s
ORDER BY stream_version

-- name: read_all_by_stream
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload, raw, metadata, prev_hash, hash
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
