-- The self-test's SQL, each query under a "-- name: NAME" header.

-- name: applied_migrations
SELECT version, checksum FROM schema_migrations ORDER BY version

-- name: recent_streams
-- The streams of the latest events: the chain spot-check reads these whole.
SELECT stream FROM (
    SELECT stream, max(position) AS last FROM (
        SELECT stream, position FROM events ORDER BY position DESC LIMIT 200
    ) AS latest GROUP BY stream
) AS streams
ORDER BY last DESC
LIMIT %s

-- name: overdue_timers
-- Timers due more than %s seconds ago and still there, and the oldest one's lateness.
SELECT count(*), coalesce(extract(epoch FROM now() - min(due_at)), 0)::float8
FROM countdown_timers
WHERE due_at <= now() - %s * interval '1 second'

-- name: exporter_lag
SELECT position, (SELECT coalesce(max(position), 0) FROM events) - position
FROM checkpoints WHERE name = 'exporter.bigquery'

-- name: proofs_state
-- The tree's size, the newest checkpoint's size and its age in seconds.
SELECT (SELECT coalesce(max(leaf_index) + 1, 0) FROM tree_leaves),
       (SELECT max(size) FROM tree_checkpoints),
       (SELECT extract(epoch FROM now() - max(signed_at)) FROM tree_checkpoints)::float8
