-- The exporter's reads of the ledger, each under a "-- name: NAME" header
-- (loaded like events/queries.sql). Bodies come as text: the export passes them
-- on without parsing unless the policy has something to change in them.

-- name: export_after
-- Times as microseconds since 1970 (UTC): exact, and much cheaper for this
-- process to turn into Arrow columns than datetime objects.
SELECT position, provider, event_id, stream, stream_version, type,
       (extract(epoch FROM occurred_at) * 1000000)::int8,
       (extract(epoch FROM recorded_at) * 1000000)::int8,
       (CASE WHEN personal IS NULL THEN payload
             ELSE personal_payload(payload, position) END)::text,
       metadata::text
FROM events
WHERE position > %s
ORDER BY position
LIMIT %s

-- name: export_stream
-- One stream's events before a position, as export_after reads them: an
-- erasure's subject, exported again with its erased values gone.
SELECT position, provider, event_id, stream, stream_version, type,
       (extract(epoch FROM occurred_at) * 1000000)::int8,
       (extract(epoch FROM recorded_at) * 1000000)::int8,
       (CASE WHEN personal IS NULL THEN payload
             ELSE personal_payload(payload, position) END)::text,
       metadata::text
FROM events
WHERE stream = %s AND position < %s
ORDER BY position

-- name: count_after
SELECT count(*) FROM events WHERE position > %s
