-- The queries of projections/stream_cache.py, each under a "-- name: NAME" header.

-- name: read_streams_with_head [unprepared]
-- Whole order streams, each row with the ledger's head in the same snapshot:
-- every event up to that head is among the rows.
SELECT stream, (SELECT max(position) FROM events), position, provider, event_id, type,
       occurred_at, recorded_at,
       CASE WHEN personal IS NULL THEN payload ELSE personal_payload(payload, position) END
FROM events
WHERE stream = ANY(%b::text[])
ORDER BY stream, stream_version

-- name: set_aside
-- The positions a consumer has set aside (hardly ever any).
SELECT position FROM quarantine WHERE consumer = %s
