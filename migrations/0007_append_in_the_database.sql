-- What every append must do besides inserting its rows, done by the database
-- itself, so a batch is one INSERT statement (one round trip, its own
-- transaction) and no writer can forget a step:
--
-- 1. Before the first row gets its position, the statement takes the append
--    lock (the same advisory lock as before): positions then commit in order,
--    so a reader of "position > cursor" can never skip a late-committing event.
--    Identity values are drawn while the statement's rows are produced, after
--    its BEFORE STATEMENT triggers have run.
-- 2. After the rows, still under the lock, each touched stream's head moves to
--    its newest event, and subscribers are woken.

CREATE FUNCTION events_take_append_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7254910833);
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_append_in_order
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_take_append_lock();

CREATE FUNCTION events_advance_streams() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO streams (stream, version, last_hash, updated_at)
    SELECT DISTINCT ON (stream) stream, stream_version, hash, now()
    FROM appended
    ORDER BY stream, stream_version DESC
    ON CONFLICT (stream) DO UPDATE
    SET version = excluded.version,
        last_hash = excluded.last_hash,
        updated_at = excluded.updated_at;
    PERFORM pg_notify('hookledger_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_advance_streams
    AFTER INSERT ON events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION events_advance_streams();
