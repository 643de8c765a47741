-- The exporter's reads of the ledger, each under a "-- name: NAME" header
-- (loaded like events/queries.sql). Bodies come as text: the export passes them
-- on without parsing unless the policy has something to change in them.

-- name: export_after
SELECT position, provider, event_id, stream, stream_version, type, occurred_at,
       recorded_at, payload::text, metadata::text
FROM events
WHERE position > %s
ORDER BY position
LIMIT %s

-- name: count_after
SELECT count(*) FROM events WHERE position > %s
