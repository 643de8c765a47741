-- The ledger: one append-only events table, the single source of truth, and a
-- streams table holding each stream's head (version and last hash).

CREATE TABLE streams (
    stream      text PRIMARY KEY,
    version     bigint NOT NULL CHECK (version > 0),
    last_hash   text NOT NULL CHECK (length(last_hash) = 64),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider        text NOT NULL,
    event_id        text NOT NULL,
    stream          text NOT NULL,
    stream_version  bigint NOT NULL CHECK (stream_version > 0),
    type            text NOT NULL,
    occurred_at     timestamptz,
    recorded_at     timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    raw             bytea NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash       text NOT NULL CHECK (length(prev_hash) = 64),
    hash            text NOT NULL CHECK (length(hash) = 64),
    CONSTRAINT events_idempotency_key UNIQUE (provider, event_id),
    CONSTRAINT events_stream_version UNIQUE (stream, stream_version)
);

-- Append-only, enforced by the database itself: these fire for every role,
-- the service's own included.
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
